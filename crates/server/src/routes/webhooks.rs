//! Outbound webhooks (README "Outbound webhooks"): admins register the URLs
//! the change feed is delivered to, read their deliveries and attempts, and
//! enable a subscription again after it was disabled for failing. The
//! projector role delivers (`panorama_webhooks`).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use panorama_core::webhook::{ChangeTypePattern, WebhookUrl};
use panorama_store::{DeliveryQuery, NewWebhook, WebhookDelivery, WebhookSubscription};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::IntoParams;
use uuid::Uuid;

use super::body::{JsonBody, invalid_field};
use super::params::{self, invalid, next_page};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::{AppState, problem, store};

/// Longest description.
const MAX_DESCRIPTION: usize = 500;
/// Most type patterns per subscription.
const MAX_TYPES: usize = 50;

/// `POST /v1/webhooks`: what to deliver where.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookRequest {
    /// Where deliveries are posted: `http` or `https`, without credentials.
    #[schema(example = "https://hooks.example.com/panorama")]
    url: String,
    /// Change types (`customer.merged`), families (`case.*`) or `*`.
    #[schema(example = json!(["customer.merged", "case.*"]))]
    types: Vec<String>,
    /// What it is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

/// A new subscription, with its signing secret: shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct WebhookCreated {
    #[serde(flatten)]
    subscription: WebhookSubscription,
    /// The signing secret, `whsec_` and base64: receivers verify
    /// `webhook-signature` with it. Not shown again.
    secret: String,
}

/// Every subscription.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct WebhookList {
    /// Oldest first.
    webhooks: Vec<WebhookSubscription>,
}

/// A page of a subscription's deliveries.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct DeliveryPage {
    /// Newest first.
    deliveries: Vec<WebhookDelivery>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// The query parameters of `GET /v1/webhooks/{id}/deliveries`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeliveryParams {
    /// `pending`, `delivered` or `failed`; every delivery when absent
    #[serde(default, deserialize_with = "delivery_status")]
    status: Option<String>,
    /// Page size, default 50
    #[serde(default, deserialize_with = "params::page_size")]
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The previous page's `next_cursor`
    #[serde(default, deserialize_with = "delivery_cursor")]
    #[param(value_type = Option<String>)]
    cursor: Option<i64>,
}

fn delivery_status<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    params::one_of(deserializer, &["pending", "delivered", "failed"])
}

fn delivery_cursor<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    params::parsed_with(deserializer, |text| {
        text.parse::<i64>()
            .ok()
            .filter(|seq| *seq > 0)
            .ok_or("not a cursor this API handed out")
    })
}

fn webhook_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| invalid("id", "webhook ids are UUIDs"))
}

fn no_webhook(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no webhook {id}"))
}

/// `POST /v1/webhooks` — registers a URL for the change types it wants.
#[utoipa::path(
    post,
    path = "/v1/webhooks",
    tag = "webhooks",
    summary = "Register a webhook",
    description = "Deliveries of the change feed's changes of the given `types` are posted \
        to `url` as JSON (`{\"type\", \"timestamp\", \"data\"}`), signed the Standard Webhooks \
        way: headers `webhook-id` (the change id, the same on every retry: dedupe on it), \
        `webhook-timestamp` (seconds) and `webhook-signature` (`v1,` and the base64 \
        HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` keyed with the secret's \
        bytes). A customer's deliveries arrive in order; a failed one (not 2xx within the \
        timeout) is retried with exponential backoff for a day, and a subscription that \
        keeps failing is disabled until enabled again. The answer holds the `secret`, shown \
        this once. 422 names `url` (not http or https, credentials in it, or a private \
        address where those are not allowed) or `types[n]` (not a change type, family or \
        `*`).",
    request_body(content = WebhookRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered", body = WebhookCreated,
            headers(("Location" = String, description = "The subscription"))),
        (status = 400, response = problem::BadRequest),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 413, response = problem::PayloadTooLarge),
        (status = 415, response = problem::UnsupportedMediaType),
        (status = 422, response = problem::ValidationFailed),
        (status = 429, response = problem::TooManyRequests),
        (status = 503, response = problem::Unavailable),
    ),
)]
pub(crate) async fn create_webhook(
    caller: Caller,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut body = JsonBody::read(&request, payload).await?;
    let url = body.text("url", panorama_core::webhook::MAX_WEBHOOK_URL)?;
    let types = body.text_list("types", MAX_TYPES, 64)?;
    let description = body.optional_text("description", MAX_DESCRIPTION)?;
    body.finish()?;
    let url = WebhookUrl::parse(&url, state.settings.webhook_private_addresses)
        .map_err(|error| invalid_field("url", error))?;
    let mut patterns: Vec<String> = Vec::with_capacity(types.len());
    for (index, text) in types.iter().enumerate() {
        let pattern = ChangeTypePattern::parse(text)
            .map_err(|error| invalid_field(&format!("types[{index}]"), error))?;
        if !patterns.iter().any(|known| known == pattern.as_str()) {
            patterns.push(pattern.as_str().to_owned());
        }
    }
    let new = NewWebhook {
        url: url.as_str().to_owned(),
        types: patterns,
        description,
        created_by: caller.principal().name.clone(),
    };
    let (subscription, secret) = store(&state)?.create_webhook(&new).await?;
    tracing::info!(webhook = %subscription.id, types = ?subscription.types, "webhook registered");
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/v1/webhooks/{}", subscription.id),
        ))
        .json(WebhookCreated {
            subscription,
            secret: secret.encoded(),
        }))
}

