//! `multipart/form-data` bodies (RFC 7578), as SendGrid and Mailgun post
//! them: the boundary comes from the Content-Type header, parts are split on
//! it, each part names its form field. CRLF and bare LF line ends are both
//! accepted; a missing boundary or an unterminated body is refused.

use std::borrow::Cow;

use crate::form::Form;
use crate::{ChannelError, Result};

/// More parts than this is not a webhook (SendGrid caps a message at 20 MB,
/// attachments included, and posts one part per field or attachment).
const MAX_PARTS: usize = 10_000;
/// RFC 2046 allows 70 characters; a little slack for lenient senders.
const MAX_BOUNDARY_CHARS: usize = 200;

/// One form field or uploaded file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Part {
    /// The form field name (`name` of Content-Disposition).
    pub name: String,
    /// The file name, for file uploads (attachments).
    pub filename: Option<String>,
    /// The part's own Content-Type, when it states one.
    pub content_type: Option<String>,
    /// The raw bytes of the field, undecoded.
    pub data: Vec<u8>,
}

impl Part {
    /// The data as text; invalid UTF-8 is replaced (callers that know the
    /// charset decode `data` themselves).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.data)
    }
}

/// Splits a `multipart/form-data` body into its parts, in body order.
pub fn parse(content_type: &str, body: &[u8]) -> Result<Vec<Part>> {
    let boundary = boundary(content_type).ok_or_else(|| {
        ChannelError::malformed(
            "content-type",
            "multipart body without a usable boundary parameter",
        )
    })?;
    let delimiter = [b"--".as_slice(), boundary.as_bytes()].concat();
    let mut position = first_delimiter(body, &delimiter)
        .ok_or_else(|| ChannelError::malformed_body("multipart boundary not found in the body"))?;
    let mut parts = Vec::new();
    loop {
        // `position` is just past a delimiter: the closing one ends the body.
        if body[position..].starts_with(b"--") {
            return Ok(parts);
        }
        let content_start = skip_line_end(body, position).ok_or_else(|| {
            ChannelError::malformed_body("multipart delimiter is not followed by a line end")
        })?;
        let (content_end, next) =
            next_delimiter(body, content_start, &delimiter).ok_or_else(|| {
                ChannelError::malformed_body(
                    "multipart body is not terminated by its closing boundary",
                )
            })?;
        if parts.len() == MAX_PARTS {
            return Err(ChannelError::malformed_body(format!(
                "more than {MAX_PARTS} multipart parts"
            )));
        }
        parts.push(parse_part(&body[content_start..content_end])?);
        position = next;
    }
}

/// The parts as form pairs: text fields only (file uploads are left out),
/// invalid UTF-8 replaced.
pub fn text_fields(parts: &[Part]) -> Form {
    Form::from_pairs(
        parts
            .iter()
            .filter(|part| part.filename.is_none())
            .map(|part| (part.name.clone(), part.text().into_owned()))
            .collect(),
    )
}

/// Encodes parts as a `multipart/form-data` body with CRLF line ends (for
/// tests and simulators); the boundary must not occur in any part.
pub fn encode(boundary: &str, parts: &[Part]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let mut disposition = format!(
            "Content-Disposition: form-data; name=\"{}\"",
            quote(&part.name)
        );
        if let Some(filename) = &part.filename {
            disposition.push_str(&format!("; filename=\"{}\"", quote(filename)));
        }
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let Some(content_type) = &part.content_type {
            body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&part.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

/// The `boundary` parameter of a multipart Content-Type, when it is usable.
fn boundary(content_type: &str) -> Option<String> {
    let (media_type, parameters) = header_parameters(content_type);
    if !media_type.to_ascii_lowercase().starts_with("multipart/") {
        return None;
    }
    let (_, value) = parameters
        .into_iter()
        .find(|(name, _)| name == "boundary")?;
    let usable = !value.is_empty()
        && value.chars().count() <= MAX_BOUNDARY_CHARS
        && value.chars().all(|c| c.is_ascii() && !c.is_ascii_control());
    usable.then_some(value)
}

/// Splits `value; name=value; name="quoted value"` into the leading value and
/// its parameters (names lower-cased, quotes and backslash escapes removed).
fn header_parameters(value: &str) -> (String, Vec<(String, String)>) {
    let mut segments = Vec::new();
    let mut current = String::new();
    let mut chars = value.chars().peekable();
    let mut in_quotes = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                current.push(c);
            }
            '\\' if in_quotes && matches!(chars.peek(), Some('"' | '\\')) => {
                current.push(c);
                if let Some(escaped) = chars.next() {
                    current.push(escaped);
                }
            }
            ';' if !in_quotes => segments.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    segments.push(current);
    let mut segments = segments.into_iter();
    let leading = segments.next().unwrap_or_default().trim().to_owned();
    let parameters = segments
        .filter_map(|segment| {
            let (name, value) = segment.split_once('=')?;
            Some((name.trim().to_ascii_lowercase(), unquote(value.trim())))
        })
        .collect();
    (leading, parameters)
}

fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"') else {
        return value.to_owned();
    };
    let inner = inner.strip_suffix('"').unwrap_or(inner);
    let mut unquoted = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && matches!(chars.peek(), Some('"' | '\\')) {
            if let Some(escaped) = chars.next() {
                unquoted.push(escaped);
            }
        } else {
            unquoted.push(c);
        }
    }
    unquoted
}

