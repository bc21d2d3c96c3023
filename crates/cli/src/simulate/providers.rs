//! From a planned event to an HTTP request: the provider's webhook with the
//! provider's own signature (made by the same `panorama_channels` code that
//! checks it), or `POST /v1/events` with the events the gateway would have
//! made of it. Either way the events, and their ids, are the same.

use std::collections::BTreeSet;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use panorama_channels::form::Form;
use panorama_channels::multipart::{self, Part};
use panorama_channels::{Context, Outcome, cti, mailgun, meta, sendgrid, twilio, web};
use panorama_core::{EventDraft, Region};
use panorama_server::ChannelSettings;

use super::plan::{Payload, PlannedEvent};
use super::touches::SITE;

/// Where a request goes: one provider webhook or `POST /v1/events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    /// Twilio Voice status callbacks.
    Twilio,
    /// A PBX posting call states.
    Cti,
    /// SendGrid Inbound Parse (raw MIME).
    SendGrid,
    /// Mailgun route forwards.
    Mailgun,
    /// WhatsApp Cloud API through the Meta webhook.
    Whatsapp,
    /// Instagram messaging through the Meta webhook.
    Instagram,
    /// Web page views and forms.
    Web,
    /// Web chat.
    Chat,
    /// Survey answers, posted to `POST /v1/events`.
    Survey,
    /// Agents resolving the cases of settled matters (`case.resolved`),
    /// posted to `POST /v1/events`.
    Agent,
}

impl Provider {
    /// Every provider.
    pub const ALL: [Provider; 10] = [
        Provider::Twilio,
        Provider::Cti,
        Provider::SendGrid,
        Provider::Mailgun,
        Provider::Whatsapp,
        Provider::Instagram,
        Provider::Web,
        Provider::Chat,
        Provider::Survey,
        Provider::Agent,
    ];

    /// Its name in `--channels` and in progress lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Twilio => "twilio",
            Provider::Cti => "cti",
            Provider::SendGrid => "sendgrid",
            Provider::Mailgun => "mailgun",
            Provider::Whatsapp => "whatsapp",
            Provider::Instagram => "instagram",
            Provider::Web => "web",
            Provider::Chat => "chat",
            Provider::Survey => "survey",
            Provider::Agent => "agent",
        }
    }

    /// Parses a `--channels` list: provider names and the groups `phone`
    /// (twilio, cti), `email` (sendgrid, mailgun), `social` (whatsapp,
    /// instagram) and `all`.
    pub fn parse_list(raw: &str) -> Result<BTreeSet<Provider>, String> {
        let mut providers = BTreeSet::new();
        for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let group: &[Provider] = match name.to_ascii_lowercase().as_str() {
                "all" => &Provider::ALL,
                "phone" => &[Provider::Twilio, Provider::Cti],
                "email" => &[Provider::SendGrid, Provider::Mailgun],
                "social" => &[Provider::Whatsapp, Provider::Instagram],
                other => match Provider::ALL.iter().find(|p| p.as_str() == other) {
                    Some(provider) => std::slice::from_ref(provider),
                    None => {
                        return Err(format!(
                            "unknown channel {name:?}; expected all, phone, email, social or one of {}",
                            Provider::ALL.map(Provider::as_str).join(", ")
                        ));
                    }
                },
            };
            providers.extend(group.iter().copied());
        }
        if providers.is_empty() {
            return Err("no channel given".into());
        }
        Ok(providers)
    }
}

/// How the requests of a provider are delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To the provider's webhook, signed as the provider signs.
    Webhook,
    /// As events to `POST /v1/events` (the webhook's secret is not set).
    Events,
    /// Not at all, for the reason given.
    Skip(String),
}

/// The secrets of the running Panorama (the same settings `serve` reads)
/// and the API token.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Webhook secrets, public URL, channel tokens, web write keys and origins.
    pub channels: ChannelSettings,
    /// A bearer token with the `channel` (or `admin`) role.
    pub token: Option<String>,
}

impl Credentials {
    fn channel_token(&self) -> Option<&str> {
        self.channels
            .channel_tokens
            .first()
            .map(String::as_str)
            .or(self.token.as_deref())
    }

    fn browser(&self) -> Option<(&str, &str)> {
        let key = self.channels.web_write_keys.first()?;
        let origin = self
            .channels
            .web_allowed_origins
            .iter()
            .find(|origin| origin.trim() != "*")
            .map_or(SITE, String::as_str);
        Some((key, origin))
    }