/// `GET /v1/webhooks` — every subscription.
#[utoipa::path(
    get,
    path = "/v1/webhooks",
    tag = "webhooks",
    summary = "Webhooks",
    description = "Every subscription, oldest first, with its state: `enabled`, the current \
        run of failures and the deliveries waiting. Secrets are never shown.",
    responses(
        (status = 200, description = "The subscriptions", body = WebhookList),
        problem::List,
    ),
)]
pub(crate) async fn list_webhooks(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let webhooks = store(&state)?.webhooks().await?;
    Ok(HttpResponse::Ok().json(WebhookList { webhooks }))
}

/// `GET /v1/webhooks/{id}` — one subscription.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    summary = "A webhook",
    description = "The subscription with its state; `disabled_reason` says why it was \
        disabled.",
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The subscription", body = WebhookSubscription),
        problem::Read,
    ),
)]
pub(crate) async fn get_webhook(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = webhook_id(&path)?;
    match store(&state)?.webhook(id).await? {
        Some(subscription) => Ok(HttpResponse::Ok().json(subscription)),
        None => Err(no_webhook(id)),
    }
}

/// `DELETE /v1/webhooks/{id}` — removes a subscription.
#[utoipa::path(
    delete,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    summary = "Remove a webhook",
    description = "Removes the subscription with its deliveries and their attempts: nothing \
        more is sent to it (an attempt in flight may still arrive).",
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Removed"),
        problem::Read,
    ),
)]
pub(crate) async fn delete_webhook(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = webhook_id(&path)?;
    if !store(&state)?.delete_webhook(id).await? {
        return Err(no_webhook(id));
    }
    tracing::info!(webhook = %id, "webhook removed");
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /v1/webhooks/{id}/enable` — resumes a disabled subscription.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/enable",
    tag = "webhooks",
    summary = "Enable a webhook again",
    description = "A subscription whose deliveries kept failing is disabled; its deliveries \
        wait (new ones are still queued). This enables it: its run of failures starts over \
        and the waiting deliveries are sent at once, each customer's in order. Enabling an \
        enabled subscription changes nothing. The body is ignored.",
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "Enabled", body = WebhookSubscription),
        problem::Read,
    ),
)]
pub(crate) async fn enable_webhook(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = webhook_id(&path)?;
    match store(&state)?.enable_webhook(id).await? {
        Some(subscription) => {
            tracing::info!(webhook = %id, "webhook enabled");
            Ok(HttpResponse::Ok().json(subscription))
        }
        None => Err(no_webhook(id)),
    }
}

/// `GET /v1/webhooks/{id}/deliveries?status=&limit=&cursor=` — newest
/// first.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}/deliveries",
    tag = "webhooks",
    summary = "A webhook's deliveries",
    description = "The subscription's deliveries, newest first, in keyset pages: each with its \
        change, `status` (`pending`, `delivered`, `failed`), attempts made, the next attempt's \
        time and the last attempt's status code or error. Delivered and failed deliveries are \
        kept for the retention the projector role is configured with.",
    params(("id" = Uuid, Path, description = "Webhook id"), DeliveryParams),
    responses(
        (status = 200, description = "A page", body = DeliveryPage),
        problem::Read,
    ),
)]
pub(crate) async fn list_deliveries(
    request: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = webhook_id(&path)?;
    let given = params::query::<DeliveryParams>(request.query_string())?;
    let store = store(&state)?;
    if store.webhook(id).await?.is_none() {
        return Err(no_webhook(id));
    }
    let page = params::page(given.limit);
    let query = DeliveryQuery {
        status: given.status,
        before: given.cursor,
        limit: u32::try_from(page + 1).unwrap_or(u32::MAX),
    };
    let mut deliveries = store.webhook_deliveries(id, &query).await?;
    let next_cursor = next_page(&mut deliveries, page, |last| last.seq.to_string());
    Ok(HttpResponse::Ok().json(DeliveryPage {
        deliveries,
        next_cursor,
    }))
}

/// `GET /v1/webhooks/{id}/deliveries/{delivery_id}` — one delivery with its
/// attempts.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}/deliveries/{delivery_id}",
    tag = "webhooks",
    summary = "A delivery and its attempts",
    description = "The delivery with `attempt_log`: every attempt's time, status code (when \
        the receiver answered), error and duration.",
    params(
        ("id" = Uuid, Path, description = "Webhook id"),
        ("delivery_id" = Uuid, Path, description = "Delivery id"),
    ),
    responses(
        (status = 200, description = "The delivery", body = WebhookDelivery),
        problem::Read,
    ),
)]
pub(crate) async fn get_delivery(
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (raw_id, raw_delivery) = path.into_inner();
    let id = webhook_id(&raw_id)?;
    let delivery_id = Uuid::parse_str(&raw_delivery)
        .map_err(|_| invalid("delivery_id", "delivery ids are UUIDs"))?;
    match store(&state)?.webhook_delivery(id, delivery_id).await? {
        Some(delivery) => Ok(HttpResponse::Ok().json(delivery)),
        None => Err(ApiError::NotFound(format!(
            "no delivery {delivery_id} of webhook {id}"
        ))),
    }
}
