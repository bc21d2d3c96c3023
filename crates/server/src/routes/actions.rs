//! Agent actions: cases opened, resolved and reopened, notes, follow-up
//! tasks and feedback taken down by an agent. Each is published as an event
//! to the contact-event topic and projected like any contact, so the
//! history is complete and a replay of the topic rebuilds it. The answer is
//! 202 once the broker has the event; the projection follows within
//! moments (watch the live stream, or read again).

pub(crate) mod doc;

use std::collections::{BTreeMap, HashMap};

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use panorama_core::{
    ContactEvent, EventDraft, FeedbackDraft, IdentifierDraft, Role, ValidationContext,
};
use panorama_store::{
    CaseQuery, TASK_ASSIGNEE, TASK_CHANNEL, TASK_DUE_AT, TASK_ID, TaskQuery, TimelineCursor,
};
use serde_json::json;
use uuid::Uuid;

use super::body::JsonBody;
use super::customers::{
    DEFAULT_PAGE, MAX_PAGE, cursor, invalid, next_page, page_limit, parse_customer_id, parse_time,
    store,
};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, Clash};
use crate::ingest::publish_with;
use crate::openapi::problem;

/// Longest note, reason or outcome text.
const MAX_TEXT: usize = 4_000;
const MAX_SHORT: usize = 200;

/// What an agent did, before it becomes an event.
#[derive(Debug, Default)]
struct Action {
    event_type: &'static str,
    case_id: Option<Uuid>,
    reason: Option<String>,
    summary: Option<String>,
    subject: Option<String>,
    outcome: Option<String>,
    feedback: Option<FeedbackDraft>,
    attributes: BTreeMap<String, String>,
}

/// Publishes `action` about surviving customer `customer`, filed under the
/// customer's handle identifier so the projector attaches it there.
async fn publish_action(
    state: &AppState,
    caller: &Caller,
    customer: Uuid,
    action: Action,
) -> Result<ContactEvent, ApiError> {
    let store = store(state)?;
    let Some(handle) = store.customer_handle(customer).await? else {
        return Err(ApiError::NotFound(format!("no customer {customer}")));
    };
    let draft = EventDraft {
        channel: Some("agent".to_owned()),
        source: Some("agent".to_owned()),
        event_type: Some(action.event_type.to_owned()),
        identifiers: vec![IdentifierDraft::new(handle.kind(), handle.value())],
        agent_id: Some(caller.principal().name.clone()),
        case_id: action.case_id.map(|id| id.to_string()),
        contact_reason: action.reason,
        summary: action.summary,
        subject: action.subject,
        outcome: action.outcome,
        feedback: action.feedback,
        attributes: action.attributes,
        ..EventDraft::default()
    };
    let event = draft.validate(&ValidationContext::now(state.settings.default_region))?;
    publish_with(state, state.actions.as_ref(), std::slice::from_ref(&event)).await?;
    Ok(event)
}

/// The survivor of the customer in the path, or 404.
async fn customer_in_path(state: &AppState, raw: &str) -> Result<Uuid, ApiError> {
    let id = parse_customer_id(raw)?;
    store(state)?
        .survivor_of(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no customer {id}")))
}

fn accepted(event: &ContactEvent, extra: serde_json::Value) -> HttpResponse {
    let mut body = json!({ "event_id": event.event_id });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    HttpResponse::Accepted().json(body)
}

/// `POST /v1/customers/{id}/notes {"text": "...", "case_id": "..."?}`
#[utoipa::path(
    post,
    path = "/v1/customers/{id}/notes",
    tag = "actions",
    summary = "Add a note",
    description = "A `note.added` event on the customer's timeline, optionally about a case.\n\n\
        Needs the `agent` role (or `admin`).",
    security(("bearer" = ["agent"])),
    params(
        ("id" = Uuid, Path, description = "Customer id (a merged one works too)"),
    ),
    request_body(content = doc::NoteRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Published; the projection follows", body = doc::ActionAccepted),
        (status = 400, response = problem::BadRequest),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 404, response = problem::NotFound),
        (status = 413, response = problem::PayloadTooLarge),
        (status = 415, response = problem::UnsupportedMediaType),
        (status = 422, response = problem::ValidationFailed),
        (status = 503, response = problem::Unavailable),
    ),
)]
pub(crate) async fn add_note(
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Agent)?;
    let customer = customer_in_path(&state, &path).await?;
    let mut body = JsonBody::read(&request, payload).await?;
    let text = body.text("text", MAX_TEXT)?;
    let case_id = body.optional_uuid("case_id")?;
    body.finish()?;
    let event = publish_action(
        &state,
        &caller,
        customer,
        Action {
            event_type: "note.added",
            case_id,
            summary: Some(text),
            ..Action::default()
        },
    )
    .await?;
    Ok(accepted(&event, json!({ "customer_id": customer })))
}

