//! Timeline entries written as JSON straight from their rows.
//!
//! A timeline page is the hottest answer of the agent API. Building a
//! [`TimelineEntry`](super::TimelineEntry) per row costs a `String` per text
//! column and a `serde_json::Value` tree per `jsonb` column (identifiers,
//! attributes, consent), all serialised again at once. Here the text
//! columns are borrowed from the row, and the `jsonb` columns are taken as
//! the text PostgreSQL sends (binary format: a version byte, then the same
//! text as `jsonb::text`) and copied into the answer.
//!
//! The bytes are the same as serialising the entry: PostgreSQL and
//! `serde_json` escape strings alike (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`,
//! `\t`, other control characters as lowercase `\u00xx`, nothing else), the
//! text's whitespace is left out, and object members are put in the order
//! of `serde_json`'s maps (by key, bytewise) where `jsonb` orders them by
//! key length first. Identifiers stored before trust existed get
//! `"trust":"verified"`, as [`with_trust`](super::with_trust) gives them.
//! Whatever the copy could render differently from `serde_json` (a number,
//! whose text `jsonb` keeps as written; a key with an escape, whose order
//! is that of its unescaped text; anything PostgreSQL would not write) makes
//! that column go through `serde_json::Value` instead.

use std::error::Error;

use postgres_types::{FromSql, Type};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;

use panorama_core::Trust;

/// A `jsonb` (or `json`) value as the text PostgreSQL wrote, borrowed from
/// the row.
#[derive(Debug, Clone, Copy)]
pub(super) struct JsonText<'a>(pub(super) &'a str);

impl<'a> FromSql<'a> for JsonText<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        let text = if *ty == Type::JSONB {
            match raw.split_first() {
                Some((1, text)) => text,
                _ => return Err("unsupported jsonb encoding version".into()),
            }
        } else {
            raw
        };
        Ok(JsonText(std::str::from_utf8(text)?))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::JSON | Type::JSONB)
    }
}

/// What a `jsonb` column is, for the members it gets that are not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stored {
    /// Written as stored.
    AsIs,
    /// An event's identifiers: each object of the array without `trust`
    /// gets `"trust":"verified"`.
    Identifiers,
}

/// The fast path cannot render this text exactly as `serde_json` would.
#[derive(Debug)]
struct Unusual;

/// An object member found in the text: where its key (without quotes)
/// and its value are.
#[derive(Debug, Clone, Copy)]
struct Member {
    key: (usize, usize),
    value: (usize, usize),
}

/// Writes JSON values taken from rows, reusing its scratch space from one
/// value to the next.
#[derive(Debug, Default)]
pub(super) struct Writer {
    /// Members of the objects being written, innermost last.
    members: Vec<Member>,
}

impl Writer {
    /// Appends `value` (a `jsonb` column's text) to `out` as `serde_json`
    /// would serialise it (`stored` says which column it is).
    pub(super) fn jsonb(&mut self, out: &mut Vec<u8>, value: JsonText<'_>, stored: Stored) {
        let mark = out.len();
        self.members.clear();
        let mut copy = Copy {
            text: value.0.as_bytes(),
            out,
            members: &mut self.members,
        };
        let copied = copy.value(0, stored == Stored::Identifiers, false);
        match copied {
            Ok(end) if copy.skip_space(end) == copy.text.len() => {}
            _ => {
                out.truncate(mark);
                reserialise(out, value.0, stored);
            }
        }
    }

    /// Appends `value` as `serde_json` serialises it.
    pub(super) fn serialized(out: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) {
        // Writing into a Vec fails only for types whose Serialize fails,
        // which none of the callers' types do.
        if serde_json::to_writer(&mut *out, value).is_err() {
            out.extend_from_slice(b"null");
        }
    }
}

/// The slow path: through a `serde_json::Value`, as the entry type has it.
fn reserialise(out: &mut Vec<u8>, text: &str, stored: Stored) {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => {
            let value = match stored {
                Stored::AsIs => value,
                Stored::Identifiers => super::with_trust(value),
            };
            Writer::serialized(out, &value);
        }
        Err(error) => {
            // PostgreSQL writes valid JSON: this is a bug, not data.
            tracing::error!(%error, "a jsonb column is not JSON; written as null");
            out.extend_from_slice(b"null");
        }
    }
}

/// One copy of a value's text into the answer.
struct Copy<'t, 'o> {
    text: &'t [u8],
    out: &'o mut Vec<u8>,
    members: &'o mut Vec<Member>,
}

impl Copy<'_, '_> {
    /// The position of the first byte at or after `at` that is not JSON
    /// whitespace.
    fn skip_space(&self, mut at: usize) -> usize {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.text.get(at) {
            at += 1;
        }
        at
    }

    /// The byte at `at`.
    fn byte(&self, at: usize) -> Result<u8, Unusual> {
        self.text.get(at).copied().ok_or(Unusual)
    }