    /// How `provider`'s requests go, given what is configured.
    pub fn route(&self, provider: Provider) -> Route {
        let channels = &self.channels;
        let (webhook, needs) = match provider {
            Provider::Twilio => (
                channels.twilio_auth_token.is_some() && channels.public_url.is_some(),
                "PANORAMA_TWILIO_AUTH_TOKEN and PANORAMA_PUBLIC_URL",
            ),
            Provider::SendGrid => (
                channels.sendgrid_secret.is_some(),
                "PANORAMA_SENDGRID_SECRET",
            ),
            Provider::Mailgun => (
                channels.mailgun_signing_key.is_some(),
                "PANORAMA_MAILGUN_SIGNING_KEY",
            ),
            Provider::Whatsapp | Provider::Instagram => (
                channels.meta_app_secret.is_some() && channels.meta_verify_token.is_some(),
                "PANORAMA_META_APP_SECRET and PANORAMA_META_VERIFY_TOKEN",
            ),
            Provider::Cti => (
                self.channel_token().is_some(),
                "PANORAMA_CHANNEL_TOKENS or --token",
            ),
            Provider::Web | Provider::Chat => (
                self.browser().is_some() || self.channel_token().is_some(),
                "PANORAMA_WEB_WRITE_KEYS, PANORAMA_CHANNEL_TOKENS or --token",
            ),
            Provider::Survey | Provider::Agent => (false, "--token"),
        };
        match (webhook, self.token.is_some()) {
            (true, _) => Route::Webhook,
            (false, true) => Route::Events,
            (false, false) => Route::Skip(format!("needs {needs}")),
        }
    }
}

/// An HTTP request, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Path (and query) on the Panorama base URL.
    pub path: String,
    /// Headers, `Content-Type` included.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// The webhook path of a provider.
pub fn webhook_path(provider: Provider) -> &'static str {
    match provider {
        Provider::Twilio => "/v1/channels/twilio/voice",
        Provider::Cti => "/v1/channels/cti/events",
        Provider::SendGrid => "/v1/channels/sendgrid/inbound",
        Provider::Mailgun => "/v1/channels/mailgun/inbound",
        Provider::Whatsapp | Provider::Instagram => "/v1/channels/meta/webhook",
        Provider::Web | Provider::Chat => "/v1/channels/web/events",
        Provider::Survey | Provider::Agent => "/v1/events",
    }
}

/// Multipart boundary of SendGrid bodies (never in a simulated message).
const BOUNDARY: &str = "xYzZY-panorama-simulate";
/// Signs Mailgun bodies parsed locally, when no key is configured.
const LOCAL_KEY: &str = "panorama-simulate-local";

fn form_body(pairs: &[(String, String)]) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
        .into_bytes()
}

fn json_body(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn sendgrid_body(mime: &str) -> Vec<u8> {
    let part = |name: &str, data: &[u8]| Part {
        name: name.to_owned(),
        filename: None,
        content_type: None,
        data: data.to_vec(),
    };
    multipart::encode(
        BOUNDARY,
        &[
            part("email", mime.as_bytes()),
            part("to", super::touches::SUPPORT_ADDRESS.as_bytes()),
        ],
    )
}

/// Mailgun's fields plus a fresh signature: a token Mailgun never repeats,
/// timestamped `now` (the gateway accepts five minutes ahead, nine hours
/// behind).
fn mailgun_pairs(
    pairs: &[(String, String)],
    key: &str,
    now: DateTime<Utc>,
    nonce: &str,
) -> Vec<(String, String)> {
    let timestamp = now.timestamp().to_string();
    let signature = mailgun::sign(&timestamp, nonce, key);
    let mut signed = pairs.to_vec();
    signed.push(("timestamp".into(), timestamp));
    signed.push(("token".into(), nonce.to_owned()));
    signed.push(("signature".into(), signature));
    signed
}

fn header(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_owned(), value.into())
}