/// `POST /v1/customers/{id}/feedback {"metric": "nps", "score": 9, "comment": "..."?, "case_id": "..."?}`
/// — an answer an agent took down (on the phone, say).
#[utoipa::path(
    post,
    path = "/v1/customers/{id}/feedback",
    tag = "actions",
    summary = "Take down a survey answer",
    description = "A `feedback.submitted` event: an answer an agent took down (on the phone, say).\n\n\
        Needs the `agent` role (or `admin`).",
    security(("bearer" = ["agent"])),
    params(
        ("id" = Uuid, Path, description = "Customer id (a merged one works too)"),
    ),
    request_body(content = doc::FeedbackRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Published; the projection follows", body = doc::ActionAccepted),
        (status = 400, response = problem::BadRequest),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 404, response = problem::NotFound),
        (status = 413, response = problem::PayloadTooLarge),
        (status = 415, response = problem::UnsupportedMediaType),
        (status = 422, response = problem::ValidationFailed),
        (status = 503, response = problem::Unavailable),
    ),
)]
pub(crate) async fn add_feedback(
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Agent)?;
    let customer = customer_in_path(&state, &path).await?;
    let mut body = JsonBody::read(&request, payload).await?;
    let metric = body.text("metric", 10)?;
    let score =
        i32::try_from(body.integer("score")?).map_err(|_| invalid_body("score", "out of range"))?;
    let comment = body.optional_text("comment", MAX_TEXT)?;
    let case_id = body.optional_uuid("case_id")?;
    body.finish()?;
    let event = publish_action(
        &state,
        &caller,
        customer,
        Action {
            event_type: "feedback.submitted",
            case_id,
            feedback: Some(FeedbackDraft {
                metric,
                score,
                comment,
            }),
            ..Action::default()
        },
    )
    .await?;
    Ok(accepted(&event, json!({ "customer_id": customer })))
}

/// The opaque cursor of a (time, id) position.
fn position(at: DateTime<Utc>, id: Uuid) -> String {
    TimelineCursor {
        occurred_at: at,
        event_id: id,
    }
    .encode()
}

fn invalid_body(field: &str, message: &str) -> ApiError {
    ApiError::Validation(panorama_core::FieldError {
        field: field.to_owned(),
        message: message.to_owned(),
    })
}

/// `GET /v1/customers/{id}/cases?status=open|resolved&limit=&cursor=`
#[utoipa::path(
    get,
    path = "/v1/customers/{id}/cases",
    tag = "actions",
    summary = "A customer's cases",
    description = "Newest first by `opened_at`, in keyset pages.\n\n\
        Needs the `agent` role (or `admin`).",
    security(("bearer" = ["agent"])),
    params(
        ("id" = Uuid, Path, description = "Customer id (a merged one works too)"),
        ("status" = Option<String>, Query, description = "`open` or `resolved`; both when absent"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, default 50"),
        ("cursor" = Option<String>, Query, description = "The previous page's `next_cursor`"),
    ),
    responses(
        (status = 200, description = "A page", body = doc::CasePage),
        (status = 400, response = problem::BadRequest),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 404, response = problem::NotFound),
        (status = 503, response = problem::Unavailable),
    ),
)]
pub(crate) async fn list_cases(
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Agent)?;
    let customer = customer_in_path(&state, &path).await?;
    let mut wanted = CaseQuery {
        limit: DEFAULT_PAGE,
        ..CaseQuery::default()
    };
    for (name, value) in query.iter() {
        match name.as_str() {
            "status" => match value.as_str() {
                "open" | "resolved" => wanted.status = Some(value.clone()),
                _ => return Err(invalid(name, "one of open, resolved")),
            },
            "limit" => wanted.limit = page_limit(name, value, MAX_PAGE)?,
            "cursor" => wanted.cursor = Some(cursor(name, TimelineCursor::decode(value))?),
            _ => {
                return Err(invalid(
                    name,
                    "unknown parameter; expected status, limit or cursor",
                ));
            }
        }
    }
    let page = wanted.limit;
    wanted.limit = page + 1;
    let mut cases = store(&state)?.cases(customer, &wanted).await?;
    let next_cursor = next_page(&mut cases, page, |last| position(last.opened_at, last.id));
    let mut body = json!({ "customer_id": customer, "cases": cases });
    if let Some(next) = next_cursor {
        body["next_cursor"] = json!(next);
    }
    Ok(HttpResponse::Ok().json(body))
}

