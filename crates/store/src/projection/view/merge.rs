//! The agent-view aggregates of a merge and an unmerge: a merge folds the
//! merged customer's per-customer rows into the survivor's (for consent,
//! the later statement of the two per channel and purpose; for traits, see
//! `traits.rs`); an unmerge recounts both customers from their events.

use deadpool_postgres::Transaction;
use uuid::Uuid;

use crate::Result;

/// Statements moving a merged customer's ($2) rows onto its survivor ($1),
/// each followed by deleting the merged customer's rows (traits: see
/// `traits.rs`).
const FOLD: [&str; 3] = [
    "INSERT INTO customer_feedback AS f (customer_id, metric, responses, score_sum, latest_score, latest_at)
     SELECT $1, metric, responses, score_sum, latest_score, latest_at
     FROM customer_feedback WHERE customer_id = $2
     ON CONFLICT (customer_id, metric) DO UPDATE SET
         responses    = f.responses + excluded.responses,
         score_sum    = f.score_sum + excluded.score_sum,
         latest_score = CASE WHEN excluded.latest_at > f.latest_at
                             THEN excluded.latest_score ELSE f.latest_score END,
         latest_at    = GREATEST(f.latest_at, excluded.latest_at)",
    "INSERT INTO customer_daily_contacts AS d (customer_id, day, contacts)
     SELECT $1, day, contacts FROM customer_daily_contacts WHERE customer_id = $2
     ON CONFLICT (customer_id, day) DO UPDATE SET contacts = d.contacts + excluded.contacts",
    "INSERT INTO customer_consent AS k (customer_id, channel, purpose, granted, at, event_id, source)
     SELECT $1, channel, purpose, granted, at, event_id, source
     FROM customer_consent WHERE customer_id = $2
     ON CONFLICT (customer_id, channel, purpose) DO UPDATE SET
         granted  = excluded.granted,
         at       = excluded.at,
         event_id = excluded.event_id,
         source   = excluded.source
     WHERE (excluded.at, excluded.event_id) > (k.at, k.event_id)",
];

const TABLES: [&str; 3] = [
    "DELETE FROM customer_feedback WHERE customer_id = $1",
    "DELETE FROM customer_daily_contacts WHERE customer_id = $1",
    "DELETE FROM customer_consent WHERE customer_id = $1",
];

/// Deletes a customer's ($1) traits.
const DELETE_TRAITS: &str = "DELETE FROM customer_attributes WHERE customer_id = $1";

/// Rebuild a surviving customer's ($1) rows from the events of its whole
/// merge tree.
const RECOUNT_FEEDBACK: &str =
    "INSERT INTO customer_feedback (customer_id, metric, responses, score_sum, latest_score, latest_at)
     SELECT $1, e.feedback_metric, count(*), sum(e.feedback_score),
            (array_agg(e.feedback_score ORDER BY e.occurred_at DESC, e.event_id DESC))[1],
            max(e.occurred_at)
     FROM customers AS c JOIN events AS e ON e.customer_id = c.id
     WHERE c.survivor_id = $1 AND e.feedback_metric IS NOT NULL
     GROUP BY e.feedback_metric";
/// $2: the event types that are contacts.
const RECOUNT_DAILY: &str = "INSERT INTO customer_daily_contacts (customer_id, day, contacts)
     SELECT $1, (e.occurred_at AT TIME ZONE 'UTC')::date, count(*)
     FROM customers AS c JOIN events AS e ON e.customer_id = c.id
     WHERE c.survivor_id = $1 AND e.type = ANY($2)
     GROUP BY 2";
/// The latest statement per channel and purpose of the tree's events.
const RECOUNT_CONSENT: &str =
    "INSERT INTO customer_consent (customer_id, channel, purpose, granted, at, event_id, source)
     SELECT DISTINCT ON (s.channel, s.purpose)
            $1, s.channel, s.purpose, s.granted, e.occurred_at, e.event_id, e.source
     FROM customers AS c JOIN events AS e ON e.customer_id = c.id
     CROSS JOIN LATERAL jsonb_to_recordset(e.consent) AS s (channel text, purpose text, granted boolean)
     WHERE c.survivor_id = $1 AND e.consent IS NOT NULL
     ORDER BY s.channel, s.purpose, e.occurred_at DESC, e.event_id DESC";

