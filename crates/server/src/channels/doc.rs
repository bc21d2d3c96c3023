//! The providers' request bodies, for the OpenAPI document only: the
//! adapters in `panorama-channels` parse them by hand. The fields listed
//! are those the adapters read; providers send more, which is ignored
//! (except where the adapter refuses unknown fields: CTI and web).

// Never constructed: these types exist for their `ToSchema` derives.
#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// Twilio's call status callback (form fields).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TwilioVoiceCallback {
    /// The call: the conversation.
    call_sid: String,
    /// `queued`, `initiated`, `ringing`, `in-progress`, `completed`,
    /// `busy`, `failed`, `no-answer`, `canceled`.
    call_status: String,
    /// `inbound`, `outbound-api`, `outbound-dial`.
    direction: String,
    /// The caller: the customer on inbound calls.
    from: String,
    /// The callee: the customer on outbound calls.
    to: String,
    /// Orders the callbacks of one call.
    sequence_number: Option<String>,
    /// Seconds, on `completed`.
    call_duration: Option<String>,
    /// When (RFC 2822).
    timestamp: Option<String>,
    /// Caller ID name.
    caller_name: Option<String>,
    /// Kept as the `twilio.account_sid` attribute.
    account_sid: Option<String>,
    /// Kept as the `twilio.parent_call_sid` attribute.
    parent_call_sid: Option<String>,
    /// Kept as the `twilio.forwarded_from` attribute.
    forwarded_from: Option<String>,
    /// Kept as the `twilio.answered_by` attribute.
    answered_by: Option<String>,
    /// Kept as the `twilio.sip_response_code` attribute.
    sip_response_code: Option<String>,
}

/// One CTI call state change, or a batch.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(crate) enum CtiBody {
    /// One state change.
    One(Box<CtiCallEvent>),
    /// Up to 500.
    Batch(CtiBatch),
}

/// Several CTI state changes.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CtiBatch {
    /// 1 to 500 state changes.
    #[schema(min_items = 1, max_items = 500)]
    events: Vec<CtiCallEvent>,
}

/// A PBX's call state change. The customer is `caller` on inbound
/// calls and `callee` on outbound ones (a phone identifier when it is
/// a valid number), and `account`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CtiCallEvent {
    /// The PBX's call id: the conversation.
    #[schema(example = "pbx1-20261124-000417")]
    call_id: String,
    /// `ringing` → `call.started`, `answered` → `call.answered`,
    /// `transferred` → `call.answered` (outcome `transferred`), `ended`
    /// → `call.ended`, `missed` → `call.missed`.
    #[schema(example = "ended")]
    state: String,
    /// `inbound` or `outbound`.
    direction: String,
    /// Calling number.
    caller: Option<String>,
    /// Called number.
    callee: Option<String>,
    /// Queue or team.
    queue: Option<String>,
    /// Handling agent.
    agent_id: Option<String>,
    /// The `ringing` state's time.
    started_at: Option<DateTime<Utc>>,
    /// The `answered` and `transferred` states' time.
    answered_at: Option<DateTime<Utc>>,
    /// The `ended` and `missed` states' time.
    ended_at: Option<DateTime<Utc>>,
    /// Overrides the state's time.
    occurred_at: Option<DateTime<Utc>>,
    /// Talk time; for `ended`, defaults to `ended_at - answered_at`.
    duration_seconds: Option<u32>,
    /// Display name hint.
    customer_name: Option<String>,
    /// Account number: an `account` identifier.
    account: Option<String>,
    /// Contact reason.
    reason: Option<String>,
    /// How it ended.
    outcome: Option<String>,
    /// Tells apart repeats of one state (a second transfer).
    sequence: Option<u32>,
}

/// SendGrid Inbound Parse fields: `email` in raw mode, the parsed
/// fields otherwise.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SendGridInbound {
    /// Raw mode: the full MIME message.
    email: Option<String>,
    /// Parsed mode: the message's headers.
    headers: Option<String>,
    /// Parsed mode: the text body.
    text: Option<String>,
    /// Parsed mode: the HTML body.
    html: Option<String>,
    /// Parsed mode: the charset of each field, as JSON.
    charsets: Option<String>,
    /// Sender.
    from: Option<String>,
    /// Recipients.
    to: Option<String>,
    /// Subject.
    subject: Option<String>,
    /// SMTP envelope, as JSON.
    envelope: Option<String>,
    /// Number of attachments.
    attachments: Option<String>,
}

