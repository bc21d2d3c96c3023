//! Erasure requests: recorded by the API, applied by the projector in a
//! batch's transaction (docs/privacy.md, "Erasure").
//!
//! Applying one, in order: the privacy lock taken exclusively (no batch
//! can read keys or project anyone until this commits), the request row
//! upserted and locked, the customer resolved to its merge tree with its
//! survivor locked as every identity writer locks it, the tree's subject
//! keys destroyed and its subjects suppressed, every row of the tree that
//! holds personal data deleted (or, for the audit log, scrubbed), the daily
//! roll-ups lowered by what the deleted events had counted, the change
//! feed's unrelayed rows naming the tree deleted and `customer.erased`
//! recorded in their place, the webhook deliveries of the tree's changes
//! deleted, and the request marked `done` with its counts.
//!
//! Each step is one set-based statement over the tree's profile ids, along
//! an index, so the cost grows with the size of the person's history (one
//! row per event, identifier, case, ...), never with the size of the
//! tables; the only statement that reads the events twice is the one that
//! lowers the roll-ups.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use panorama_core::Identifier;
use uuid::Uuid;

use super::keys::{KEY_BYTES, PRIVACY_LOCK, Subject};
use crate::projection::outbox::{ChangeDetail, OutboxChange, record_outbox};
use crate::projection::{lock_survivors, stored_identifier};
use crate::{BatchTransaction, CHANGES_CHANNEL, Result};

/// An erasure request as the projector reads it from the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureInput {
    /// The request's id.
    pub request_id: Uuid,
    /// The customer the admin named (possibly merged away since).
    pub customer_id: Uuid,
    /// The name of the API token that asked.
    pub requested_by: String,
    /// When the API accepted it.
    pub requested_at: DateTime<Utc>,
}

/// What applying one erasure request did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErasureOutcome {
    /// Whether the request was applied now (false: it was done already).
    /// A request done already may still delete rows (see `counts`): a
    /// replay that projected the person before the erasure destroyed their
    /// keys loses those rows when it reads the request again.
    pub applied: bool,
    /// The surviving customer erased, when the id led to one.
    pub customer_id: Option<Uuid>,
    /// Rows deleted or scrubbed now, per table (`subject_keys` and
    /// `suppressions` in the `panorama_privacy` schema included), in table
    /// name order.
    pub counts: Vec<(String, u64)>,
}

impl ErasureOutcome {
    /// Every row deleted or scrubbed now, all tables together.
    pub fn rows(&self) -> u64 {
        self.counts.iter().map(|(_, rows)| rows).sum()
    }
}

/// The request row, inserted from the record when the API's row is not
/// there (a replica, a replay into another database), and locked: its
/// status as it is.
const RECORD_REQUEST: &str = "INSERT INTO panorama_privacy.erasure_requests AS r
         (id, customer_id, requested_by, requested_at, status)
     VALUES ($1, $2, $3, $4, 'in_progress')
     ON CONFLICT (id) DO UPDATE SET status = r.status
     RETURNING status";

/// The survivor of an id: itself, the customer it was merged into, or the
/// customer an alias from before a replay leads to.
const SURVIVOR_OF: &str = "SELECT survivor_id FROM customers WHERE id = $1
     UNION ALL
     SELECT c.survivor_id FROM customer_aliases AS a JOIN customers AS c ON c.id = a.customer_id
     WHERE a.id = $1
     LIMIT 1";

