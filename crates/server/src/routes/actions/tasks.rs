//! Follow-up tasks: create, list, complete or reschedule.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use panorama_store::{
    TASK_ASSIGNEE, TASK_CHANNEL, TASK_DUE_AT, TASK_ID, TaskQuery, TimelineCursor,
};
use serde::{Deserialize, Deserializer};
use serde_json::json;
use utoipa::IntoParams;
use uuid::Uuid;

use super::action::{Action, IdempotencyKey, MAX_SHORT, accepted, new_id, publish_action};
use super::doc;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::body::{JsonBody, invalid_field};
use crate::routes::params::{self, customer_in_path, invalid, next_page, position};
use crate::{AppState, problem, store};

/// `POST /v1/customers/{id}/tasks {"title", "due_at", "channel", "case_id"?, "assignee"?}`
#[utoipa::path(
    post,
    path = "/v1/customers/{id}/tasks",
    tag = "actions",
    summary = "Create a follow-up task",
    description = "A `task.created` event; the new task id is in the answer, with `consent`: \
        whether the customer allows a service contact through the task's channel (`allowed`, \
        `refused` or `unknown`). A task on a refused channel is created, and flagged.",
    params(
        doc::IdempotencyKeyHeader,
        ("id" = Uuid, Path, description = "Customer id (a merged one works too)"),
    ),
    request_body(content = doc::TaskRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Published; the projection follows", body = doc::ActionAccepted,
            links(
                ("update_task" = (operation_id = "update_task",
                    parameters(("id" = "$response.body#/task_id")),
                    description = "Complete or reschedule the task (once projected; 404 until then)")),
            )),
        problem::PublishAbout,
    ),
)]
pub(crate) async fn create_task(
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let key = IdempotencyKey::read(&request, &caller, &path)?;
    let in_path = customer_in_path(&state, &path).await?;
    let mut body = JsonBody::read(&request, payload).await?;
    let title = body.text("title", MAX_SHORT)?;
    let due_at = body
        .optional_time("due_at")?
        .ok_or_else(|| invalid_field("due_at", "required"))?;
    let channel = body.text("channel", 20)?;
    if channel.parse::<panorama_core::Channel>().is_err() || channel == "agent" {
        return Err(invalid_field(
            "channel",
            "the channel to contact the customer through: phone, email, web, chat, social or sms",
        ));
    }
    let case_id = body.optional_uuid("case_id")?;
    let assignee = body.optional_text("assignee", MAX_SHORT)?;
    body.finish()?;
    // Read before publishing: a read that fails publishes nothing.
    let consent = store(&state)?
        .follow_up_consent(in_path.customer, &channel)
        .await?;
    let task_id = new_id(key.as_ref(), "task");
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
        in_path.customer,
        Action {
            key,
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
        in_path.answer(json!({ "task_id": task_id, "consent": consent })),
    ))
}

/// The query parameters of `GET /v1/tasks`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TaskParams {
    /// Only this assignee (1 to 200 characters, no control characters)
    #[serde(default, deserialize_with = "params::name")]
    #[param(min_length = 1, max_length = 200)]
    assignee: Option<String>,
    /// Only due before this time (RFC 3339)
    #[serde(default, deserialize_with = "params::time")]
    due_before: Option<DateTime<Utc>>,
    /// `open` or `done`; both when absent
    #[serde(default, deserialize_with = "task_status")]
    status: Option<String>,
    /// Only this customer's (a merged id works too)
    #[serde(default, deserialize_with = "params::customer_id")]
    customer: Option<Uuid>,
    /// Page size, default 50
    #[serde(default, deserialize_with = "params::page_size")]
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The previous page's `next_cursor`
    #[serde(default, deserialize_with = "params::timeline_cursor")]
    #[param(value_type = Option<String>)]
    cursor: Option<TimelineCursor>,
}

/// `deserialize_with` of a task's status.
fn task_status<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    params::one_of(deserializer, &["open", "done"])
}

impl From<TaskParams> for TaskQuery {
    /// The query as given: `customer` is the id asked for, not yet its
    /// survivor.
    fn from(given: TaskParams) -> Self {
        TaskQuery {
            assignee: given.assignee,
            due_before: given.due_before,
            status: given.status,
            customer: given.customer,
            cursor: given.cursor,
            limit: params::page(given.limit),
        }
    }
}

/// `GET /v1/tasks?assignee=&due_before=&status=open|done&customer=&limit=&cursor=`
/// — soonest due first.
#[utoipa::path(
    get,
    path = "/v1/tasks",
    tag = "actions",
    summary = "Follow-up tasks",
    description = "Soonest due first, in keyset pages.",
    params(TaskParams),
    responses(
        (status = 200, description = "A page", body = doc::TaskPage,
            links(
                ("update_task" = (operation_id = "update_task",
                    parameters(("id" = "$response.body#/tasks/0/id")),
                    description = "Complete or reschedule the first task of the page")),
            )),
        problem::List,
    ),
)]
pub(crate) async fn list_tasks(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut wanted = TaskQuery::from(params::query::<TaskParams>(request.query_string())?);
    if let Some(id) = wanted.customer {
        wanted.customer = Some(store(&state)?.survivor_of(id).await?.unwrap_or(id));
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
    description = "`{\"status\": \"done\"}` completes it (`task.completed`); `{\"due_at\": ..., \"assignee\": ...}` reschedules it (`task.rescheduled`); not both.",
    params(
        doc::IdempotencyKeyHeader,
        ("id" = Uuid, Path, description = "Task id"),
    ),
    request_body(content = doc::TaskUpdate, content_type = "application/json"),
    responses(
        (status = 202, description = "Published; the projection follows", body = doc::ActionAccepted),
        problem::PublishAbout,
    ),
)]
pub(crate) async fn update_task(
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = Uuid::parse_str(&path).map_err(|_| invalid("id", "task ids are UUIDs"))?;
    let key = IdempotencyKey::read(&request, &caller, &path)?;
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
            return Err(invalid_field(
                "status",
                "complete a task or reschedule it, not both",
            ));
        }
        (Some(_), _) => return Err(invalid_field("status", "only done")),
        (None, None) => {
            return Err(invalid_field(
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
            key,
            event_type,
            case_id: task.case_id,
            attributes,
            ..Action::default()
        },
    )
    .await?;
    Ok(accepted(&event, json!({ "task_id": task.id })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(query: &str) -> Option<String> {
        match params::query::<TaskParams>(query) {
            Err(ApiError::InvalidParameter { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn an_assignee_filter_is_a_name() {
        assert_eq!(field_of("assignee=desk-12"), None);
        assert_eq!(field_of("assignee="), Some("assignee".to_owned()));
        // PostgreSQL refuses NUL in text: a 400, not a 500.
        assert_eq!(field_of("assignee=desk%0012"), Some("assignee".to_owned()));
        assert_eq!(field_of("assignee=%C2%85"), Some("assignee".to_owned()));
        let long = "a".repeat(201);
        assert_eq!(
            field_of(&format!("assignee={long}")),
            Some("assignee".to_owned())
        );
    }
}
