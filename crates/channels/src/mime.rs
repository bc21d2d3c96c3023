//! Raw RFC 5322 messages (`POST /v1/channels/email/mime`, `message/rfc822`)
//! from any mail server, e.g. a Postfix pipe or a Sieve/procmail filter.
//! Source `mime`; the mapping itself is [`crate::email`]'s.

use crate::email::{self, Envelope};
use crate::{Context, Outcome, Result};

/// The source name of events from raw messages.
pub const SOURCE: &str = "mime";

/// Maps one raw message to its event. Bytes that are not a message are
/// malformed; a message without a usable From address is ignored
/// (`no_identifier`).
pub fn parse(raw: &[u8], context: &Context) -> Result<Outcome> {
    email::parse_raw(raw, SOURCE, &Envelope::default(), context)
}
