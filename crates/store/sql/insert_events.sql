-- Events already projected were filtered out before this statement, so no
-- ON CONFLICT clause (speculative insertion costs on every row): the rare
-- event inserted by a concurrent projector since then fails the batch with a
-- unique violation, and the retry filters it out.
INSERT INTO events (
    event_id, customer_id, occurred_at, received_at, channel, source, type,
    direction, identifiers, conversation_id, contact_reason, subject, summary,
    agent_id, queue, duration_seconds, outcome, sentiment, feedback_metric,
    feedback_score, feedback_comment, display_name, attributes, case_id,
    fingerprint, consent)
SELECT * FROM unnest(
    $1::uuid[], $2::uuid[], $3::timestamptz[], $4::timestamptz[], $5::text[],
    $6::text[], $7::text[], $8::text[], $9::jsonb[], $10::text[], $11::text[],
    $12::text[], $13::text[], $14::text[], $15::text[], $16::int4[],
    $17::text[], $18::float4[], $19::text[], $20::int2[], $21::text[],
    $22::text[], $23::jsonb[], $24::uuid[], $25::bytea[], $26::jsonb[])
