//! The projection's aggregates against a recount from the history, in bulk
//! and read-only: for every surviving customer its event count, contact
//! span, display name, per-channel counts, contacts per day, survey answers,
//! traits (customer attributes, with where they came from, within their
//! bound) and consent; every live case's contact figures; and the
//! daily roll-ups of the insights. Used by the end-to-end recount test and
//! by the fault harness, which checks a whole database after crashes.
//!
//! Each check is one query over the whole database (a full outer join of
//! what is stored with what the events say), so it runs in seconds on a
//! million events and never changes anything.

use std::fmt;

use panorama_core::EventType;

// The traits check writes the bound out.
const _: () = assert!(panorama_core::traits::MAX_TRAITS == 100);

/// One aggregate row whose stored value differs from the recount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateMismatch {
    /// The table the stored value lives in (`customers`,
    /// `customer_channels`, `cases`, ...).
    pub table: String,
    /// Which row: the customer, customer and channel, case, day, ...
    pub key: String,
    /// The stored value as JSON; `None` when no row is stored.
    pub stored: Option<String>,
    /// The recounted value as JSON; `None` when the history has nothing.
    pub recounted: Option<String>,
}

impl fmt::Display for AggregateMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: stored {}, recounted {}",
            self.table,
            self.key,
            self.stored.as_deref().unwrap_or("nothing"),
            self.recounted.as_deref().unwrap_or("nothing")
        )
    }
}

/// The event types that count as contacts with the customer, as the
/// projection counts them.
pub fn contact_types() -> Vec<&'static str> {
    EventType::ALL
        .iter()
        .filter(|event_type| event_type.is_customer_contact())
        .map(|event_type| event_type.as_str())
        .collect()
}

/// One check: the table it covers, and a query returning `(key text,
/// stored text, recounted text)` for every row that differs. Queries that
/// count contacts take the contact types as `$1`.
struct Check {
    table: &'static str,
    query: &'static str,
    /// Whether the query takes the contact types as `$1`.
    counts_contacts: bool,
}

