-- The source a channel token posts under: every event it posts through
-- POST /v1/events carries this source or one under it (`crm.billing`), so
-- one system cannot post under another's name and pre-empt the event ids
-- derived from it. Tokens of other roles are not bound (NULL).
ALTER TABLE api_tokens
    ADD COLUMN source text CHECK (source ~ '^[a-z0-9._-]{1,64}$');

-- Channel tokens created before sources existed post under their name, made
-- into a source name.
UPDATE api_tokens
SET source = left(regexp_replace(lower(name), '[^a-z0-9._-]', '-', 'g'), 64)
WHERE role = 'channel';

ALTER TABLE api_tokens
    ADD CONSTRAINT api_tokens_channel_source CHECK ((role = 'channel') = (source IS NOT NULL));
