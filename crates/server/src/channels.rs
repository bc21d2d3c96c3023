//! Provider webhooks: authenticate the way each provider signs, hand the
//! bytes to its adapter in `panorama-channels`, then validate and publish
//! the events like `POST /v1/events`. An adapter whose secret is not
//! configured answers 404. The CTI, raw MIME and web back-end routes take a
//! bearer token instead: an API token with the `channel` role (or admin), or
//! one of the configured channel tokens, so they are always on.

pub(crate) mod doc;
pub(crate) mod segment;

use std::sync::Mutex;

use actix_web::http::header::{self, AUTHORIZATION, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use panorama_channels::form::Form;
use panorama_channels::mailgun::ReplayGuard;
use panorama_channels::signature::secrets_equal;
use panorama_channels::{
    ChannelError, Context, Outcome, Warning, cti, mailgun, meta, mime, sendgrid, twilio,
    web as web_channel,
};
use panorama_core::{ContactEvent, IdentifierKind, Role, Trust, ValidationContext};
use serde::Serialize;

use crate::auth::{Caller, bearer_token};
use crate::error::ApiError;
use crate::payload::read_body;
use crate::publish::publish;
use crate::{AppState, metrics, problem};

/// Secrets and settings of the channel adapters. `None` disables one.
#[derive(Clone, Default)]
pub struct ChannelSettings {
    /// Public base URL providers call (Twilio signs the full URL).
    pub public_url: Option<String>,
    /// Twilio auth token.
    pub twilio_auth_token: Option<String>,
    /// Meta app secret (X-Hub-Signature-256).
    pub meta_app_secret: Option<String>,
    /// Meta webhook verify token.
    pub meta_verify_token: Option<String>,
    /// Mailgun webhook signing key.
    pub mailgun_signing_key: Option<String>,
    /// SendGrid basic-auth password or URL token.
    pub sendgrid_secret: Option<String>,
    /// Bearer tokens for CTI, raw MIME and web back ends, accepted besides
    /// API tokens with the `channel` role.
    pub channel_tokens: Vec<String>,
    /// Public write keys for browsers.
    pub web_write_keys: Vec<String>,
    /// Origins browsers may post from.
    pub web_allowed_origins: Vec<String>,
    /// Segment write keys whose identifiers are claimed (keys that may be
    /// public, such as a browser's or a mobile app's).
    pub segment_write_keys: Vec<String>,
    /// Segment write keys whose identifiers are verified: server-side SDKs
    /// of systems that authenticate their users.
    pub segment_verified_write_keys: Vec<String>,
    /// The Segment `track` event names that count as customer contacts.
    pub segment_contact_events: Vec<String>,
    /// The authserv-ids of the mail servers whose `Authentication-Results`
    /// header verifies a raw message's sender; none: no sender verified.
    pub mime_authserv_ids: Vec<String>,
}

impl std::fmt::Debug for ChannelSettings {
    // Secrets never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelSettings")
            .field("public_url", &self.public_url)
            .field("twilio", &self.twilio_auth_token.is_some())
            .field("meta", &self.meta_app_secret.is_some())
            .field("mailgun", &self.mailgun_signing_key.is_some())
            .field("sendgrid", &self.sendgrid_secret.is_some())
            .field("channel_tokens", &self.channel_tokens.len())
            .field("web_write_keys", &self.web_write_keys.len())
            .field("web_allowed_origins", &self.web_allowed_origins)
            .field("segment_write_keys", &self.segment_write_keys.len())
            .field(
                "segment_verified_write_keys",
                &self.segment_verified_write_keys.len(),
            )
            .field("segment_contact_events", &self.segment_contact_events)
            .field("mime_authserv_ids", &self.mime_authserv_ids)
            .finish()
    }
}

