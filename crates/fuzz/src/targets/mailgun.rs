//! Mailgun route forwards: form or multipart bodies, signed.

use panorama_channels::form::Form;
use panorama_channels::mailgun;
use panorama_channels::multipart;
use proptest::prelude::*;

use super::{Target, check_outcome, context_at};
use crate::driver::{Failure, Session};
use crate::generate::{Bytes, encode_form, field_text, split_first_line};

/// The target.
pub(super) const TARGET: Target = Target {
    name: "mailgun",
    about: "Mailgun forwards (first line the Content-Type, then a form or multipart body), signed anew after their fields are filled with Unicode -> mailgun::parse with its signature check; drafts validate and survive the wire",
    run,
};

/// The signing key of the seeds (the adapter tests' key).
const SIGNING_KEY: &str = "mailgun-test-signing-key-1f6b";
/// The seeds' signed timestamp; requests arrive a minute later.
const SEED_TIMESTAMP: i64 = 1_772_445_600;

fn run(session: &mut Session) -> Result<(), Failure> {
    let seeds: Vec<(String, Bytes)> = session
        .corpus()
        .into_iter()
        .map(|(name, seed)| (name, Bytes(seed)))
        .collect();
    session.replay(&seeds, |input| property(&input.0))?;
    let raw: Vec<Vec<u8>> = seeds.into_iter().map(|(_, seed)| seed.0).collect();
    let strategy = prop_oneof![
        1 => crate::generate::bytes(2048),
        2 => crate::generate::mutated(raw.clone()),
        4 => resigned(raw),
    ];
    session.check(strategy, |input| property(&input.0))
}

fn property(input: &[u8]) -> Result<(), String> {
    let (content_type, body) = split_first_line(input);
    let context =
        context_at(chrono::DateTime::from_timestamp(SEED_TIMESTAMP + 60, 0).unwrap_or_default());
    let forward = mailgun::parse(&content_type, body, SIGNING_KEY, &context);
    check_outcome(forward.map(|forward| forward.outcome), &context)
}

/// The seeds with arbitrary Unicode in their fields (the timestamp and
/// token too, now and then), signed again so most get past the check.
fn resigned(seeds: Vec<Vec<u8>>) -> BoxedStrategy<Bytes> {
    (
        proptest::sample::select(seeds),
        proptest::collection::vec(field_text(), 1..12),
        proptest::collection::vec(any::<bool>(), 1..24),
    )
        .prop_map(|(seed, texts, mask)| Bytes(fill_and_sign(&seed, &texts, &mask)))
        .boxed()
}

fn fill_and_sign(seed: &[u8], texts: &[String], mask: &[bool]) -> Vec<u8> {
    let (content_type, body) = split_first_line(seed);
    let mut input = format!("{content_type}\r\n").into_bytes();
    if content_type.starts_with("multipart/") {
        let Ok(mut parts) = multipart::parse(&content_type, body) else {
            return seed.to_vec();
        };
        for (i, part) in parts.iter_mut().enumerate() {
            if part.filename.is_none() && part.name != "signature" && mask[i % mask.len()] {
                part.data = texts[i % texts.len()].clone().into_bytes();
            }
        }
        let field = |name: &str| {
            parts
                .iter()
                .find(|part| part.name == name)
                .map(|part| part.text().into_owned())
                .unwrap_or_default()
        };
        let signature = mailgun::sign(&field("timestamp"), &field("token"), SIGNING_KEY);
        for part in parts.iter_mut().filter(|part| part.name == "signature") {
            part.data = signature.clone().into_bytes();
        }
        let boundary = crate::generate::boundary_of(&content_type).unwrap_or("boundary");
        input.extend(multipart::encode(boundary, &parts));
    } else {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(body)
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        let filled = encode_form(&pairs, texts, mask);
        let Ok(form) = Form::parse(&filled) else {
            return seed.to_vec();
        };
        let field = |name: &str| form.get(name).unwrap_or("").to_owned();
        let signature = mailgun::sign(&field("timestamp"), &field("token"), SIGNING_KEY);
        let signed: Vec<(String, String)> = form
            .pairs()
            .iter()
            .map(|(name, value)| {
                let value = if name == "signature" {
                    &signature
                } else {
                    value
                };
                (name.clone(), value.clone())
            })
            .collect();
        input.extend(encode_form(&signed, &[String::new()], &[false]));
    }
    input
}