    /// Copies the value starting at or after `at` (after whitespace) and
    /// gives the position after it. `trusted`: the value is an event's
    /// identifiers array; `in_identifiers`: it is one of that array's items.
    fn value(&mut self, at: usize, trusted: bool, in_identifiers: bool) -> Result<usize, Unusual> {
        let at = self.skip_space(at);
        match self.byte(at)? {
            b'"' => {
                let end = self.string_end(at)?;
                self.out.extend_from_slice(&self.text[at..end]);
                Ok(end)
            }
            b'{' => self.object(at, in_identifiers),
            b'[' => self.array(at, trusted),
            b't' => self.literal(at, b"true"),
            b'f' => self.literal(at, b"false"),
            b'n' => self.literal(at, b"null"),
            // A number: jsonb keeps the text it was given (`1.50`, `1e3`),
            // serde_json prints what it parsed.
            _ => Err(Unusual),
        }
    }

    fn literal(&mut self, at: usize, word: &[u8]) -> Result<usize, Unusual> {
        let end = at + word.len();
        if self.text.get(at..end) != Some(word) {
            return Err(Unusual);
        }
        self.out.extend_from_slice(word);
        Ok(end)
    }

    /// The position after the string starting at `at` (its opening quote),
    /// when every escape in it is one `serde_json` writes the same way and
    /// it holds no raw control character.
    fn string_end(&self, at: usize) -> Result<usize, Unusual> {
        let mut position = at + 1;
        loop {
            match self.byte(position)? {
                b'"' => return Ok(position + 1),
                b'\\' => {
                    position += 1 + self.escape_len(position + 1)?;
                }
                0x00..=0x1f => return Err(Unusual),
                _ => position += 1,
            }
        }
    }

    /// The length of the escape after the backslash at `at - 1`, when
    /// `serde_json` writes that character with the same escape.
    fn escape_len(&self, at: usize) -> Result<usize, Unusual> {
        match self.byte(at)? {
            b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(1),
            b'u' => {
                let digits = self.text.get(at + 1..at + 5).ok_or(Unusual)?;
                let code = match digits {
                    [b'0', b'0', high @ (b'0' | b'1'), low] => {
                        let low = match low {
                            b'0'..=b'9' => low - b'0',
                            b'a'..=b'f' => low - b'a' + 10,
                            _ => return Err(Unusual),
                        };
                        (high - b'0') * 16 + low
                    }
                    _ => return Err(Unusual),
                };
                // serde_json writes these five with their short escapes.
                if matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                    return Err(Unusual);
                }
                Ok(5)
            }
            _ => Err(Unusual),
        }
    }

    /// The position after the value starting at or after `at`, without
    /// copying it.
    fn skip_value(&self, at: usize) -> Result<usize, Unusual> {
        let at = self.skip_space(at);
        match self.byte(at)? {
            b'"' => self.string_end(at),
            b'{' | b'[' => {
                let mut depth = 0usize;
                let mut position = at;
                loop {
                    match self.byte(position)? {
                        b'"' => {
                            position = self.string_end(position)?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return Ok(position + 1);
                            }
                        }
                        _ => {}
                    }
                    position += 1;
                }
            }
            b't' => self.literal_end(at, b"true"),
            b'f' => self.literal_end(at, b"false"),
            b'n' => self.literal_end(at, b"null"),
            _ => Err(Unusual),
        }
    }

    fn literal_end(&self, at: usize, word: &[u8]) -> Result<usize, Unusual> {
        let end = at + word.len();
        (self.text.get(at..end) == Some(word))
            .then_some(end)
            .ok_or(Unusual)
    }

    /// Copies the array at `at`; `trusted`: its objects are identifiers.
    fn array(&mut self, at: usize, trusted: bool) -> Result<usize, Unusual> {
        self.out.push(b'[');
        let mut position = self.skip_space(at + 1);
        if self.byte(position)? == b']' {
            self.out.push(b']');
            return Ok(position + 1);
        }
        loop {
            position = self.value(position, false, trusted)?;
            position = self.skip_space(position);
            match self.byte(position)? {
                b',' => {
                    self.out.push(b',');
                    position += 1;
                }
                b']' => {
                    self.out.push(b']');
                    return Ok(position + 1);
                }
                _ => return Err(Unusual),
            }
        }
    }

    /// Copies the object at `at` with its members in key order;
    /// `identifier`: it is an event's identifier, which gets a `trust`
    /// when it has none.
    fn object(&mut self, at: usize, identifier: bool) -> Result<usize, Unusual> {
        let base = self.members.len();
        let mut position = self.skip_space(at + 1);
        let end = if self.byte(position)? == b'}' {
            position + 1
        } else {
            loop {
                if self.byte(position)? != b'"' {
                    return Err(Unusual);
                }
                let key_end = self.string_end(position)?;
                let key = (position + 1, key_end - 1);
                // A key with an escape sorts by its unescaped text.
                if self.text[key.0..key.1].contains(&b'\\') {
                    return Err(Unusual);
                }
                position = self.skip_space(key_end);
                if self.byte(position)? != b':' {
                    return Err(Unusual);
                }
                let start = self.skip_space(position + 1);
                let value_end = self.skip_value(start)?;
                self.members.push(Member {
                    key,
                    value: (start, value_end),
                });
                position = self.skip_space(value_end);
                match self.byte(position)? {
                    b',' => position = self.skip_space(position + 1),
                    b'}' => break position + 1,
                    _ => return Err(Unusual),
                }
            }
        };
        let text = self.text;
        self.members[base..]
            .sort_unstable_by(|a, b| text[a.key.0..a.key.1].cmp(&text[b.key.0..b.key.1]));
        let count = self.members.len() - base;
        let mut trust_missing = identifier
            && !self.members[base..]
                .iter()
                .any(|member| &text[member.key.0..member.key.1] == b"trust");
        self.out.push(b'{');
        let mut first = true;
        for index in base..base + count {
            let member = self.members[index];
            let key = &text[member.key.0..member.key.1];
            if trust_missing && key > b"trust".as_slice() {
                self.default_trust(first);
                first = false;
                trust_missing = false;
            }
            if !first {
                self.out.push(b',');
            }
            first = false;
            self.out.push(b'"');
            self.out.extend_from_slice(key);
            self.out.extend_from_slice(b"\":");
            self.value(member.value.0, false, false)?;
            // Nested objects pushed their members after ours and took them
            // off again.
            debug_assert_eq!(self.members.len(), base + count);
        }
        if trust_missing {
            self.default_trust(first);
        }
        self.out.push(b'}');
        self.members.truncate(base);
        Ok(end)
    }

    /// Writes the `trust` an identifier stored before trust existed has.
    fn default_trust(&mut self, first: bool) {
        if !first {
            self.out.push(b',');
        }
        self.out.extend_from_slice(b"\"trust\":\"");
        self.out
            .extend_from_slice(Trust::Verified.as_str().as_bytes());
        self.out.push(b'"');
    }
}

