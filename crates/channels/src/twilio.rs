//! Twilio Voice: call status callbacks as call events, and the
//! `X-Twilio-Signature` check.
//!
//! At Twilio, point the phone number's "A call comes in" status callback (or
//! the `statusCallback` of calls you place, with `statusCallbackEvent`
//! `initiated ringing answered completed`) at `PANORAMA_PUBLIC_URL` +
//! `/v1/channels/twilio/voice`, and set `PANORAMA_TWILIO_AUTH_TOKEN`.
//!
//! Twilio posts `application/x-www-form-urlencoded` parameters (`CallSid`,
//! `AccountSid`, `From`, `To`, `Direction`, `CallStatus`, `CallDuration`,
//! `Timestamp`, `SequenceNumber`, `CallerName`, ...). Each status becomes one
//! event: `queued`, `initiated` and `ringing` → `call.started`;
//! `in-progress` → `call.answered`; `completed` → `call.ended`; `busy`,
//! `failed`, `no-answer` and `canceled` → `call.missed`. The customer is the
//! caller (`From`) on inbound calls and the callee (`To`) on outbound ones;
//! `client:` and `sip:` parties and anonymous callers are not customers.
//!
//! The event id is `CallSid:CallStatus:SequenceNumber`, so a retried
//! callback is the same event.

use chrono::{DateTime, Utc};
use panorama_core::{Channel, Direction, EventDraft, EventType, IdentifierKind};

use crate::form::Form;
use crate::signature::{hmac_sha1_base64, verify_hmac_sha1_base64};
use crate::{
    ChannelError, Context, Found, MAX_SHORT_TEXT, Outcome, Result, bounded, set_attribute,
};

/// The `source` of Twilio events.
pub const SOURCE: &str = "twilio";

/// Checks `X-Twilio-Signature` as Twilio specifies: base64 HMAC-SHA1, keyed
/// by the auth token, over the public URL Twilio called (query string
/// included) followed by every POST parameter sorted by name, each name then
/// its value, without delimiters. Like Twilio's own helper libraries, the
/// URL is also tried with its port made explicit or left out, since Twilio
/// may sign either form. A missing header or an unset token is refused.
pub fn verify(
    public_url: &str,
    form: &Form,
    signature: Option<&str>,
    auth_token: &str,
) -> Result<()> {
    let Some(signature) = signature.map(str::trim).filter(|s| !s.is_empty()) else {
        return Err(ChannelError::Unauthorized(
            "missing X-Twilio-Signature header".into(),
        ));
    };
    if auth_token.is_empty() {
        return Err(ChannelError::Unauthorized(
            "no Twilio auth token is configured".into(),
        ));
    }
    let parameters = signed_parameters(form);
    let mut outcome = Err(ChannelError::Unauthorized(
        "signature does not match".into(),
    ));
    for url in std::iter::once(public_url.to_owned()).chain(port_variant(public_url)) {
        let message = format!("{url}{parameters}");
        outcome = verify_hmac_sha1_base64(auth_token.as_bytes(), message.as_bytes(), signature);
        if outcome.is_ok() {
            break;
        }
    }
    outcome
}

/// The `X-Twilio-Signature` Twilio would send for `form` posted to `url`
/// (the full public URL, query included): what [`verify`] checks, for
/// simulators and tests that play Twilio.
pub fn sign(url: &str, form: &Form, auth_token: &str) -> String {
    let message = format!("{url}{}", signed_parameters(form));
    hmac_sha1_base64(auth_token.as_bytes(), message.as_bytes())
}

/// The parameter part of the signed string: pairs sorted by name, then by
/// value, a repeated identical pair counted once (as Twilio's libraries do).
fn signed_parameters(form: &Form) -> String {
    let mut pairs: Vec<(&str, &str)> = form
        .pairs()
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs
        .iter()
        .flat_map(|(name, value)| [*name, *value])
        .collect()
}

/// `url` with its port left out when it has one, or with the scheme's
/// default port when it has none; `None` for URLs that are neither http nor
/// https.
fn port_variant(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let (userinfo, host_and_port) = authority.split_at(host_start);
    // The last ':' starts a port unless it sits inside an IPv6 literal.
    let port_start = host_and_port
        .rfind(':')
        .filter(|&colon| !host_and_port[colon..].contains(']'));
    let host_and_port = match port_start {
        Some(colon) => host_and_port[..colon].to_owned(),
        None => format!("{host_and_port}:{default_port}"),
    };
    Some(format!("{scheme}://{userinfo}{host_and_port}{tail}"))
}

