-- The agent's view: cases, feedback, recent contacts, customer attributes
-- for priority, follow-up tasks, and daily roll-ups for the insights.
-- Per-customer aggregates are kept on surviving customers (folded on merge,
-- recounted on unmerge); cases and tasks belong to the profile they were
-- opened under and are read through its survivor, like events.

CREATE TABLE cases (
    id               uuid PRIMARY KEY,
    customer_id      uuid NOT NULL REFERENCES customers (id),
    status           text NOT NULL CHECK (status IN ('open', 'resolved')),
    -- The reason in the customer's words (or the agent's, see agent_reason).
    reason           text,
    agent_reason     text,
    opened_at        timestamptz NOT NULL,
    opened_by        text,
    first_contact_at timestamptz,
    last_contact_at  timestamptz,
    contact_count    integer NOT NULL DEFAULT 0,
    channels         text[] NOT NULL DEFAULT '{}',
    conversation_ids text[] NOT NULL DEFAULT '{}',
    resolved_at      timestamptz,
    outcome          text,
    resolution_note  text,
    -- Set when a later contact bridged this case into an older one.
    merged_into      uuid REFERENCES cases (id),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cases_by_customer ON cases (customer_id, opened_at DESC) WHERE merged_into IS NULL;
CREATE INDEX cases_by_opened ON cases (opened_at) WHERE merged_into IS NULL;
CREATE INDEX cases_by_conversation ON cases USING gin (conversation_ids) WHERE merged_into IS NULL;

ALTER TABLE events ADD COLUMN case_id uuid;
CREATE INDEX events_by_case ON events (case_id) WHERE case_id IS NOT NULL;

CREATE TABLE customer_feedback (
    customer_id  uuid NOT NULL REFERENCES customers (id),
    metric       text NOT NULL,
    responses    bigint NOT NULL,
    score_sum    bigint NOT NULL,
    latest_score smallint NOT NULL,
    latest_at    timestamptz NOT NULL,
    PRIMARY KEY (customer_id, metric)
);

CREATE TABLE customer_daily_contacts (
    customer_id uuid NOT NULL REFERENCES customers (id),
    day         date NOT NULL,
    contacts    integer NOT NULL,
    PRIMARY KEY (customer_id, day)
);

-- Latest value of each `customer.*` event attribute (e.g. customer.tier),
-- for the priority rule.
CREATE TABLE customer_attributes (
    customer_id uuid NOT NULL REFERENCES customers (id),
    key         text NOT NULL,
    value       text NOT NULL,
    at          timestamptz NOT NULL,
    PRIMARY KEY (customer_id, key)
);

CREATE TABLE tasks (
    id           uuid PRIMARY KEY,
    customer_id  uuid NOT NULL REFERENCES customers (id),
    case_id      uuid,
    title        text NOT NULL,
    channel      text NOT NULL,
    due_at       timestamptz NOT NULL,
    assignee     text,
    status       text NOT NULL CHECK (status IN ('open', 'done')),
    created_at   timestamptz NOT NULL,
    created_by   text,
    completed_at timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_by_due ON tasks (status, due_at, id);
CREATE INDEX tasks_by_assignee ON tasks (assignee, status, due_at, id);
CREATE INDEX tasks_by_customer ON tasks (customer_id);

-- Roll-ups for the insights, by day (UTC) of the event.
CREATE TABLE daily_channel_contacts (
    day      date NOT NULL,
    channel  text NOT NULL,
    contacts bigint NOT NULL,
    PRIMARY KEY (day, channel)
);

CREATE TABLE daily_feedback (
    day       date NOT NULL,
    channel   text NOT NULL,
    metric    text NOT NULL,
    score     smallint NOT NULL,
    responses bigint NOT NULL,
    PRIMARY KEY (day, channel, metric, score)
);
