//! CTI JSON bodies -> cti::parse.

use panorama_channels::cti;

use super::{Target, check_outcome, context, run_bytes};
use crate::driver::{Failure, Session};
use crate::generate::json_with_text;

/// The target.
pub(super) const TARGET: Target = Target {
    name: "cti",
    about: "CTI JSON bodies -> cti::parse; drafts validate and survive the wire",
    run,
};

fn run(session: &mut Session) -> Result<(), Failure> {
    run_bytes(session, json_with_text, property)
}

fn property(input: &[u8]) -> Result<(), String> {
    let context = context();
    check_outcome(cti::parse(input, &context), &context)
}