const CHECKS: [Check; 11] = [
    // Every event belongs to a customer that exists.
    Check {
        table: "events",
        query: "SELECT e.event_id::text, jsonb_build_object('customer_id', e.customer_id)::text, NULL
         FROM events AS e LEFT JOIN customers AS c ON c.id = e.customer_id
         WHERE c.id IS NULL",
        counts_contacts: false,
    },
    // Every merged customer points at a surviving one.
    Check {
        table: "customer_tree",
        query: "SELECT c.id::text, jsonb_build_object('survivor_id', c.survivor_id)::text, NULL
         FROM customers AS c LEFT JOIN customers AS s ON s.id = c.survivor_id
         WHERE (s.id IS NULL OR s.merged_into IS NOT NULL OR s.survivor_id <> s.id)
          ",
        counts_contacts: false,
    },
    Check {
        table: "customers",
        query: "WITH history AS (
             SELECT c.survivor_id AS customer_id, e.event_id, e.occurred_at, e.type, e.display_name
             FROM events AS e JOIN customers AS c ON c.id = e.customer_id
         ), counted AS (
             SELECT customer_id, count(*) AS events,
                    min(occurred_at) FILTER (WHERE type = ANY($1)) AS first_at,
                    max(occurred_at) FILTER (WHERE type = ANY($1)) AS last_at
             FROM history GROUP BY customer_id
         ), named AS (
             SELECT DISTINCT ON (customer_id) customer_id, display_name, occurred_at
             FROM history WHERE display_name IS NOT NULL
             ORDER BY customer_id, occurred_at DESC, event_id DESC
         ), compared AS (
             SELECT s.id,
                    jsonb_build_object('event_count', s.event_count,
                        'first_contact_at', s.first_contact_at, 'last_contact_at', s.last_contact_at,
                        'display_name', s.display_name, 'display_name_at', s.display_name_at) AS stored,
                    jsonb_build_object('event_count', COALESCE(k.events, 0),
                        'first_contact_at', k.first_at, 'last_contact_at', k.last_at,
                        'display_name', n.display_name, 'display_name_at', n.occurred_at) AS recounted
             FROM customers AS s
             LEFT JOIN counted AS k ON k.customer_id = s.id
             LEFT JOIN named AS n ON n.customer_id = s.id
             WHERE s.merged_into IS NULL
         )
         SELECT id::text, stored::text, recounted::text FROM compared WHERE stored <> recounted",
        counts_contacts: true,
    },
    Check {
        table: "customer_channels",
        query: "WITH recounted AS (
             SELECT c.survivor_id AS customer_id, e.channel,
                    jsonb_build_object('event_count', count(*), 'last_event_at', max(e.occurred_at),
                        'last_direction',
                        (array_agg(e.direction ORDER BY e.occurred_at DESC, e.event_id DESC))[1]) AS value
             FROM events AS e JOIN customers AS c ON c.id = e.customer_id
             WHERE e.type = ANY($1)
             GROUP BY 1, 2
         ), stored AS (
             SELECT cc.customer_id, cc.channel,
                    jsonb_build_object('event_count', cc.event_count,
                        'last_event_at', cc.last_event_at, 'last_direction', cc.last_direction) AS value
             FROM customer_channels AS cc JOIN customers AS s ON s.id = cc.customer_id
             WHERE s.merged_into IS NULL
         )
         SELECT COALESCE(s.customer_id, r.customer_id)::text || ' ' || COALESCE(s.channel, r.channel),
                s.value::text, r.value::text
         FROM stored AS s FULL JOIN recounted AS r
             ON r.customer_id = s.customer_id AND r.channel = s.channel
         WHERE s.value IS DISTINCT FROM r.value",
        counts_contacts: true,
    },
    Check {
        table: "customer_daily_contacts",
        query: "WITH recounted AS (
             SELECT c.survivor_id AS customer_id, (e.occurred_at AT TIME ZONE 'UTC')::date AS day,
                    count(*) AS contacts
             FROM events AS e JOIN customers AS c ON c.id = e.customer_id
             WHERE e.type = ANY($1)
             GROUP BY 1, 2
         ), stored AS (
             SELECT d.customer_id, d.day, d.contacts::int8 AS contacts
             FROM customer_daily_contacts AS d JOIN customers AS s ON s.id = d.customer_id
             WHERE s.merged_into IS NULL
         )
         SELECT COALESCE(s.customer_id, r.customer_id)::text || ' ' || COALESCE(s.day, r.day)::text,
                s.contacts::text, r.contacts::text
         FROM stored AS s FULL JOIN recounted AS r ON r.customer_id = s.customer_id AND r.day = s.day
         WHERE s.contacts IS DISTINCT FROM r.contacts",
        counts_contacts: true,
    },
    Check {
        table: "customer_feedback",
        query: "WITH recounted AS (
             SELECT c.survivor_id AS customer_id, e.feedback_metric AS metric,
                    jsonb_build_object('responses', count(*), 'score_sum', sum(e.feedback_score),
                        'latest_score',
                        (array_agg(e.feedback_score ORDER BY e.occurred_at DESC, e.event_id DESC))[1],
                        'latest_at', max(e.occurred_at)) AS value
             FROM events AS e JOIN customers AS c ON c.id = e.customer_id
             WHERE e.feedback_metric IS NOT NULL
             GROUP BY 1, 2
         ), stored AS (
             SELECT f.customer_id, f.metric,
                    jsonb_build_object('responses', f.responses, 'score_sum', f.score_sum,
                        'latest_score', f.latest_score, 'latest_at', f.latest_at) AS value
             FROM customer_feedback AS f JOIN customers AS s ON s.id = f.customer_id
             WHERE s.merged_into IS NULL
         )
         SELECT COALESCE(s.customer_id, r.customer_id)::text || ' ' || COALESCE(s.metric, r.metric),
                s.value::text, r.value::text
         FROM stored AS s FULL JOIN recounted AS r ON r.customer_id = s.customer_id AND r.metric = s.metric
         WHERE s.value IS DISTINCT FROM r.value",
        counts_contacts: false,
    },
    // Traits: the latest value per key by (occurred_at, event_id) over the
    // customer's whole tree, with where it came from. A key the history
    // has and the customer does not hold is right only when the customer
    // holds the most traits it may (100, panorama_core::traits::MAX_TRAITS);
    // holding more is wrong.
    Check {
        table: "customer_attributes",
        query: "WITH recounted AS (
             SELECT DISTINCT ON (c.survivor_id, kv.key) c.survivor_id AS customer_id, kv.key,
                    jsonb_build_object('value', kv.value, 'at', e.occurred_at,
                        'event_id', e.event_id, 'source', e.source, 'channel', e.channel) AS value
             FROM events AS e JOIN customers AS c ON c.id = e.customer_id
             CROSS JOIN LATERAL jsonb_each_text(e.attributes) AS kv
             WHERE starts_with(kv.key, 'customer.')
             ORDER BY c.survivor_id, kv.key, e.occurred_at DESC, e.event_id DESC
         ), stored AS (
             SELECT a.customer_id, a.key,
                    jsonb_build_object('value', a.value, 'at', a.at, 'event_id', a.event_id,
                        'source', a.source, 'channel', a.channel) AS value
             FROM customer_attributes AS a JOIN customers AS s ON s.id = a.customer_id
             WHERE s.merged_into IS NULL
         ), held AS (
             SELECT customer_id, count(*) AS keys FROM stored GROUP BY customer_id
         )
         SELECT COALESCE(s.customer_id, r.customer_id)::text || ' ' || COALESCE(s.key, r.key),
                s.value::text, r.value::text
         FROM stored AS s FULL JOIN recounted AS r ON r.customer_id = s.customer_id AND r.key = s.key
         LEFT JOIN held AS h ON h.customer_id = COALESCE(s.customer_id, r.customer_id)
         WHERE s.value IS DISTINCT FROM r.value
           AND NOT (s.value IS NULL AND COALESCE(h.keys, 0) >= 100)
         UNION ALL
         SELECT customer_id::text || ' (count)', keys::text, 'at most 100' FROM held WHERE keys > 100",
        counts_contacts: false,
    },
    // The latest consent statement per channel and purpose, by
    // (occurred_at, event_id), over the customer's whole tree.
    Check {
        table: "customer_consent",
        query: "WITH recounted AS (
             SELECT DISTINCT ON (c.survivor_id, s.channel, s.purpose)
                    c.survivor_id AS customer_id, s.channel, s.purpose,
                    jsonb_build_object('granted', s.granted, 'at', e.occurred_at,
                        'event_id', e.event_id, 'source', e.source) AS value
             FROM events AS e JOIN customers AS c ON c.id = e.customer_id
             CROSS JOIN LATERAL jsonb_to_recordset(e.consent)
                 AS s (channel text, purpose text, granted boolean)
             WHERE e.consent IS NOT NULL
             ORDER BY c.survivor_id, s.channel, s.purpose, e.occurred_at DESC, e.event_id DESC
         ), stored AS (
             SELECT k.customer_id, k.channel, k.purpose,
                    jsonb_build_object('granted', k.granted, 'at', k.at,
                        'event_id', k.event_id, 'source', k.source) AS value
             FROM customer_consent AS k JOIN customers AS s ON s.id = k.customer_id
             WHERE s.merged_into IS NULL
         )
         SELECT concat_ws(' ', COALESCE(s.customer_id, r.customer_id)::text,
                          COALESCE(s.channel, r.channel), COALESCE(s.purpose, r.purpose)),
                s.value::text, r.value::text
         FROM stored AS s FULL JOIN recounted AS r
             ON r.customer_id = s.customer_id AND r.channel = s.channel AND r.purpose = s.purpose
         WHERE s.value IS DISTINCT FROM r.value",
        counts_contacts: false,
    },
    // Contacts of a case merged into another were moved to it, so a live
    // case holds exactly the contacts that name it.
    Check {
        table: "cases",
        query: "WITH recounted AS (
             SELECT case_id AS id,
                    jsonb_build_object('contact_count', count(*),
                        'first_contact_at', min(occurred_at), 'last_contact_at', max(occurred_at),
                        'channels', array_agg(DISTINCT channel ORDER BY channel),
                        'conversation_ids',
                        array_remove(array_agg(DISTINCT conversation_id ORDER BY conversation_id), NULL))
                        AS value
             FROM events WHERE case_id IS NOT NULL AND type = ANY($1)
             GROUP BY case_id
         ), stored AS (
             SELECT id,
                    jsonb_build_object('contact_count', contact_count,
                        'first_contact_at', first_contact_at, 'last_contact_at', last_contact_at,
                        'channels', ARRAY(SELECT DISTINCT x FROM unnest(channels) AS x ORDER BY x),
                        'conversation_ids',
                        ARRAY(SELECT DISTINCT x FROM unnest(conversation_ids) AS x ORDER BY x)) AS value
             FROM cases WHERE merged_into IS NULL AND contact_count > 0
         )
         SELECT COALESCE(s.id, r.id)::text, s.value::text, r.value::text
         FROM stored AS s FULL JOIN recounted AS r ON r.id = s.id
         WHERE s.value IS DISTINCT FROM r.value",
        counts_contacts: true,
    },
    Check {
        table: "daily_channel_contacts",
        query: "WITH recounted AS (
             SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, channel, count(*) AS contacts
             FROM events WHERE type = ANY($1)
             GROUP BY 1, 2
         )
         SELECT COALESCE(s.day, r.day)::text || ' ' || COALESCE(s.channel, r.channel),
                s.contacts::text, r.contacts::text
         FROM (SELECT day, channel, sum(contacts)::int8 AS contacts
               FROM daily_channel_contacts GROUP BY day, channel) AS s
             FULL JOIN recounted AS r
             ON r.day = s.day AND r.channel = s.channel
         WHERE s.contacts IS DISTINCT FROM r.contacts",
        counts_contacts: true,
    },
    Check {
        table: "daily_feedback",
        query: "WITH recounted AS (
             SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, channel, feedback_metric AS metric,
                    feedback_score AS score, count(*) AS responses
             FROM events WHERE feedback_metric IS NOT NULL
             GROUP BY 1, 2, 3, 4
         )
         SELECT concat_ws(' ', COALESCE(s.day, r.day)::text, COALESCE(s.channel, r.channel),
                          COALESCE(s.metric, r.metric), COALESCE(s.score, r.score)::text),
                s.responses::text, r.responses::text
         FROM (SELECT day, channel, metric, score, sum(responses)::int8 AS responses
               FROM daily_feedback GROUP BY day, channel, metric, score) AS s
             FULL JOIN recounted AS r
             ON r.day = s.day AND r.channel = s.channel AND r.metric = s.metric AND r.score = s.score
         WHERE s.responses IS DISTINCT FROM r.responses",
        counts_contacts: false,
    },
];

/// Every aggregate row of the database on `client` that differs from a
/// recount from the events: empty when the projection is consistent.
///
/// Read-only. Meant for a quiet database (no projector writing), since
/// each check reads its own snapshot.
///
/// # Errors
///
/// When a query fails (for example on a database without Panorama's
/// schema).
pub async fn aggregate_mismatches(
    client: &tokio_postgres::Client,
) -> Result<Vec<AggregateMismatch>, tokio_postgres::Error> {
    let contact_types = contact_types();
    let mut mismatches = Vec::new();
    for check in &CHECKS {
        let rows = if check.counts_contacts {
            client.query(check.query, &[&contact_types]).await?
        } else {
            client.query(check.query, &[]).await?
        };
        mismatches.extend(rows.iter().map(|row| AggregateMismatch {
            table: check.table.to_owned(),
            key: row.get(0),
            stored: row.get(1),
            recounted: row.get(2),
        }));
    }
    Ok(mismatches)
}
