//! web event JSON bodies -> web::parse.

use panorama_channels::web;

use super::{Target, check_outcome, context, run_bytes};
use crate::driver::{Failure, Session};
use crate::generate::json_with_text;

/// The target.
pub(super) const TARGET: Target = Target {
    name: "web_events",
    about: "web event JSON bodies -> web::parse; drafts validate and survive the wire",
    run,
};

fn run(session: &mut Session) -> Result<(), Failure> {
    run_bytes(session, json_with_text, property)
}

fn property(input: &[u8]) -> Result<(), String> {
    let context = context();
    check_outcome(web::parse(input, &context), &context)
}
