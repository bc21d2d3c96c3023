//! Sealing events before they are published (docs/privacy.md): the personal
//! part of every contact event is encrypted to the keys of the subjects it
//! names, so erasing a person's keys leaves nothing of them readable on the
//! topic; events naming a suppressed (erased) subject are not published at
//! all.
//!
//! Keys come from PostgreSQL, cached for `key_cache` per subject, so steady
//! traffic costs one look-up per new subject and cache window. A gateway
//! that cannot reach PostgreSQL keeps sealing with the keys it holds and
//! answers 503 for a subject it has none for.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use panorama_core::ContactEvent;
use panorama_proto::sealed::{self, Subject, SubjectKey, SubjectSecret};
use panorama_store::Store;

use crate::error::ApiError;

/// How sealing is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrivacySettings {
    /// Whether events are sealed; off, they are published in clear (and
    /// erasure cannot reach the topic).
    pub seal: bool,
    /// How long a subject's key (or its suppression) is used from memory
    /// before it is read again.
    pub key_cache: Duration,
}

impl Default for PrivacySettings {
    fn default() -> Self {
        PrivacySettings {
            seal: true,
            key_cache: Duration::from_secs(60),
        }
    }
}

/// Most subjects remembered; past it the cache starts afresh.
const MAX_CACHED: usize = 100_000;

/// How old a remembered key may be and still be used while PostgreSQL
/// cannot be reached (as long as a token seen lately is accepted).
const STALE_LIMIT: Duration = Duration::from_secs(600);

/// A record ready to publish: its key and value.
#[derive(Debug)]
pub(crate) struct SealedRecord {
    pub(crate) key: String,
    pub(crate) payload: Vec<u8>,
}

/// What sealing a set of events gave.
#[derive(Debug, Default)]
pub(crate) struct Sealed {
    /// One per event that is to be published, in the events' order, with
    /// the event's index.
    pub(crate) records: Vec<(usize, SealedRecord)>,
    /// Indexes of the events dropped because they name a suppressed subject.
    pub(crate) suppressed: Vec<usize>,
}

/// A subject's key as remembered: `None` when the subject is suppressed.
#[derive(Debug, Clone)]
struct Remembered {
    key: Option<SubjectKey>,
    at: Instant,
}

/// Seals events with keys from the store.
#[derive(Debug)]
pub(crate) struct Sealer {
    settings: PrivacySettings,
    store: Option<Store>,
    secret: OnceLock<SubjectSecret>,
    cache: Mutex<HashMap<Subject, Remembered>>,
}

impl Sealer {
    pub(crate) fn new(settings: PrivacySettings, store: Option<Store>) -> Self {
        Sealer {
            settings,
            store,
            secret: OnceLock::new(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The records of `events`: sealed (or in clear, when sealing is off),
    /// without those naming a suppressed subject.
    pub(crate) async fn seal(&self, events: &[ContactEvent]) -> Result<Sealed, ApiError> {
        if !self.settings.seal {
            return Ok(Sealed {
                records: events
                    .iter()
                    .enumerate()
                    .map(|(index, event)| {
                        let record = SealedRecord {
                            key: event.partition_key(),
                            payload: panorama_proto::encode(event),
                        };
                        (index, record)
                    })
                    .collect(),
                suppressed: Vec::new(),
            });
        }
        let secret = self.secret().await?;
        let subjects: Vec<Vec<Subject>> = events.iter().map(|e| secret.subjects(e)).collect();
        let keys = self.keys(subjects.iter().flatten()).await?;
        let mut sealed = Sealed::default();
        for (index, (event, subjects)) in events.iter().zip(&subjects).enumerate() {
            let mut own = HashMap::with_capacity(subjects.len());
            let mut suppressed = false;
            for subject in subjects {
                match keys.get(subject) {
                    Some(Some(key)) => {
                        own.insert(*subject, key.clone());
                    }
                    _ => suppressed = true,
                }
            }
            if suppressed {
                sealed.suppressed.push(index);
                continue;
            }
            let payload = sealed::seal(event, subjects, &own).map_err(|error| {
                tracing::error!(%error, "cannot seal an event");
                ApiError::Internal
            })?;
            let record = SealedRecord {
                key: sealed::partition_key(subjects),
                payload,
            };
            sealed.records.push((index, record));
        }
        Ok(sealed)
    }

    /// The subject secret, read from the store once.
    async fn secret(&self) -> Result<SubjectSecret, ApiError> {
        if let Some(secret) = self.secret.get() {
            return Ok(secret.clone());
        }
        let store = self.store.as_ref().ok_or(ApiError::DatabaseUnavailable)?;
        let bytes = store.subject_secret().await.map_err(|error| {
            tracing::warn!(%error, "cannot read the subject secret");
            ApiError::DatabaseUnavailable
        })?;
        Ok(self
            .secret
            .get_or_init(|| SubjectSecret::new(&bytes))
            .clone())
    }

    /// The key (or `None`: suppressed) of each of `subjects`, from memory
    /// when fresh, else from the store (which makes missing keys).
    async fn keys<'a>(
        &self,
        subjects: impl Iterator<Item = &'a Subject>,
    ) -> Result<HashMap<Subject, Option<SubjectKey>>, ApiError> {
        let now = Instant::now();
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            for subject in subjects {
                match cache.get(subject) {
                    Some(remembered) if now - remembered.at < self.settings.key_cache => {
                        found.insert(*subject, remembered.key.clone());
                    }
                    _ => missing.push(*subject),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        missing.sort_unstable();
        missing.dedup();
        let store = self.store.as_ref().ok_or(ApiError::DatabaseUnavailable)?;
        let wanted: Vec<[u8; 32]> = missing.iter().map(|s| *s.as_bytes()).collect();
        let issued = match store.issue_subject_keys(&wanted).await {
            Ok(issued) => issued,
            Err(error) => {
                tracing::warn!(%error, "cannot read subject keys; using those remembered");
                return self.remembered(missing, found, now);
            }
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() + missing.len() > MAX_CACHED {
            cache.clear();
        }
        for subject in missing {
            let key = issued
                .keys
                .get(subject.as_bytes())
                .and_then(|key| SubjectKey::from_slice(key));
            let suppressed = issued.suppressed.contains(subject.as_bytes());
            if key.is_none() && !suppressed {
                return Err(ApiError::Internal);
            }
            cache.insert(
                subject,
                Remembered {
                    key: key.clone(),
                    at: now,
                },
            );
            found.insert(subject, key);
        }
        Ok(found)
    }

    /// `found` completed from memory while the store cannot be reached:
    /// every subject must have been seen within [`STALE_LIMIT`], else the
    /// request is answered 503 (a key must be in PostgreSQL before its
    /// first use, or erasure could not destroy it).
    fn remembered(
        &self,
        missing: Vec<Subject>,
        mut found: HashMap<Subject, Option<SubjectKey>>,
        now: Instant,
    ) -> Result<HashMap<Subject, Option<SubjectKey>>, ApiError> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        for subject in missing {
            match cache.get(&subject) {
                Some(remembered) if now - remembered.at < STALE_LIMIT => {
                    found.insert(subject, remembered.key.clone());
                }
                _ => return Err(ApiError::DatabaseUnavailable),
            }
        }
        Ok(found)
    }
}