impl ChannelSettings {
    /// Which adapters are enabled, for the startup log.
    pub fn log_enabled(&self) {
        let adapters = [
            (
                "twilio",
                self.twilio_auth_token.is_some() && self.public_url.is_some(),
                "PANORAMA_TWILIO_AUTH_TOKEN and PANORAMA_PUBLIC_URL",
            ),
            ("cti", true, "a channel token"),
            (
                "sendgrid",
                self.sendgrid_secret.is_some(),
                "PANORAMA_SENDGRID_SECRET",
            ),
            (
                "mailgun",
                self.mailgun_signing_key.is_some(),
                "PANORAMA_MAILGUN_SIGNING_KEY",
            ),
            ("email.mime", true, "a channel token"),
            (
                "meta",
                self.meta_app_secret.is_some() && self.meta_verify_token.is_some(),
                "PANORAMA_META_APP_SECRET and PANORAMA_META_VERIFY_TOKEN",
            ),
            ("web", true, "a channel token or a write key"),
            ("segment", true, "a channel token or a Segment write key"),
        ];
        for (adapter, enabled, needs) in adapters {
            if enabled {
                tracing::info!(adapter, "channel adapter enabled");
            } else {
                tracing::info!(
                    adapter,
                    needs,
                    "channel adapter disabled: no secret configured"
                );
            }
        }
    }
}

/// State the stateful checks keep: Mailgun's replayed-token guard.
#[derive(Debug, Default)]
pub(crate) struct ChannelState {
    mailgun_replays: Mutex<ReplayGuard>,
}

impl ChannelState {
    /// The Mailgun guard, held for a check or a remember only (never while
    /// a body is parsed, never across an await).
    fn mailgun_replays(&self) -> std::sync::MutexGuard<'_, ReplayGuard> {
        self.mailgun_replays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A webhook's answer: the events published, or why nothing was; what did
/// not parse as an identifier; and, for provider batches, the items refused
/// on their own. Empty lists are left out.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ChannelAnswer)]
pub(crate) struct Answer {
    /// The ids of the events the broker acknowledged.
    #[serde(skip_serializing_if = "Option::is_none")]
    accepted: Option<Vec<uuid::Uuid>>,
    /// Why nothing was published: `no_identifier`, `twilio.unmapped_status`,
    /// `mailgun.not_a_message`, `whatsapp.unmapped`, `meta.empty`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    ignored: Option<&'static str>,
    /// Values given as customer identifiers that do not parse. Each is kept
    /// on its event as attribute `unparsed.<kind>` (when the event is
    /// published); the warning names where it was and why, never the value.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<AnswerWarning>,
    /// Items of a Meta notification that break the event contract: refused
    /// on their own while the others were published, so a retry would not
    /// help (Meta batches many messages in one notification).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    refused: Vec<RefusedItem>,
}

/// A value given as an identifier that does not parse.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct AnswerWarning {
    /// Where the value was: a JSON path in the request
    /// (`events[0].form.fields.phone`) or a provider field name (`From`).
    #[schema(example = "events[0].form.fields.phone")]
    field: String,
    /// The identifier kind it was read as.
    kind: IdentifierKind,
    /// Why it does not parse.
    #[schema(
        example = "a national phone number needs a country: use the +<country code> form or configure a default region"
    )]
    message: String,
}

/// An item of a provider batch that was refused.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct RefusedItem {
    /// The item's JSON path in the notification.
    #[schema(example = "entry[0].changes[0].value.messages[1]")]
    path: String,
    /// The event field at fault and what is wrong with it.
    #[schema(example = "occurred_at: lies more than a day in the future")]
    reason: String,
}

impl Answer {
    fn new(warnings: &[Warning]) -> Self {
        Answer {
            accepted: None,
            ignored: None,
            warnings: warnings
                .iter()
                .map(|warning| AnswerWarning {
                    field: warning.field.clone(),
                    kind: warning.kind,
                    message: warning.message.clone(),
                })
                .collect(),
            refused: Vec::new(),
        }
    }
}

