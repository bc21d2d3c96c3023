-- Adds survey answers to each customer's per-metric summary: count, sum
-- (for the average) and the latest answer by the time it was given.
INSERT INTO customer_feedback AS f (customer_id, metric, responses, score_sum, latest_score, latest_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::int8[], $4::int8[], $5::int2[], $6::timestamptz[])
ON CONFLICT (customer_id, metric) DO UPDATE SET
    responses    = f.responses + excluded.responses,
    score_sum    = f.score_sum + excluded.score_sum,
    latest_score = CASE WHEN excluded.latest_at >= f.latest_at
                        THEN excluded.latest_score ELSE f.latest_score END,
    latest_at    = GREATEST(f.latest_at, excluded.latest_at)