/// Folds the merged customer's agent-view rows into the survivor's.
pub(crate) async fn fold_into(
    transaction: &Transaction<'_>,
    survivor: Uuid,
    merged: Uuid,
) -> Result<()> {
    for (fold, delete) in FOLD.iter().zip(TABLES) {
        let fold = transaction.prepare_cached(fold).await?;
        transaction.execute(&fold, &[&survivor, &merged]).await?;
        let delete = transaction.prepare_cached(delete).await?;
        transaction.execute(&delete, &[&merged]).await?;
    }
    super::traits::fold_traits_into(transaction, survivor, merged).await?;
    let delete = transaction.prepare_cached(DELETE_TRAITS).await?;
    transaction.execute(&delete, &[&merged]).await?;
    Ok(())
}

/// Recounts a surviving customer's agent-view rows from its events.
pub(crate) async fn recount(
    transaction: &Transaction<'_>,
    survivor: Uuid,
    contact_types: &[&str],
) -> Result<()> {
    for delete in TABLES.into_iter().chain([DELETE_TRAITS]) {
        let delete = transaction.prepare_cached(delete).await?;
        transaction.execute(&delete, &[&survivor]).await?;
    }
    let feedback = transaction.prepare_cached(RECOUNT_FEEDBACK).await?;
    transaction.execute(&feedback, &[&survivor]).await?;
    let daily = transaction.prepare_cached(RECOUNT_DAILY).await?;
    transaction
        .execute(&daily, &[&survivor, &contact_types])
        .await?;
    super::traits::recount_traits(transaction, survivor).await?;
    let consent = transaction.prepare_cached(RECOUNT_CONSENT).await?;
    transaction.execute(&consent, &[&survivor]).await?;
    Ok(())
}

/// Undoes the case merges an unmerge makes wrong: while two customers were
/// one, a contact could join a case of each and merge the two cases. For
/// every case merged across the cut (one side in `split_off`, the profiles
/// leaving, the other not), the side's case comes back with its side's
/// events, and both cases are recounted.
pub(crate) async fn split_cases(
    transaction: &Transaction<'_>,
    split_off: &[Uuid],
    contact_types: &[&str],
) -> Result<()> {
    let crossing = transaction
        .prepare_cached(
            "WITH RECURSIVE roots (id, root, depth) AS (
                 SELECT c.id, c.merged_into, 0 FROM cases AS c WHERE c.merged_into IS NOT NULL
                 UNION ALL
                 SELECT r.id, n.merged_into, r.depth + 1 FROM roots AS r
                 JOIN cases AS n ON n.id = r.root
                 WHERE n.merged_into IS NOT NULL AND r.depth < 100
             )
             SELECT c.id, (c.customer_id = ANY($1)) AS leaving,
                    (SELECT r.root FROM roots AS r WHERE r.id = c.id ORDER BY r.depth DESC LIMIT 1)
             FROM cases AS c JOIN cases AS parent ON parent.id = c.merged_into
             WHERE (c.customer_id = ANY($1)) <> (parent.customer_id = ANY($1))
             ORDER BY c.id",
        )
        .await?;
    let rows = transaction.query(&crossing, &[&split_off]).await?;
    // One case comes back per side and final case: the oldest; others of
    // that side that were merged the same way are merged into it.
    let mut restored: std::collections::BTreeMap<(bool, Uuid), Uuid> = Default::default();
    for row in &rows {
        let (id, leaving, root): (Uuid, bool, Uuid) = (row.get(0), row.get(1), row.get(2));
        let kept = *restored.entry((leaving, root)).or_insert(id);
        let unmerge = transaction
            .prepare_cached("UPDATE cases SET merged_into = $2, updated_at = now() WHERE id = $1")
            .await?;
        let parent = (kept != id).then_some(kept);
        transaction.execute(&unmerge, &[&id, &parent]).await?;
    }
    let move_events = transaction
        .prepare_cached(
            "UPDATE events SET case_id = $2
             WHERE case_id = $1 AND (customer_id = ANY($3)) = $4",
        )
        .await?;
    let recount = transaction
        .prepare_cached(include_str!("../../../sql/view/recount_case.sql"))
        .await?;
    for (&(leaving, root), &case) in &restored {
        transaction
            .execute(&move_events, &[&root, &case, &split_off, &leaving])
            .await?;
        transaction
            .execute(&recount, &[&case, &contact_types])
            .await?;
        transaction
            .execute(&recount, &[&root, &contact_types])
            .await?;
    }
    Ok(())
}