impl From<ChannelError> for ApiError {
    fn from(error: ChannelError) -> Self {
        match error {
            ChannelError::Unauthorized(reason) => ApiError::Unauthorized(reason),
            ChannelError::Malformed { field, message } => {
                ApiError::MalformedPayload { field, message }
            }
        }
    }
}

fn context(state: &AppState) -> Context {
    Context {
        received_at: chrono::Utc::now(),
        default_region: state.settings.default_region,
    }
}

fn disabled(adapter: &str) -> ApiError {
    ApiError::NotFound(format!(
        "the {adapter} adapter is not enabled on this server"
    ))
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}

fn query_param(request: &HttpRequest, name: &str) -> Option<String> {
    form_urlencoded_pairs(request.query_string())
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    Form::parse(query.as_bytes())
        .map(|form| form.pairs().to_vec())
        .unwrap_or_default()
}

fn content_type(request: &HttpRequest) -> &str {
    header(request, "content-type").unwrap_or_default()
}

/// `Authorization: Bearer <token>`: one of the configured channel tokens,
/// or an API token with the `channel` role (or admin; another role is 403).
fn require_channel_token(request: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let configured = &state.settings.channels.channel_tokens;
    let given = bearer_token(request.headers().get(AUTHORIZATION));
    if given.is_some_and(|token| any_secret_matches(token, configured)) {
        return Ok(());
    }
    Caller::of(request)?.require(Role::Channel)
}

fn any_secret_matches(given: &str, secrets: &[String]) -> bool {
    // Every secret is compared, so timing does not tell which one matched.
    secrets.iter().fold(false, |matched, secret| {
        secrets_equal(given.as_bytes(), secret.as_bytes()) | matched
    })
}

/// How a webhook's events are validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Items {
    /// One event that breaks the contract refuses the request (422).
    Whole,
    /// Each event on its own: the valid ones are published, the others
    /// named in the answer's `refused` list. For providers that batch
    /// independent items and retry the whole batch on any error (Meta).
    Each,
}

/// Validates an adapter's drafts and publishes them; answers 200 either way
/// a provider should not retry. Identifier values that did not parse are
/// counted, logged (where, never what) and named in the answer.
async fn finish(
    state: &AppState,
    source: &'static str,
    outcome: Outcome,
    items: Items,
) -> Result<HttpResponse, ApiError> {
    let answer = settle(state, source, outcome, items).await?;
    Ok(HttpResponse::Ok().json(answer))
}

/// What [`finish`] does, up to the answer's body.
async fn settle(
    state: &AppState,
    source: &'static str,
    outcome: Outcome,
    items: Items,
) -> Result<Answer, ApiError> {
    report_warnings(source, outcome.warnings());
    let mut answer = Answer::new(outcome.warnings());
    let events = match outcome {
        Outcome::Ignored { reason, .. } => {
            metrics::IGNORED.with_label_values(&[source, reason]).inc();
            answer.ignored = Some(reason);
            return Ok(answer);
        }
        Outcome::Events { events, .. } => events,
    };
    let context = ValidationContext {
        received_at: chrono::Utc::now(),
        default_region: state.settings.default_region,
    };
    let mut valid: Vec<ContactEvent> = Vec::with_capacity(events.len());
    for (index, found) in events.into_iter().enumerate() {
        match (found.draft.validate(&context), items) {
            (Ok(event), _) => valid.push(event),
            (Err(error), Items::Whole) => {
                metrics::REJECTED.with_label_values(&["validation"]).inc();
                return Err(error.within(&format!("events[{index}]")).into());
            }
            (Err(error), Items::Each) => {
                metrics::REFUSED_ITEMS.with_label_values(&[source]).inc();
                // The field and why, never its value.
                tracing::warn!(
                    source,
                    path = %found.path,
                    field = %error.field,
                    "batch item refused: {}",
                    error.message
                );
                answer.refused.push(RefusedItem {
                    path: found.path,
                    reason: error.to_string(),
                });
            }
        }
    }
    if !valid.is_empty() {
        publish(state, source, &valid).await?;
    }
    answer.accepted = Some(valid.iter().map(|e| e.event_id).collect());
    Ok(answer)
}

