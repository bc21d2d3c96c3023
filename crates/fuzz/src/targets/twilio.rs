//! Twilio voice status callbacks: a form body, parsed and mapped.

use panorama_channels::form::Form;
use panorama_channels::twilio;

use super::{Target, check_outcome, context, run_bytes};
use crate::driver::{Failure, Session};
use crate::generate::form_with_text;

/// The target.
pub(super) const TARGET: Target = Target {
    name: "twilio_voice",
    about: "Twilio voice status form bodies -> Form::parse -> twilio::parse_voice_status; drafts validate and survive the wire",
    run,
};

fn run(session: &mut Session) -> Result<(), Failure> {
    run_bytes(session, form_with_text, property)
}

fn property(input: &[u8]) -> Result<(), String> {
    let Ok(form) = Form::parse(input) else {
        return Ok(());
    };
    let context = context();
    check_outcome(twilio::parse_voice_status(&form, &context), &context)
}
