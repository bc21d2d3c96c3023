//! Request and answer bodies of these routes, for the OpenAPI document
//! only: the handlers read bodies field by field (`JsonBody`) and build
//! answers with `json!`.

// Never constructed: these types exist for their `ToSchema` derives.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use panorama_core::{ConsentChannel, ConsentPurpose, ConsentStatus, FeedbackMetric};
use panorama_store::{CaseView, TaskView};
use serde::Serialize;
use uuid::Uuid;

/// `POST /v1/customers/{id}/notes`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoteRequest {
    /// The note.
    #[schema(min_length = 1, max_length = 4000)]
    text: String,
    /// The case it is about.
    case_id: Option<Uuid>,
}

/// `POST /v1/notes`: a note about an identifier, known or not.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdentifierNoteRequest {
    /// Whom it is about: `{"kind": "phone", "value": "+31612345678"}`.
    identifier: panorama_core::IdentifierDraft,
    /// The note.
    #[schema(min_length = 1, max_length = 4000)]
    text: String,
}

/// `POST /v1/customers/{id}/feedback`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedbackRequest {
    /// The survey metric.
    metric: FeedbackMetric,
    /// The score: 0–10 for `nps`, 1–5 for `csat`, 1–7 for `ces`.
    score: i32,
    /// The customer's words.
    #[schema(max_length = 4000)]
    comment: Option<String>,
    /// The case it is about.
    case_id: Option<Uuid>,
}

/// `POST /v1/customers/{id}/consent`: one statement of the customer's.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsentRequest {
    /// The channel, or `any` for every channel.
    channel: ConsentChannel,
    /// What for.
    purpose: ConsentPurpose,
    /// `true`: the customer allows it; `false`: refuses it.
    granted: bool,
    /// How or where the customer said so, shown on the timeline.
    #[schema(max_length = 4000)]
    note: Option<String>,
}

/// `POST /v1/customers/{id}/cases`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpenCaseRequest {
    /// The reason for contact.
    #[schema(min_length = 1, max_length = 200)]
    reason: String,
    /// A first note.
    #[schema(max_length = 4000)]
    note: Option<String>,
}

/// `POST /v1/cases/{id}/resolve`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResolveCaseRequest {
    /// How it ended.
    #[schema(min_length = 1, max_length = 200)]
    outcome: String,
    /// A resolution note.
    #[schema(max_length = 4000)]
    note: Option<String>,
}

/// `POST /v1/cases/{id}/reopen`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReopenCaseRequest {
    /// Why.
    #[schema(max_length = 4000)]
    note: Option<String>,
}

/// `POST /v1/customers/{id}/tasks`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskRequest {
    /// What to do.
    #[schema(min_length = 1, max_length = 200)]
    title: String,
    /// When it is due.
    due_at: DateTime<Utc>,
    /// The channel to contact the customer through: `phone`, `email`,
    /// `web`, `chat`, `social` or `sms`.
    channel: String,
    /// The case it belongs to.
    case_id: Option<Uuid>,
    /// Who should do it.
    #[schema(max_length = 200)]
    assignee: Option<String>,
}

/// `PATCH /v1/tasks/{id}`: `status` alone, or `due_at` with an optional
/// `assignee`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskUpdate {
    /// `done`: complete the task.
    #[schema(example = "done")]
    status: Option<String>,
    /// Reschedule to this time.
    due_at: Option<DateTime<Utc>>,
    /// With `due_at`: hand it to someone else.
    #[schema(max_length = 200)]
    assignee: Option<String>,
}

/// An agent action the broker has.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ActionAccepted {
    /// The event published.
    event_id: Uuid,
    /// The customer (the survivor); absent when a task changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_id: Option<Uuid>,
    /// The customer id in the path, when there is one: the customer's own,
    /// or one that leads to it (a profile merged into it).
    #[serde(skip_serializing_if = "Option::is_none")]
    requested_id: Option<Uuid>,
    /// The case opened or changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    case_id: Option<Uuid>,
    /// The task created or changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    task_id: Option<Uuid>,
    /// For a new task: whether the customer allows a service contact
    /// through its channel, as the task's `consent` in `GET /v1/tasks`.
    #[serde(skip_serializing_if = "Option::is_none")]
    consent: Option<ConsentStatus>,
}

/// A page of a customer's cases.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct CasePage {
    /// The customer (the survivor).
    customer_id: Uuid,
    /// The customer id in the path: the customer's own, or one that leads
    /// to it (a profile merged into it).
    requested_id: Uuid,
    /// Newest first.
    cases: Vec<CaseView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// A page of tasks.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TaskPage {
    /// Soonest due first.
    tasks: Vec<TaskView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// `POST /v1/customers/{id}/identifiers/confirm`: the identifier an agent
/// vouches for.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfirmIdentifierRequest {
    /// `phone`, `email`, `account`, `whatsapp`, ...
    kind: panorama_core::IdentifierKind,
    /// The value, normalised like any identifier (a national phone number
    /// is read in `PANORAMA_DEFAULT_REGION`).
    #[schema(min_length = 1, max_length = 512, example = "+31612345678")]
    value: String,
}

/// The `Idempotency-Key` header every agent action accepts.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub(crate) struct IdempotencyKeyHeader {
    /// Makes the action safe to retry: 1 to 255 visible ASCII characters
    /// (400 otherwise). The action's ids (its event, a new case or task)
    /// derive from the caller's token, the route, what the path (or, for
    /// `POST /v1/notes`, the identifier) names and the key, so a retry with
    /// the same key answers the same ids and adds nothing; the same key with
    /// a different body is refused with 409 `/problems/idempotency-conflict`
    /// once the first is projected (before that, the first wins).
    #[param(rename = "Idempotency-Key", value_type = String, required = false, min_length = 1, max_length = 255)]
    idempotency_key: Option<String>,
}
