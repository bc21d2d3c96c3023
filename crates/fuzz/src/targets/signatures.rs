//! The webhook signature checks: Twilio, Meta and Mailgun.

use panorama_channels::form::Form;
use panorama_channels::{mailgun, meta, twilio};
use proptest::collection::vec;
use proptest::prelude::*;

use super::{Target, received_at};
use crate::driver::{Failure, Session};
use crate::generate::{Bytes, bytes, field_text};

/// The target.
pub(super) const TARGET: Target = Target {
    name: "signatures",
    about: "Twilio, Meta and Mailgun signature checks with arbitrary Unicode URLs, fields, keys and signatures: never panic; what sign() makes verifies, under another key it does not",
    run,
};

/// One request's worth of signed material.
#[derive(Debug, Clone)]
struct Signed {
    url: String,
    pairs: Vec<(String, String)>,
    body: Bytes,
    key: String,
    token: String,
    forged: String,
}

fn signed() -> impl Strategy<Value = Signed> {
    (
        prop_oneof![
            Just("https://panorama.example/v1/channels/twilio/voice".to_owned()),
            Just("https://panorama.example:443/v1/channels/twilio/voice?x=1".to_owned()),
            field_text().prop_map(|path| format!("https://panorama.example/{path}")),
            field_text(),
        ],
        vec((field_text(), field_text()), 0..6),
        bytes(512),
        field_text(),
        field_text(),
        field_text(),
    )
        .prop_map(|(url, pairs, body, key, token, forged)| Signed {
            url,
            pairs,
            body,
            key,
            token,
            forged,
        })
}

fn run(session: &mut Session) -> Result<(), Failure> {
    session.check(signed(), |input| property(&input))
}

fn property(input: &Signed) -> Result<(), String> {
    let key = &input.key;
    let other_key = format!("{key}x");
    let form = Form::from_pairs(input.pairs.clone());
    let _ = twilio::verify(&input.url, &form, Some(&input.forged), key);
    let _ = meta::verify(&input.body.0, Some(&input.forged), key);
    let now = received_at();
    let timestamp = now.timestamp().to_string();
    let _ = mailgun::verify(&input.forged, &input.token, &input.forged, key, now);
    let _ = mailgun::SignedToken::new(&input.token, &input.forged);
    if key.is_empty() {
        // An empty key is refused whatever the signature.
        return Ok(());
    }
    let twilio_signature = twilio::sign(&input.url, &form, key);
    twilio::verify(&input.url, &form, Some(&twilio_signature), key)
        .map_err(|error| format!("twilio: own signature refused: {error}"))?;
    if twilio::verify(&input.url, &form, Some(&twilio_signature), &other_key).is_ok() {
        return Err("twilio: signature accepted under another key".into());
    }
    let meta_signature = meta::sign(&input.body.0, key);
    meta::verify(&input.body.0, Some(&meta_signature), key)
        .map_err(|error| format!("meta: own signature refused: {error}"))?;
    if meta::verify(&input.body.0, Some(&meta_signature), &other_key).is_ok() {
        return Err("meta: signature accepted under another key".into());
    }
    if input.token.trim().is_empty() {
        // Mailgun always sends a token: a blank one is refused as missing.
        return Ok(());
    }
    let mailgun_signature = mailgun::sign(&timestamp, &input.token, key);
    mailgun::verify(&timestamp, &input.token, &mailgun_signature, key, now)
        .map_err(|error| format!("mailgun: own signature refused: {error}"))?;
    if mailgun::verify(
        &timestamp,
        &input.token,
        &mailgun_signature,
        &other_key,
        now,
    )
    .is_ok()
    {
        return Err("mailgun: signature accepted under another key".into());
    }
    Ok(())
}
