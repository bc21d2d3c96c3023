-- Every id an audit entry may name for the customer that $1 leads to: the
-- profiles of its merge tree and the ids those profiles had before a replay
-- (customer_aliases). $1 may itself be such an old id.
WITH root AS (
    SELECT survivor_id FROM customers WHERE id = $1
    UNION
    SELECT c.survivor_id
    FROM customer_aliases AS a JOIN customers AS c ON c.id = a.customer_id
    WHERE a.id = $1
), profiles AS (
    SELECT c.id FROM customers AS c JOIN root AS r ON c.survivor_id = r.survivor_id
)
SELECT id FROM profiles
UNION
SELECT a.id FROM customer_aliases AS a JOIN profiles AS p ON a.customer_id = p.id
