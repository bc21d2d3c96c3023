//! One contact as each provider would deliver it: Twilio status callbacks,
//! CTI call states, an email through SendGrid or Mailgun, a WhatsApp or
//! Instagram message through Meta, a web visit or chat, a survey answer,
//! the agent resolving the case.
//! Payloads carry every provider id (call SID, Message-ID, `wamid`, ...)
//! drawn from the plan's dice, so a seed gives the same event ids.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::dice::Dice;
use crate::planned::{Payload, Provider};
use crate::population::Customer;
use crate::reasons::{REPLIES, Reason};
use crate::shop::{
    INSTAGRAM_ACCOUNT, SITE, SUPPORT_ADDRESS, SUPPORT_LINE, WHATSAPP_NUMBER, WHATSAPP_NUMBER_ID,
};

/// A request of a contact, `after` its start.
pub(crate) type Step = (Duration, Provider, Payload);

/// What the contact is about and how it goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Contact<'a> {
    pub(crate) customer: &'a Customer,
    pub(crate) reason: &'a Reason,
    pub(crate) at: DateTime<Utc>,
    /// Whether this contact settles the matter.
    pub(crate) resolves: bool,
    /// How many contacts about it came before.
    pub(crate) earlier: usize,
    /// Live contacts run on a short clock, so a watcher sees them finish.
    pub(crate) live: bool,
}

impl Contact<'_> {
    fn talk_seconds(&self, dice: &mut Dice) -> i64 {
        if self.live {
            dice.between(20, 120) as i64
        } else {
            dice.between(90, 900) as i64
        }
    }

    fn reply(&self) -> &'static str {
        match (self.resolves, self.earlier) {
            (true, _) => REPLIES[2],
            (false, 0) => REPLIES[0],
            (false, _) => REPLIES[1],
        }
    }
}

/// RFC 3339 as the JSON payloads carry it.
fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A call through Twilio: ringing, then answered and completed, or no-answer.
pub(crate) fn twilio_call(dice: &mut Dice, contact: &Contact<'_>, from: &str) -> Vec<Step> {
    let sid = format!("CA{}", dice.hex(16));
    let ring = Duration::seconds(dice.between(5, 25) as i64);
    let answered = dice.chance(0.9);
    let talk = contact.talk_seconds(dice);
    let caller_name = contact.customer.name.to_uppercase();
    let form = |status: &str, sequence: u32, after: Duration, duration: Option<i64>| {
        let mut pairs = vec![
            (
                "AccountSid",
                "AC5ba1c0c9e0f84ee3a5e7a2b0c51d2b7f".to_owned(),
            ),
            ("ApiVersion", "2010-04-01".to_owned()),
            ("CallSid", sid.clone()),
            ("CallStatus", status.to_owned()),
            ("Direction", "inbound".to_owned()),
            ("From", from.to_owned()),
            ("To", SUPPORT_LINE.to_owned()),
            ("CallerName", caller_name.clone()),
            ("SequenceNumber", sequence.to_string()),
            ("Timestamp", (contact.at + after).to_rfc2822()),
            ("CallbackSource", "call-progress-events".to_owned()),
        ];
        if let Some(duration) = duration {
            pairs.push(("CallDuration", duration.to_string()));
        }
        let pairs = pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        (after, Provider::Twilio, Payload::Form(pairs))
    };
    let mut steps = vec![form("ringing", 0, Duration::zero(), None)];
    if answered {
        steps.push(form("in-progress", 1, ring, None));
        steps.push(form(
            "completed",
            2,
            ring + Duration::seconds(talk),
            Some(talk),
        ));
    } else {
        steps.push(form("no-answer", 1, ring + Duration::seconds(30), Some(0)));
    }
    steps
}