/// Statements that delete the rows of the tree's profiles `$1` from one
/// table each, in an order the foreign keys allow. Dead letters go before
/// the events they are found by; the roll-ups are lowered (by
/// [`lower_rollups`]) before the events go too.
const DELETE_ROWS: &[(&str, &str)] = &[
    (
        "customer_changes",
        "DELETE FROM customer_changes WHERE customer_id = ANY($1)",
    ),
    ("tasks", "DELETE FROM tasks WHERE customer_id = ANY($1)"),
    // A case of another customer merged into one of these would keep the
    // foreign key from letting go; unmerges split such cases, so none
    // should exist, and one that does becomes a case of its own.
    (
        "cases",
        // Two halves, one per partial index on the customer.
        "WITH erased AS (
                  SELECT id FROM cases WHERE customer_id = ANY($1) AND merged_into IS NULL
                  UNION ALL
                  SELECT id FROM cases WHERE customer_id = ANY($1) AND merged_into IS NOT NULL),
              freed AS (
                  UPDATE cases SET merged_into = NULL, updated_at = now()
                  WHERE merged_into IN (SELECT id FROM erased) AND customer_id <> ALL($1))
         DELETE FROM cases WHERE id IN (SELECT id FROM erased)",
    ),
    (
        "customer_feedback",
        "DELETE FROM customer_feedback WHERE customer_id = ANY($1)",
    ),
    (
        "customer_daily_contacts",
        "DELETE FROM customer_daily_contacts WHERE customer_id = ANY($1)",
    ),
    (
        "customer_attributes",
        "DELETE FROM customer_attributes WHERE customer_id = ANY($1)",
    ),
    (
        "customer_channels",
        "DELETE FROM customer_channels WHERE customer_id = ANY($1)",
    ),
    (
        "customer_consent",
        "DELETE FROM customer_consent WHERE customer_id = ANY($1)",
    ),
    // History and conflicts may name another customer too (a merge the
    // rules refused between this person and someone else): they name this
    // person's identifiers, so they go; the other customer keeps everything
    // that is only theirs.
    (
        "identity_history",
        "DELETE FROM identity_history WHERE customers && $1",
    ),
    (
        "identity_conflicts",
        "DELETE FROM identity_conflicts WHERE customers && $1",
    ),
    (
        "identity_separations",
        "DELETE FROM identity_separations WHERE customer_a = ANY($1) OR customer_b = ANY($1)",
    ),
    (
        "customer_aliases",
        "DELETE FROM customer_aliases WHERE customer_id = ANY($1)",
    ),
    (
        "identifiers",
        "DELETE FROM identifiers WHERE customer_id = ANY($1)",
    ),
    // Profiles point at their parent inside the tree only; one outside
    // pointing in would be a broken tree, cut loose rather than kept from
    // erasure.
    (
        "customers",
        "WITH freed AS (
             UPDATE customers SET merged_into = NULL
             WHERE merged_into = ANY($1) AND id <> ALL($1))
         DELETE FROM customers WHERE id = ANY($1)",
    ),
];

/// The tree an erasure is about.
#[derive(Debug)]
struct Tree {
    /// Its surviving customer, locked.
    survivor: Uuid,
    /// Every profile of it, the survivor included.
    profiles: Vec<Uuid>,
    /// Ids from replaced projections that lead to its profiles.
    aliases: Vec<Uuid>,
}

/// Rows per table, in table name order.
type Counts = BTreeMap<&'static str, u64>;

impl BatchTransaction<'_> {
    /// Applies `request` in the batch's transaction: see docs/privacy.md,
    /// "Erasure". `subject_of` gives an identifier's subject.
    ///
    /// A request that is `done` already is not applied again: its keys,
    /// suppressions and counts stay as they are, and only rows this
    /// projection still holds of its customer are deleted (none on the
    /// live projection; on a replay, what it projected of the person
    /// before the erasure destroyed their keys).
    #[tracing::instrument(skip_all, fields(request = %request.request_id))]
    pub async fn apply_erasure(
        &mut self,
        request: &ErasureInput,
        subject_of: &(dyn Fn(&Identifier) -> Subject + Sync),
    ) -> Result<ErasureOutcome> {
        let suppression_days = self.store.suppression_days;
        let transaction = &self.transaction;
        // A statement of its own, before anything is read: every read below
        // takes its snapshot after the batches that hold the lock shared
        // have committed, and no batch starts reading keys until this one
        // commits.
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&PRIVACY_LOCK])
            .await?;
        let status: String = transaction
            .query_one(
                RECORD_REQUEST,
                &[
                    &request.request_id,
                    &request.customer_id,
                    &request.requested_by,
                    &request.requested_at,
                ],
            )
            .await?
            .get(0);
        let first = status != "done";
        let mut counts = Counts::new();
        let Some(tree) = find_tree(transaction, request.customer_id).await? else {
            if first {
                finish(transaction, request.request_id, &counts).await?;
                tracing::info!(customer = %request.customer_id, "erasure of an unknown customer done");
            }
            return Ok(ErasureOutcome {
                applied: first,
                customer_id: None,
                counts: Vec::new(),
            });
        };
        if first {
            let subjects = tree_subjects(transaction, &tree, subject_of).await?;
            forget_subjects(
                transaction,
                &subjects,
                request.request_id,
                suppression_days,
                &mut counts,
            )
            .await?;
        }
        erase_rows(transaction, &tree, request, &mut counts).await?;
        if first {
            // After the outbox rows naming the tree are gone: consumers of
            // the feed delete what they hold of the person.
            let erased =
                OutboxChange::new("customer.erased", tree.survivor, None, ChangeDetail::None);
            record_outbox(transaction, &[erased]).await?;
            finish(transaction, request.request_id, &counts).await?;
        }
        // Live streams of the customer re-read and find it gone.
        transaction
            .execute("SELECT pg_notify($1, '')", &[&CHANGES_CHANNEL])
            .await?;
        let outcome = ErasureOutcome {
            applied: first,
            customer_id: Some(tree.survivor),
            counts: counts
                .into_iter()
                .map(|(table, rows)| (table.to_owned(), rows))
                .collect(),
        };
        tracing::info!(
            customer = %tree.survivor,
            profiles = tree.profiles.len(),
            rows = outcome.rows(),
            applied = first,
            "erasure applied"
        );
        Ok(outcome)
    }
}

