//! The `multipart/form-data` parser SendGrid and Mailgun bodies go through.

use panorama_channels::multipart::{self, Part};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::{Target, run_bytes};
use crate::driver::{Failure, Session};
use crate::generate::{Bytes, field_text, multipart_with_text, split_first_line};

/// The target.
pub(super) const TARGET: Target = Target {
    name: "multipart",
    about: "multipart/form-data bodies (first line the Content-Type) -> multipart::parse; what parses re-encodes to the same parts",
    run,
};

/// The boundary parts are re-encoded with.
const BOUNDARY: &str = "panorama-fuzz-boundary-7e3a";

fn run(session: &mut Session) -> Result<(), Failure> {
    run_bytes(
        session,
        |seeds| prop_oneof![multipart_with_text(seeds), generated()].boxed(),
        property,
    )
}

fn property(input: &[u8]) -> Result<(), String> {
    let (content_type, body) = split_first_line(input);
    let Ok(parts) = multipart::parse(&content_type, body) else {
        return Ok(());
    };
    let _ = multipart::text_fields(&parts);
    if !encodable(&parts) {
        return Ok(());
    }
    let again = multipart::encode(BOUNDARY, &parts);
    let reparsed = multipart::parse(&format!("multipart/form-data; boundary={BOUNDARY}"), &again)
        .map_err(|error| format!("re-encoded parts do not parse: {error}"))?;
    if reparsed != parts {
        return Err(format!(
            "re-encoded parts parse to others:\n{parts:?}\n{reparsed:?}"
        ));
    }
    Ok(())
}

/// Whether `encode` can write the parts as they are: header values on one
/// line, and no part holding the boundary.
fn encodable(parts: &[Part]) -> bool {
    let one_line = |text: &str| !text.contains(['\r', '\n']);
    let delimiter = format!("--{BOUNDARY}");
    parts.iter().all(|part| {
        one_line(&part.name)
            && part.filename.as_deref().is_none_or(one_line)
            && part.content_type.as_deref().is_none_or(one_line)
            && !part
                .data
                .windows(delimiter.len())
                .any(|window| window == delimiter.as_bytes())
    })
}

/// Bodies made of parts with arbitrary Unicode names, file names, types and
/// data, under a boundary that is quoted or not.
fn generated() -> BoxedStrategy<Bytes> {
    let part = (
        field_text(),
        option::of(field_text()),
        option::of(prop_oneof![
            Just("text/plain; charset=utf-8".to_owned()),
            field_text()
        ]),
        prop_oneof![
            field_text().prop_map(String::into_bytes),
            vec(any::<u8>(), 0..64)
        ],
    )
        .prop_map(|(name, filename, content_type, data)| Part {
            name,
            filename,
            content_type,
            data,
        });
    (vec(part, 0..6), any::<bool>())
        .prop_map(|(parts, quoted)| {
            let content_type = if quoted {
                format!("multipart/form-data; boundary=\"{BOUNDARY}\"")
            } else {
                format!("multipart/form-data; boundary={BOUNDARY}")
            };
            let mut input = format!("{content_type}\r\n").into_bytes();
            input.extend(multipart::encode(BOUNDARY, &parts));
            Bytes(input)
        })
        .boxed()
}
