//! What a process remembers about the bearer tokens it has checked, so
//! that steady traffic and floods of made-up tokens alike cost the
//! database little:
//!
//! - a token the database accepted is trusted for [`AUTH_CACHE_TTL`], and
//!   remembered for [`AUTH_STALE_TTL`] as *seen lately*: such a token is
//!   accepted while the database cannot be reached, and still checked when
//!   its client address is blocked for failed checks;
//! - a token the database refused is refused again without asking for
//!   [`REJECTED_TTL`]. Secrets are random and created in the database, so
//!   no token can be refused first and created afterwards: remembering a
//!   refusal never delays a new token.
//!
//! Both maps are bounded; a revoked token's success is forgotten as soon as
//! the database says so.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use panorama_store::Principal;

/// How long a successful authentication is reused without asking the
/// database: the longest a revoked token keeps working on one process.
pub const AUTH_CACHE_TTL: Duration = Duration::from_secs(5);

/// How long a token the database accepted counts as seen lately: accepted
/// without the database while it is unreachable.
pub const AUTH_STALE_TTL: Duration = Duration::from_secs(600);

/// How long a refused token is refused without asking the database again.
const REJECTED_TTL: Duration = Duration::from_secs(60);

/// Most remembered successes (live tokens) and refusals (made-up tokens).
const MAX_ACCEPTED: usize = 10_000;
const MAX_REJECTED: usize = 100_000;

/// What the cache knows about a token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Known {
    /// Accepted within [`AUTH_CACHE_TTL`].
    Fresh(Principal),
    /// Accepted within [`AUTH_STALE_TTL`], but not within the fresh window.
    Stale(Principal),
    /// Refused within [`REJECTED_TTL`].
    Rejected,
    /// Nothing.
    Unknown,
}

/// Successes and refusals, by token hash.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    accepted: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
    rejected: Mutex<HashMap<[u8; 32], Instant>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TokenCache {
    /// What is known about the token with `hash`.
    pub(crate) fn lookup(&self, hash: &[u8; 32]) -> Known {
        self.lookup_at(hash, Instant::now())
    }

    fn lookup_at(&self, hash: &[u8; 32], now: Instant) -> Known {
        if let Some((principal, at)) = lock(&self.accepted).get(hash) {
            let age = now.saturating_duration_since(*at);
            if age < AUTH_CACHE_TTL {
                return Known::Fresh(principal.clone());
            }
            if age < AUTH_STALE_TTL {
                return Known::Stale(principal.clone());
            }
        }
        match lock(&self.rejected).get(hash) {
            Some(at) if now.saturating_duration_since(*at) < REJECTED_TTL => Known::Rejected,
            _ => Known::Unknown,
        }
    }

    /// Remembers that the database accepted the token.
    pub(crate) fn accept(&self, hash: [u8; 32], principal: &Principal) {
        self.accept_at(hash, principal, Instant::now());
    }

    fn accept_at(&self, hash: [u8; 32], principal: &Principal, now: Instant) {
        lock(&self.rejected).remove(&hash);
        let mut accepted = lock(&self.accepted);
        if accepted.len() >= MAX_ACCEPTED && !accepted.contains_key(&hash) {
            accepted.retain(|_, (_, at)| now.saturating_duration_since(*at) < AUTH_STALE_TTL);
            // Still full of tokens seen lately: the oldest goes.
            if accepted.len() >= MAX_ACCEPTED {
                let oldest = accepted
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(hash, _)| *hash);
                if let Some(oldest) = oldest {
                    accepted.remove(&oldest);
                }
            }
        }
        accepted.insert(hash, (principal.clone(), now));
    }

    /// Remembers that the database refused the token, and forgets that it
    /// ever accepted it (it was revoked).
    pub(crate) fn reject(&self, hash: [u8; 32]) {
        self.reject_at(hash, Instant::now());
    }

    fn reject_at(&self, hash: [u8; 32], now: Instant) {
        lock(&self.accepted).remove(&hash);
        let mut rejected = lock(&self.rejected);
        if rejected.len() >= MAX_REJECTED {
            rejected.retain(|_, at| now.saturating_duration_since(*at) < REJECTED_TTL);
            if rejected.len() >= MAX_REJECTED {
                rejected.clear();
            }
        }
        rejected.insert(hash, now);
    }
}

#[cfg(test)]
mod tests {
    use panorama_core::Role;
    use uuid::Uuid;

    use super::*;

    fn principal() -> Principal {
        Principal {
            token_id: Uuid::nil(),
            name: "desk-1".into(),
            role: Role::Agent,
            source: None,
        }
    }

    #[test]
    fn a_success_is_fresh_then_stale_then_forgotten() {
        let cache = TokenCache::default();
        let start = Instant::now();
        cache.accept_at([1; 32], &principal(), start);
        assert_eq!(cache.lookup_at(&[1; 32], start), Known::Fresh(principal()));
        assert_eq!(
            cache.lookup_at(&[1; 32], start + AUTH_CACHE_TTL),
            Known::Stale(principal())
        );
        assert_eq!(
            cache.lookup_at(&[1; 32], start + AUTH_STALE_TTL),
            Known::Unknown
        );
        assert_eq!(cache.lookup_at(&[2; 32], start), Known::Unknown);
    }

    #[test]
    fn a_refusal_is_remembered_for_a_while_and_forgets_a_success() {
        let cache = TokenCache::default();
        let start = Instant::now();
        cache.accept_at([1; 32], &principal(), start);
        cache.reject_at([1; 32], start);
        assert_eq!(cache.lookup_at(&[1; 32], start), Known::Rejected);
        assert_eq!(
            cache.lookup_at(&[1; 32], start + REJECTED_TTL),
            Known::Unknown,
            "a revoked token is not accepted as seen lately"
        );
        cache.accept_at([1; 32], &principal(), start);
        assert_eq!(cache.lookup_at(&[1; 32], start), Known::Fresh(principal()));
    }

    #[test]
    fn the_maps_stay_bounded() {
        let cache = TokenCache::default();
        let start = Instant::now();
        for n in 0..=MAX_ACCEPTED as u32 {
            let mut hash = [0; 32];
            hash[..4].copy_from_slice(&n.to_be_bytes());
            cache.accept_at(hash, &principal(), start + Duration::from_micros(n.into()));
        }
        assert_eq!(lock(&cache.accepted).len(), MAX_ACCEPTED);
        assert_eq!(
            cache.lookup_at(&[0; 32], start),
            Known::Unknown,
            "the oldest went first"
        );
        for n in 0..=MAX_REJECTED as u32 {
            let mut hash = [0; 32];
            hash[..4].copy_from_slice(&n.to_be_bytes());
            cache.reject_at(hash, start);
        }
        assert!(lock(&cache.rejected).len() <= MAX_REJECTED);
    }
}
