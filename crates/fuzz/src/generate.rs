//! Input generators: arbitrary bytes, mutations of seed inputs, and
//! structure-aware payloads (JSON, forms, multipart bodies, email messages)
//! that look like the real thing but carry arbitrary Unicode in every string
//! field, so that parsers get past their first check and multi-byte
//! characters land on every boundary.

use std::fmt;

use panorama_channels::multipart::{self, Part};
use panorama_core::arbitrary::text;
use panorama_core::limits::TextLimit;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::Value;

/// Bytes that print as an escaped byte string, not a list of numbers.
#[derive(Clone, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

/// Splits an input into its first line (a Content-Type, for targets whose
/// request has one) and the rest (the body).
pub fn split_first_line(input: &[u8]) -> (String, &[u8]) {
    let end = input
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(input.len());
    let line = String::from_utf8_lossy(&input[..end]);
    let line = line.trim_end_matches('\r').to_owned();
    (line, input.get(end + 1..).unwrap_or_default())
}

/// Arbitrary bytes, up to `max_len`: now any byte, now mostly printable
/// ASCII with line ends (closer to the text formats parsed here).
pub fn bytes(max_len: usize) -> BoxedStrategy<Bytes> {
    let byte = prop_oneof![
        2 => any::<u8>(),
        3 => 0x20u8..0x7F,
        1 => select(&b"\r\n\"{}[]:,;=&%+-@<>\\"[..]),
    ];
    vec(byte, 0..max_len).prop_map(Bytes).boxed()
}

/// One edit of a byte string.
#[derive(Debug, Clone)]
enum Mutation {
    /// Flips one bit.
    Flip(Index, u8),
    /// Overwrites one byte.
    Set(Index, u8),
    /// Inserts bytes.
    Insert(Index, Vec<u8>),
    /// Inserts a UTF-8 encoded text (multi-byte characters at any offset).
    InsertText(Index, String),
    /// Removes up to this many bytes.
    Remove(Index, usize),
    /// Cuts the input short.
    Truncate(Index),
    /// Copies a slice of the input somewhere else in it.
    Duplicate(Index, Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip(at, bit)),
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set(at, byte)),
        (any::<Index>(), vec(any::<u8>(), 1..8)).prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<Index>(), field_text()).prop_map(|(at, t)| Mutation::InsertText(at, t)),
        (any::<Index>(), 1usize..64).prop_map(|(at, n)| Mutation::Remove(at, n)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(from, to, at)| Mutation::Duplicate(from, to, at)),
    ]
}

fn apply(mut input: Vec<u8>, mutation: &Mutation) -> Vec<u8> {
    // An index into `input` (inclusive of its end, for insertions).
    let at = |index: &Index, input: &[u8]| index.index(input.len() + 1);
    match mutation {
        Mutation::Flip(index, bit) if !input.is_empty() => {
            let i = index.index(input.len());
            input[i] ^= 1 << bit;
        }
        Mutation::Set(index, byte) if !input.is_empty() => {
            let i = index.index(input.len());
            input[i] = *byte;
        }
        Mutation::Insert(index, bytes) => {
            let i = at(index, &input);
            input.splice(i..i, bytes.iter().copied());
        }
        Mutation::InsertText(index, text) => {
            let i = at(index, &input);
            input.splice(i..i, text.bytes());
        }
        Mutation::Remove(index, n) => {
            let i = at(index, &input);
            let end = (i + n).min(input.len());
            input.drain(i..end);
        }
        Mutation::Truncate(index) => {
            let i = at(index, &input);
            input.truncate(i);
        }
        Mutation::Duplicate(from, to, index) => {
            let (a, b) = (at(from, &input), at(to, &input));
            let slice = input[a.min(b)..a.max(b)].to_vec();
            let i = at(index, &input);
            input.splice(i..i, slice);
        }
        Mutation::Flip(..) | Mutation::Set(..) => {}
    }
    input
}

/// One of `seeds` with a few random edits.
pub fn mutated(seeds: Vec<Vec<u8>>) -> BoxedStrategy<Bytes> {
    if seeds.is_empty() {
        return bytes(256);
    }
    mutations_of(select(seeds))
}

/// An input drawn from `base` with a few random edits.
pub fn mutations_of(base: impl Strategy<Value = Vec<u8>> + 'static) -> BoxedStrategy<Bytes> {
    (base, vec(mutation(), 1..6))
        .prop_map(|(seed, mutations)| Bytes(mutations.iter().fold(seed, apply)))
        .boxed()
}

