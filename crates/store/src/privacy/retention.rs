//! Retention (docs/privacy.md, "Retention"): events past their rule's age
//! keep their row and lose their personal fields; audit-log and
//! dead-letter rows past theirs are deleted.
//!
//! Every step is a batch of at most `batch` rows in a statement of its own
//! (its own short transaction), picking its rows with `FOR UPDATE SKIP
//! LOCKED`: several processes running retention at once share the rows
//! instead of waiting on each other, and a row is changed by exactly one
//! of them. Nothing else is locked: projector batches insert new events
//! and never wait on a retention batch, and an erasure deleting a row a
//! batch holds waits for that one statement.
//!
//! Anonymising keeps every column that a count, an aggregate, a case or a
//! recount reads, so the roll-ups stay equal to a recount from the events
//! without being touched.

use chrono::{DateTime, NaiveDate, Utc};
use panorama_core::retention::{RetentionPattern, RetentionRules};
use uuid::Uuid;

use crate::{CUSTOMER_ATTRIBUTE_PREFIX, Result, Store};

/// What retention applies: the rules for events and the ages of the audit
/// log's and the dead-letter ledger's rows (`None`: kept forever).
#[derive(Debug, Clone, Default)]
pub struct RetentionPolicy {
    /// How long events keep their personal fields, by channel or type.
    pub events: RetentionRules,
    /// How long audit-log rows are kept.
    pub audit_log: Option<std::time::Duration>,
    /// How long dead-letter ledger rows are kept.
    pub dead_letters: Option<std::time::Duration>,
}

impl RetentionPolicy {
    /// Whether the policy never changes anything.
    pub fn is_off(&self) -> bool {
        self.events.is_off() && self.audit_log.is_none() && self.dead_letters.is_none()
    }
}

/// What one [`Store::apply_retention`] run changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Events whose personal fields were cleared.
    pub events_anonymised: u64,
    /// Audit-log rows deleted.
    pub audit_deleted: u64,
    /// Dead-letter ledger rows deleted.
    pub dead_letters_deleted: u64,
    /// Transactions that changed at least one row.
    pub transactions: u64,
}

/// Picks a batch of events still holding their personal fields that
/// happened before `$1`, after the key `($2, $3)`, matched by the rule
/// (`$4`: any; `$5`: channel or type names; `$6`: type prefixes) and by no
/// earlier rule (`$7`, `$8`), and clears them. Kept: what counts and
/// aggregates read (times, channel, type, direction, source, duration,
/// outcome, sentiment, feedback metric and score, case, conversation,
/// agent, queue, consent, fingerprint), the `customer.*` attributes the
/// profile's attributes are recounted from, and the name when it is the
/// one the profile shows (the latest naming event keeps it, so a recount
/// finds the same name).
const ANONYMISE_EVENTS: &str = "WITH picked AS (
         SELECT event_id FROM events
         WHERE anonymised_at IS NULL AND occurred_at < $1
           AND (occurred_at, event_id) > ($2, $3)
           AND ($4 OR channel = ANY($5) OR type = ANY($5)
                OR EXISTS (SELECT 1 FROM unnest($6::text[]) AS p WHERE starts_with(type, p)))
           AND NOT (channel = ANY($7) OR type = ANY($7)
                OR EXISTS (SELECT 1 FROM unnest($8::text[]) AS p WHERE starts_with(type, p)))
         ORDER BY occurred_at, event_id
         LIMIT $9
         FOR UPDATE SKIP LOCKED
     )
     UPDATE events AS e SET
         identifiers = '[]',
         contact_reason = NULL,
         subject = NULL,
         summary = NULL,
         feedback_comment = NULL,
         display_name = CASE WHEN e.display_name = (
                 SELECT s.display_name FROM customers AS c JOIN customers AS s ON s.id = c.survivor_id
                 WHERE c.id = e.customer_id)
             THEN e.display_name END,
         attributes = COALESCE(
             (SELECT jsonb_object_agg(kv.key, kv.value) FROM jsonb_each(e.attributes) AS kv
              WHERE starts_with(kv.key, $11)),
             '{}'),
         anonymised_at = $10
     FROM picked WHERE e.event_id = picked.event_id
     RETURNING e.occurred_at, e.event_id";

/// Deletes a batch of audit-log rows older than `$1`.
const DELETE_AUDIT: &str = "DELETE FROM audit_log WHERE id IN (
         SELECT id FROM audit_log WHERE at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)";

/// Deletes a batch of dead-letter ledger rows older than `$1`.
const DELETE_DEAD_LETTERS: &str =
    "DELETE FROM dead_letters WHERE (consumer_group, topic, partition, \"offset\") IN (
         SELECT consumer_group, topic, partition, \"offset\" FROM dead_letters
         WHERE at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)";