/// The merge tree `customer` leads to, its survivor locked as every
/// identity writer locks it (so no merge or unmerge changes the tree until
/// commit); `None` when no customer has that id.
async fn find_tree(transaction: &Transaction<'_>, customer: Uuid) -> Result<Option<Tree>> {
    let survivor_of = transaction.prepare_cached(SURVIVOR_OF).await?;
    let Some(row) = transaction.query_opt(&survivor_of, &[&customer]).await? else {
        return Ok(None);
    };
    let found: Uuid = row.get(0);
    // Follows a merge that moved the tree while this waited for the lock.
    let Some(&survivor) = lock_survivors(transaction, &[found]).await?.get(&found) else {
        return Ok(None);
    };
    let profiles = transaction
        .prepare_cached("SELECT id FROM customers WHERE survivor_id = $1 ORDER BY id")
        .await?;
    let profiles: Vec<Uuid> = transaction
        .query(&profiles, &[&survivor])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let aliases = transaction
        .prepare_cached("SELECT id FROM customer_aliases WHERE customer_id = ANY($1)")
        .await?;
    let aliases: Vec<Uuid> = transaction
        .query(&aliases, &[&profiles])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    Ok(Some(Tree {
        survivor,
        profiles,
        aliases,
    }))
}

/// The subject and kind of every identifier of `tree`.
async fn tree_subjects(
    transaction: &Transaction<'_>,
    tree: &Tree,
    subject_of: &(dyn Fn(&Identifier) -> Subject + Sync),
) -> Result<Vec<(Subject, String)>> {
    let statement = transaction
        .prepare_cached("SELECT kind, value FROM identifiers WHERE customer_id = ANY($1)")
        .await?;
    let rows = transaction.query(&statement, &[&tree.profiles]).await?;
    let mut subjects = Vec::with_capacity(rows.len());
    for row in &rows {
        let (kind, value): (&str, &str) = (row.get(0), row.get(1));
        match stored_identifier(kind, value) {
            Some(identifier) => subjects.push((subject_of(&identifier), kind.to_owned())),
            // Only a row edited by hand fails to parse; its value stays
            // out of the log, and the row is deleted with the others.
            None => tracing::warn!(kind, "erased identifier does not parse; no subject for it"),
        }
    }
    subjects.sort_unstable();
    subjects.dedup();
    Ok(subjects)
}

/// Destroys the keys of `subjects` and suppresses them under `erasure`.
async fn forget_subjects(
    transaction: &Transaction<'_>,
    subjects: &[(Subject, String)],
    erasure: Uuid,
    suppression_days: u32,
    counts: &mut Counts,
) -> Result<()> {
    let bytes: Vec<&[u8]> = subjects
        .iter()
        .map(|(subject, _)| <[u8; KEY_BYTES]>::as_slice(subject))
        .collect();
    let kinds: Vec<&str> = subjects.iter().map(|(_, kind)| kind.as_str()).collect();
    let destroy = transaction
        .prepare_cached("DELETE FROM panorama_privacy.subject_keys WHERE subject = ANY($1)")
        .await?;
    counts.insert(
        "subject_keys",
        transaction.execute(&destroy, &[&bytes]).await?,
    );
    let days = i32::try_from(suppression_days).unwrap_or(i32::MAX);
    let suppress = transaction
        .prepare_cached(
            "INSERT INTO panorama_privacy.suppressions AS s (subject, kind, erasure_id, expires_at)
             SELECT subject, kind, $3,
                    CASE WHEN $4::int4 > 0 THEN now() + make_interval(days => $4::int4) END
             FROM unnest($1::bytea[], $2::text[]) AS u (subject, kind)
             ON CONFLICT (subject) DO UPDATE SET
                 kind = excluded.kind, erasure_id = excluded.erasure_id,
                 suppressed_at = now(), expires_at = excluded.expires_at",
        )
        .await?;
    counts.insert(
        "suppressions",
        transaction
            .execute(&suppress, &[&bytes, &kinds, &erasure, &days])
            .await?,
    );
    Ok(())
}

