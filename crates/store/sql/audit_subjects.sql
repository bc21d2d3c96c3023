-- Every id an audit entry may name for the customer $1 (a survivor, found
-- with `Store::survivor_of`): the profiles of its merge tree and the ids
-- those profiles had before a replay (customer_aliases).
SELECT id FROM customers WHERE survivor_id = $1
UNION
SELECT a.id
FROM customer_aliases AS a JOIN customers AS c ON c.id = a.customer_id
WHERE c.survivor_id = $1