fn quote(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace(['\r', '\n'], " ")
}

/// Just past the first delimiter that starts the body or a line (anything
/// before it is preamble).
fn first_delimiter(body: &[u8], delimiter: &[u8]) -> Option<usize> {
    if body.starts_with(delimiter) && is_delimiter_end(&body[delimiter.len()..]) {
        return Some(delimiter.len());
    }
    next_delimiter(body, 0, delimiter).map(|(_, next)| next)
}

/// The next delimiter line at or after `from`: where the content before it
/// ends (its line break belongs to the delimiter) and where the text after
/// the delimiter starts.
fn next_delimiter(body: &[u8], from: usize, delimiter: &[u8]) -> Option<(usize, usize)> {
    let mut search = from;
    while search < body.len() {
        let newline = search + body[search..].iter().position(|&b| b == b'\n')?;
        let candidate = &body[newline + 1..];
        // A line break before the delimiter stops the comparison early, so
        // the scan stays linear in the body length.
        if candidate.starts_with(delimiter) && is_delimiter_end(&candidate[delimiter.len()..]) {
            let content_end = if newline > from && body[newline - 1] == b'\r' {
                newline - 1
            } else {
                newline
            };
            return Some((content_end.max(from), newline + 1 + delimiter.len()));
        }
        search = newline + 1;
    }
    None
}

/// Whether what follows a boundary makes it a delimiter (not just text that
/// starts with the boundary): `--` (closing), or padding and a line end.
fn is_delimiter_end(rest: &[u8]) -> bool {
    if rest.starts_with(b"--") {
        return true;
    }
    let padding = rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    matches!(rest.get(padding), Some(b'\r' | b'\n'))
}

/// Past the transport padding and the line end that follow a delimiter.
fn skip_line_end(body: &[u8], position: usize) -> Option<usize> {
    let rest = &body[position..];
    let padding = rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    match &rest[padding..] {
        [b'\r', b'\n', ..] => Some(position + padding + 2),
        [b'\n', ..] => Some(position + padding + 1),
        _ => None,
    }
}