/// Deletes every row of `tree` that holds personal data, lowers the daily
/// roll-ups by what its events counted, and scrubs the audit log's rows
/// about it.
async fn erase_rows(
    transaction: &Transaction<'_>,
    tree: &Tree,
    request: &ErasureInput,
    counts: &mut Counts,
) -> Result<()> {
    let profiles = &tree.profiles;
    let dead_letters = transaction
        .prepare_cached(
            "DELETE FROM dead_letters AS d USING events AS e
             WHERE d.event_id = e.event_id AND d.event_id IS NOT NULL
               AND e.customer_id = ANY($1)",
        )
        .await?;
    counts.insert(
        "dead_letters",
        transaction.execute(&dead_letters, &[profiles]).await?,
    );
    lower_rollups(transaction, profiles, counts).await?;
    let events = transaction
        .prepare_cached("DELETE FROM events WHERE customer_id = ANY($1)")
        .await?;
    counts.insert("events", transaction.execute(&events, &[profiles]).await?);
    for (table, sql) in DELETE_ROWS {
        let statement = transaction.prepare_cached(sql).await?;
        counts.insert(table, transaction.execute(&statement, &[profiles]).await?);
    }
    // The change feed's rows not relayed yet that name the person (their
    // identifiers, merges, conflicts): they are not published after the
    // erasure. A `customer.erased` left by an earlier application stays.
    // Rows a relay holds in flight may still reach the topic, before the
    // `customer.erased` that follows them (docs/event-contract.md).
    let outbox = transaction
        .prepare_cached(
            "DELETE FROM change_outbox
             WHERE customers && $1 AND type <> 'customer.erased'",
        )
        .await?;
    counts.insert(
        "change_outbox",
        transaction.execute(&outbox, &[profiles]).await?,
    );
    let mut keyed: Vec<Uuid> = profiles.iter().chain(&tree.aliases).copied().collect();
    keyed.sort_unstable();
    keyed.dedup();
    erase_webhook_deliveries(transaction, &keyed, counts).await?;
    // Who read or changed the person, when and through which route stays
    // on record; which person becomes which erasure. Entries name the id as
    // asked for: a profile, an alias, or the id the request named.
    let mut named: Vec<Uuid> = profiles.iter().chain(&tree.aliases).copied().collect();
    named.push(request.customer_id);
    named.sort_unstable();
    named.dedup();
    let audit = transaction
        .prepare_cached("UPDATE audit_log SET customer_id = $2 WHERE customer_id = ANY($1)")
        .await?;
    counts.insert(
        "audit_log",
        transaction
            .execute(&audit, &[&named, &request.request_id])
            .await?,
    );
    Ok(())
}

/// Deletes the webhook deliveries of changes keyed by `customers`, pending
/// or finished (their bodies carry identifiers), with their attempts and
/// the customers' queue rows. The `customer.erased` recorded after them is
/// queued as usual when the dispatcher reads it from the feed; deliveries
/// of changes already on the feed and not read by it yet are queued then
/// too, before it.
///
/// The deliveries are locked first: a sender recording an attempt locks
/// its delivery and then the queue row, so taking the queue rows before
/// waiting for such a sender would deadlock with it. The deliveries are
/// deleted after the queue rows, so a delivery a dispatcher queues for one
/// of them meanwhile either goes too (the queue row existed: deleting it
/// waited for the dispatcher's commit) or keeps the queue row it created;
/// none is left pending without its queue.
async fn erase_webhook_deliveries(
    transaction: &Transaction<'_>,
    customers: &[Uuid],
    counts: &mut Counts,
) -> Result<()> {
    let lock = transaction
        .prepare_cached("SELECT 1 FROM webhook_deliveries WHERE customer_id = ANY($1) FOR UPDATE")
        .await?;
    transaction.execute(&lock, &[&customers]).await?;
    let queues = transaction
        .prepare_cached(
            "DELETE FROM webhook_queues AS q USING webhook_subscriptions AS s
             WHERE q.subscription_id = s.id AND q.customer_id = ANY($1)",
        )
        .await?;
    counts.insert(
        "webhook_queues",
        transaction.execute(&queues, &[&customers]).await?,
    );
    let attempts = transaction
        .prepare_cached(
            "DELETE FROM webhook_attempts AS a USING webhook_deliveries AS d
             WHERE a.delivery_id = d.id AND d.customer_id = ANY($1)",
        )
        .await?;
    counts.insert(
        "webhook_attempts",
        transaction.execute(&attempts, &[&customers]).await?,
    );
    let deliveries = transaction
        .prepare_cached("DELETE FROM webhook_deliveries WHERE customer_id = ANY($1)")
        .await?;
    counts.insert(
        "webhook_deliveries",
        transaction.execute(&deliveries, &[&customers]).await?,
    );
    Ok(())
}

