//! SendGrid Inbound Parse: multipart bodies, parsed or raw mode.

use panorama_channels::sendgrid;

use super::{Target, check_outcome, context, run_bytes};
use crate::driver::{Failure, Session};
use crate::generate::{multipart_with_text, split_first_line};

/// The target.
pub(super) const TARGET: Target = Target {
    name: "sendgrid",
    about: "SendGrid Inbound Parse requests (first line the Content-Type, then the multipart body) -> sendgrid::parse; drafts validate and survive the wire",
    run,
};

fn run(session: &mut Session) -> Result<(), Failure> {
    run_bytes(session, multipart_with_text, property)
}

fn property(input: &[u8]) -> Result<(), String> {
    let (content_type, body) = split_first_line(input);
    let context = context();
    check_outcome(sendgrid::parse(&content_type, body, &context), &context)
}