fn parse_part(raw: &[u8]) -> Result<Part> {
    let mut headers: Vec<String> = Vec::new();
    let mut offset = 0;
    let data_start = loop {
        // A part may end right after its headers (no empty line, no data).
        let length = raw[offset..]
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(raw.len() - offset);
        let line = &raw[offset..offset + length];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        offset = (offset + length + 1).min(raw.len());
        if line.is_empty() {
            break offset;
        }
        let last_line = offset == raw.len();
        let line = String::from_utf8_lossy(line);
        match headers.last_mut() {
            Some(previous) if line.starts_with([' ', '\t']) => previous.push_str(&line),
            _ => headers.push(line.into_owned()),
        }
        if last_line {
            break offset;
        }
    };
    let mut part = Part {
        data: raw[data_start..].to_vec(),
        ..Part::default()
    };
    let mut named = false;
    for header in &headers {
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "content-disposition" => {
                let (_, parameters) = header_parameters(value);
                for (parameter, value) in parameters {
                    match parameter.as_str() {
                        "name" => {
                            part.name = value;
                            named = true;
                        }
                        "filename" => part.filename = Some(value),
                        _ => {}
                    }
                }
            }
            "content-type" => part.content_type = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    if !named {
        return Err(ChannelError::malformed_body(
            "multipart part without a Content-Disposition name",
        ));
    }
    Ok(part)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CONTENT_TYPE: &str = "multipart/form-data; boundary=xYzZY";

    #[test]
    fn splits_fields_and_files_with_crlf() {
        let body = b"--xYzZY\r\nContent-Disposition: form-data; name=\"from\"\r\n\r\nAnna <anna@example.com>\r\n\
--xYzZY\r\nContent-Disposition: form-data; name=\"attachment1\"; filename=\"a \\\"b\\\".txt\"\r\nContent-Type: text/plain\r\n\r\nline one\r\nline two\r\n\
--xYzZY--\r\n";
        let parts = parse(CONTENT_TYPE, body).expect("parts");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "from");
        assert_eq!(parts[0].text(), "Anna <anna@example.com>");
        assert_eq!(parts[0].filename, None);
        assert_eq!(parts[1].name, "attachment1");
        assert_eq!(parts[1].filename.as_deref(), Some("a \"b\".txt"));
        assert_eq!(parts[1].content_type.as_deref(), Some("text/plain"));
        assert_eq!(parts[1].data, b"line one\r\nline two");
        let form = text_fields(&parts);
        assert_eq!(form.get("from"), Some("Anna <anna@example.com>"));
        assert_eq!(form.get("attachment1"), None, "files are not text fields");
    }

    #[test]
    fn accepts_bare_lf_preamble_quoted_boundary_and_empty_values() {
        let body = b"preamble text\n--b:1\nContent-Disposition: form-data; name=text\n\n\n--b:1\ncontent-disposition: FORM-DATA; name=\"subject\"\n\nHi --b:1 there\n--b:1--";
        let parts =
            parse("Multipart/Form-Data; charset=utf-8; boundary=\"b:1\"", body).expect("parts");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "text");
        assert!(parts[0].data.is_empty());
        assert_eq!(
            parts[1].text(),
            "Hi --b:1 there",
            "a boundary inside a line is content"
        );
    }

    #[test]
    fn a_boundary_prefix_inside_content_is_content() {
        let body = b"--xYzZY\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n--xYzZYZ is not it\r\n--xYzZY--\r\n";
        let parts = parse(CONTENT_TYPE, body).expect("parts");
        assert_eq!(parts[0].text(), "--xYzZYZ is not it");
    }

    #[test]
    fn refuses_missing_boundary_and_unterminated_bodies() {
        let body =
            b"--xYzZY\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue\r\n--xYzZY--\r\n";
        for content_type in [
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "text/plain; boundary=xYzZY",
        ] {
            let error = parse(content_type, body).expect_err(content_type);
            assert!(matches!(error, ChannelError::Malformed { .. }));
        }
        let unterminated =
            b"--xYzZY\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue that never ends";
        assert!(parse(CONTENT_TYPE, unterminated).is_err());
        let no_closing =
            b"--xYzZY\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue\r\n--xYzZY";
        assert!(parse(CONTENT_TYPE, no_closing).is_err());
        let nameless = b"--xYzZY\r\nContent-Type: text/plain\r\n\r\nvalue\r\n--xYzZY--\r\n";
        assert!(parse(CONTENT_TYPE, nameless).is_err());
        assert!(parse(CONTENT_TYPE, b"no boundary here").is_err());
    }

    #[test]
    fn encode_round_trips() {
        let parts = vec![
            Part {
                name: "headers".into(),
                data: b"From: a@b.example\r\n".to_vec(),
                ..Part::default()
            },
            Part {
                name: "attachment1".into(),
                filename: Some("r\u{e9}sum\u{e9}.pdf".into()),
                content_type: Some("application/pdf".into()),
                data: vec![0, 159, 146, 150, b'\r', b'\n'],
            },
        ];
        let body = encode("BoUnDaRy", &parts);
        assert_eq!(
            parse("multipart/form-data; boundary=BoUnDaRy", &body).expect("parts"),
            parts
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse(CONTENT_TYPE, &body);
        }

        #[test]
        fn never_panics_on_boundary_shaped_bodies(
            chunks in proptest::collection::vec(
                prop_oneof![
                    Just(b"--xYzZY".to_vec()),
                    Just(b"--xYzZY--".to_vec()),
                    Just(b"\r\n".to_vec()),
                    Just(b"\n".to_vec()),
                    Just(b"Content-Disposition: form-data; name=\"a\"".to_vec()),
                    proptest::collection::vec(any::<u8>(), 0..8),
                ],
                0..24,
            ),
            content_type in "\\PC{0,60}",
        ) {
            let body = chunks.concat();
            let _ = parse(CONTENT_TYPE, &body);
            let _ = parse(&content_type, &body);
        }

        #[test]
        fn encoded_text_fields_parse_back(values in proptest::collection::vec("[a-zA-Z0-9 \\r\\n-]{0,40}", 1..5)) {
            let parts: Vec<Part> = values
                .iter()
                .enumerate()
                .map(|(index, value)| Part { name: format!("f{index}"), data: value.as_bytes().to_vec(), ..Part::default() })
                .collect();
            let body = encode("=_boundary_=", &parts);
            prop_assert_eq!(parse("multipart/form-data; boundary=\"=_boundary_=\"", &body).expect("parts"), parts);
        }
    }
}
