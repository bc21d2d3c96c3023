//! Request bodies as providers encode them: forms, JSON, SendGrid's
//! multipart around a raw message, Mailgun's fields with their signature.
//! Shared by the webhook requests and by the drafts made of them locally, so
//! both see the very same bytes.

use chrono::{DateTime, Utc};
use panorama_channels::mailgun;
use panorama_channels::multipart::{self, Part};

use crate::shop::SUPPORT_ADDRESS;

/// Multipart boundary of SendGrid bodies (never in a simulated message).
pub(crate) const BOUNDARY: &str = "xYzZY-panorama-simulate";
/// Signs Mailgun bodies parsed locally, when no key is configured.
pub(crate) const LOCAL_KEY: &str = "panorama-simulate-local";

/// A form body (`application/x-www-form-urlencoded`).
pub(crate) fn form_body(pairs: &[(String, String)]) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
        .into_bytes()
}

/// A JSON body.
pub(crate) fn json_body(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// SendGrid Inbound Parse's multipart body around a raw message, with the
/// verdict SendGrid reports for a sender whose domain signs its mail (DKIM
/// passed for the From address's domain), so the sender is verified.
pub(crate) fn sendgrid_body(mime: &str) -> Vec<u8> {
    let domain = mime
        .lines()
        .find_map(|line| line.strip_prefix("From: "))
        .and_then(|from| from.rsplit('@').next())
        .map(|domain| domain.trim().trim_end_matches('>'))
        .unwrap_or_default();
    let dkim = format!("{{@{domain} : pass}}");
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
            part("to", SUPPORT_ADDRESS.as_bytes()),
            part("dkim", dkim.as_bytes()),
        ],
    )
}

/// Mailgun's fields plus a fresh signature: a token Mailgun never repeats,
/// timestamped `now` (the gateway accepts five minutes ahead, nine hours
/// behind).
pub(crate) fn mailgun_pairs(
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
