//! What a credential may post through `POST /v1/events`: a `channel` token
//! posts contact events of its own system, under its own source, never
//! agent actions and never under the source of an adapter. Agent actions
//! come from the agent action routes, which name the agent and check the
//! customer; the adapters derive event ids from their source and the
//! provider's ids, so an event posted under `twilio` with a derived id
//! would pre-empt (and later silence) the real webhook, and one posted
//! under another system's source would pre-empt that system's ids the same
//! way. An `admin` token is an operator's, for backfills and the
//! simulator, and is not bound.

use panorama_channels::{cti, mailgun, meta, mime, segment, sendgrid, twilio, web};
use panorama_core::{ContactEvent, EventDraft, FieldError, Role};
use panorama_store::Principal;

/// The sources the channel adapters and the agent action routes publish
/// under: the gateway's own, which a `channel` token cannot choose.
pub(crate) const RESERVED_SOURCES: [&str; 13] = [
    twilio::SOURCE,
    cti::SOURCE,
    sendgrid::SOURCE,
    mailgun::SOURCE,
    mime::SOURCE,
    meta::SOURCE_WHATSAPP,
    meta::SOURCE_MESSENGER,
    meta::SOURCE_INSTAGRAM,
    web::SOURCE_FORM,
    web::SOURCE_BEACON,
    web::SOURCE_CHAT,
    segment::SOURCE,
    "agent",
];

/// Fills in the source a draft posted by `caller` leaves out: a channel
/// token's own, so its events need not repeat it.
pub(crate) fn default_source(caller: &Principal, draft: &mut EventDraft) {
    let missing = draft
        .source
        .as_deref()
        .is_none_or(|source| source.trim().is_empty());
    if missing && let Some(bound) = &caller.source {
        draft.source = Some(bound.clone());
    }
}

/// `Ok` when `caller` may post `event`, else the field at fault
/// (`channel`, `type` or `source`, within `prefix`) and why.
pub(crate) fn may_post(
    caller: &Principal,
    event: &ContactEvent,
    prefix: &str,
) -> Result<(), FieldError> {
    if caller.role == Role::Admin {
        return Ok(());
    }
    let refuse = |field: &str, message: String| {
        let field = if prefix.is_empty() {
            field.to_owned()
        } else {
            format!("{prefix}.{field}")
        };
        Err(FieldError { field, message })
    };
    if event.channel == panorama_core::Channel::Agent {
        return refuse(
            "channel",
            "agent events come from the agent action routes, not from a channel token".into(),
        );
    }
    if event.event_type.is_agent_action() {
        return refuse(
            "type",
            format!(
                "{} is an agent action: it comes from the agent action routes, not from a channel token",
                event.event_type
            ),
        );
    }
    if is_reserved(&event.source) {
        return refuse(
            "source",
            format!(
                "{} is the source of a channel adapter or of agent actions; a channel token posts under its own system's name",
                event.source
            ),
        );
    }
    if let Some(bound) = &caller.source
        && !is_within(&event.source, bound)
    {
        return refuse(
            "source",
            format!(
                "this token posts under the source {bound} (or {bound}.<name>), not {}",
                event.source
            ),
        );
    }
    Ok(())
}

/// Whether `source` is `parent` or under it (`crm.billing` under `crm`).
fn is_within(source: &str, parent: &str) -> bool {
    source == parent
        || source
            .strip_prefix(parent)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Whether `source` is an adapter's (or agent actions'), or under one
/// (`twilio.x`, `meta.whatsapp.x`): ids derived from it could collide with
/// the adapter's.
fn is_reserved(source: &str) -> bool {
    RESERVED_SOURCES
        .iter()
        .any(|reserved| is_within(source, reserved))
}

#[cfg(test)]
mod tests {
    use panorama_core::{
        EventDraft, EventType, IdentifierDraft, IdentifierKind, ValidationContext,
    };

    use super::*;

