//! Identity administration: manual merge and unmerge, a customer's
//! identity (identifiers, profiles, history), and the conflicts the
//! resolver raised for review.

pub(crate) mod doc;

use actix_web::{HttpRequest, HttpResponse, web};
use panorama_core::identity::ConflictReason;
use panorama_store::{
    ConflictAction, ConflictCursor, ConflictOutcome, ConflictQuery, MergeOutcome, MergeRecord,
    UnmergeOutcome,
};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use utoipa::IntoParams;
use uuid::Uuid;

use super::body::{JsonBody, invalid_field};
use super::params::{self, invalid, next_page, parse_customer_id};
use crate::auth::Caller;
use crate::error::{ApiError, Clash};
use crate::{AppState, problem, store};

/// Longest reason or note an agent may give.
const MAX_NOTE: usize = 2_000;

/// Who did it, for the identity history: the token's name.
fn actor_of(caller: &Caller) -> String {
    caller.principal().name.clone()
}

fn refused(reason: ConflictReason, field: &'static str) -> ApiError {
    ApiError::Conflict {
        clash: Clash::MergeRefused,
        field: Some(field),
        message: format!("refused: {reason}"),
    }
}

/// What a merge or an unmerge did.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Merged<'a> {
    /// The customer in the path.
    requested_id: Uuid,
    #[serde(flatten)]
    record: &'a MergeRecord,
}

/// The answer to a merge or an unmerge, logged as an identity change.
fn changed(what: &str, requested_id: Uuid, record: &MergeRecord, actor: &str) -> HttpResponse {
    tracing::info!(survivor = %record.survivor, merged = %record.merged, %actor, what, "identity changed by hand");
    HttpResponse::Ok().json(Merged {
        requested_id,
        record,
    })
}

/// An unknown customer: 404 when it is the one in the path, a bad `field`
/// otherwise.
fn unknown(path_id: Uuid, missing: Uuid, field: &str) -> ApiError {
    if missing == path_id {
        ApiError::NotFound(format!("no customer {path_id}"))
    } else {
        invalid(field, format!("no customer {missing}"))
    }
}

/// `POST /v1/customers/{id}/merge {"other": "<id>", "reason": "..."}` —
/// merges two customers; the oldest survives.
#[utoipa::path(
    post,
    path = "/v1/customers/{id}/merge",
    tag = "identity",
    summary = "Merge two customers",
    description = "Merges the customer in the path and `other`; the older survives. 409 \
        `/problems/merge-refused` when the merged customer would own more identifiers of a \
        kind than allowed (`detail` names the kind), `/problems/already-merged` when both \
        ids lead to one customer already. An unknown `other` is a 400 naming `other`.",
    params(("id" = Uuid, Path, description = "Customer id")),
    request_body(content = doc::MergeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Merged", body = Merged),
        problem::Change,
    ),
)]
pub(crate) async fn merge(
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_customer_id(&path)?;
    let mut body = JsonBody::read(&request, payload).await?;
    let other = body.uuid("other")?;
    let reason = body.optional_text("reason", MAX_NOTE)?;
    body.finish()?;
    let actor = actor_of(&caller);
    let outcome = store(&state)?
        .merge_customers(id, other, &actor, reason.as_deref())
        .await?;
    match outcome {
        MergeOutcome::Merged(record) => Ok(changed("merge", id, &record, &actor)),
        MergeOutcome::AlreadyOne { survivor } => Err(ApiError::Conflict {
            clash: Clash::AlreadyMerged,
            field: Some("other"),
            message: format!("{id} and {other} are already one customer, {survivor}"),
        }),
        MergeOutcome::Refused(reason) => Err(refused(reason, "other")),
        MergeOutcome::NotFound(missing) => Err(unknown(id, missing, "other")),
    }
}

/// `POST /v1/customers/{id}/unmerge {"merged": "<id>"}` — splits a customer
/// merged into this one off again, with what came through it.
#[utoipa::path(
    post,
    path = "/v1/customers/{id}/unmerge",
    tag = "identity",
    summary = "Undo a merge",
    description = "Splits `merged` off the customer in the path again, with its identifiers \
        and every event that came through them, later ones included; they are not merged \
        again automatically. 409 `/problems/not-merged` when `merged` is not part of this \
        customer.",
    params(("id" = Uuid, Path, description = "Customer id")),
    request_body(content = doc::UnmergeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Split off", body = Merged),
        problem::Change,
    ),
)]
pub(crate) async fn unmerge(
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_customer_id(&path)?;
    let mut body = JsonBody::read(&request, payload).await?;
    let merged = body.uuid("merged")?;
    body.finish()?;
    let actor = actor_of(&caller);
    match store(&state)?.unmerge(id, merged, &actor).await? {
        UnmergeOutcome::Unmerged(record) => Ok(changed("unmerge", id, &record, &actor)),
        UnmergeOutcome::NotMerged { survivor } => Err(ApiError::Conflict {
            clash: Clash::NotMerged,
            field: Some("merged"),
            message: format!("{merged} is not merged into customer {survivor}"),
        }),
        UnmergeOutcome::NotFound(missing) => Err(unknown(id, missing, "merged")),
    }
}

/// `GET /v1/customers/{id}/identity` — identifiers with the profile each
/// came through, the merged profiles, and the identity history.
#[utoipa::path(
    get,
    path = "/v1/customers/{id}/identity",
    tag = "identity",
    summary = "A customer's identity",
    description = "Identifiers with the profile each came through, the profiles merged into \
        the customer, and the history of merges, refusals and unmerges.",
    params(("id" = Uuid, Path, description = "Customer id (a merged one works too)")),
    responses(
        (status = 200, description = "The identity", body = doc::IdentityAnswer),
        problem::Read,
    ),
)]
pub(crate) async fn identity(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_customer_id(&path)?;
    let Some(identity) = store(&state)?.identity(id).await? else {
        return Err(ApiError::NotFound(format!("no customer {id}")));
    };
    let mut body = serde_json::to_value(&identity).map_err(|_| ApiError::Internal)?;
    body["requested_id"] = json!(id);
    Ok(HttpResponse::Ok().json(body))
}