/// A call through the PBX: ringing, answered, ended (or missed), with the
/// IVR's account lookup and the agent's wrap-up reason.
pub(crate) fn cti_call(
    dice: &mut Dice,
    contact: &Contact<'_>,
    from: &str,
    account: Option<&str>,
) -> Vec<Step> {
    let call_id = format!("pbx1-{}-{}", contact.at.format("%Y%m%d"), &dice.hex(4));
    let ring = Duration::seconds(dice.between(5, 40) as i64);
    let talk = Duration::seconds(contact.talk_seconds(dice));
    let agent = format!("agent-{:02}", dice.between(1, 24));
    let answered = dice.chance(0.85);
    let started = contact.at;
    let event = |state: &str, after: Duration| {
        let mut event = json!({
            "call_id": call_id,
            "state": state,
            "direction": "inbound",
            "caller": from,
            "callee": SUPPORT_LINE,
            "queue": contact.reason.queue,
            "started_at": rfc3339(started),
            "customer_name": contact.customer.name,
            "reason": contact.reason.said,
        });
        if let Some(account) = account {
            event["account"] = json!(account);
        }
        (after, Provider::Cti, event)
    };
    let mut steps = vec![event("ringing", Duration::zero())];
    if answered {
        let (after, provider, mut answered_event) = event("answered", ring);
        answered_event["agent_id"] = json!(agent);
        answered_event["answered_at"] = json!(rfc3339(started + ring));
        steps.push((after, provider, answered_event.clone()));
        let mut ended = answered_event;
        ended["state"] = json!("ended");
        ended["ended_at"] = json!(rfc3339(started + ring + talk));
        ended["outcome"] = json!(if contact.resolves {
            "resolved"
        } else {
            "follow-up"
        });
        steps.push((ring + talk, provider, ended));
    } else {
        let (after, provider, mut missed) = event("missed", ring + Duration::seconds(45));
        missed["ended_at"] = json!(rfc3339(started + ring + Duration::seconds(45)));
        missed["outcome"] = json!("abandoned");
        steps.push((after, provider, missed));
    }
    steps
        .into_iter()
        .map(|(after, provider, event)| (after, provider, Payload::Json(event)))
        .collect()
}

/// An email thread's identity: the first message's id, for replies.
pub(crate) fn message_id(dice: &mut Dice, customer: &Customer) -> String {
    let domain = customer.email.rsplit('@').next().unwrap_or("mail.example");
    format!("<{}@{domain}>", dice.hex(10))
}

/// An email from the customer, through SendGrid (raw MIME) or Mailgun
/// (parsed fields); `thread` is the id of the message it answers, if any.
pub(crate) fn email(
    dice: &mut Dice,
    contact: &Contact<'_>,
    provider: Provider,
    thread: Option<&str>,
) -> (Vec<Step>, String) {
    let customer = contact.customer;
    let id = message_id(dice, customer);
    let subject = match thread {
        Some(_) => format!("Re: {}", contact.reason.subject),
        None => contact.reason.subject.to_owned(),
    };
    let body = match contact.earlier {
        0 => format!(
            "Hello,\r\n\r\n{}. {}\r\n\r\nKind regards,\r\n{}\r\n",
            contact.reason.said, contact.reason.detail, customer.name
        ),
        n => format!(
            "Hello,\r\n\r\nThis is my {} message about this: {}. {}\r\n\r\n{}\r\n",
            ordinal(n + 1),
            contact.reason.said.to_lowercase(),
            contact.reason.detail,
            customer.name
        ),
    };
    let from = format!("{} <{}>", customer.name, customer.email);
    let date = contact.at.to_rfc2822();
    let payload = match provider {
        Provider::Mailgun => {
            let mut pairs = vec![
                // Mailgun's verdict on the sender: the simulated customers'
                // mail servers publish SPF, so their address is verified.
                (
                    "message-headers",
                    r#"[["X-Mailgun-Spf","Pass"]]"#.to_owned(),
                ),
                ("sender", customer.email.clone()),
                ("from", from),
                ("recipient", SUPPORT_ADDRESS.to_owned()),
                ("To", SUPPORT_ADDRESS.to_owned()),
                ("subject", subject),
                ("Date", date),
                ("Message-Id", id.clone()),
                ("body-plain", body.clone()),
                ("stripped-text", body),
                ("attachment-count", "0".to_owned()),
            ];
            if let Some(thread) = thread {
                pairs.push(("In-Reply-To", thread.to_owned()));
                pairs.push(("References", thread.to_owned()));
            }
            Payload::Form(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        }
        _ => {
            let mut mime = format!(
                "From: {from}\r\nTo: {SUPPORT_ADDRESS}\r\nSubject: {subject}\r\n\
                 Message-ID: {id}\r\nDate: {date}\r\n"
            );
            if let Some(thread) = thread {
                mime.push_str(&format!(
                    "In-Reply-To: {thread}\r\nReferences: {thread}\r\n"
                ));
            }
            mime.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
            mime.push_str(&body);
            Payload::Mime(mime)
        }
    };
    let provider = if provider == Provider::Mailgun {
        Provider::Mailgun
    } else {
        Provider::SendGrid
    };
    (vec![(Duration::zero(), provider, payload)], id)
}

fn ordinal(n: usize) -> &'static str {
    match n {
        1 => "first",
        2 => "second",
        3 => "third",
        _ => "fourth",
    }
}