/// `POST /v1/customers/{id}/cases {"reason": "...", "note": "..."?}` — an
/// agent opens a case; its id is in the answer.
#[utoipa::path(
    post,
    path = "/v1/customers/{id}/cases",
    tag = "actions",
    summary = "Open a case",
    description = "A `case.opened` event; the new case id is in the answer.\n\n\
        Needs the `agent` role (or `admin`).",
    security(("bearer" = ["agent"])),
    params(
        ("id" = Uuid, Path, description = "Customer id (a merged one works too)"),
    ),
    request_body(content = doc::OpenCaseRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Published; the projection follows", body = doc::ActionAccepted),
        (status = 400, response = problem::BadRequest),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 404, response = problem::NotFound),
        (status = 413, response = problem::PayloadTooLarge),
        (status = 415, response = problem::UnsupportedMediaType),
        (status = 422, response = problem::ValidationFailed),
        (status = 503, response = problem::Unavailable),
    ),
)]
pub(crate) async fn open_case(
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Agent)?;
    let customer = customer_in_path(&state, &path).await?;
    let mut body = JsonBody::read(&request, payload).await?;
    let reason = body.text("reason", MAX_SHORT)?;
    let note = body.optional_text("note", MAX_TEXT)?;
    body.finish()?;
    let case_id = Uuid::now_v7();
    let event = publish_action(
        &state,
        &caller,
        customer,
        Action {
            event_type: "case.opened",
            case_id: Some(case_id),
            reason: Some(reason),
            summary: note,
            ..Action::default()
        },
    )
    .await?;
    Ok(accepted(
        &event,
        json!({ "case_id": case_id, "customer_id": customer }),
    ))
}

/// `POST /v1/cases/{id}/resolve {"outcome": "...", "note": "..."?}`
#[utoipa::path(
    post,
    path = "/v1/cases/{id}/resolve",
    tag = "actions",
    summary = "Resolve a case",
    description = "A `case.resolved` event. 409 `/problems/case-state` when the case is resolved already.\n\n\
        Needs the `agent` role (or `admin`).",
    security(("bearer" = ["agent"])),
    params(
        ("id" = Uuid, Path, description = "Case id"),
    ),
    request_body(content = doc::ResolveCaseRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Published; the projection follows", body = doc::ActionAccepted),
        (status = 400, response = problem::BadRequest),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 404, response = problem::NotFound),
        (status = 409, response = problem::Conflict),
        (status = 413, response = problem::PayloadTooLarge),
        (status = 415, response = problem::UnsupportedMediaType),
        (status = 422, response = problem::ValidationFailed),
        (status = 503, response = problem::Unavailable),
    ),
)]
pub(crate) async fn resolve_case(
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Agent)?;
    let mut body = JsonBody::read(&request, payload).await?;
    let outcome = body.text("outcome", MAX_SHORT)?;
    let note = body.optional_text("note", MAX_TEXT)?;
    body.finish()?;
    change_case(
        &state,
        &caller,
        &path,
        "resolved",
        Action {
            event_type: "case.resolved",
            outcome: Some(outcome),
            summary: note,
            ..Action::default()
        },
    )
    .await
}

/// `POST /v1/cases/{id}/reopen {"note": "..."?}`
#[utoipa::path(
    post,
    path = "/v1/cases/{id}/reopen",
    tag = "actions",
    summary = "Reopen a case",
    description = "A `case.reopened` event. 409 `/problems/case-state` when the case is open already.\n\n\
        Needs the `agent` role (or `admin`).",
    security(("bearer" = ["agent"])),
    params(
        ("id" = Uuid, Path, description = "Case id"),
    ),
    request_body(content = doc::ReopenCaseRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Published; the projection follows", body = doc::ActionAccepted),
        (status = 400, response = problem::BadRequest),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 404, response = problem::NotFound),
        (status = 409, response = problem::Conflict),
        (status = 413, response = problem::PayloadTooLarge),
        (status = 415, response = problem::UnsupportedMediaType),
        (status = 422, response = problem::ValidationFailed),
        (status = 503, response = problem::Unavailable),
    ),
)]
pub(crate) async fn reopen_case(
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Agent)?;
    let mut body = JsonBody::read(&request, payload).await?;
    let note = body.optional_text("note", MAX_TEXT)?;
    body.finish()?;
    change_case(
        &state,
        &caller,
        &path,
        "open",
        Action {
            event_type: "case.reopened",
            summary: note,
            ..Action::default()
        },
    )
    .await
}

