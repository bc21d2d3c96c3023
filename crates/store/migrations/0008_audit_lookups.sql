-- What a lookup asked for, in the audit trail: the kind of identifier
-- (`phone`, `email`, ...), never its value, so a lookup that found nobody
-- is recorded without the number or address an agent typed. A lookup that
-- found someone also names the customer in `customer_id`.
ALTER TABLE audit_log ADD COLUMN identifier_kind text;