/// A WhatsApp message from the customer and, a little later, the status of
/// the business's answer.
pub(crate) fn whatsapp(dice: &mut Dice, contact: &Contact<'_>, wa_id: &str) -> Vec<Step> {
    let text = match contact.earlier {
        0 => format!("Hi! {}. {}", contact.reason.said, contact.reason.detail),
        _ => format!("Any news? {}", contact.reason.said),
    };
    let notification = |value: Value| {
        json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]
        })
    };
    let metadata =
        json!({"display_phone_number": WHATSAPP_NUMBER, "phone_number_id": WHATSAPP_NUMBER_ID});
    let received = notification(json!({
        "messaging_product": "whatsapp",
        "metadata": metadata,
        "contacts": [{"profile": {"name": contact.customer.name}, "wa_id": wa_id}],
        "messages": [{
            "from": wa_id,
            "id": format!("wamid.{}", dice.hex(20).to_uppercase()),
            "timestamp": contact.at.timestamp().to_string(),
            "type": "text",
            "text": {"body": text}
        }]
    }));
    let answer_after = Duration::seconds(dice.between(30, 600) as i64);
    let sent = notification(json!({
        "messaging_product": "whatsapp",
        "metadata": metadata,
        "statuses": [{
            "id": format!("wamid.{}", dice.hex(20).to_uppercase()),
            "status": "sent",
            "timestamp": (contact.at + answer_after).timestamp().to_string(),
            "recipient_id": wa_id,
            "conversation": {"id": dice.hex(16), "origin": {"type": "service"}},
            "pricing": {"billable": true, "pricing_model": "CBP", "category": "service"}
        }]
    }));
    vec![
        (
            Duration::zero(),
            Provider::Whatsapp,
            Payload::Json(received),
        ),
        (answer_after, Provider::Whatsapp, Payload::Json(sent)),
    ]
}

/// An Instagram direct message.
pub(crate) fn instagram(dice: &mut Dice, contact: &Contact<'_>, igsid: &str) -> Vec<Step> {
    let millis = contact.at.timestamp_millis();
    let body = json!({
        "object": "instagram",
        "entry": [{
            "id": INSTAGRAM_ACCOUNT,
            "time": millis,
            "messaging": [{
                "sender": {"id": igsid},
                "recipient": {"id": INSTAGRAM_ACCOUNT},
                "timestamp": millis,
                "message": {"mid": format!("aWdfZAG1faXRlbTo{}", dice.hex(18)), "text": format!("hey, {}", contact.reason.said.to_lowercase())}
            }]
        }]
    });
    vec![(Duration::zero(), Provider::Instagram, Payload::Json(body))]
}