/// Lowers `daily_channel_contacts` and `daily_feedback` by what the events
/// of `profiles` counted there, dropping rows that reach zero: the roll-ups
/// stay what the remaining events add up to, which is also what a replay
/// (which cannot open the erased records) rebuilds. A lowered key's shards
/// are folded into one row (shard 0), so no shard goes below zero; only
/// batches write the roll-ups, and the privacy lock keeps them out. Counts
/// the keys lowered.
async fn lower_rollups(
    transaction: &Transaction<'_>,
    profiles: &[Uuid],
    counts: &mut Counts,
) -> Result<()> {
    let contact_types = crate::contact_types();
    let contacts = transaction
        .prepare_cached(
            "WITH gone AS (
                 SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, channel, count(*) AS contacts
                 FROM events WHERE customer_id = ANY($1) AND type = ANY($2)
                 GROUP BY 1, 2
             )
             , shards AS (
                 DELETE FROM daily_channel_contacts AS d USING gone
                 WHERE d.day = gone.day AND d.channel = gone.channel
                 RETURNING d.day, d.channel, d.contacts
             ), lowered AS (
                 SELECT day, channel, sum(shards.contacts) - min(gone.contacts) AS contacts
                 FROM shards JOIN gone USING (day, channel)
                 GROUP BY day, channel
             ), kept AS (
                 INSERT INTO daily_channel_contacts (day, channel, shard, contacts)
                 SELECT day, channel, 0, contacts FROM lowered WHERE contacts > 0
             )
             SELECT count(*) FROM lowered",
        )
        .await?;
    let lowered: i64 = transaction
        .query_one(&contacts, &[&profiles, &contact_types])
        .await?
        .get(0);
    counts.insert("daily_channel_contacts", lowered.unsigned_abs());
    let feedback = transaction
        .prepare_cached(
            "WITH gone AS (
                 SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, channel,
                        feedback_metric AS metric, feedback_score AS score, count(*) AS responses
                 FROM events WHERE customer_id = ANY($1) AND feedback_metric IS NOT NULL
                 GROUP BY 1, 2, 3, 4
             )
             , shards AS (
                 DELETE FROM daily_feedback AS d USING gone
                 WHERE d.day = gone.day AND d.channel = gone.channel AND d.metric = gone.metric
                   AND d.score = gone.score
                 RETURNING d.day, d.channel, d.metric, d.score, d.responses
             ), lowered AS (
                 SELECT day, channel, metric, score,
                        sum(shards.responses) - min(gone.responses) AS responses
                 FROM shards JOIN gone USING (day, channel, metric, score)
                 GROUP BY day, channel, metric, score
             ), kept AS (
                 INSERT INTO daily_feedback (day, channel, metric, score, shard, responses)
                 SELECT day, channel, metric, score, 0, responses FROM lowered WHERE responses > 0
             )
             SELECT count(*) FROM lowered",
        )
        .await?;
    let lowered: i64 = transaction.query_one(&feedback, &[&profiles]).await?.get(0);
    counts.insert("daily_feedback", lowered.unsigned_abs());
    Ok(())
}

/// Marks the request `done` with `counts`.
async fn finish(transaction: &Transaction<'_>, request: Uuid, counts: &Counts) -> Result<()> {
    let counts = serde_json::to_value(counts)?;
    let statement = transaction
        .prepare_cached(
            "UPDATE panorama_privacy.erasure_requests
             SET status = 'done', done_at = now(), counts = $2 WHERE id = $1",
        )
        .await?;
    transaction
        .execute(&statement, &[&request, &counts])
        .await?;
    Ok(())
}