/// Mailgun's forwarded message (parsed fields, or `body-mime`) and its
/// signature.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct MailgunInbound {
    /// Unix seconds; within 5 minutes of now.
    timestamp: String,
    /// Random; accepted once.
    token: String,
    /// Hex HMAC-SHA256 of `timestamp` + `token` under the signing key.
    signature: String,
    /// Envelope sender.
    sender: Option<String>,
    /// From header.
    from: Option<String>,
    /// The mailbox it was delivered to.
    recipient: Option<String>,
    /// Subject.
    subject: Option<String>,
    /// Text body.
    body_plain: Option<String>,
    /// Text body without quoted replies; preferred when present.
    stripped_text: Option<String>,
    /// HTML body.
    body_html: Option<String>,
    /// The headers, as a JSON list of pairs.
    message_headers: Option<String>,
    /// The full MIME message (the `forward()` of a raw message).
    body_mime: Option<String>,
    /// Number of attachments.
    attachment_count: Option<String>,
}

/// A Meta webhook notification (WhatsApp Cloud API, Messenger,
/// Instagram), as Meta documents it.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct MetaNotification {
    /// `whatsapp_business_account`, `page` or `instagram`.
    object: String,
    /// The entries, each with `changes` (WhatsApp) or `messaging`
    /// (Messenger, Instagram).
    entry: Vec<Value>,
}

/// One web event, or a batch.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(crate) enum WebBody {
    /// One event.
    One(Box<WebEvent>),
    /// Up to 500.
    Batch(WebBatch),
}

/// Several web events.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebBatch {
    /// 1 to 500 events.
    #[schema(min_items = 1, max_items = 500)]
    events: Vec<WebEvent>,
}

/// A form, page view or chat event from a web page or a web back end.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebEvent {
    /// `form.submitted`, `page.viewed`, `chat.started`,
    /// `chat.message`, `chat.ended`.
    #[serde(rename = "type")]
    #[schema(example = "form.submitted")]
    event_type: String,
    /// Your first-party visitor id: a weak `visitor` identifier.
    visitor_id: Option<String>,
    /// Idempotency key.
    event_id: Option<String>,
    /// When; defaults to the time of receipt.
    occurred_at: Option<DateTime<Utc>>,
    /// Page URL.
    url: Option<String>,
    /// Page title.
    title: Option<String>,
    /// Referrer.
    referrer: Option<String>,
    /// A logged-in session's customer.
    customer: Option<WebCustomer>,
    /// For `form.submitted`.
    form: Option<WebForm>,
    /// For chat events.
    chat: Option<WebChat>,
    /// Extra values, at most 32.
    attributes: Option<BTreeMap<String, String>>,
}

/// Who a logged-in visitor is.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebCustomer {
    /// An `email` identifier.
    email: Option<String>,
    /// A `phone` identifier.
    phone: Option<String>,
    /// An `account` identifier.
    account: Option<String>,
    /// Display name.
    name: Option<String>,
}

/// A submitted form.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebForm {
    /// Form id.
    id: Option<String>,
    /// Its fields: `email`, `phone`, `account` become identifiers;
    /// `name` (or `first_name` + `last_name`) the display name;
    /// `subject`, `message` the subject and summary; others attributes
    /// `form.<name>` (at most 32). Fields named like passwords, card
    /// numbers or tokens are dropped.
    fields: BTreeMap<String, String>,
}

/// A chat session.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebChat {
    /// Chat session: the conversation.
    session_id: String,
    /// Handling agent.
    agent_id: Option<String>,
    /// Queue.
    queue: Option<String>,
    /// Session time.
    duration_seconds: Option<u32>,
    /// The lines.
    transcript: Option<Vec<WebChatLine>>,
}

/// One line of a chat.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebChatLine {
    /// `visitor`, `agent` or `bot`.
    from: String,
    /// What was said.
    text: String,
    /// When.
    at: Option<DateTime<Utc>>,
    /// Line id.
    id: Option<String>,
}
