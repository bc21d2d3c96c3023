//! Mailgun route forwards (`POST /v1/channels/mailgun/inbound`), source
//! `mailgun`: a route's `forward("https://.../v1/channels/mailgun/inbound")`
//! action posts `application/x-www-form-urlencoded`, or `multipart/form-data`
//! when the message has attachments.
//!
//! Every POST is signed: `signature` = hex HMAC-SHA256 of `timestamp` +
//! `token` under the webhook signing key. A POST is accepted only when the
//! signature matches, the timestamp lies no more than five minutes ahead of
//! now and no more than nine hours behind (Mailgun retries a failed forward
//! for eight hours, and does not say whether a retry is signed anew), and
//! the token does not belong to a request accepted before ([`ReplayGuard`]: the
//! caller checks the token [`parse`] returns, and remembers it once the
//! request's events are published).
//!
//! Fields of the parsed variant: `sender`, `from`, `recipient`, `subject`,
//! `body-plain`, `stripped-text`, `body-html`, `message-headers` (a JSON array
//! of `[name, value]` pairs, in order), `Message-Id`, `In-Reply-To`,
//! `References`, `attachment-count`; the raw variant (a forward URL ending in
//! `mime`) posts the whole message as `body-mime` instead. The sender is
//! verified when every `X-Mailgun-Spf` in `message-headers` says `Pass` for
//! the envelope `sender`'s domain, aligned with the From address; a raw
//! forward carries no verdict, so its sender is claimed.

use std::collections::{HashSet, VecDeque};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::email::{self, Authenticated, BODY_STRUCTURE_HEADERS, Envelope, SenderCheck};
use crate::form::Form;
use crate::{ChannelError, Context, Outcome, Result, multipart, signature};

/// The source name of Mailgun events.
pub const SOURCE: &str = "mailgun";
/// How far a signed timestamp may lie ahead of now (clock skew).
pub const MAX_TIMESTAMP_SKEW_SECONDS: i64 = 5 * 60;
/// How far a signed timestamp may lie behind now: Mailgun's eight hours of
/// retries, and an hour to spare. A replay within that window carries the
/// same message, hence the same event id, so it adds nothing even when the
/// replay guard has forgotten its token.
pub const MAX_TIMESTAMP_AGE_SECONDS: i64 = 9 * 3600;
/// How many tokens a [`ReplayGuard`] remembers at most by default.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

/// Checks a Mailgun webhook signature: hex HMAC-SHA256 of `timestamp` +
/// `token` under `signing_key`, with the timestamp no more than five minutes
/// ahead of `now` and nine hours behind it. Any failure is `Unauthorized`.
pub fn verify(
    timestamp: &str,
    token: &str,
    signature: &str,
    signing_key: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    if signing_key.is_empty() {
        // An empty key is a key anybody can sign with.
        return Err(ChannelError::Unauthorized(
            "no Mailgun signing key is configured".into(),
        ));
    }
    if timestamp.trim().is_empty() || token.trim().is_empty() || signature.trim().is_empty() {
        return Err(ChannelError::Unauthorized(
            "the Mailgun timestamp, token or signature is missing".into(),
        ));
    }
    let signed = [timestamp.as_bytes(), token.as_bytes()].concat();
    signature::verify_hmac_sha256_hex(signing_key.as_bytes(), &signed, signature)?;
    let seconds = timestamp_seconds(timestamp)?;
    let age = now.timestamp().saturating_sub(seconds);
    if age < -MAX_TIMESTAMP_SKEW_SECONDS {
        return Err(ChannelError::Unauthorized(
            "the Mailgun timestamp lies more than five minutes ahead".into(),
        ));
    }
    if age > MAX_TIMESTAMP_AGE_SECONDS {
        return Err(ChannelError::Unauthorized(
            "the Mailgun timestamp is more than nine hours old".into(),
        ));
    }
    Ok(())
}