/// Counts and logs identifier values that did not parse: by source and
/// kind, with where they were, never the values.
fn report_warnings(source: &'static str, warnings: &[Warning]) {
    for warning in warnings {
        metrics::UNPARSED
            .with_label_values(&[source, warning.kind.as_str()])
            .inc();
        tracing::info!(
            source,
            field = %warning.field,
            kind = %warning.kind,
            "identifier value does not parse, kept as an unparsed attribute: {}",
            warning.message
        );
    }
}

/// Counts refusals by adapter before passing the error on.
fn refused(source: &'static str) -> impl Fn(ApiError) -> ApiError {
    move |error| {
        let reason = match &error {
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::MalformedPayload { .. } => "malformed",
            _ => "other",
        };
        metrics::REJECTED.with_label_values(&[reason]).inc();
        tracing::info!(source, reason, "webhook refused");
        error
    }
}

/// `POST /v1/channels/twilio/voice`.
#[utoipa::path(
    post,
    path = "/v1/channels/twilio/voice",
    tag = "channels",
    summary = "Twilio Voice status callbacks",
    description = "Each call status callback becomes one event (`call.started`, `call.answered`, `call.ended`, `call.missed`) of channel `phone`, source `twilio`. No bearer token: the `X-Twilio-Signature` is checked against `PANORAMA_PUBLIC_URL` + the request's path and query, so it must match what is configured at Twilio. Off (404) unless `PANORAMA_TWILIO_AUTH_TOKEN` and `PANORAMA_PUBLIC_URL` are set.",
    security(("twilioSignature" = [])),
    request_body(content = doc::TwilioVoiceCallback, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Published (`accepted`), or nothing to publish (`ignored`, with a reason); either way the provider should not retry. `warnings` names identifier values that do not parse (kept on the event as `unparsed.<kind>` attributes)", body = Answer),
        problem::SignedWebhook,
    ),
)]
pub(crate) async fn twilio_voice(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let channels = &state.settings.channels;
    let (Some(token), Some(public_url)) = (&channels.twilio_auth_token, &channels.public_url)
    else {
        return Err(disabled("twilio"));
    };
    let body = read_body(payload, state.settings.max_body_bytes).await?;
    let check = || -> Result<Outcome, ApiError> {
        let form = Form::parse(&body)?;
        let path = request.uri().path_and_query().map_or("", |p| p.as_str());
        let url = format!("{}{path}", public_url.trim_end_matches('/'));
        twilio::verify(&url, &form, header(&request, "x-twilio-signature"), token)?;
        Ok(twilio::parse_voice_status(&form, &context(&state))?)
    };
    let outcome = check().map_err(refused(twilio::SOURCE))?;
    finish(&state, twilio::SOURCE, outcome, Items::Whole).await
}

/// An adapter behind a channel token: CTI, raw MIME.
type TokenAdapter<'a> = &'a dyn Fn(&[u8], &Context) -> Result<Outcome, ChannelError>;

async fn token_authenticated(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    source: &'static str,
    parse: TokenAdapter<'_>,
    max_body_bytes: usize,
) -> Result<HttpResponse, ApiError> {
    require_channel_token(&request, &state).map_err(refused(source))?;
    let body = read_body(payload, max_body_bytes).await?;
    let outcome = parse(&body, &context(&state)).map_err(|e| refused(source)(e.into()))?;
    finish(&state, source, outcome, Items::Whole).await
}

