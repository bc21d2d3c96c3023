//! Identity in the database: merge trees, manual merges and unmerges,
//! conflicts for review, and the identity history.
//!
//! A customer that was merged away stays as a profile in its survivor's
//! merge tree (`merged_into` is its parent, `survivor_id` the root).
//! Identifiers and events belong to the profile they arrived through and
//! never move, so a merge costs the same whatever the size of the histories,
//! and an unmerge gives a profile back exactly what came through it.

mod attribution;
mod lock;
mod read;
mod write;

use chrono::{DateTime, Utc};
use panorama_core::Identifier;
use panorama_core::identity::ConflictReason;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

pub(crate) use attribution::attribute;
pub(crate) use lock::{load_trees, lock_survivors, stored_identifier};
pub(crate) use read::SURVIVOR_OF;
pub use read::{ConflictCursor, ConflictQuery};
pub(crate) use write::{Cause, merge_into, record_conflicts};

/// What one merge did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MergeRecord {
    /// The customer that remains.
    pub survivor: Uuid,
    /// The customer merged away (or, for an unmerge, brought back).
    pub merged: Uuid,
    /// The profiles that moved: the merged customer and every profile
    /// merged into it before.
    pub profiles: Vec<Uuid>,
    /// The identifiers that came with them.
    pub identifiers: Vec<Identifier>,
    /// How many events came with them.
    pub events: i64,
}

/// The result of a manual merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// Merged.
    Merged(MergeRecord),
    /// Both ids already lead to this customer.
    AlreadyOne {
        /// Their survivor.
        survivor: Uuid,
    },
    /// The identity rules forbid the merged customer.
    Refused(ConflictReason),
    /// No customer has this id.
    NotFound(Uuid),
}

/// The result of an unmerge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnmergeOutcome {
    /// Split off: `merged` is a customer of its own again.
    Unmerged(MergeRecord),
    /// The customer given is not part of this customer.
    NotMerged {
        /// The customer asked about, as it is now.
        survivor: Uuid,
    },
    /// No customer has this id.
    NotFound(Uuid),
}

/// How an agent settles a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictAction {
    /// Merge the customers after all.
    Merge,
    /// Keep them apart and close the conflict.
    Dismiss,
}

/// The result of settling a conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictOutcome {
    /// Merged, one record per customer merged away.
    Merged(Vec<MergeRecord>),
    /// Closed without a merge.
    Dismissed,
    /// The identity rules forbid the merged customer; still open.
    Refused(ConflictReason),
    /// Its customers are one customer already, or it concerns only one.
    NothingToMerge,
    /// Settled before.
    AlreadyResolved {
        /// `merged` or `dismissed`.
        status: String,
    },
    /// No such conflict.
    NotFound,
}

/// An identifier of a customer, with the profile it came through.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IdentityIdentifier {
    /// Kind.
    pub kind: String,
    /// Normalised value.
    pub value: String,
    /// The source that first brought it.
    pub source: String,
    /// First event carrying it.
    pub first_seen_at: DateTime<Utc>,
    /// Latest event carrying it.
    pub last_seen_at: DateTime<Utc>,
    /// The profile (this customer or one merged into it) it came through.
    pub profile_id: Uuid,
}

/// A profile of a merge tree.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IdentityProfile {
    /// Profile id: the customer's own, or one merged into it.
    pub id: Uuid,
    /// The profile it was merged into; absent for the customer itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<Uuid>,
    /// When.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_at: Option<DateTime<Utc>>,
    /// When the profile was created.
    pub created_at: DateTime<Utc>,
}

/// One entry of the identity history.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// Entry id.
    pub id: Uuid,
    /// When.
    pub at: DateTime<Utc>,
    /// `merge`, `refused` or `unmerge`.
    pub action: String,
    /// Merge: the survivor; unmerge: the customer it was taken from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub survivor_id: Option<Uuid>,
    /// Merge: the customer merged away; unmerge: the one brought back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_id: Option<Uuid>,
    /// Every customer concerned.
    pub customers: Vec<Uuid>,
    /// The event that caused it (automatic decisions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Uuid>,
    /// Who did it (manual decisions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Why, in the agent's words or the resolver's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The identifiers that linked the customers.
    #[schema(value_type = Vec<panorama_core::Identifier>)]
    pub identifiers: Value,
    /// What moved: profiles, identifiers, event count
    /// (`{"customers": [...], "identifiers": [...], "events": n}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub moved: Option<Value>,
}

/// A customer's identity: identifiers, profiles, history.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustomerIdentity {
    /// The customer (the survivor of the id asked for).
    pub customer_id: Uuid,
    /// Every identifier, by kind then value.
    pub identifiers: Vec<IdentityIdentifier>,
    /// The customer and every profile merged into it, oldest first.
    pub profiles: Vec<IdentityProfile>,
    /// Merges, refusals and unmerges concerning any of them, newest first.
    pub history: Vec<HistoryEntry>,
}

/// A conflict for review.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConflictView {
    /// Conflict id.
    pub id: Uuid,
    /// First raised.
    pub created_at: DateTime<Utc>,
    /// Last raised.
    pub last_seen_at: DateTime<Utc>,
    /// How many events raised it.
    pub occurrences: i32,
    /// `open`, `merged` or `dismissed`.
    pub status: String,
    /// `limit`, `weak_link_only` or `do_not_merge`.
    pub reason: String,
    /// For `limit`: the identifier kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The reason in words.
    pub detail: String,
    /// The customers concerned, as they were when it was raised.
    pub customers: Vec<Uuid>,
    /// Their survivors now, in the same order.
    pub survivors: Vec<Uuid>,
    /// The identifiers concerned.
    #[schema(value_type = Vec<panorama_core::Identifier>)]
    pub identifiers: Value,
    /// The first event that raised it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Uuid>,
    /// The latest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event_id: Option<Uuid>,
    /// When it was settled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// By whom.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
}

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