/// The webhook request of `event`, authenticated with `credentials`; `now`
/// and `nonce` (unique per request) only matter to Mailgun's signature.
pub fn webhook_request(
    event: &PlannedEvent,
    credentials: &Credentials,
    now: DateTime<Utc>,
    nonce: &str,
) -> Request {
    let channels = &credentials.channels;
    let path = webhook_path(event.provider).to_owned();
    let bearer = |token: Option<&str>| {
        header(
            "authorization",
            format!("Bearer {}", token.unwrap_or_default()),
        )
    };
    let (content_type, body, mut headers) = match (&event.payload, event.provider) {
        (Payload::Form(pairs), Provider::Twilio) => {
            let url = format!(
                "{}{path}",
                channels.public_url.as_deref().unwrap_or_default()
            );
            let token = channels.twilio_auth_token.as_deref().unwrap_or_default();
            let signature = twilio::sign(&url, &Form::from_pairs(pairs.clone()), token);
            let headers = vec![header("x-twilio-signature", signature)];
            (
                "application/x-www-form-urlencoded".to_owned(),
                form_body(pairs),
                headers,
            )
        }
        (Payload::Form(pairs), _) => {
            let key = channels.mailgun_signing_key.as_deref().unwrap_or(LOCAL_KEY);
            let body = form_body(&mailgun_pairs(pairs, key, now, nonce));
            (
                "application/x-www-form-urlencoded".to_owned(),
                body,
                Vec::new(),
            )
        }
        (Payload::Mime(mime), _) => {
            let secret = channels.sendgrid_secret.as_deref().unwrap_or_default();
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("inbound:{secret}"));
            (
                format!("multipart/form-data; boundary={BOUNDARY}"),
                sendgrid_body(mime),
                vec![header("authorization", format!("Basic {basic}"))],
            )
        }
        (Payload::Json(value), provider) => {
            let body = json_body(value);
            let headers = match provider {
                Provider::Whatsapp | Provider::Instagram => {
                    let secret = channels.meta_app_secret.as_deref().unwrap_or_default();
                    vec![header("x-hub-signature-256", meta::sign(&body, secret))]
                }
                Provider::Web | Provider::Chat => match credentials.browser() {
                    Some((key, origin)) => vec![
                        header("origin", origin),
                        header("x-panorama-write-key", key),
                    ],
                    None => vec![bearer(credentials.channel_token())],
                },
                Provider::Cti => vec![bearer(credentials.channel_token())],
                _ => vec![bearer(credentials.token.as_deref())],
            };
            ("application/json".to_owned(), body, headers)
        }
    };
    headers.push(header("content-type", content_type));
    Request {
        path,
        headers,
        body,
    }
}

/// `POST /v1/events` with the events the webhook would have made of
/// `event` (see [`drafts`]).
pub fn events_request(drafts: &[EventDraft], token: &str) -> Request {
    let body = serde_json::json!({ "events": drafts });
    Request {
        path: "/v1/events".into(),
        headers: vec![
            header("authorization", format!("Bearer {token}")),
            header("content-type", "application/json"),
        ],
        body: json_body(&body),
    }
}

/// The event drafts the gateway makes of `event`, by the same
/// `panorama_channels` code, as if received at `received_at`; an event the
/// adapter ignores gives none.
pub fn drafts(
    event: &PlannedEvent,
    received_at: DateTime<Utc>,
    default_region: Option<Region>,
) -> Result<Vec<EventDraft>, String> {
    let context = Context {
        received_at,
        default_region,
    };
    let outcome = match (&event.payload, event.provider) {
        (Payload::Form(pairs), Provider::Twilio) => {
            twilio::parse_voice_status(&Form::from_pairs(pairs.clone()), &context)
        }
        (Payload::Form(pairs), _) => {
            let nonce = format!("local-{}", event.seq);
            let body = form_body(&mailgun_pairs(pairs, LOCAL_KEY, received_at, &nonce));
            mailgun::parse(
                "application/x-www-form-urlencoded",
                &body,
                LOCAL_KEY,
                &context,
            )
            .map(|forward| forward.outcome)
        }
        (Payload::Mime(mime), _) => sendgrid::parse(
            &format!("multipart/form-data; boundary={BOUNDARY}"),
            &sendgrid_body(mime),
            &context,
        ),
        (Payload::Json(value), Provider::Survey | Provider::Agent) => {
            return serde_json::from_value::<EventDraft>(value.clone())
                .map(|draft| vec![draft])
                .map_err(|e| format!("{} event: {e}", event.provider.as_str()));
        }
        (Payload::Json(value), Provider::Cti) => cti::parse(&json_body(value), &context),
        (Payload::Json(value), Provider::Whatsapp | Provider::Instagram) => {
            meta::parse(&json_body(value), &context)
        }
        (Payload::Json(value), _) => web::parse(&json_body(value), &context),
    };
    outcome
        .map(Outcome::into_drafts)
        .map_err(|e| format!("{} request: {e}", event.provider.as_str()))
}