/// Publishes a status change of the case in the path, unless it has that
/// status already.
async fn change_case(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
    to: &str,
    mut action: Action,
) -> Result<HttpResponse, ApiError> {
    let id = Uuid::parse_str(raw_id).map_err(|_| invalid("id", "case ids are UUIDs"))?;
    let Some((case, customer)) = store(state)?.case(id).await? else {
        return Err(ApiError::NotFound(format!("no case {id}")));
    };
    if case.status == to {
        return Err(ApiError::Conflict {
            clash: Clash::CaseState,
            field: None,
            message: format!("case {} is {} already", case.id, case.status),
        });
    }
    action.case_id = Some(case.id);
    let event = publish_action(state, caller, customer, action).await?;
    Ok(accepted(
        &event,
        json!({ "case_id": case.id, "customer_id": customer }),
    ))
}

/// `POST /v1/customers/{id}/tasks {"title", "due_at", "channel", "case_id"?, "assignee"?}`
#[utoipa::path(
    post,
    path = "/v1/customers/{id}/tasks",
    tag = "actions",
    summary = "Create a follow-up task",
    description = "A `task.created` event; the new task id is in the answer.\n\n\
        Needs the `agent` role (or `admin`).",
    security(("bearer" = ["agent"])),
    params(
        ("id" = Uuid, Path, description = "Customer id (a merged one works too)"),
    ),
    request_body(content = doc::TaskRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Published; the projection follows", body = doc::ActionAccepted),
        (status = 400, response = problem::BadRequest),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 404, response = problem::NotFound),
        (status = 413, response = problem::PayloadTooLarge),
        (status = 415, response = problem::UnsupportedMediaType),
        (status = 422, response = problem::ValidationFailed),
        (status = 503, response = problem::Unavailable),
    ),
)]
pub(crate) async fn create_task(
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Agent)?;
    let customer = customer_in_path(&state, &path).await?;
    let mut body = JsonBody::read(&request, payload).await?;
    let title = body.text("title", MAX_SHORT)?;
    let due_at = body
        .optional_time("due_at")?
        .ok_or_else(|| invalid_body("due_at", "required"))?;
    let channel = body.text("channel", 20)?;
    if channel.parse::<panorama_core::Channel>().is_err() || channel == "agent" {
        return Err(invalid_body(
            "channel",
            "the channel to contact the customer through: phone, email, web, chat, social or sms",
        ));
    }
    let case_id = body.optional_uuid("case_id")?;
    let assignee = body.optional_text("assignee", MAX_SHORT)?;
    body.finish()?;
    let task_id = Uuid::now_v7();
    let mut attributes = BTreeMap::from([
        (TASK_ID.to_owned(), task_id.to_string()),
        (TASK_DUE_AT.to_owned(), due_at.to_rfc3339()),
        (TASK_CHANNEL.to_owned(), channel),
    ]);
    if let Some(assignee) = assignee {
        attributes.insert(TASK_ASSIGNEE.to_owned(), assignee);
    }
    let event = publish_action(
        &state,
        &caller,
        customer,
        Action {
            event_type: "task.created",
            case_id,
            subject: Some(title),
            attributes,
            ..Action::default()
        },
    )
    .await?;
    Ok(accepted(
        &event,
        json!({ "task_id": task_id, "customer_id": customer }),
    ))
}