/// `POST /v1/channels/cti/events`.
#[utoipa::path(
    post,
    path = "/v1/channels/cti/events",
    tag = "channels",
    summary = "PBX / CTI call state changes",
    description = "One call state change per object, or `{\"events\": [...]}` (at most 500); channel `phone`, source `cti`. Unknown fields are refused with a 400 naming them.\n\nAuthenticated by a bearer token: an API token with the `channel` role (or `admin`), or one of `PANORAMA_CHANNEL_TOKENS`. Always on.",
    security(("bearer" = ["channel"]), ("channelToken" = [])),
    request_body(content = doc::CtiBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Published (`accepted`), or nothing to publish (`ignored`, with a reason); either way the provider should not retry. `warnings` names identifier values that do not parse (kept on the event as `unparsed.<kind>` attributes)", body = Answer),
        problem::KeyedWebhook,
    ),
)]
pub(crate) async fn cti_events(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let limit = state.settings.max_body_bytes;
    token_authenticated(request, payload, state, cti::SOURCE, &cti::parse, limit).await
}

/// `POST /v1/channels/email/mime` (`message/rfc822`).
#[utoipa::path(
    post,
    path = "/v1/channels/email/mime",
    tag = "channels",
    summary = "A raw email message (Postfix pipe, any MTA)",
    description = "The message as it is, one event per message (`email.received`, or `email.auto_reply` / `email.bounced` for machine mail); channel `email`, source `mime`. Bodies up to `PANORAMA_MAX_EMAIL_BODY_BYTES` (25 MiB by default).\n\nAuthenticated by a bearer token: an API token with the `channel` role (or `admin`), or one of `PANORAMA_CHANNEL_TOKENS`. Always on.",
    security(("bearer" = ["channel"]), ("channelToken" = [])),
    request_body(content = String, content_type = "message/rfc822", description = "The RFC 5322 message"),
    responses(
        (status = 200, description = "Published (`accepted`), or nothing to publish (`ignored`, with a reason); either way the provider should not retry. `warnings` names identifier values that do not parse (kept on the event as `unparsed.<kind>` attributes)", body = Answer),
        problem::KeyedWebhook,
    ),
)]
pub(crate) async fn email_mime(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // A whole message with its attachments.
    let limit = state.settings.max_email_body_bytes;
    let authserv_ids = state.settings.channels.mime_authserv_ids.clone();
    let parse = move |raw: &[u8], context: &Context| mime::parse(raw, context, &authserv_ids);
    token_authenticated(request, payload, state, mime::SOURCE, &parse, limit).await
}

/// `POST /v1/channels/sendgrid/inbound`: basic auth (any user, the secret as
/// password) or `?token=<secret>`.
#[utoipa::path(
    post,
    path = "/v1/channels/sendgrid/inbound",
    tag = "channels",
    summary = "SendGrid Inbound Parse",
    description = "Raw (`email`) and parsed (`headers`, `text`, `html`, `charsets`) modes are both read; one event per message, channel `email`, source `sendgrid`. Bodies up to `PANORAMA_MAX_EMAIL_BODY_BYTES` (25 MiB by default). Inbound Parse signs nothing: the secret in the destination URL (basic auth password, or `?token=`) authenticates it, so use https. Off (404) unless `PANORAMA_SENDGRID_SECRET` is set.",
    security(("sendgridBasic" = []), ("sendgridToken" = [])),
    request_body(content = doc::SendGridInbound, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Published (`accepted`), or nothing to publish (`ignored`, with a reason); either way the provider should not retry. `warnings` names identifier values that do not parse (kept on the event as `unparsed.<kind>` attributes)", body = Answer),
        problem::SignedWebhook,
    ),
)]
pub(crate) async fn sendgrid_inbound(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(secret) = &state.settings.channels.sendgrid_secret else {
        return Err(disabled("sendgrid"));
    };
    let given = basic_auth_password(&request).or_else(|| query_param(&request, "token"));
    let authorized = given.is_some_and(|given| secrets_equal(given.as_bytes(), secret.as_bytes()));
    if !authorized {
        return Err(refused(sendgrid::SOURCE)(ApiError::Unauthorized(
            "basic auth or ?token= with the SendGrid secret is required".into(),
        )));
    }
    let body = read_body(payload, state.settings.max_email_body_bytes).await?;
    let outcome = sendgrid::parse(content_type(&request), &body, &context(&state))
        .map_err(|e| refused(sendgrid::SOURCE)(e.into()))?;
    finish(&state, sendgrid::SOURCE, outcome, Items::Whole).await
}