/// A voice status callback (or the incoming-call request, which carries
/// `CallStatus=ringing`) as a call event. `Direction` `inbound` (also when
/// absent) makes `From` the customer, `outbound-api` and `outbound-dial`
/// make `To` the customer; an unknown `CallStatus` or `Direction` is
/// ignored, and so is a call without a usable customer number (an anonymous
/// caller, a `client:` or `sip:` leg), for want of an identifier; such a
/// number is named in the outcome's warnings.
pub fn parse_voice_status(form: &Form, context: &Context) -> Result<Outcome> {
    let call_sid = form.require("CallSid")?.trim();
    let status = form.require("CallStatus")?.trim();
    let Some((event_type, terminal)) = event_type_for(status) else {
        return Ok(Outcome::ignored("twilio.unmapped_status"));
    };
    let raw_direction = form.get("Direction").map(str::trim).unwrap_or_default();
    let direction = match raw_direction {
        "" | "inbound" => Direction::Inbound,
        outbound if outbound.starts_with("outbound") => Direction::Outbound,
        _ => {
            return Ok(Outcome::ignored("twilio.unmapped_direction"));
        }
    };
    let (customer_party, line_party) = match direction {
        Direction::Inbound => ("From", "To"),
        Direction::Outbound => ("To", "From"),
    };
    let event_id = match form
        .get("SequenceNumber")
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(sequence) => format!("{call_sid}:{status}:{sequence}"),
        None => format!("{call_sid}:{status}"),
    };
    let display_name = match direction {
        Direction::Inbound => form.get("CallerName").and_then(caller_name),
        Direction::Outbound => None,
    };
    let mut draft = EventDraft {
        event_id: Some(event_id),
        occurred_at: form.get("Timestamp").and_then(rfc2822),
        conversation_id: Some(call_sid.to_owned()),
        duration_seconds: form
            .get("CallDuration")
            .and_then(|raw| raw.trim().parse().ok()),
        outcome: terminal.then(|| status.to_owned()),
        display_name,
        ..crate::draft(Channel::Phone, SOURCE, event_type, direction)
    };
    for (attribute, parameter) in [
        ("twilio.account_sid", "AccountSid"),
        ("twilio.direction", "Direction"),
        ("twilio.parent_call_sid", "ParentCallSid"),
        ("twilio.forwarded_from", "ForwardedFrom"),
        ("twilio.answered_by", "AnsweredBy"),
        ("twilio.sip_response_code", "SipResponseCode"),
    ] {
        if let Some(value) = form.get(parameter) {
            set_attribute(&mut draft, attribute, value);
        }
    }
    if let Some(line) = form.get(line_party) {
        set_attribute(&mut draft, "twilio.line", line);
    }
    let warnings = crate::identify(
        &mut draft,
        [(
            IdentifierKind::Phone,
            customer_party.to_owned(),
            form.get(customer_party),
        )],
        context,
    );
    Ok(crate::events_or_ignored(
        vec![Found::whole(draft)],
        warnings,
    ))
}

/// The event type of a `CallStatus`, and whether the call is over.
fn event_type_for(status: &str) -> Option<(EventType, bool)> {
    Some(match status {
        "queued" | "initiated" | "ringing" => (EventType::CallStarted, false),
        "in-progress" => (EventType::CallAnswered, false),
        "completed" => (EventType::CallEnded, true),
        "busy" | "failed" | "no-answer" | "canceled" => (EventType::CallMissed, true),
        _ => return None,
    })
}

/// Twilio's `Timestamp` (RFC 2822, "Mon, 16 Aug 2010 03:45:01 +0000") as
/// RFC 3339; `None` when it does not parse (the time of receipt is used).
fn rfc2822(raw: &str) -> Option<String> {
    DateTime::parse_from_rfc2822(raw.trim())
        .ok()
        .map(|at| crate::rfc3339(at.with_timezone(&Utc)))
}

/// Caller-ID names that say nothing about who is calling.
const GENERIC_CALLER_NAMES: &[&str] = &[
    "ANONYMOUS",
    "BLOCKED",
    "CELL PHONE",
    "NO CALLER ID",
    "NOT AVAILABLE",
    "OUT OF AREA",
    "PRIVATE",
    "PRIVATE CALLER",
    "PRIVATE NUMBER",
    "RESTRICTED",
    "TOLL FREE CALL",
    "TOLL FREE CALLER",
    "UNAVAILABLE",
    "UNKNOWN",
    "UNKNOWN CALLER",
    "UNKNOWN NAME",
    "WIRELESS CALLER",
];

