//! Subject keys: issued by the gateway before it seals an event, read by
//! the projector (in the batch's transaction) before it opens one.

use std::collections::{HashMap, HashSet};

use crate::BatchTransaction;
use crate::{Error, Result, Store};

/// Bytes of a subject, a key and the subject secret.
pub const KEY_BYTES: usize = 32;

/// A subject: the keyed hash of one identifier.
pub type Subject = [u8; KEY_BYTES];

/// Advisory lock that orders erasures against batches: every batch takes
/// it shared before it reads keys and suppressions, an erasure takes it
/// exclusively, so no batch can project a person between an erasure's
/// start and its commit ("panopriv" in ASCII).
pub(crate) const PRIVACY_LOCK: i64 = 0x7061_6e6f_7072_6976;

/// What the store holds for some subjects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectKeys {
    /// The key of each subject that has one.
    pub keys: HashMap<Subject, [u8; KEY_BYTES]>,
    /// The subjects under a suppression in force.
    pub suppressed: HashSet<Subject>,
}

impl Store {
    /// The deployment's subject secret, made from the operating system's
    /// CSPRNG by the first process that asks.
    pub async fn subject_secret(&self) -> Result<[u8; KEY_BYTES]> {
        let client = self.pool.get().await?;
        // Two processes asking first at once: the one whose insert loses
        // waits for the other's commit, but its statement's snapshot is
        // older than that commit and sees no row; the next statement does.
        for _ in 0..3 {
            let fresh: [u8; KEY_BYTES] = rand::random();
            let row = client
                .query_opt(
                    "WITH made AS (
                         INSERT INTO panorama_privacy.subject_secret (secret) VALUES ($1)
                         ON CONFLICT (only_one) DO NOTHING RETURNING secret)
                     SELECT secret FROM made
                     UNION ALL SELECT secret FROM panorama_privacy.subject_secret
                     LIMIT 1",
                    &[&fresh.as_slice()],
                )
                .await?;
            if let Some(row) = row {
                return key_of(row.get(0));
            }
        }
        Err(Error::Migration(
            "the subject secret could not be read or made".into(),
        ))
    }

    /// The keys of `subjects`, making one for each that has none and is
    /// not suppressed: what the gateway seals with. Suppressed subjects get
    /// no key. One round trip (two when another gateway made a key at the
    /// same moment).
    pub async fn issue_subject_keys(&self, subjects: &[Subject]) -> Result<SubjectKeys> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(include_str!("../../sql/subject_keys_issue.sql"))
            .await?;
        let mut found = SubjectKeys::default();
        let mut wanted: Vec<Subject> = subjects.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        // A key another gateway inserted after this statement's snapshot
        // is neither inserted nor seen: the next round reads it.
        for _ in 0..3 {
            if wanted.is_empty() {
                break;
            }
            let candidates: Vec<[u8; KEY_BYTES]> = wanted.iter().map(|_| rand::random()).collect();
            let subject_params: Vec<&[u8]> =
                wanted.iter().map(<[u8; KEY_BYTES]>::as_slice).collect();
            let key_params: Vec<&[u8]> =
                candidates.iter().map(<[u8; KEY_BYTES]>::as_slice).collect();
            let rows = client
                .query(&statement, &[&subject_params, &key_params])
                .await?;
            absorb(&mut found, &rows)?;
            wanted.retain(|subject| {
                !found.keys.contains_key(subject) && !found.suppressed.contains(subject)
            });
        }
        if wanted.is_empty() {
            Ok(found)
        } else {
            Err(Error::Migration(
                "subject keys could not be issued: another writer keeps replacing them".into(),
            ))
        }
    }
}

impl BatchTransaction<'_> {
    /// The keys and suppressions of `subjects`, read in the batch's
    /// transaction after taking the privacy lock shared (see
    /// [`PRIVACY_LOCK`]), so that an erasure is either wholly before the
    /// batch or wholly after it.
    pub async fn subject_keys(&mut self, subjects: &[Subject]) -> Result<SubjectKeys> {
        let statement = self
            .transaction
            .prepare_cached(include_str!("../../sql/subject_keys_read.sql"))
            .await?;
        let params: Vec<&[u8]> = subjects.iter().map(<[u8; KEY_BYTES]>::as_slice).collect();
        // Sent together, answered in order: one round trip, and the read's
        // snapshot is taken after the lock is held.
        let lock_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&PRIVACY_LOCK];
        let read_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&params];
        let (locked, rows) = tokio::join!(
            self.transaction
                .execute("SELECT pg_advisory_xact_lock_shared($1)", &lock_params),
            self.transaction.query(&statement, &read_params),
        );
        locked?;
        let rows = rows?;
        let mut found = SubjectKeys::default();
        absorb(&mut found, &rows)?;
        Ok(found)
    }
}

/// Rows of `(subject, key or NULL, suppressed)` into `found`.
fn absorb(found: &mut SubjectKeys, rows: &[tokio_postgres::Row]) -> Result<()> {
    for row in rows {
        let subject = key_of(row.get(0))?;
        if row.get::<_, bool>(2) {
            found.suppressed.insert(subject);
        } else if let Some(key) = row.get::<_, Option<Vec<u8>>>(1) {
            found.keys.insert(subject, key_of(key)?);
        }
    }
    Ok(())
}

fn key_of(bytes: Vec<u8>) -> Result<[u8; KEY_BYTES]> {
    bytes
        .try_into()
        .map_err(|_| Error::Migration("a subject or key is not 32 bytes".into()))
}
