//! Request and answer bodies of these routes, for the OpenAPI document
//! only: the handlers read bodies field by field (`JsonBody`) and build
//! some answers with `json!`.

// Never constructed: these types exist for their `ToSchema` derives.
#![allow(dead_code)]

use panorama_store::{CustomerIdentity, MergeRecord};
use serde::Serialize;
use uuid::Uuid;

/// `POST /v1/customers/{id}/merge`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MergeRequest {
    /// The customer to merge with.
    other: Uuid,
    /// Why, for the identity history.
    #[schema(max_length = 2000)]
    reason: Option<String>,
}

/// `POST /v1/customers/{id}/unmerge`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UnmergeRequest {
    /// The customer merged into this one to split off.
    merged: Uuid,
}

/// A customer's identity and the id asked for.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct IdentityAnswer {
    /// The id in the path.
    requested_id: Uuid,
    #[serde(flatten)]
    identity: CustomerIdentity,
}

/// How to settle a conflict.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ConflictAction {
    /// Merge the customers after all.
    Merge,
    /// Keep them apart and close the conflict.
    Dismiss,
}

/// `POST /v1/identity/conflicts/{id}/resolve`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResolveConflictRequest {
    /// What to do.
    action: ConflictAction,
    /// Why, for the identity history.
    #[schema(max_length = 2000)]
    note: Option<String>,
}

/// A settled conflict.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ConflictResolution {
    /// Conflict id.
    id: Uuid,
    /// `merged` or `dismissed`.
    status: String,
    /// For `merged`: one record per customer merged away.
    #[serde(skip_serializing_if = "Option::is_none")]
    merges: Option<Vec<MergeRecord>>,
}