fn basic_auth_password(request: &HttpRequest) -> Option<String> {
    use base64::Engine as _;
    let encoded = header(request, "authorization")?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':')
        .map(|(_, password)| password.to_owned())
}

/// `POST /v1/channels/mailgun/inbound`.
#[utoipa::path(
    post,
    path = "/v1/channels/mailgun/inbound",
    tag = "channels",
    summary = "Mailgun routes (forward or store and notify)",
    description = "One event per message, channel `email`, source `mailgun`; bodies up to `PANORAMA_MAX_EMAIL_BODY_BYTES` (25 MiB by default). Authenticated inside the body, which OpenAPI security schemes cannot express: `signature` must be the hex HMAC-SHA256 of `timestamp` + `token` under `PANORAMA_MAILGUN_SIGNING_KEY`, `timestamp` within 5 minutes of now, and `token` not used by a request this process accepted before (a retry after a 503 is accepted). A signed POST that is no inbound message is answered `ignored`. Off (404) unless `PANORAMA_MAILGUN_SIGNING_KEY` is set.",
    request_body(content((doc::MailgunInbound = "multipart/form-data"), (doc::MailgunInbound = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Published (`accepted`), or nothing to publish (`ignored`, with a reason); either way the provider should not retry. `warnings` names identifier values that do not parse (kept on the event as `unparsed.<kind>` attributes)", body = Answer),
        problem::SignedWebhook,
    ),
)]
pub(crate) async fn mailgun_inbound(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(key) = &state.settings.channels.mailgun_signing_key else {
        return Err(disabled("mailgun"));
    };
    let body = read_body(payload, state.settings.max_email_body_bytes).await?;
    let context = context(&state);
    let forward = mailgun::parse(content_type(&request), &body, key, &context)
        .and_then(|forward| {
            let mut guard = state.channel_state.mailgun_replays();
            guard.check(&forward.token, context.received_at)?;
            Ok(forward)
        })
        .map_err(|e| refused(mailgun::SOURCE)(e.into()))?;
    let response = finish(&state, mailgun::SOURCE, forward.outcome, Items::Whole).await?;
    // Only now is the token spent: had publishing failed (503), Mailgun's
    // retry carries the same token and must get through.
    state
        .channel_state
        .mailgun_replays()
        .remember(forward.token, context.received_at);
    Ok(response)
}

/// `GET /v1/channels/meta/webhook`: Meta's verification handshake.
#[utoipa::path(
    get,
    path = "/v1/channels/meta/webhook",
    tag = "channels",
    summary = "Meta's subscription handshake",
    description = "Meta calls this when the webhook is saved; the challenge is echoed when `hub.mode` is `subscribe` and `hub.verify_token` matches `PANORAMA_META_VERIFY_TOKEN`. Off (404) unless `PANORAMA_META_APP_SECRET` and `PANORAMA_META_VERIFY_TOKEN` are set.",
    security(("metaVerifyToken" = [])),
    params(
        ("hub.mode" = String, Query, description = "`subscribe`"),
        ("hub.verify_token" = String, Query, description = "The configured verify token"),
        ("hub.challenge" = String, Query, description = "Echoed back: letters, digits, `-`, `_`, `.`; at most 256"),
    ),
    responses(
        (status = 200, description = "The challenge, echoed", content_type = "text/plain", body = String),
        (status = 400, response = problem::BadRequest),
        (status = 401, response = problem::Unauthorized),
        (status = 404, response = problem::NotFound),
        (status = 429, response = problem::TooManyRequests),
    ),
)]
pub(crate) async fn meta_handshake(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(expected) = &state.settings.channels.meta_verify_token else {
        return Err(disabled("meta"));
    };
    let mode = query_param(&request, "hub.mode");
    let token = query_param(&request, "hub.verify_token");
    let challenge = query_param(&request, "hub.challenge");
    let echo = meta::handshake(
        mode.as_deref(),
        token.as_deref(),
        challenge.as_deref(),
        expected,
    )
    .map_err(|e| refused("meta")(e.into()))?;
    Ok(HttpResponse::Ok().content_type("text/plain").body(echo))
}