/// A page of identity conflicts.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ConflictPage {
    /// Newest first.
    conflicts: Vec<panorama_store::ConflictView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// The query parameters of `GET /v1/identity/conflicts`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ConflictParams {
    /// `open` (default), `merged`, `dismissed` or `all`
    #[serde(default, deserialize_with = "conflict_status")]
    status: Option<String>,
    /// Only conflicts concerning this customer
    #[serde(default, deserialize_with = "params::customer_id")]
    customer: Option<Uuid>,
    /// Page size, default 50
    #[serde(default, deserialize_with = "params::page_size")]
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The previous page's `next_cursor`
    #[serde(default, deserialize_with = "params::conflict_cursor")]
    #[param(value_type = Option<String>)]
    cursor: Option<ConflictCursor>,
}

/// `deserialize_with` of a conflict's status, or `all`.
fn conflict_status<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    params::one_of(deserializer, &["open", "merged", "dismissed", "all"])
}

impl From<ConflictParams> for ConflictQuery {
    /// Open conflicts when no `status` is given; any with `all`.
    fn from(given: ConflictParams) -> Self {
        ConflictQuery {
            status: match given.status.as_deref() {
                None => Some("open".to_owned()),
                Some("all") => None,
                Some(_) => given.status,
            },
            customer: given.customer,
            cursor: given.cursor,
            limit: params::page(given.limit),
        }
    }
}

/// `GET /v1/identity/conflicts?status=open|merged|dismissed|all&customer=&limit=&cursor=`
/// — newest first; open ones by default.
#[utoipa::path(
    get,
    path = "/v1/identity/conflicts",
    tag = "identity",
    summary = "Refused merges waiting for review",
    description = "Conflicts the resolver raised instead of merging (limits, weak links, \
        do-not-merge), newest first, in keyset pages.",
    params(ConflictParams),
    responses(
        (status = 200, description = "A page", body = ConflictPage,
            links(
                ("resolve_conflict" = (operation_id = "resolve_conflict",
                    parameters(("id" = "$response.body#/conflicts/0/id")),
                    description = "Settle the first conflict of the page")),
            )),
        problem::List,
    ),
)]
pub(crate) async fn conflicts(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut wanted = ConflictQuery::from(params::query::<ConflictParams>(request.query_string())?);
    let page = wanted.limit;
    wanted.limit = page + 1;
    let mut conflicts = store(&state)?.conflicts(&wanted).await?;
    let next_cursor = next_page(&mut conflicts, page, |last| {
        ConflictCursor(last.id).encode()
    });
    Ok(HttpResponse::Ok().json(ConflictPage {
        conflicts,
        next_cursor,
    }))
}

/// `POST /v1/identity/conflicts/{id}/resolve {"action": "merge"|"dismiss", "note": "..."}`
#[utoipa::path(
    post,
    path = "/v1/identity/conflicts/{id}/resolve",
    tag = "identity",
    summary = "Settle a conflict",
    description = "`merge` merges its customers after all, `dismiss` keeps them apart. 409 \
        `/problems/merge-refused` when the rules still forbid the merge, \
        `/problems/nothing-to-merge` when its customers are one already (dismiss it), \
        `/problems/already-resolved` when it was settled before.",
    params(("id" = Uuid, Path, description = "Conflict id")),
    request_body(content = doc::ResolveConflictRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Settled", body = doc::ConflictResolution),
        problem::Change,
    ),
)]
pub(crate) async fn resolve_conflict(
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = Uuid::parse_str(&path).map_err(|_| invalid("id", "conflict ids are UUIDs"))?;
    let mut body = JsonBody::read(&request, payload).await?;
    let action = match body.optional_text("action", 20)?.as_deref() {
        Some("merge") => ConflictAction::Merge,
        Some("dismiss") => ConflictAction::Dismiss,
        Some(_) => {
            return Err(invalid_field("action", "one of merge, dismiss"));
        }
        None => {
            return Err(invalid_field("action", "required: merge or dismiss"));
        }
    };
    let note = body.optional_text("note", MAX_NOTE)?;
    body.finish()?;
    let actor = actor_of(&caller);
    let outcome = store(&state)?
        .resolve_conflict(id, action, &actor, note.as_deref())
        .await?;
    match outcome {
        ConflictOutcome::Merged(records) => Ok(HttpResponse::Ok().json(json!({
            "id": id,
            "status": "merged",
            "merges": records,
        }))),
        ConflictOutcome::Dismissed => Ok(HttpResponse::Ok().json(json!({
            "id": id,
            "status": "dismissed",
        }))),
        ConflictOutcome::Refused(reason) => Err(refused(reason, "action")),
        ConflictOutcome::NothingToMerge => Err(ApiError::Conflict {
            clash: Clash::NothingToMerge,
            field: Some("action"),
            message: "the conflict's customers are one customer already, or it concerns only one; dismiss it".into(),
        }),
        ConflictOutcome::AlreadyResolved { status } => Err(ApiError::Conflict {
            clash: Clash::AlreadyResolved,
            field: None,
            message: format!("the conflict was already settled: {status}"),
        }),
        ConflictOutcome::NotFound => Err(ApiError::NotFound(format!("no conflict {id}"))),
    }
}
