//! The queries of a customer export, one per list of the document. Each
//! selects its table's columns under their own names (what the records in
//! `records.rs` read) and takes one parameter: the survivor (`$1::uuid`),
//! the profiles of its merge tree (`$1::uuid[]`), or for the audit trail
//! every id an entry may name (the profiles and their aliases). Lists are
//! ordered, so two exports of the same data are the same document.

/// The profiles of the merge tree of survivor `$1`, itself included.
pub(super) const PROFILES: &str = "SELECT id FROM customers WHERE survivor_id = $1";

/// The ids from replaced projections that lead to the profiles `$1`.
pub(super) const ALIAS_IDS: &str = "SELECT id FROM customer_aliases WHERE customer_id = ANY($1)";

/// The columns of `customers`, for the two queries of its rows.
macro_rules! customer_columns {
    () => {
        "id, display_name, display_name_at, created_at, updated_at, first_contact_at, \
         last_contact_at, event_count, merged_into, survivor_id, merged_at"
    };
}

/// The survivor `$1` itself.
pub(super) const CUSTOMER: &str = concat!(
    "SELECT ",
    customer_columns!(),
    " FROM customers WHERE id = $1"
);

/// The profiles merged into survivor `$1`.
pub(super) const MERGED_PROFILES: &str = concat!(
    "SELECT ",
    customer_columns!(),
    " FROM customers WHERE survivor_id = $1 AND id <> $1 ORDER BY created_at, id"
);

pub(super) const ALIASES: &str = "SELECT id, customer_id, created_at FROM customer_aliases
     WHERE customer_id = ANY($1) ORDER BY created_at, id";

pub(super) const IDENTIFIERS: &str = "SELECT kind, value, customer_id, source, first_seen_at, \
     last_seen_at, trust
     FROM identifiers WHERE customer_id = ANY($1) ORDER BY kind, value";

pub(super) const CHANNELS: &str = "SELECT customer_id, channel, event_count, last_event_at, \
     last_direction
     FROM customer_channels WHERE customer_id = ANY($1) ORDER BY customer_id, channel";

pub(super) const DAILY_CONTACTS: &str = "SELECT customer_id, day, contacts
     FROM customer_daily_contacts WHERE customer_id = ANY($1) ORDER BY customer_id, day";

pub(super) const ATTRIBUTES: &str = "SELECT customer_id, key, value, at, event_id, source, \
     channel
     FROM customer_attributes WHERE customer_id = ANY($1) ORDER BY customer_id, key";

pub(super) const FEEDBACK: &str = "SELECT customer_id, metric, responses, score_sum, \
     latest_score, latest_at
     FROM customer_feedback WHERE customer_id = ANY($1) ORDER BY customer_id, metric";

pub(super) const CONSENT: &str = "SELECT customer_id, channel, purpose, granted, at, event_id, \
     source
     FROM customer_consent WHERE customer_id = ANY($1) ORDER BY customer_id, channel, purpose";

pub(super) const CASES: &str = "SELECT id, customer_id, status, reason, agent_reason, opened_at, \
     opened_by, first_contact_at, last_contact_at, contact_count, channels, conversation_ids, \
     resolved_at, outcome, resolution_note, merged_into, updated_at
     FROM cases WHERE customer_id = ANY($1) ORDER BY opened_at, id";

pub(super) const TASKS: &str = "SELECT id, customer_id, case_id, title, channel, due_at, \
     assignee, status, created_at, created_by, completed_at, updated_at
     FROM tasks WHERE customer_id = ANY($1) ORDER BY created_at, id";

pub(super) const IDENTITY_HISTORY: &str = "SELECT id, at, action, survivor_id, merged_id, \
     customers, event_id, actor, reason, kind, identifiers, moved
     FROM identity_history WHERE customers && $1 ORDER BY at, id";

pub(super) const IDENTITY_CONFLICTS: &str = "SELECT id, created_at, last_seen_at, occurrences, \
     status, reason, kind, customers, identifiers, event_id, last_event_id, resolved_at, \
     resolved_by, resolution
     FROM identity_conflicts WHERE customers && $1 ORDER BY created_at, id";

pub(super) const IDENTITY_SEPARATIONS: &str = "SELECT customer_a, customer_b, created_at, \
     created_by
     FROM identity_separations WHERE customer_a = ANY($1) OR customer_b = ANY($1)
     ORDER BY created_at, customer_a, customer_b";

/// One record per entry of a change row, in log order.
pub(super) const CHANGES: &str = "SELECT ch.seq, x.n - 1 AS index, ch.customer_id, \
     x.kind, x.event_id, x.subject_id, ch.at
     FROM customer_changes AS ch
     CROSS JOIN LATERAL unnest(ch.kinds, ch.event_ids, ch.subject_ids)
         WITH ORDINALITY AS x(kind, event_id, subject_id, n)
     WHERE ch.customer_id = ANY($1) ORDER BY ch.seq, x.n";

/// Dead letters carry no customer: those whose event is one of the
/// person's. (A record dead-lettered before any of its events was written
/// names no one the database knows.)
pub(super) const DEAD_LETTERS: &str = "SELECT d.consumer_group, d.topic, d.partition, \
     d.\"offset\" AS offset, d.event_id, d.reason, d.sqlstate, d.error, d.at
     FROM dead_letters AS d JOIN events AS e ON e.event_id = d.event_id
     WHERE e.customer_id = ANY($1)
     ORDER BY d.at, d.consumer_group, d.topic, d.partition, d.\"offset\"";

/// The whole history, oldest first: read through a portal, page by page,
/// from one sort PostgreSQL does for the whole query.
pub(super) const EVENTS: &str = "SELECT event_id, customer_id, occurred_at, received_at, \
     projected_at, channel, source, type, direction, identifiers, conversation_id, \
     contact_reason, subject, summary, agent_id, queue, duration_seconds, outcome, sentiment, \
     feedback_metric, feedback_score, feedback_comment, display_name, attributes, case_id, \
     encode(fingerprint, 'hex') AS fingerprint, consent, anonymised_at
     FROM events WHERE customer_id = ANY($1) ORDER BY occurred_at, event_id";

/// `$1`: the profiles and their aliases (audit entries name the id as
/// asked for).
pub(super) const AUDIT: &str = "SELECT id, at, actor, role, method, route, customer_id, status, \
     identifier_kind
     FROM audit_log WHERE customer_id = ANY($1) ORDER BY id";