/// `POST /v1/channels/meta/webhook`: WhatsApp, Messenger and Instagram.
#[utoipa::path(
    post,
    path = "/v1/channels/meta/webhook",
    tag = "channels",
    summary = "WhatsApp Cloud API, Messenger and Instagram notifications",
    description = "One notification may batch many entries; each mapped message or status becomes one event (channel `social`, sources `meta.whatsapp`, `meta.messenger`, `meta.instagram`); a notification with nothing mapped is answered `ignored`. Items are validated one by one: the valid ones are published, and one that breaks the event contract is named in `refused` instead of refusing the notification (which Meta would retry, good messages included, for days). No bearer token: `X-Hub-Signature-256` must be the HMAC-SHA256 of the raw body under `PANORAMA_META_APP_SECRET`. Off (404) unless `PANORAMA_META_APP_SECRET` and `PANORAMA_META_VERIFY_TOKEN` are set.",
    security(("metaSignature" = [])),
    request_body(content = doc::MetaNotification, content_type = "application/json"),
    responses(
        (status = 200, description = "Every valid item published (`accepted`), items that break the event contract named in `refused` (path and reason) and left out, or nothing to publish (`ignored`); either way Meta should not retry. `warnings` names identifier values that do not parse", body = Answer),
        problem::SignedWebhook,
    ),
)]
pub(crate) async fn meta_webhook(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(secret) = &state.settings.channels.meta_app_secret else {
        return Err(disabled("meta"));
    };
    let body = read_body(payload, state.settings.max_body_bytes).await?;
    meta::verify(&body, header(&request, "x-hub-signature-256"), secret)
        .map_err(|e| refused("meta")(e.into()))?;
    let outcome = meta::parse(&body, &context(&state)).map_err(|e| refused("meta")(e.into()))?;
    let source = match &outcome {
        Outcome::Events { events, .. } => {
            match events.first().and_then(|e| e.draft.source.as_deref()) {
                Some(meta::SOURCE_MESSENGER) => meta::SOURCE_MESSENGER,
                Some(meta::SOURCE_INSTAGRAM) => meta::SOURCE_INSTAGRAM,
                _ => meta::SOURCE_WHATSAPP,
            }
        }
        Outcome::Ignored { .. } => "meta",
    };
    finish(&state, source, outcome, Items::Each).await
}

/// `OPTIONS /v1/channels/web/events`: CORS preflight for browsers.
#[utoipa::path(
    options,
    path = "/v1/channels/web/events",
    tag = "channels",
    summary = "CORS preflight for browsers",
    description = "Answered for origins in `PANORAMA_WEB_ALLOWED_ORIGINS` (`*` allows any); any other origin gets 403 with no body. No credentials.",
    params(
        ("Origin" = String, Header, description = "The page's origin"),
    ),
    responses(
        (status = 204, description = "Allowed: `POST` with `content-type`, `x-panorama-write-key` and `authorization`, for 24 h",
            headers(
                ("Access-Control-Allow-Origin" = String, description = "The request's `Origin`"),
                ("Access-Control-Allow-Methods" = String, description = "`POST`"),
                ("Access-Control-Allow-Headers" = String, description = "`content-type, x-panorama-write-key, authorization`"),
                ("Access-Control-Max-Age" = String, description = "`86400`"),
            )),
        (status = 403, description = "The origin may not post (no body)"),
    ),
)]
pub(crate) async fn web_preflight(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> HttpResponse {
    let origin = header(&request, "origin");
    if !web_channel::origin_allowed(origin, &state.settings.channels.web_allowed_origins) {
        return HttpResponse::Forbidden().finish();
    }
    let mut response = HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST"))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "content-type, x-panorama-write-key, authorization",
        ))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish();
    allow_origin(&mut response, origin);
    response
}