/// `GET /v1/tasks?assignee=&due_before=&status=open|done&customer=&limit=&cursor=`
/// — soonest due first.
#[utoipa::path(
    get,
    path = "/v1/tasks",
    tag = "actions",
    summary = "Follow-up tasks",
    description = "Soonest due first, in keyset pages.\n\n\
        Needs the `agent` role (or `admin`).",
    security(("bearer" = ["agent"])),
    params(
        ("assignee" = Option<String>, Query, description = "Only this assignee"),
        ("due_before" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "Only due before this time (RFC 3339)"),
        ("status" = Option<String>, Query, description = "`open` or `done`; both when absent"),
        ("customer" = Option<Uuid>, Query, description = "Only this customer's (a merged id works too)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, default 50"),
        ("cursor" = Option<String>, Query, description = "The previous page's `next_cursor`"),
    ),
    responses(
        (status = 200, description = "A page", body = doc::TaskPage),
        (status = 400, response = problem::BadRequest),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 503, response = problem::Unavailable),
    ),
)]
pub(crate) async fn list_tasks(
    caller: Caller,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Agent)?;
    let mut wanted = TaskQuery {
        limit: DEFAULT_PAGE,
        ..TaskQuery::default()
    };
    for (name, value) in query.iter() {
        match name.as_str() {
            "assignee" => wanted.assignee = Some(value.clone()),
            "due_before" => wanted.due_before = Some(parse_time(name, value)?),
            "status" => match value.as_str() {
                "open" | "done" => wanted.status = Some(value.clone()),
                _ => return Err(invalid(name, "one of open, done")),
            },
            "customer" => {
                let id = parse_customer_id(value)
                    .map_err(|_| invalid(name, "customer ids are UUIDs"))?;
                wanted.customer = Some(store(&state)?.survivor_of(id).await?.unwrap_or(id));
            }
            "limit" => wanted.limit = page_limit(name, value, MAX_PAGE)?,
            "cursor" => wanted.cursor = Some(cursor(name, TimelineCursor::decode(value))?),
            _ => {
                return Err(invalid(
                    name,
                    "unknown parameter; expected assignee, due_before, status, customer, limit or cursor",
                ));
            }
        }
    }
    let page = wanted.limit;
    wanted.limit = page + 1;
    let mut tasks = store(&state)?.tasks(&wanted).await?;
    let next_cursor = next_page(&mut tasks, page, |last| position(last.due_at, last.id));
    let mut body = json!({ "tasks": tasks });
    if let Some(next) = next_cursor {
        body["next_cursor"] = json!(next);
    }
    Ok(HttpResponse::Ok().json(body))
}

/// `PATCH /v1/tasks/{id} {"status": "done"}` or `{"due_at": "...", "assignee": "..."?}`
#[utoipa::path(
    patch,
    path = "/v1/tasks/{id}",
    tag = "actions",
    summary = "Complete or reschedule a task",
    description = "`{\"status\": \"done\"}` completes it (`task.completed`); `{\"due_at\": ..., \"assignee\": ...}` reschedules it (`task.rescheduled`); not both.\n\n\
        Needs the `agent` role (or `admin`).",
    security(("bearer" = ["agent"])),
    params(
        ("id" = Uuid, Path, description = "Task id"),
    ),
    request_body(content = doc::TaskUpdate, content_type = "application/json"),
    responses(
        (status = 202, description = "Published; the projection follows", body = doc::ActionAccepted),
        (status = 400, response = problem::BadRequest),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 404, response = problem::NotFound),
        (status = 413, response = problem::PayloadTooLarge),
        (status = 415, response = problem::UnsupportedMediaType),
        (status = 422, response = problem::ValidationFailed),
        (status = 503, response = problem::Unavailable),
    ),
)]
pub(crate) async fn update_task(
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Agent)?;
    let id = Uuid::parse_str(&path).map_err(|_| invalid("id", "task ids are UUIDs"))?;
    let mut body = JsonBody::read(&request, payload).await?;
    let status = body.optional_text("status", 10)?;
    let due_at: Option<DateTime<Utc>> = body.optional_time("due_at")?;
    let assignee = body.optional_text("assignee", MAX_SHORT)?;
    body.finish()?;
    let Some(task) = store(&state)?.task(id).await? else {
        return Err(ApiError::NotFound(format!("no task {id}")));
    };
    let mut attributes = BTreeMap::from([(TASK_ID.to_owned(), task.id.to_string())]);
    let event_type = match (status.as_deref(), due_at) {
        (Some("done"), None) if assignee.is_none() => "task.completed",
        (None, Some(due_at)) => {
            attributes.insert(TASK_DUE_AT.to_owned(), due_at.to_rfc3339());
            if let Some(assignee) = assignee {
                attributes.insert(TASK_ASSIGNEE.to_owned(), assignee);
            }
            "task.rescheduled"
        }
        (Some("done"), _) => {
            return Err(invalid_body(
                "status",
                "complete a task or reschedule it, not both",
            ));
        }
        (Some(_), _) => return Err(invalid_body("status", "only done")),
        (None, None) => {
            return Err(invalid_body(
                "status",
                "give status done, or a new due_at (and assignee)",
            ));
        }
    };
    let event = publish_action(
        &state,
        &caller,
        task.customer_id,
        Action {
            event_type,
            case_id: task.case_id,
            attributes,
            ..Action::default()
        },
    )
    .await?;
    Ok(accepted(&event, json!({ "task_id": task.id })))
}
