//! Raw RFC 5322 messages (`POST /v1/channels/email/mime`, `message/rfc822`)
//! from any mail server, e.g. a Postfix pipe or a Sieve/procmail filter.
//! Source `mime`; the mapping itself is [`crate::email`]'s. The sender is
//! verified by the message's topmost `Authentication-Results` header, the
//! one the receiving MTA prepends.

use crate::email::{self, Envelope, SenderCheck};
use crate::{Context, Outcome, Result};

/// The source name of events from raw messages.
pub const SOURCE: &str = "mime";

/// Maps one raw message to its event. Bytes that are not a message are
/// malformed; a message without a usable From address is ignored
/// (`no_identifier`).
pub fn parse(raw: &[u8], context: &Context) -> Result<Outcome> {
    let envelope = Envelope {
        sender_check: SenderCheck::Headers,
        ..Envelope::default()
    };
    email::parse_raw(raw, SOURCE, &envelope, context)
}
