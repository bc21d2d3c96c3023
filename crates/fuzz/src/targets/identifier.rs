//! Identifier parsing: every kind, arbitrary Unicode, lengths around the
//! limits.

use panorama_core::arbitrary::{identifier, text};
use panorama_core::limits;
use panorama_core::{Identifier, IdentifierKind, Region};
use proptest::prelude::*;
use proptest::sample::select;

use super::{Target, check_identifier_value};
use crate::driver::{Failure, Session};
use crate::generate::{field_text, split_first_line};

/// The target.
pub(super) const TARGET: Target = Target {
    name: "identifier",
    about: "Identifier::parse for every IdentifierKind with arbitrary Unicode at and past the limits, with and without a default region; what parses is within its limit and parses to itself",
    run,
};

/// Default regions to parse national phone numbers with.
const REGIONS: &[Option<&str>] = &[
    None,
    Some("NL"),
    Some("US"),
    Some("GB"),
    Some("JP"),
    Some("IN"),
];

/// A kind, a raw value, and a default region's code.
type Input = (IdentifierKind, String, Option<&'static str>);

fn region(code: Option<&str>) -> Option<Region> {
    code.and_then(|code| code.parse().ok())
}

fn run(session: &mut Session) -> Result<(), Failure> {
    // A seed: the kind on the first line, the raw value after it.
    let seeds: Vec<(String, Input)> = session
        .corpus()
        .into_iter()
        .filter_map(|(name, seed)| {
            let (kind, raw) = split_first_line(&seed);
            let kind = kind.parse().ok()?;
            let raw = String::from_utf8_lossy(raw).into_owned();
            Some((name, (kind, raw, Some("NL"))))
        })
        .collect();
    session.replay(&seeds, |(kind, raw, code)| property(*kind, raw, *code))?;
    let raw = prop_oneof![
        3 => field_text(),
        1 => text(limits::PHONE_INPUT),
        1 => text(limits::EMAIL),
        1 => text(limits::PLATFORM_ID),
        1 => text(limits::EMAIL_LOCAL_PART).prop_map(|local| format!("{local}@example.com")),
        1 => any::<String>(),
    ];
    let kind = select(&IdentifierKind::ALL[..]);
    let generated = (kind, raw, select(REGIONS));
    // The contract's own identifier generator: valid values near the limits.
    let drafted = (identifier(), select(REGIONS))
        .prop_filter_map("a known kind", |(draft, code)| {
            Some((draft.kind.parse().ok()?, draft.value, code))
        });
    session.check(prop_oneof![generated, drafted], |(kind, raw, code)| {
        property(kind, &raw, code)
    })
}

fn property(kind: IdentifierKind, raw: &str, code: Option<&str>) -> Result<(), String> {
    let Ok(parsed) = Identifier::parse(kind, raw, region(code)) else {
        return Ok(());
    };
    if parsed.kind() != kind {
        return Err(format!("{kind} parsed as {}", parsed.kind()));
    }
    check_identifier_value(kind, parsed.value())?;
    // Normalised values are stored and compared as they are: parsing one
    // again, without a region, must give it back unchanged.
    match Identifier::parse(kind, parsed.value(), None) {
        Ok(again) if again == parsed => Ok(()),
        Ok(again) => Err(format!(
            "{kind} {:?} normalises again to {:?}",
            parsed.value(),
            again.value()
        )),
        Err(error) => Err(format!(
            "{kind} {:?} does not parse again: {error}",
            parsed.value()
        )),
    }
}