/// The `signature` field Mailgun would send with `timestamp` and `token`:
/// what [`verify`] checks, for simulators and tests that play Mailgun.
pub fn sign(timestamp: &str, token: &str, signing_key: &str) -> String {
    let signed = [timestamp.as_bytes(), token.as_bytes()].concat();
    signature::hmac_sha256_hex(signing_key.as_bytes(), &signed)
}

/// Tokens of signed requests accepted within the timestamp window, so a
/// captured request cannot be replayed while its timestamp is still fresh.
/// A token is remembered only once what its request carried was published
/// ([`ReplayGuard::remember`]): a retry after a failure (Mailgun retries
/// with the same token) is accepted, and two concurrent copies are harmless
/// since events are idempotent by id. In memory and per process (each
/// gateway instance guards its own traffic); bounded: past its capacity the
/// oldest token is forgotten first. Tokens are kept as 128-bit digests, so
/// memory does not depend on what callers send.
#[derive(Debug)]
pub struct ReplayGuard {
    seen: HashSet<[u8; 16]>,
    /// Digests with the moment they may be forgotten, oldest first.
    order: VecDeque<(i64, [u8; 16])>,
    capacity: usize,
}

/// The token of a verified request, to check against a [`ReplayGuard`] and
/// remember there once the request is done with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedToken {
    digest: [u8; 16],
    /// When the timestamp leaves the window (and [`verify`] refuses it
    /// anyway), in seconds since the epoch.
    forget_at: i64,
}

impl SignedToken {
    /// The token of a request signed with `token` at `timestamp`.
    pub fn new(token: &str, timestamp: &str) -> Result<Self> {
        Ok(SignedToken {
            digest: token_digest(token),
            forget_at: timestamp_seconds(timestamp)? + MAX_TIMESTAMP_SKEW_SECONDS,
        })
    }
}

/// A verified route forward: what it amounts to, and its token, which the
/// caller checks against its [`ReplayGuard`] before publishing and
/// remembers there once the events are published.
#[derive(Debug, Clone, PartialEq)]
pub struct Forward {
    /// The events, or why there are none.
    pub outcome: Outcome,
    /// The request's token.
    pub token: SignedToken,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        ReplayGuard::with_capacity(DEFAULT_REPLAY_CAPACITY)
    }
}

impl ReplayGuard {
    /// A guard remembering up to [`DEFAULT_REPLAY_CAPACITY`] tokens.
    pub fn new() -> Self {
        ReplayGuard::default()
    }

    /// A guard remembering up to `capacity` tokens (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        ReplayGuard {
            seen: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// `Unauthorized` when `token` is remembered (its request was accepted
    /// before). Call only after the signature is verified.
    pub fn check(&mut self, token: &SignedToken, now: DateTime<Utc>) -> Result<()> {
        self.forget_expired(now);
        if self.seen.contains(&token.digest) {
            return Err(ChannelError::Unauthorized(
                "the Mailgun token was already used".into(),
            ));
        }
        Ok(())
    }

    /// Remembers `token` until its timestamp leaves the window. Call once
    /// its request's events are published (or it had none), never before:
    /// a request that failed must stay acceptable for the provider's retry.
    pub fn remember(&mut self, token: SignedToken, now: DateTime<Utc>) {
        self.forget_expired(now);
        if token.forget_at < now.timestamp() || self.seen.contains(&token.digest) {
            return;
        }
        while self.order.len() >= self.capacity {
            let Some((_, oldest)) = self.order.pop_front() else {
                break;
            };
            self.seen.remove(&oldest);
        }
        self.seen.insert(token.digest);
        self.order.push_back((token.forget_at, token.digest));
    }

    /// Forgets the tokens whose window has passed. `order` is by insertion,
    /// and a token's window follows its timestamp, so this may keep a few
    /// expired ones behind a later one: harmless, as [`verify`] refuses
    /// their timestamps anyway.
    fn forget_expired(&mut self, now: DateTime<Utc>) {
        while let Some(&(expiry, digest)) = self.order.front() {
            if expiry >= now.timestamp() {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&digest);
        }
    }

