//! `panorama_proto::decode`: the wire format read back from the bus.

use panorama_core::arbitrary::draft_in_context;
use panorama_core::{EventDraft, ValidationContext};
use proptest::prelude::*;

use super::{Target, check_event};
use crate::driver::{Failure, Session};
use crate::generate::{Bytes, bytes, mutations_of};

/// The target.
pub(super) const TARGET: Target = Target {
    name: "proto_decode",
    about: "arbitrary bytes and mutated encodings of valid events -> panorama_proto::decode; what decodes holds to the limits and decodes again to itself",
    run,
};

fn run(session: &mut Session) -> Result<(), Failure> {
    // The seeds are the contract target's drafts, encoded: one corpus for
    // both, kept as readable JSON.
    let seeds: Vec<(String, Bytes)> = crate::driver::corpus(super::contract::JSON_TARGET.name)
        .into_iter()
        .filter_map(|(name, json)| Some((name, Bytes(encoded(&json)?))))
        .collect();
    session.replay(&seeds, |input| property(&input.0))?;
    let raw: Vec<Vec<u8>> = seeds.into_iter().map(|(_, seed)| seed.0).collect();
    let valid_encodings = draft_in_context().prop_map(|(context, draft)| {
        draft
            .validate(&context)
            .map(|event| panorama_proto::encode(&event))
            .unwrap_or_default()
    });
    let strategy = prop_oneof![
        1 => bytes(1024),
        2 => crate::generate::mutated(raw),
        3 => mutations_of(valid_encodings),
    ];
    session.check(strategy, |input| property(&input.0))
}

/// A JSON draft of the corpus, validated and encoded.
fn encoded(json: &[u8]) -> Option<Vec<u8>> {
    let draft: EventDraft = serde_json::from_slice(json).ok()?;
    let context = ValidationContext {
        received_at: super::received_at(),
        default_region: "NL".parse().ok(),
    };
    let event = draft.validate(&context).ok()?;
    Some(panorama_proto::encode(&event))
}

fn property(input: &[u8]) -> Result<(), String> {
    match panorama_proto::decode(input) {
        Ok(event) => check_event(&event),
        Err(error) => {
            let _ = error.reason();
            Ok(())
        }
    }
}
