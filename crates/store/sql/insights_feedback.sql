-- Survey answers received since $1, per metric: how many, promoters (9-10)
-- and detractors (0-6) for NPS, satisfied (4-5) for CSAT, and the mean.
SELECT feedback_metric,
       count(*) AS responses,
       count(*) FILTER (WHERE feedback_score >= 9) AS promoters,
       count(*) FILTER (WHERE feedback_score <= 6) AS detractors,
       count(*) FILTER (WHERE feedback_score >= 4) AS satisfied,
       avg(feedback_score)::float8 AS mean
FROM events
WHERE received_at >= $1 AND feedback_metric IS NOT NULL AND feedback_score IS NOT NULL
GROUP BY feedback_metric