    fn event(channel: &str, source: &str, event_type: &str) -> ContactEvent {
        EventDraft {
            channel: Some(channel.into()),
            source: Some(source.into()),
            event_type: Some(event_type.into()),
            identifiers: vec![IdentifierDraft::new(IdentifierKind::Phone, "+31612345678")],
            ..EventDraft::default()
        }
        .validate(&ValidationContext::now(None))
        .expect("valid")
    }

    /// A token of `role`; a channel token posts under `crm`.
    fn caller(role: Role) -> Principal {
        Principal {
            token_id: uuid::Uuid::nil(),
            name: format!("test-{role}"),
            role,
            source: (role == Role::Channel).then(|| "crm".to_owned()),
        }
    }

    fn refused_field(role: Role, event: &ContactEvent) -> Option<String> {
        may_post(&caller(role), event, "events[2]")
            .err()
            .map(|e| e.field)
    }

    #[test]
    fn a_channel_token_posts_its_own_contact_events() {
        for (channel, source, event_type) in [
            ("phone", "crm", "call.ended"),
            ("email", "crm", "email.received"),
            ("web", "crm.survey", "form.submitted"),
            ("phone", "crm.twilio", "call.ended"),
        ] {
            let event = event(channel, source, event_type);
            assert_eq!(refused_field(Role::Channel, &event), None, "{source}");
        }
    }

    #[test]
    fn a_channel_token_posts_no_agent_action() {
        assert_eq!(
            refused_field(Role::Channel, &event("agent", "crm", "call.ended")).as_deref(),
            Some("events[2].channel")
        );
        for event_type in EventType::ALL.iter().filter(|t| t.is_agent_action()) {
            let posted = event("phone", "crm", event_type.as_str());
            assert_eq!(
                refused_field(Role::Channel, &posted).as_deref(),
                Some("events[2].type"),
                "{event_type}"
            );
        }
        assert_eq!(
            may_post(
                &caller(Role::Channel),
                &event("phone", "crm", "note.added"),
                ""
            )
            .err()
            .map(|e| e.field)
            .as_deref(),
            Some("type")
        );
    }

    #[test]
    fn a_channel_token_cannot_take_an_adapters_source() {
        for source in RESERVED_SOURCES
            .iter()
            .map(|s| (*s).to_owned())
            .chain(["twilio.voice".to_owned(), "meta.whatsapp.x".to_owned()])
        {
            let posted = event("phone", &source, "call.ended");
            assert_eq!(
                refused_field(Role::Channel, &posted).as_deref(),
                Some("events[2].source"),
                "{source}"
            );
        }
    }

    #[test]
    fn a_channel_token_posts_only_under_its_own_source() {
        for source in ["api", "crmx", "billing", "billing.crm", "cr"] {
            let posted = event("phone", source, "call.ended");
            assert_eq!(
                refused_field(Role::Channel, &posted).as_deref(),
                Some("events[2].source"),
                "{source}"
            );
        }
    }

    #[test]
    fn a_missing_source_is_the_tokens_own() {
        let mut draft = EventDraft::default();
        default_source(&caller(Role::Channel), &mut draft);
        assert_eq!(draft.source.as_deref(), Some("crm"));
        let mut draft = EventDraft {
            source: Some("crm.survey".into()),
            ..EventDraft::default()
        };
        default_source(&caller(Role::Channel), &mut draft);
        assert_eq!(draft.source.as_deref(), Some("crm.survey"));
        let mut draft = EventDraft {
            source: Some(" ".into()),
            ..EventDraft::default()
        };
        default_source(&caller(Role::Admin), &mut draft);
        assert_eq!(draft.source.as_deref(), Some(" "));
    }

    #[test]
    fn an_admin_is_not_bound() {
        for posted in [
            event("agent", "agent", "case.resolved"),
            event("phone", "twilio", "call.ended"),
        ] {
            assert_eq!(refused_field(Role::Admin, &posted), None);
        }
    }
}
