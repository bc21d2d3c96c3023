//! Identity in the projection: who each event is about, recorded in merge
//! trees.
//!
//! A customer that was merged away stays as a profile in its survivor's
//! merge tree (`merged_into` is its parent, `survivor_id` the root).
//! Identifiers and events belong to the profile they arrived through and
//! never move, so a merge costs the same whatever the size of the histories,
//! and an unmerge gives a profile back exactly what came through it.
//!
//! A batch's identity steps, in the order the batch takes them:
//!
//! - [`decide`]: the two steps below, decided again when a concurrent batch
//!   creates one of the batch's new identifiers first. Known identifiers
//!   are guarded by their survivor's lock, new ones by the primary key of
//!   `identifiers`: no lock covers the batch as a whole, so projectors on
//!   other partitions do not wait for each other.
//! - [`resolve`]: the profiles the known identifiers came through, their
//!   survivors locked and merge trees loaded ([`lock`]), the resolver's
//!   decisions, and the profile of each event ([`attribution`]).
//! - [`identifiers`]: the new customers and identifier links, and the last
//!   sighting of the known identifiers.
//! - [`merge`]: the batch's merges, in order (after the events are in).
//! - [`conflicts`]: the links the rules refused, for review.
//! - [`history`]: why each decision was made and what moved, written by the
//!   two above.
//!
//! [`manual`] is the admin API's side: an agent merges, unmerges or settles
//! a conflict outside any batch. It lives here, not with the API, because it
//! is made of the same parts (the survivor locks, [`merge::merge_into`], the
//! history, the change log) and every writer of identity must lock the same
//! way; the projector never calls it.

mod attribution;
mod conflicts;
mod decide;
mod history;
mod identifiers;
mod lock;
mod manual;
mod merge;
mod resolve;

use panorama_core::identity::ConflictReason;

pub(crate) use conflicts::record_conflicts;
pub(crate) use decide::decide_identity;
pub(crate) use lock::{lock_survivors, stored_identifier};
pub use manual::{ConflictAction, ConflictOutcome, MergeOutcome, UnmergeOutcome};
pub use merge::MergeRecord;
pub(crate) use merge::apply_merges;

/// The stored form of a conflict reason: a name and, for limits, the kind
/// (empty otherwise, so it can be part of a unique key).
pub(crate) fn reason_parts(reason: ConflictReason) -> (&'static str, &'static str) {
    match reason {
        ConflictReason::Limit(kind) => ("limit", kind.as_str()),
        ConflictReason::WeakLinkOnly => ("weak_link_only", ""),
        ConflictReason::DoNotMerge => ("do_not_merge", ""),
    }
}

/// The words for a stored conflict reason.
pub(crate) fn reason_detail(reason: &str, kind: &str) -> String {
    match reason {
        "limit" => kind
            .parse()
            .map(|kind| ConflictReason::Limit(kind).to_string())
            .unwrap_or_else(|_| format!("limit on {kind}")),
        "weak_link_only" => ConflictReason::WeakLinkOnly.to_string(),
        "do_not_merge" => ConflictReason::DoNotMerge.to_string(),
        other => other.to_owned(),
    }
}