    /// How many tokens are remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no token is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// Verifies one route forward (signature and freshness), then maps it to
/// its event. A signed POST that is no inbound message (e.g. a tracking
/// webhook pointed at this URL) is ignored (`mailgun.not_a_message`).
/// Replays are the caller's to refuse: it checks [`Forward::token`] with
/// [`ReplayGuard::check`] and remembers it once the event is published, so
/// its guard is not held while a large message is parsed.
pub fn parse(
    content_type: &str,
    body: &[u8],
    signing_key: &str,
    context: &Context,
) -> Result<Forward> {
    let media_type = content_type.trim_start().to_ascii_lowercase();
    // `body-mime` is kept as bytes: a message may carry 8-bit text in any
    // charset, which decoding the field as UTF-8 would destroy.
    let (form, raw_mime) = if media_type.starts_with("application/x-www-form-urlencoded") {
        (Form::parse(body)?, urlencoded_value(body, "body-mime"))
    } else if media_type.starts_with("multipart/form-data") {
        let parts = multipart::parse(content_type, body)?;
        let raw_mime = parts
            .iter()
            .find(|part| part.name == "body-mime")
            .map(|part| part.data.clone());
        (multipart::text_fields(&parts), raw_mime)
    } else {
        return Err(ChannelError::malformed(
            "content-type",
            "Mailgun posts application/x-www-form-urlencoded or multipart/form-data",
        ));
    };
    let field = |name: &str| form.get(name).unwrap_or("");
    let (timestamp, token) = (field("timestamp"), field("token"));
    verify(
        timestamp,
        token,
        field("signature"),
        signing_key,
        context.received_at,
    )?;
    let token = SignedToken::new(token, timestamp)?;
    let outcome = map_forward(&form, raw_mime, context)?;
    Ok(Forward { outcome, token })
}

/// The event of a verified forward's fields (or of its `body-mime`).
fn map_forward(form: &Form, raw_mime: Option<Vec<u8>>, context: &Context) -> Result<Outcome> {
    let text = |name: &str| {
        form.get(name)
            .map(str::trim)
            .filter(|value| !value.is_empty())
    };
    let headers = message_headers(form);
    // Mailgun's verdict on the envelope sender, from the header list it
    // posts (a raw `body-mime` forward carries none: its sender is claimed).
    let spf: Vec<&str> = headers
        .iter()
        .flatten()
        .filter(|(name, _)| name.eq_ignore_ascii_case("X-Mailgun-Spf"))
        .map(|(_, value)| value.as_str())
        .collect();
    let mut envelope = Envelope {
        recipient: text("recipient").map(str::to_owned),
        sender: text("sender").map(str::to_owned),
        sender_check: SenderCheck::Reported(Authenticated::mailgun(spf, text("sender"))),
        ..Envelope::default()
    };
    if let Some(raw) = raw_mime.filter(|raw| !raw.iter().all(u8::is_ascii_whitespace)) {
        return email::parse_raw(&raw, SOURCE, &envelope, context);
    }
    if headers.is_none() && text("from").is_none() {
        return Ok(Outcome::ignored("mailgun.not_a_message"));
    }
    let headers = headers.unwrap_or_default();

    let mut block = Vec::new();
    let mut present = HashSet::new();
    for (name, value) in &headers {
        let valid_name =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        let structural = BODY_STRUCTURE_HEADERS
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name));
        if valid_name && !structural {
            email::push_header(&mut block, name, value);
            present.insert(name.to_ascii_lowercase());
        }
    }
    // Top-level fields fill in what the header list lacks.
    for (field, header) in [
        ("from", "From"),
        ("To", "To"),
        ("subject", "Subject"),
        ("Date", "Date"),
        ("Message-Id", "Message-ID"),
        ("In-Reply-To", "In-Reply-To"),
        ("References", "References"),
    ] {
        if present.contains(&header.to_ascii_lowercase()) {
            continue;
        }
        if let Some(value) = text(field) {
            email::push_header(&mut block, header, value);
        }
    }
    for (key, header) in [
        ("spf", "X-Mailgun-Spf"),
        ("dkim", "X-Mailgun-Dkim-Check-Result"),
        ("spam_score", "X-Mailgun-Sscore"),
    ] {
        if let Some((_, value)) = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(header))
        {
            envelope.attributes.push((key, value.clone()));
        }
    }
    envelope.stripped_text = text("stripped-text").map(str::to_owned);
    envelope.attachments = Some(
        text("attachment-count")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    );
    let raw = email::assemble(&block, text("body-plain"), text("body-html"));
    email::parse_raw(&raw, SOURCE, &envelope, context)
}