/// Reads column `index` of `row` as `T`; `None` when it is NULL or of
/// another type (never the case for the statement's own columns).
pub(super) fn column<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Option<T> {
    row.try_get::<_, Option<T>>(index).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path alone: `None` when it gives up.
    fn fast(text: &str, stored: Stored) -> Option<String> {
        let mut out = Vec::new();
        let mut members = Vec::new();
        let mut copy = Copy {
            text: text.as_bytes(),
            out: &mut out,
            members: &mut members,
        };
        let end = copy.value(0, stored == Stored::Identifiers, false).ok()?;
        (copy.skip_space(end) == text.len()).then(|| String::from_utf8(out).expect("UTF-8"))
    }

    /// What the entry type writes for `text`.
    fn serialised(text: &str, stored: Stored) -> String {
        let mut out = Vec::new();
        reserialise(&mut out, text, stored);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn what_postgresql_writes_is_copied_as_serde_json_writes_it() {
        // As jsonb::text writes them: keys by length, then bytes.
        for (text, stored) in [
            (
                r#"[{"kind": "email", "value": "a@example.com"}, {"kind": "phone", "trust": "claimed", "value": "+31612345678"}]"#,
                Stored::Identifiers,
            ),
            (
                r#"[{"value": "x"}, {"zzz": "y"}, {}, "s"]"#,
                Stored::Identifiers,
            ),
            (
                r#"{"a": "é 🎉 \"q\" \\ \u0001\u001f\n\t\r\b\f", "zz": "x", "customer.tier": "gold"}"#,
                Stored::AsIs,
            ),
            (
                r#"[{"channel": "sms", "granted": false, "purpose": "surveys"}]"#,
                Stored::AsIs,
            ),
            (
                r#"{"b": {"d": [true, null, {}], "c": []}, "a": null}"#,
                Stored::AsIs,
            ),
            ("{}", Stored::AsIs),
            ("[]", Stored::Identifiers),
        ] {
            assert_eq!(fast(text, stored), Some(serialised(text, stored)), "{text}");
        }
    }

    #[test]
    fn what_could_be_written_otherwise_goes_through_a_value() {
        for text in [
            r#"{"n": 1.50}"#,
            r#"[1e3]"#,
            r#"{"a\"b": "x"}"#,
            r#"["\u00e9"]"#,
            r#"["\u000a"]"#,
            "[\"raw\u{1}control\"]",
            r#"{"a": "b""#,
            r#"{"a": "b"} x"#,
        ] {
            assert_eq!(fast(text, Stored::AsIs), None, "{text}");
        }
        let mut writer = Writer::default();
        let mut out = Vec::new();
        writer.jsonb(
            &mut out,
            JsonText(r#"{"z": 1.50, "a": [1e3]}"#),
            Stored::AsIs,
        );
        assert_eq!(out, br#"{"a":[1000.0],"z":1.5}"#);
        out.clear();
        writer.jsonb(
            &mut out,
            JsonText(r#"[{"value": "v", "n": 2}]"#),
            Stored::Identifiers,
        );
        assert_eq!(out, br#"[{"n":2,"trust":"verified","value":"v"}]"#);
    }
}
