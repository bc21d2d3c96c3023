//! From a planned event to an HTTP request: the provider's webhook with the
//! provider's own signature (made by the same `panorama_channels` code that
//! checks it), or `POST /v1/events` with the events the gateway would have
//! made of it. Either way the events, and their ids, are the same.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use panorama_channels::form::Form;
use panorama_channels::{meta, twilio};
use panorama_core::EventDraft;
use panorama_server::ChannelSettings;

use crate::bodies::{BOUNDARY, LOCAL_KEY, form_body, json_body, mailgun_pairs, sendgrid_body};
use crate::planned::{Payload, PlannedEvent, Provider};
use crate::shop::SITE;

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
        (Payload::Backend(value), _) => (
            "application/json".to_owned(),
            json_body(value),
            vec![bearer(credentials.channel_token())],
        ),
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
/// `event` (see [`drafts`](crate::gateway::drafts)).
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
