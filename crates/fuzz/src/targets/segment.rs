//! Segment Spec JSON bodies -> segment::parse.

use panorama_channels::segment;

use super::{Target, check_outcome, context, run_bytes};
use crate::driver::{Failure, Session};
use crate::generate::json_with_text;

/// The target.
pub(super) const TARGET: Target = Target {
    name: "segment",
    about: "Segment Spec calls and batches -> segment::parse; drafts validate and survive the wire",
    run,
};

fn run(session: &mut Session) -> Result<(), Failure> {
    run_bytes(session, json_with_text, property)
}

fn property(input: &[u8]) -> Result<(), String> {
    let context = context();
    let contacts = ["Support Ticket Created".to_owned()];
    check_outcome(segment::parse(input, &context, &contacts), &context)
}