/// Who fills in a form: the customer, or an elderly customer's grandchild
/// on their behalf.
fn form_fields(contact: &Contact<'_>, phone: Option<&str>) -> Value {
    let customer = contact.customer;
    let mut fields = json!({
        "name": customer.name,
        "email": customer.email,
        "subject": contact.reason.subject,
        "message": contact.reason.said,
    });
    if let Some(phone) = phone {
        fields["phone"] = json!(phone);
    }
    if let Some(account) = &customer.account {
        fields["account"] = json!(account);
    }
    if let Some(helper) = &customer.helper {
        fields["filled_in_by"] = json!(helper);
    }
    fields
}

/// A visit: a few page views, then the contact form.
pub(crate) fn web_visit(dice: &mut Dice, contact: &Contact<'_>, phone: Option<&str>) -> Vec<Step> {
    let visitor = &contact.customer.visitor;
    let pages = ["/", "/help", "/orders", "/account", "/help/contact"];
    let views = dice.between(1, 3) as i64;
    let mut steps: Vec<Step> = (0..views)
        .map(|n| {
            let after = Duration::seconds(n * 40);
            let page = pages[(n as usize + 1) % pages.len()];
            let event = json!({
                "type": "page.viewed",
                "visitor_id": visitor,
                "event_id": format!("pv-{}", dice.hex(8)),
                "occurred_at": rfc3339(contact.at + after),
                "url": format!("{SITE}{page}"),
                "title": format!("Shop — {}", page.trim_start_matches('/')),
            });
            (after, Provider::Web, Payload::Json(event))
        })
        .collect();
    let after = Duration::seconds(views * 40 + 60);
    steps.push((
        after,
        Provider::Web,
        Payload::Json(json!({
            "type": "form.submitted",
            "visitor_id": visitor,
            "event_id": format!("form-{}", dice.hex(8)),
            "occurred_at": rfc3339(contact.at + after),
            "url": format!("{SITE}/help/contact"),
            "title": "Contact us",
            "form": {"id": "contact", "fields": form_fields(contact, phone)},
        })),
    ));
    steps
}

/// A signed-in visit to the account page: the session knows the customer,
/// so the shop's back end posts the page view with their email, phone and
/// account number.
pub(crate) fn signed_in_visit(
    dice: &mut Dice,
    customer: &Customer,
    at: DateTime<Utc>,
) -> Vec<Step> {
    let mut who = json!({"name": customer.name, "email": customer.email, "phone": customer.phone});
    if let Some(account) = &customer.account {
        who["account"] = json!(account);
    }
    let event = json!({
        "type": "page.viewed",
        "visitor_id": customer.visitor,
        "event_id": format!("pv-{}", dice.hex(8)),
        "occurred_at": rfc3339(at),
        "url": format!("{SITE}/account"),
        "title": "My account",
        "customer": who,
    });
    vec![(Duration::zero(), Provider::Web, Payload::Backend(event))]
}

/// A form posted from the shop's back office (an employee types in what a
/// customer says), so the back end sends it: no visitor cookie, only what
/// is typed in, verified by the shop.
pub(crate) fn bare_form(dice: &mut Dice, contact: &Contact<'_>, fields: Value) -> Vec<Step> {
    let event = json!({
        "type": "form.submitted",
        "event_id": format!("form-{}", dice.hex(8)),
        "occurred_at": rfc3339(contact.at),
        "url": format!("{SITE}/help/contact"),
        "title": "Contact us",
        "form": {"id": "contact", "fields": fields},
    });
    vec![(Duration::zero(), Provider::Web, Payload::Backend(event))]
}