/// `message-headers`: `[["Received", "..."], ["From", "..."], ...]`; `None`
/// when absent or not that shape.
fn message_headers(form: &Form) -> Option<Vec<(String, String)>> {
    let Ok(Value::Array(pairs)) = serde_json::from_str::<Value>(form.get("message-headers")?)
    else {
        return None;
    };
    Some(
        pairs
            .iter()
            .filter_map(|pair| match pair.as_array()?.as_slice() {
                [Value::String(name), Value::String(value)] => Some((name.clone(), value.clone())),
                _ => None,
            })
            .collect(),
    )
}

/// The first value of `name` in a urlencoded body, percent-decoded to bytes
/// (not to text).
fn urlencoded_value(body: &[u8], name: &str) -> Option<Vec<u8>> {
    body.split(|&b| b == b'&').find_map(|pair| {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(equals) => (&pair[..equals], &pair[equals + 1..]),
            None => (pair, &[][..]),
        };
        (percent_decode(key) == name.as_bytes()).then(|| percent_decode(value))
    })
}

fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut decoded = Vec::with_capacity(input.len());
    let mut index = 0;
    while index < input.len() {
        match input[index] {
            b'+' => decoded.push(b' '),
            b'%' => match (
                input.get(index + 1).copied().and_then(hex),
                input.get(index + 2).copied().and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    decoded.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                    index += 2;
                }
                _ => decoded.push(b'%'),
            },
            byte => decoded.push(byte),
        }
        index += 1;
    }
    decoded
}

/// Seconds since the epoch of a Mailgun timestamp (`1461261330`, or with a
/// fraction).
fn timestamp_seconds(timestamp: &str) -> Result<i64> {
    let whole = timestamp.trim().split('.').next().unwrap_or("");
    whole
        .parse::<i64>()
        .ok()
        .filter(|seconds| seconds.unsigned_abs() < 1 << 40)
        .ok_or_else(|| {
            ChannelError::Unauthorized("the Mailgun timestamp is not a number of seconds".into())
        })
}

