//! What a plan is made of, shared by every part of the simulator: the
//! providers requests go to, request bodies, and one planned request.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

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

/// A request body before authentication is added.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// `application/x-www-form-urlencoded` pairs (Twilio; Mailgun without
    /// its signature fields, which depend on the moment of sending).
    Form(Vec<(String, String)>),
    /// A JSON body (CTI, Meta, web, chat, `POST /v1/events`).
    Json(serde_json::Value),
    /// A raw email message (SendGrid's raw mode).
    Mime(String),
    /// A web event the shop's own back end posts for a signed-in session or
    /// its back office, with its channel token: the site has authenticated
    /// the person, so the identifiers are verified (a browser's
    /// [`Payload::Json`] posted with the write key vouches for nothing).
    Backend(serde_json::Value),
}

/// One planned request.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedEvent {
    /// Position in the plan, from 0.
    pub seq: u64,
    /// When it happens (the `occurred_at` of what it carries).
    pub at: DateTime<Utc>,
    /// Whether it belongs to the live part (after the history).
    pub live: bool,
    /// The customer (index into the plan's customers).
    pub customer: usize,
    /// Where it goes.
    pub provider: Provider,
    /// What it says.
    pub payload: Payload,
}