/// A web chat: started with a pre-chat form, a few lines, ended.
pub(crate) fn chat(dice: &mut Dice, contact: &Contact<'_>) -> Vec<Step> {
    let customer = contact.customer;
    let session = format!("chat-{}", dice.hex(8));
    let length = contact.talk_seconds(dice);
    let agent = format!("agent-{:02}", dice.between(1, 24));
    let line = |from: &str, text: &str, after: i64, n: u32| json!({"from": from, "text": text, "at": rfc3339(contact.at + Duration::seconds(after)), "id": format!("l{n}")});
    let opening = line("visitor", contact.reason.said, 0, 1);
    let transcript = vec![
        opening.clone(),
        line("agent", "Hello, let me have a look for you.", length / 3, 2),
        line("visitor", contact.reason.detail, length / 2, 3),
        line("agent", contact.reply(), length, 4),
    ];
    let pre_chat =
        json!({"id": "pre-chat", "fields": {"name": customer.name, "email": customer.email}});
    let event = |kind: &str, after: i64, lines: Vec<Value>| {
        let mut chat =
            json!({"session_id": session, "queue": contact.reason.queue, "transcript": lines});
        if kind != "chat.started" {
            chat["agent_id"] = json!(agent);
        }
        if kind == "chat.ended" {
            chat["duration_seconds"] = json!(length);
        }
        let event = json!({
            "type": kind,
            "visitor_id": customer.visitor,
            "occurred_at": rfc3339(contact.at + Duration::seconds(after)),
            "url": format!("{SITE}/help"),
            "form": pre_chat,
            "chat": chat,
        });
        (
            Duration::seconds(after),
            Provider::Chat,
            Payload::Json(event),
        )
    };
    vec![
        event("chat.started", 0, vec![opening]),
        event("chat.message", length / 2, transcript[1..3].to_vec()),
        event("chat.ended", length, transcript),
    ]
}

/// A survey answer after a contact: how likely to recommend (NPS), how
/// satisfied (CSAT) or how much effort it took (CES), by how it went.
pub(crate) fn survey(
    dice: &mut Dice,
    contact: &Contact<'_>,
    identifier: (&str, &str),
    contacts: usize,
) -> Vec<Step> {
    let good = contact.resolves && contacts <= 2;
    let (metric, score, comment) = match dice.below(3) {
        0 => (
            "nps",
            if good {
                dice.between(8, 10)
            } else {
                dice.between(0, 7)
            },
            if good {
                "Quick and friendly"
            } else {
                "I had to explain everything again"
            },
        ),
        1 => (
            "csat",
            if good {
                dice.between(4, 5)
            } else {
                dice.between(1, 3)
            },
            if good { "Helpful" } else { "Took far too long" },
        ),
        _ => (
            "ces",
            if good {
                dice.between(1, 3)
            } else {
                dice.between(4, 7)
            },
            if good {
                "Easy"
            } else {
                "Too many contacts for one question"
            },
        ),
    };
    let event = json!({
        "event_id": format!("survey-{}", dice.hex(10)),
        "occurred_at": rfc3339(contact.at),
        "channel": "web",
        "source": "survey",
        "type": "feedback.submitted",
        "direction": "inbound",
        "identifiers": [{"kind": identifier.0, "value": identifier.1}],
        "feedback": {"metric": metric, "score": score, "comment": comment},
        "attributes": {"survey.about": contact.reason.subject},
    });
    vec![(Duration::zero(), Provider::Survey, Payload::Json(event))]
}

/// The agent a contact's requests name (the one who took the call or the
/// chat), if any.
pub(crate) fn agent_of(steps: &[Step]) -> Option<String> {
    steps.iter().find_map(|(_, _, payload)| match payload {
        Payload::Json(value) => value
            .get("agent_id")
            .or_else(|| value.get("chat")?.get("agent_id"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    })
}

/// The agent resolving the case of a contact that settled the matter, as
/// `POST /v1/cases/{id}/resolve` records it: a `case.resolved` agent event
/// filed under the identifier the customer got in touch with. Its
/// `case_id` is left out: the plan names the case once the contact's
/// events have been grouped (see `Plan`).
pub(crate) fn resolution(
    dice: &mut Dice,
    contact: &Contact<'_>,
    identifier: (&str, &str),
    agent: &str,
) -> Vec<Step> {
    let event = json!({
        "event_id": format!("resolve-{}", dice.hex(10)),
        "occurred_at": rfc3339(contact.at),
        "channel": "agent",
        "source": "agent",
        "type": "case.resolved",
        "identifiers": [{"kind": identifier.0, "value": identifier.1}],
        "agent_id": agent,
        "outcome": contact.reason.outcome,
    });
    vec![(Duration::zero(), Provider::Agent, Payload::Json(event))]
}
