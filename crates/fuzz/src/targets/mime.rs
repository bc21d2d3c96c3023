//! Raw RFC 5322 messages: the MIME path of the email adapters.

use panorama_channels::mime;

use super::{Target, check_outcome, context, run_bytes};
use crate::driver::{Failure, Session};
use crate::generate::email_message;

/// The target.
pub(super) const TARGET: Target = Target {
    name: "mime",
    about: "raw RFC 5322 messages (generated with Unicode headers and bodies, raw and encoded words) -> mime::parse; drafts validate and survive the wire",
    run,
};

fn run(session: &mut Session) -> Result<(), Failure> {
    run_bytes(session, |_seeds| email_message(), property)
}

fn property(input: &[u8]) -> Result<(), String> {
    let context = context();
    // One trusted server, so a generated `Authentication-Results` header
    // naming it reaches the result parser too.
    let trusted = ["mx.example.net".to_owned()];
    check_outcome(mime::parse(input, &context, &trusted), &context)
}
