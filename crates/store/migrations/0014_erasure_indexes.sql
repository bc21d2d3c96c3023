-- Indexes an erasure (docs/privacy.md) needs to find a person's rows
-- without scanning whole tables while it holds the privacy lock, which
-- keeps every projector batch waiting: the cases merged into another case
-- (`cases_by_customer` covers only live ones) and the aliases leading to a
-- customer. Both are small: merged cases are a fraction of all cases, and
-- aliases exist only after a replay's switch.
CREATE INDEX cases_merged_by_customer ON cases (customer_id) WHERE merged_into IS NOT NULL;
CREATE INDEX customer_aliases_by_customer ON customer_aliases (customer_id);
