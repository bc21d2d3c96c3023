//! Raw RFC 5322 messages (`POST /v1/channels/email/mime`, `message/rfc822`)
//! from any mail server, e.g. a Postfix pipe or a Sieve/procmail filter.
//! Source `mime`; the mapping itself is [`crate::email`]'s. The sender is
//! verified by the topmost `Authentication-Results` header of the receiving
//! MTA, known by its authserv-id (`PANORAMA_MIME_AUTHSERV_IDS`): a header
//! of any other name is the sender's own writing.

use crate::email::{self, Envelope, SenderCheck};
use crate::{Context, Outcome, Result};

/// The source name of events from raw messages.
pub const SOURCE: &str = "mime";

/// Maps one raw message to its event; `authserv_ids` name the mail servers
/// whose `Authentication-Results` header vouches for the sender (none: the
/// sender stays claimed). Bytes that are not a message are malformed; a
/// message without a usable From address is ignored (`no_identifier`).
pub fn parse(raw: &[u8], context: &Context, authserv_ids: &[String]) -> Result<Outcome> {
    let envelope = Envelope {
        sender_check: SenderCheck::Headers(authserv_ids.to_vec()),
        ..Envelope::default()
    };
    email::parse_raw(raw, SOURCE, &envelope, context)
}