/// A rule as the statement takes it: any, names, prefixes.
#[derive(Debug, Default, Clone)]
struct Matcher {
    any: bool,
    names: Vec<String>,
    prefixes: Vec<String>,
}

impl Matcher {
    fn add(&mut self, pattern: &RetentionPattern) {
        match pattern {
            RetentionPattern::Any => self.any = true,
            RetentionPattern::Name(name) => self.names.push(name.clone()),
            RetentionPattern::Prefix(prefix) => self.prefixes.push(prefix.clone()),
        }
    }
}

/// `now - age`, or `None` when that is before any event could have
/// happened (nothing is that old).
fn cutoff(now: DateTime<Utc>, age: std::time::Duration) -> Option<DateTime<Utc>> {
    chrono::Duration::from_std(age)
        .ok()
        .and_then(|age| now.checked_sub_signed(age))
}

/// Before every event: the start of the keyset walk.
fn before_everything() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(1, 1, 1)
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map_or(DateTime::UNIX_EPOCH, |start| start.and_utc())
}

impl Store {
    /// Applies `policy` as of `now`, in batches of at most `batch` rows per
    /// transaction, until no row is left to change: anonymises the events
    /// past their rule's age, then deletes the audit-log and dead-letter
    /// rows past theirs. Safe to run from several processes at once: each
    /// row is changed by one of them. `now` is a parameter so that tests
    /// choose the time; the job passes the clock's.
    #[tracing::instrument(skip(self, policy))]
    pub async fn apply_retention(
        &self,
        policy: &RetentionPolicy,
        now: DateTime<Utc>,
        batch: usize,
    ) -> Result<RetentionReport> {
        let batch = i64::try_from(batch.max(1)).unwrap_or(i64::MAX);
        let mut report = RetentionReport::default();
        let client = self.pool.get().await?;
        let anonymise = client.prepare_cached(ANONYMISE_EVENTS).await?;
        let mut earlier = Matcher::default();
        for rule in policy.events.rules() {
            if earlier.any {
                break;
            }
            let mut current = Matcher::default();
            current.add(&rule.pattern);
            let before = rule.age().and_then(|age| cutoff(now, age));
            if let Some(before) = before {
                let (mut after_at, mut after_id) = (before_everything(), Uuid::nil());
                loop {
                    let rows = client
                        .query(
                            &anonymise,
                            &[
                                &before,
                                &after_at,
                                &after_id,
                                &current.any,
                                &current.names,
                                &current.prefixes,
                                &earlier.names,
                                &earlier.prefixes,
                                &batch,
                                &now,
                                &CUSTOMER_ATTRIBUTE_PREFIX,
                            ],
                        )
                        .await?;
                    let changed = rows.len() as u64;
                    if changed > 0 {
                        report.events_anonymised += changed;
                        report.transactions += 1;
                    }
                    // The walk goes on after the last row picked; rows a
                    // concurrent run holds are skipped (it changes them).
                    let last = rows
                        .iter()
                        .map(|row| (row.get::<_, DateTime<Utc>>(0), row.get::<_, Uuid>(1)))
                        .max();
                    match last {
                        Some(last) if changed >= batch as u64 => (after_at, after_id) = last,
                        _ => break,
                    }
                }
            }
            earlier.add(&rule.pattern);
        }
        for (age, statement, counter) in [
            (
                policy.audit_log,
                DELETE_AUDIT,
                &mut report.audit_deleted as &mut u64,
            ),
            (
                policy.dead_letters,
                DELETE_DEAD_LETTERS,
                &mut report.dead_letters_deleted,
            ),
        ] {
            let Some(before) = age.and_then(|age| cutoff(now, age)) else {
                continue;
            };
            let statement = client.prepare_cached(statement).await?;
            loop {
                let deleted = client.execute(&statement, &[&before, &batch]).await?;
                if deleted > 0 {
                    *counter += deleted;
                    report.transactions += 1;
                }
                if deleted < batch as u64 {
                    break;
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_stay_in_range() {
        let now = DateTime::UNIX_EPOCH;
        let hundred_years = std::time::Duration::from_secs(100 * 366 * 24 * 3600);
        assert!(cutoff(now, hundred_years).is_some_and(|at| at < now));
        assert!(before_everything() < now - chrono::Duration::days(366 * 100));
    }

    #[test]
    fn a_policy_without_rules_is_off() {
        assert!(RetentionPolicy::default().is_off());
        let policy = RetentionPolicy {
            events: RetentionRules::parse("chat=off").expect("valid"),
            ..RetentionPolicy::default()
        };
        assert!(policy.is_off());
        let policy = RetentionPolicy {
            dead_letters: Some(std::time::Duration::from_secs(3600)),
            ..RetentionPolicy::default()
        };
        assert!(!policy.is_off());
    }
}
