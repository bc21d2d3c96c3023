-- Customers (as merged now) with a contact received since $1, and how many
-- of them had more than one; $2 lists the contact event types.
SELECT count(*) AS customers,
       count(*) FILTER (WHERE contacts > 1) AS repeaters
FROM (
    SELECT c.survivor_id, count(*) AS contacts
    FROM events e
    JOIN customers c ON c.id = e.customer_id
    WHERE e.received_at >= $1 AND e.type = ANY($2)
    GROUP BY c.survivor_id
) per_customer