fn token_digest(token: &str) -> [u8; 16] {
    let digest = Sha256::digest(token.as_bytes());
    let mut truncated = [0u8; 16];
    truncated.copy_from_slice(&digest[..16]);
    truncated
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).expect("time")
    }

    #[test]
    fn what_sign_produces_verify_accepts() {
        let signature = sign("1700000000", "tok", "key");
        assert!(verify("1700000000", "tok", &signature, "key", at(1_700_000_010)).is_ok());
        assert!(verify("1700000000", "tok", &signature, "other", at(1_700_000_010)).is_err());
    }

    fn token(token: &str, seconds: i64) -> SignedToken {
        SignedToken::new(token, &seconds.to_string()).expect("token")
    }

    #[test]
    fn the_guard_forgets_tokens_once_their_window_has_passed() {
        let mut guard = ReplayGuard::new();
        let now = 1_700_000_000;
        guard.check(&token("t1", now), at(now)).expect("first use");
        guard.remember(token("t1", now), at(now));
        assert!(guard.check(&token("t1", now), at(now + 10)).is_err());
        assert_eq!(guard.len(), 1);
        // Once the timestamp is out of the window the token is forgotten
        // (verify refuses such a timestamp anyway).
        guard.remember(token("t2", now + 400), at(now + 400));
        assert_eq!(guard.len(), 1, "t1 evicted");
        assert!(guard.check(&token("t1", now), at(now + 400)).is_ok());
    }

    #[test]
    fn a_token_is_refused_only_once_it_was_remembered() {
        let mut guard = ReplayGuard::new();
        let now = 1_700_000_000;
        // Checked, but its request failed (nothing remembered): the retry
        // passes, concurrent copies too.
        guard.check(&token("t1", now), at(now)).expect("first try");
        guard.check(&token("t1", now), at(now + 60)).expect("retry");
        guard
            .check(&token("t1", now), at(now + 60))
            .expect("a copy");
        guard.remember(token("t1", now), at(now + 60));
        guard.remember(token("t1", now), at(now + 60));
        assert_eq!(guard.len(), 1, "remembered once");
        assert!(guard.check(&token("t1", now), at(now + 61)).is_err());
        // A token already past its window is not kept.
        guard.remember(token("old", now - 600), at(now));
        assert_eq!(guard.len(), 1);
    }

    #[test]
    fn the_guard_is_bounded() {
        let mut guard = ReplayGuard::with_capacity(3);
        let now = 1_700_000_000;
        for name in ["a", "b", "c", "d"] {
            guard.check(&token(name, now), at(now)).expect("fresh");
            guard.remember(token(name, now), at(now));
        }
        assert_eq!(guard.len(), 3);
        assert!(guard.check(&token("d", now), at(now)).is_err());
        assert!(
            guard.check(&token("a", now), at(now)).is_ok(),
            "oldest was forgotten"
        );
        assert!(SignedToken::new("x", "not a time").is_err());
    }

    #[test]
    fn a_forward_carries_the_token_its_caller_checks_and_remembers() {
        let now = 1_700_000_000;
        let body = format!(
            "timestamp={now}&token=tok&signature={}&from=Bob+%3Cbob%40example.com%3E&subject=Hi&body-plain=Hello",
            sign(&now.to_string(), "tok", "key")
        );
        let context = Context {
            received_at: at(now),
            default_region: None,
        };
        let form = "application/x-www-form-urlencoded";
        let forward = parse(form, body.as_bytes(), "key", &context).expect("accepted");
        assert!(matches!(forward.outcome, Outcome::Events { .. }));
        assert_eq!(forward.token, token("tok", now));
        assert!(parse(form, body.as_bytes(), "other-key", &context).is_err());
    }

    #[test]
    fn an_empty_signing_key_is_refused() {
        let now = 1_700_000_000;
        let signature = signature::hmac_sha256_hex(b"", format!("{now}token").as_bytes());
        assert!(verify(&now.to_string(), "token", &signature, "", at(now)).is_err());
    }

    #[test]
    fn urlencoded_values_decode_to_bytes() {
        let body = b"a=1&body-mime=caf%E9+%3D%zz%4&body-mime=second";
        assert_eq!(
            urlencoded_value(body, "body-mime"),
            Some(b"caf\xe9 =%zz%4".to_vec())
        );
        assert_eq!(urlencoded_value(body, "a"), Some(b"1".to_vec()));
        assert_eq!(urlencoded_value(body, "missing"), None);
        assert_eq!(urlencoded_value(b"flag", "flag"), Some(Vec::new()));
    }

    #[test]
    fn fractional_timestamps_are_read_as_seconds() {
        assert_eq!(
            timestamp_seconds("1461261330.123").ok(),
            Some(1_461_261_330)
        );
        assert!(timestamp_seconds("").is_err());
        assert!(timestamp_seconds("99999999999999999999").is_err());
    }
}
