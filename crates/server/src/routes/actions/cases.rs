//! Cases: list a customer's, open one, resolve and reopen.

use actix_web::{HttpRequest, HttpResponse, web};
use panorama_store::{CaseQuery, TimelineCursor};
use serde::{Deserialize, Deserializer};
use serde_json::json;
use utoipa::IntoParams;
use uuid::Uuid;

use super::action::{
    Action, IdempotencyKey, MAX_SHORT, MAX_TEXT, accepted, already_recorded, new_id, publish_action,
};
use super::doc;
use crate::auth::Caller;
use crate::error::{ApiError, Clash};
use crate::routes::body::JsonBody;
use crate::routes::params::{self, customer_in_path, invalid, next_page, position};
use crate::{AppState, problem, store};

/// The query parameters of `GET /v1/customers/{id}/cases`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct CaseParams {
    /// `open` or `resolved`; both when absent
    #[serde(default, deserialize_with = "case_status")]
    status: Option<String>,
    /// Page size, default 50
    #[serde(default, deserialize_with = "params::page_size")]
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The previous page's `next_cursor`
    #[serde(default, deserialize_with = "params::timeline_cursor")]
    #[param(value_type = Option<String>)]
    cursor: Option<TimelineCursor>,
}

/// `deserialize_with` of a case's status.
fn case_status<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    params::one_of(deserializer, &["open", "resolved"])
}

impl From<CaseParams> for CaseQuery {
    fn from(given: CaseParams) -> Self {
        CaseQuery {
            status: given.status,
            cursor: given.cursor,
            limit: params::page(given.limit),
        }
    }
}

/// `GET /v1/customers/{id}/cases?status=open|resolved&limit=&cursor=`
#[utoipa::path(
    get,
    path = "/v1/customers/{id}/cases",
    tag = "actions",
    summary = "A customer's cases",
    description = "Newest first by `opened_at`, in keyset pages.",
    params(
        ("id" = Uuid, Path, description = "Customer id (a merged one works too)"),
        CaseParams,
    ),
    responses(
        (status = 200, description = "A page", body = doc::CasePage,
            links(
                ("resolve_case" = (operation_id = "resolve_case",
                    parameters(("id" = "$response.body#/cases/0/id")),
                    description = "Resolve the first case of the page")),
                ("reopen_case" = (operation_id = "reopen_case",
                    parameters(("id" = "$response.body#/cases/0/id")),
                    description = "Reopen the first case of the page")),
            )),
        problem::Read,
    ),
)]
pub(crate) async fn list_cases(
    request: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let in_path = customer_in_path(&state, &path).await?;
    let mut wanted = CaseQuery::from(params::query::<CaseParams>(request.query_string())?);
    let page = wanted.limit;
    wanted.limit = page + 1;
    let mut cases = store(&state)?.cases(in_path.customer, &wanted).await?;
    let next_cursor = next_page(&mut cases, page, |last| position(last.opened_at, last.id));
    let mut body = in_path.answer(json!({ "cases": cases }));
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
    description = "A `case.opened` event; the new case id is in the answer.",
    params(
        doc::IdempotencyKeyHeader,
        ("id" = Uuid, Path, description = "Customer id (a merged one works too)"),
    ),
    request_body(content = doc::OpenCaseRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Published; the projection follows", body = doc::ActionAccepted,
            links(
                ("resolve_case" = (operation_id = "resolve_case",
                    parameters(("id" = "$response.body#/case_id")),
                    description = "Resolve the case (once projected; 404 until then)")),
                ("cases" = (operation_id = "list_cases",
                    parameters(("id" = "$response.body#/customer_id")),
                    description = "The customer's cases")),
            )),
        problem::PublishAbout,
    ),
)]
pub(crate) async fn open_case(
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let key = IdempotencyKey::read(&request, &caller, &path)?;
    let in_path = customer_in_path(&state, &path).await?;
    let mut body = JsonBody::read(&request, payload).await?;
    let reason = body.text("reason", MAX_SHORT)?;
    let note = body.optional_text("note", MAX_TEXT)?;
    body.finish()?;
    let case_id = new_id(key.as_ref(), "case");
    let event = publish_action(
        &state,
        &caller,
        in_path.customer,
        Action {
            key,
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
        in_path.answer(json!({ "case_id": case_id })),
    ))
}

/// `POST /v1/cases/{id}/resolve {"outcome": "...", "note": "..."?}`
#[utoipa::path(
    post,
    path = "/v1/cases/{id}/resolve",
    tag = "actions",
    summary = "Resolve a case",
    description = "A `case.resolved` event. 409 `/problems/case-state` when the case is resolved already.",
    params(
        doc::IdempotencyKeyHeader,
        ("id" = Uuid, Path, description = "Case id"),
    ),
    request_body(content = doc::ResolveCaseRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Published; the projection follows", body = doc::ActionAccepted,
            links(
                ("reopen_case" = (operation_id = "reopen_case",
                    parameters(("id" = "$response.body#/case_id")),
                    description = "Reopen the case (once projected)")),
            )),
        problem::Change,
    ),
)]
pub(crate) async fn resolve_case(
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let key = IdempotencyKey::read(&request, &caller, &path)?;
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
            key,
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
    description = "A `case.reopened` event. 409 `/problems/case-state` when the case is open already.",
    params(
        doc::IdempotencyKeyHeader,
        ("id" = Uuid, Path, description = "Case id"),
    ),
    request_body(content = doc::ReopenCaseRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Published; the projection follows", body = doc::ActionAccepted),
        problem::Change,
    ),
)]
pub(crate) async fn reopen_case(
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let key = IdempotencyKey::read(&request, &caller, &path)?;
    let mut body = JsonBody::read(&request, payload).await?;
    let note = body.optional_text("note", MAX_TEXT)?;
    body.finish()?;
    change_case(
        &state,
        &caller,
        &path,
        "open",
        Action {
            key,
            event_type: "case.reopened",
            summary: note,
            ..Action::default()
        },
    )
    .await
}

/// Publishes a status change of the case in the path, unless it has that
/// status already (and this is not a retry, by its `Idempotency-Key`, of
/// the change that gave it that status).
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
    if case.status == to && !already_recorded(state, action.key.as_ref()).await? {
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