/// A value for a string field: arbitrary Unicode (four-byte characters,
/// combining marks, case-changing letters, right-to-left text, odd spaces,
/// sometimes control characters), mostly short, sometimes around the
/// contract's 200, 998 and 1,024 character limits.
pub fn field_text() -> BoxedStrategy<String> {
    prop_oneof![
        8 => text(TextLimit::chars(40)),
        2 => text(TextLimit::chars(200)),
        1 => text(TextLimit::chars(998)),
        1 => text(TextLimit::chars(1024)),
        1 => any::<String>(),
    ]
    .boxed()
}

/// Edge values for numeric fields (times, durations, counts).
const EDGE_NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "253402300799",
    "253402300800",
    "1e308",
    "-1e-308",
    "0.5",
];

/// `value` with string leaves (and now and then numbers) replaced, in
/// document order, by `texts` and `numbers`, where `mask` says so.
fn replace_leaves(
    value: &mut Value,
    texts: &[String],
    numbers: &[Value],
    mask: &[bool],
    next: &mut usize,
) {
    let take = |next: &mut usize| {
        let i = *next;
        *next += 1;
        mask[i % mask.len()].then_some(i)
    };
    match value {
        Value::String(current) => {
            if let Some(i) = take(next) {
                *current = texts[i % texts.len()].clone();
            }
        }
        Value::Number(_) => {
            if let Some(i) = take(next)
                && i % 3 == 0
            {
                *value = numbers[i % numbers.len()].clone();
            }
        }
        Value::Array(items) => {
            for item in items {
                replace_leaves(item, texts, numbers, mask, next);
            }
        }
        Value::Object(object) => {
            for (_, item) in object.iter_mut() {
                replace_leaves(item, texts, numbers, mask, next);
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

/// JSON seeds with arbitrary Unicode in their string fields and edge values
/// in some numeric ones: the structure a parser expects, contents it may
/// not.
pub fn json_with_text(seeds: Vec<Vec<u8>>) -> BoxedStrategy<Bytes> {
    let documents: Vec<Value> = seeds
        .iter()
        .filter_map(|seed| serde_json::from_slice(seed).ok())
        .collect();
    if documents.is_empty() {
        return bytes(256);
    }
    let numbers: Vec<Value> = EDGE_NUMBERS
        .iter()
        .filter_map(|n| serde_json::from_str(n).ok())
        .collect();
    (
        select(documents),
        vec(field_text(), 1..12),
        vec(any::<bool>(), 1..24),
    )
        .prop_map(move |(mut document, texts, mask)| {
            replace_leaves(&mut document, &texts, &numbers, &mask, &mut 0);
            Bytes(serde_json::to_vec(&document).unwrap_or_default())
        })
        .boxed()
}

/// `application/x-www-form-urlencoded` seeds with arbitrary Unicode in
/// their values (names kept, so the parser recognises the fields).
pub fn form_with_text(seeds: Vec<Vec<u8>>) -> BoxedStrategy<Bytes> {
    let forms: Vec<Vec<(String, String)>> = seeds
        .iter()
        .map(|seed| {
            form_urlencoded::parse(seed)
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect()
        })
        .collect();
    (
        select(forms),
        vec(field_text(), 1..12),
        vec(any::<bool>(), 1..24),
    )
        .prop_map(|(pairs, texts, mask)| Bytes(encode_form(&pairs, &texts, &mask)))
        .boxed()
}

/// Encodes `pairs` as a form, values replaced by `texts` where `mask` says.
pub fn encode_form(pairs: &[(String, String)], texts: &[String], mask: &[bool]) -> Vec<u8> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (i, (name, value)) in pairs.iter().enumerate() {
        let value = if mask[i % mask.len()] {
            &texts[i % texts.len()]
        } else {
            value
        };
        form.append_pair(name, value);
    }
    form.finish().into_bytes()
}

/// The `boundary` parameter of a simple multipart Content-Type.
pub fn boundary_of(content_type: &str) -> Option<&str> {
    let (_, rest) = content_type.split_once("boundary=")?;
    Some(rest.split(';').next().unwrap_or(rest).trim_matches('"'))
}

/// Multipart seeds (a Content-Type line, then the body) with arbitrary
/// Unicode in their text fields: the same fields, the same boundary.
pub fn multipart_with_text(seeds: Vec<Vec<u8>>) -> BoxedStrategy<Bytes> {
    let bodies: Vec<(String, Vec<Part>)> = seeds
        .iter()
        .filter_map(|seed| {
            let (content_type, body) = split_first_line(seed);
            let parts = multipart::parse(&content_type, body).ok()?;
            Some((content_type, parts))
        })
        .collect();
    if bodies.is_empty() {
        return bytes(256);
    }
    (
        select(bodies),
        vec(field_text(), 1..12),
        vec(any::<bool>(), 1..24),
    )
        .prop_map(|((content_type, mut parts), texts, mask)| {
            for (i, part) in parts.iter_mut().enumerate() {
                if part.filename.is_none() && mask[i % mask.len()] {
                    part.data = texts[i % texts.len()].clone().into_bytes();
                }
            }
            let boundary = boundary_of(&content_type).unwrap_or("boundary");
            let mut input = format!("{content_type}\r\n").into_bytes();
            input.extend(multipart::encode(boundary, &parts));
            Bytes(input)
        })
        .boxed()
}

/// How a generated message writes non-ASCII header text.
#[derive(Debug, Clone, Copy)]
enum HeaderEncoding {
    /// Raw UTF-8 (RFC 6532).
    Raw,
    /// RFC 2047 encoded words, base64 of UTF-8.
    EncodedWord,
}

/// The pieces of a generated email message.
#[derive(Debug, Clone)]
struct MessageParts {
    display_name: String,
    local: String,
    subject: String,
    body: String,
    reference: String,
    headers: HeaderEncoding,
    multipart: bool,
    auto_submitted: bool,
}

fn header_text(text: &str, encoding: HeaderEncoding) -> String {
    use std::fmt::Write as _;
    match encoding {
        // A raw header may not hold line breaks: they would end it.
        HeaderEncoding::Raw => text.replace(['\r', '\n'], " "),
        HeaderEncoding::EncodedWord => {
            let mut hex = String::new();
            for byte in text.bytes() {
                let _ = write!(hex, "={byte:02X}");
            }
            format!("=?UTF-8?Q?{hex}?=")
        }
    }
}

impl MessageParts {
    fn render(&self) -> Vec<u8> {
        let name = header_text(&self.display_name, self.headers);
        let subject = header_text(&self.subject, self.headers);
        let local = self.local.replace(['\r', '\n', '<', '>', '@', ' '], "");
        let local = if local.is_empty() { "anna" } else { &local };
        let reference = self.reference.replace(['\r', '\n', '<', '>'], "");
        let mut message = format!(
            "From: \"{}\" <{local}@example.com>\r\nTo: support@shop.example\r\n\
             Subject: {subject}\r\nMessage-ID: <{reference}@mail.example>\r\n\
             In-Reply-To: <{reference}@shop.example>\r\n\
             Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n",
            name.replace('"', "'")
        );
        if self.auto_submitted {
            message.push_str("Auto-Submitted: auto-replied\r\n");
        }
        if self.multipart {
            message.push_str(
                "Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n\
                 --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Transfer-Encoding: 8bit\r\n\r\n",
            );
            message.push_str(&self.body);
            message.push_str("\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>");
            message.push_str(&self.body);
            message.push_str("</p>\r\n--b1--\r\n");
        } else {
            message.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
            message.push_str(&self.body);
        }
        message.into_bytes()
    }
}

/// RFC 5322 messages with arbitrary Unicode in the sender's name and
/// address, the subject, the body and the thread references, raw or as
/// encoded words, single part or multipart/alternative.
pub fn email_message() -> BoxedStrategy<Bytes> {
    (
        field_text(),
        field_text(),
        field_text(),
        field_text(),
        field_text(),
        prop_oneof![Just(HeaderEncoding::Raw), Just(HeaderEncoding::EncodedWord)],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                display_name,
                local,
                subject,
                body,
                reference,
                headers,
                multipart,
                auto_submitted,
            )| {
                MessageParts {
                    display_name,
                    local,
                    subject,
                    body,
                    reference,
                    headers,
                    multipart,
                    auto_submitted,
                }
                .render()
            },
        )
        .prop_map(Bytes)
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_is_split_off() {
        let (line, rest) = split_first_line(b"multipart/form-data; boundary=x\r\n--x--");
        assert_eq!(line, "multipart/form-data; boundary=x");
        assert_eq!(rest, b"--x--");
        assert_eq!(
            split_first_line(b"no line end"),
            ("no line end".into(), &b""[..])
        );
    }

    proptest! {
        #[test]
        fn mutations_stay_within_the_input(
            seed in vec(any::<u8>(), 0..8),
            mutations in vec(mutation(), 1..6),
        ) {
            let _ = mutations.iter().fold(seed, apply);
        }
    }

    #[test]
    fn boundaries_are_read_from_the_content_type() {
        assert_eq!(
            boundary_of("multipart/form-data; boundary=xYzZY"),
            Some("xYzZY")
        );
        assert_eq!(
            boundary_of("multipart/form-data; boundary=\"a b\"; x=y"),
            Some("a b")
        );
        assert_eq!(boundary_of("text/plain"), None);
    }
}