/// Lets the browser at `origin` read the answer (preflight and POST alike).
fn allow_origin(response: &mut HttpResponse, origin: Option<&str>) {
    if let Some(origin) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// `POST /v1/channels/web/events`: browsers with a write key from an allowed
/// origin, or web back ends with a channel token (configured or API token).
#[utoipa::path(
    post,
    path = "/v1/channels/web/events",
    tag = "channels",
    summary = "Web forms, chat and beacons",
    description = "One event object or `{\"events\": [...]}` (at most 500): `form.submitted` and `page.viewed` (channel `web`), `chat.started`, `chat.message`, `chat.ended` (channel `chat`). Unknown fields are refused with a 400 naming them.\n\nBrowsers send a public write key (`X-Panorama-Write-Key`, or `?write_key=` for `navigator.sendBeacon`) from an origin in `PANORAMA_WEB_ALLOWED_ORIGINS`; a key from another origin gets 401. Web back ends send a bearer token instead: an API token with the `channel` role (or `admin`), or one of `PANORAMA_CHANNEL_TOKENS`. Always on.\n\nTrust: identifiers sent with a write key are *claimed* (they never merge customers nor join one with verified identifiers); with a channel token they are *verified*.",
    security(("webWriteKey" = []), ("webWriteKeyQuery" = []), ("bearer" = ["channel"]), ("channelToken" = [])),
    request_body(content = doc::WebBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Published (`accepted`), or nothing to publish (`ignored`, with a reason); either way the provider should not retry. `warnings` names identifier values that do not parse (kept on the event as `unparsed.<kind>` attributes)", body = Answer),
        problem::KeyedWebhook,
    ),
)]
pub(crate) async fn web_events(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let channels = &state.settings.channels;
    let origin = header(&request, "origin").map(str::to_owned);
    let write_key = header(&request, "x-panorama-write-key")
        .map(str::to_owned)
        .or_else(|| query_param(&request, "write_key"));
    let browser = write_key.is_some();
    match write_key {
        Some(key) => {
            if !any_secret_matches(&key, &channels.web_write_keys) {
                return Err(refused(web_channel::SOURCE_FORM)(ApiError::Unauthorized(
                    "unknown write key".into(),
                )));
            }
            if !web_channel::origin_allowed(origin.as_deref(), &channels.web_allowed_origins) {
                return Err(refused(web_channel::SOURCE_FORM)(ApiError::Unauthorized(
                    "this origin may not post events".into(),
                )));
            }
        }
        None => {
            require_channel_token(&request, &state).map_err(refused(web_channel::SOURCE_FORM))?
        }
    }
    let body = read_body(payload, state.settings.max_body_bytes).await?;
    let mut outcome = web_channel::parse(&body, &context(&state))
        .map_err(|e| refused(web_channel::SOURCE_FORM)(e.into()))?;
    if browser {
        // A write key is public and `Origin` is forged outside a browser:
        // what a browser sends is what a visitor claims, never more.
        outcome.cap_trust(Trust::Claimed);
    }
    let mut response = finish(&state, web_channel::SOURCE_FORM, outcome, Items::Whole).await?;
    allow_origin(&mut response, origin.as_deref());
    Ok(response)
}