/// `CallerName` when it looks like a person's or company's name: some
/// letters, no digits or addresses, not a generic caller-ID placeholder.
fn caller_name(raw: &str) -> Option<String> {
    let name = raw.trim();
    let letters = name.chars().filter(|c| c.is_alphabetic()).count();
    if letters < 2 || name.chars().any(|c| c.is_ascii_digit()) || name.contains(['@', ':']) {
        return None;
    }
    let folded: Vec<&str> = name.split_whitespace().collect();
    let upper = folded.join(" ").to_uppercase();
    if GENERIC_CALLER_NAMES.contains(&upper.as_str()) {
        return None;
    }
    bounded(name, MAX_SHORT_TEXT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_variants_toggle_the_default_port() {
        assert_eq!(
            port_variant("https://example.com/hook?x=1").as_deref(),
            Some("https://example.com:443/hook?x=1")
        );
        assert_eq!(
            port_variant("https://example.com:443/hook").as_deref(),
            Some("https://example.com/hook")
        );
        assert_eq!(
            port_variant("http://example.com").as_deref(),
            Some("http://example.com:80")
        );
        assert_eq!(
            port_variant("https://user:pw@example.com:8443/a").as_deref(),
            Some("https://user:pw@example.com/a")
        );
        assert_eq!(
            port_variant("https://[::1]/a").as_deref(),
            Some("https://[::1]:443/a")
        );
        assert_eq!(
            port_variant("https://[::1]:8443/a").as_deref(),
            Some("https://[::1]/a")
        );
        assert_eq!(port_variant("ftp://example.com/a"), None);
        assert_eq!(port_variant("not a url"), None);
    }

    #[test]
    fn what_sign_produces_verify_accepts() {
        let form =
            Form::parse(b"CallSid=CA1&From=%2B31612345678&CallStatus=ringing").expect("form");
        let url = "https://panorama.example.com/v1/channels/twilio/voice";
        let signature = sign(url, &form, "token");
        assert!(verify(url, &form, Some(&signature), "token").is_ok());
        assert!(verify(url, &form, Some(&signature), "other").is_err());
    }

    #[test]
    fn signed_parameters_sort_by_name_then_value_and_drop_repeats() {
        let form = Form::parse(b"b=2&a=9&a=1&a=1&c=").expect("form");
        assert_eq!(signed_parameters(&form), "a1a9b2c");
    }

    #[test]
    fn statuses_map_to_call_events() {
        assert_eq!(
            event_type_for("queued"),
            Some((EventType::CallStarted, false))
        );
        assert_eq!(
            event_type_for("initiated"),
            Some((EventType::CallStarted, false))
        );
        assert_eq!(
            event_type_for("ringing"),
            Some((EventType::CallStarted, false))
        );
        assert_eq!(
            event_type_for("in-progress"),
            Some((EventType::CallAnswered, false))
        );
        assert_eq!(
            event_type_for("completed"),
            Some((EventType::CallEnded, true))
        );
        for missed in ["busy", "failed", "no-answer", "canceled"] {
            assert_eq!(
                event_type_for(missed),
                Some((EventType::CallMissed, true)),
                "{missed}"
            );
        }
        assert_eq!(event_type_for("answered"), None);
        assert_eq!(event_type_for("Completed"), None);
    }

    #[test]
    fn caller_names_are_kept_only_when_they_name_someone() {
        assert_eq!(
            caller_name(" Anna de Vries ").as_deref(),
            Some("Anna de Vries")
        );
        assert_eq!(caller_name("SMITH JOHN").as_deref(), Some("SMITH JOHN"));
        for generic in [
            "WIRELESS CALLER",
            "Unknown",
            "anonymous",
            "",
            "+14155552671",
            "V1234",
            "client:anna",
            "x",
        ] {
            assert_eq!(caller_name(generic), None, "{generic}");
        }
        assert_eq!(caller_name("Wireless   Caller"), None);
    }

    #[test]
    fn rfc2822_timestamps_become_rfc3339() {
        assert_eq!(
            rfc2822("Mon, 16 Aug 2010 03:45:01 +0000").as_deref(),
            Some("2010-08-16T03:45:01Z")
        );
        assert_eq!(
            rfc2822("Tue, 24 Nov 2026 11:00:00 +0100").as_deref(),
            Some("2026-11-24T10:00:00Z")
        );
        assert_eq!(rfc2822("yesterday"), None);
    }
}
