//! Customer identifiers. Each kind normalises on parse, so two spellings of
//! the same phone number or email address are one identifier everywhere.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::limits;
use crate::text::{has_control_chars, longer_than, non_empty_trimmed};

/// What an identifier identifies a customer by.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    /// A phone number in E.164.
    Phone,
    /// An email address, lower-cased.
    Email,
    /// A CRM or customer number.
    Account,
    /// A WhatsApp user id (`wa_id`).
    Whatsapp,
    /// A Messenger page-scoped user id.
    Messenger,
    /// An Instagram-scoped user id.
    Instagram,
    /// An X (Twitter) handle, without the `@`, lower-cased.
    X,
    /// A web visitor cookie id. Weak: it never merges two known customers.
    Visitor,
}

impl IdentifierKind {
    /// Every kind, in a stable order.
    pub const ALL: [IdentifierKind; 8] = [
        IdentifierKind::Phone,
        IdentifierKind::Email,
        IdentifierKind::Account,
        IdentifierKind::Whatsapp,
        IdentifierKind::Messenger,
        IdentifierKind::Instagram,
        IdentifierKind::X,
        IdentifierKind::Visitor,
    ];

    /// How strongly the kind identifies a person when an event's
    /// identifiers belong to different customers: the event goes to the
    /// owner of its highest-priority identifier (account > phone and email
    /// > platform handles > web visitor).
    pub fn priority(self) -> u8 {
        match self {
            IdentifierKind::Account => 3,
            IdentifierKind::Phone | IdentifierKind::Email => 2,
            IdentifierKind::Whatsapp
            | IdentifierKind::Messenger
            | IdentifierKind::Instagram
            | IdentifierKind::X => 1,
            IdentifierKind::Visitor => 0,
        }
    }

    /// The lower-case name used in JSON, SQL and query strings.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierKind::Phone => "phone",
            IdentifierKind::Email => "email",
            IdentifierKind::Account => "account",
            IdentifierKind::Whatsapp => "whatsapp",
            IdentifierKind::Messenger => "messenger",
            IdentifierKind::Instagram => "instagram",
            IdentifierKind::X => "x",
            IdentifierKind::Visitor => "visitor",
        }
    }
}

impl fmt::Display for IdentifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IdentifierKind {
    type Err = IdentifierError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        IdentifierKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == raw)
            .ok_or_else(|| IdentifierError::UnknownKind(raw.chars().take(40).collect()))
    }
}

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// The kind is not one Panorama knows.
    #[error(
        "unknown identifier kind \"{0}\"; expected one of phone, email, account, whatsapp, messenger, instagram, x, visitor"
    )]
    UnknownKind(String),
    /// Nothing but white space.
    #[error("must not be empty")]
    Empty,
    /// Longer than the kind allows.
    #[error("must be at most {0} characters")]
    TooLong(usize),
    /// Contains control characters.
    #[error("must not contain control characters")]
    ControlCharacters,
    /// Not a phone number that exists in any numbering plan.
    #[error("not a valid phone number")]
    InvalidPhone,
    /// A national number and no default region to read it in.
    #[error(
        "a national phone number needs a country: use the +<country code> form or configure a default region"
    )]
    PhoneNeedsRegion,
    /// Not a syntactically valid email address.
    #[error("not a valid email address")]
    InvalidEmail,
    /// Not in the form normalising gives (untrimmed, not lower case, a
    /// phone number not in E.164): read back with
    /// [`Identifier::from_normalised`], which does not normalise.
    #[error("not in normalised form")]
    NotNormalised,
}

/// An ISO 3166 region (e.g. `NL`) used to read national phone numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region(phonenumber::country::Id);

impl FromStr for Region {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let upper = raw.trim().to_ascii_uppercase();
        upper
            .parse::<phonenumber::country::Id>()
            .map(Region)
            .map_err(|_| {
                format!(
                    "unknown region \"{}\"; expected an ISO 3166 code such as NL",
                    raw.trim()
                )
            })
    }
}

/// The ISO code, as [`Region::from_str`] reads it (`NL`).
impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_ref())
    }
}

/// A phone number in E.164 form (`+31612345678`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses a phone number as people write it; national numbers are read in
    /// `default_region` when given.
    pub fn parse(raw: &str, default_region: Option<Region>) -> Result<Self, IdentifierError> {
        let raw = non_empty_trimmed(raw).ok_or(IdentifierError::Empty)?;
        if !limits::PHONE_INPUT.admits(raw) {
            return Err(IdentifierError::TooLong(limits::PHONE_INPUT.chars));
        }
        let raw = raw.strip_prefix("tel:").unwrap_or(raw);
        // Only the characters people use to write numbers reach the parser:
        // it keeps the libphonenumber port on well-trodden paths.
        if !raw
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.' | '/'))
        {
            return Err(IdentifierError::InvalidPhone);
        }
        let digits = raw.chars().filter(char::is_ascii_digit).count();
        if !(3..=17).contains(&digits) {
            return Err(IdentifierError::InvalidPhone);
        }
        let international = raw.starts_with('+') || raw.starts_with("00");
        let raw = match raw.strip_prefix("00") {
            Some(rest) => format!("+{rest}"),
            None => raw.to_owned(),
        };
        if !international && default_region.is_none() {
            return Err(IdentifierError::PhoneNeedsRegion);
        }
        let region = if international {
            None
        } else {
            default_region.map(|r| r.0)
        };
        let number = phonenumber::parse(region, &raw).map_err(|_| IdentifierError::InvalidPhone)?;
        if !phonenumber::is_valid(&number) {
            return Err(IdentifierError::InvalidPhone);
        }
        let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
        Ok(PhoneNumber(e164))
    }

    /// The E.164 string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses an address (`Anna@Example.NL ` → `anna@example.nl`); a
    /// `mailto:` prefix is accepted. The limits hold for the lower-cased
    /// address: lower case can be longer (`İ` is two characters in it), and
    /// the stored address must parse to itself again.
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        let raw = non_empty_trimmed(raw).ok_or(IdentifierError::Empty)?;
        let raw = raw.strip_prefix("mailto:").unwrap_or(raw);
        // Lower case is never shorter: refuse long input before copying it.
        if !limits::EMAIL.admits(raw) {
            return Err(IdentifierError::TooLong(limits::EMAIL.chars));
        }
        let lowered = raw.to_lowercase();
        if !limits::EMAIL.admits(&lowered) {
            return Err(IdentifierError::TooLong(limits::EMAIL.chars));
        }
        let (local, domain) = lowered
            .rsplit_once('@')
            .ok_or(IdentifierError::InvalidEmail)?;
        if !valid_local_part(local) || !valid_domain(domain) {
            return Err(IdentifierError::InvalidEmail);
        }
        Ok(EmailAddress(lowered))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn valid_local_part(local: &str) -> bool {
    !local.is_empty()
        && limits::EMAIL_LOCAL_PART.admits(local)
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| {
            !c.is_whitespace()
                && !c.is_control()
                && !matches!(
                    c,
                    '@' | '<' | '>' | '(' | ')' | '[' | ']' | ',' | ';' | ':' | '"' | '\\'
                )
        })
}

fn valid_domain(domain: &str) -> bool {
    // Without collecting the labels: normalised addresses read back from
    // the topic are checked on every event.
    let Some((_, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    domain.split('.').all(|label| {
        !label.is_empty()
            && !longer_than(label, 63)
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    }) && (tld.chars().all(char::is_alphabetic) || tld.starts_with("xn--"))
}

/// A customer identifier: a kind and its normalised value. Only
/// [`Identifier::parse`] makes one, so every value is normalised.
// The schema describes the serialised form (`Serialize` is by hand, in
// `event.rs`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, utoipa::ToSchema)]
#[schema(
    description = "A customer identifier, normalised: phone numbers in E.164, email addresses in lower case.",
    example = json!({"kind": "phone", "value": "+31612345678"})
)]
pub struct Identifier {
    /// Kind.
    kind: IdentifierKind,
    /// Normalised value.
    value: String,
}

impl Identifier {
    /// Parses and normalises `raw` as an identifier of `kind`.
    pub fn parse(
        kind: IdentifierKind,
        raw: &str,
        default_region: Option<Region>,
    ) -> Result<Self, IdentifierError> {
        let value = match kind {
            IdentifierKind::Phone => PhoneNumber::parse(raw, default_region)?.0,
            IdentifierKind::Email => EmailAddress::parse(raw)?.0,
            IdentifierKind::Whatsapp => {
                let id = platform_id(raw)?;
                // wa_ids are phone digits; people paste them with a `+`.
                match id.strip_prefix('+') {
                    Some(digits)
                        if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) =>
                    {
                        digits.to_owned()
                    }
                    _ => id.to_owned(),
                }
            }
            IdentifierKind::X => {
                let id = platform_id(raw)?;
                // `@ anna` and `@@anna` are `anna`: every leading `@` and
                // space goes, or normalising the result would change it
                // once more.
                let handle = id.trim_start_matches(|c: char| c == '@' || c.is_whitespace());
                if handle.is_empty() {
                    return Err(IdentifierError::Empty);
                }
                // X handles are case-insensitive. Lower case can be longer
                // (`İ` is two characters in it): the limit holds for the
                // handle as stored, which must parse to itself again.
                let handle = handle.to_lowercase();
                if !limits::PLATFORM_ID.admits(&handle) {
                    return Err(IdentifierError::TooLong(limits::PLATFORM_ID.chars));
                }
                handle
            }
            IdentifierKind::Account
            | IdentifierKind::Messenger
            | IdentifierKind::Instagram
            | IdentifierKind::Visitor => platform_id(raw)?.to_owned(),
        };
        Ok(Identifier { kind, value })
    }

    /// An identifier from a value that this project already normalised
    /// (a record its gateway wrote), with a cheap integrity check instead
    /// of parsing: one pass over the value, no allocation. It accepts
    /// exactly the values [`Identifier::parse`] gives, except that a phone
    /// number is checked for the form of E.164 (`+`, a country code not
    /// starting with 0, 3 to 20 digits in all) and not against the
    /// numbering plans. Whatever it accepts is bounded and free of control
    /// characters, so the projection can store it.
    pub fn from_normalised(kind: IdentifierKind, value: String) -> Result<Self, IdentifierError> {
        match kind {
            IdentifierKind::Phone => check_e164(&value)?,
            IdentifierKind::Email => check_normalised_email(&value)?,
            IdentifierKind::Whatsapp => {
                check_platform_id(&value)?;
                // Parsing drops the `+` of a wa_id of digits.
                if value.strip_prefix('+').is_some_and(|digits| {
                    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
                }) {
                    return Err(IdentifierError::NotNormalised);
                }
            }
            IdentifierKind::X => {
                check_platform_id(&value)?;
                if value.starts_with('@') || !is_lower_case(&value) {
                    return Err(IdentifierError::NotNormalised);
                }
            }
            IdentifierKind::Account
            | IdentifierKind::Messenger
            | IdentifierKind::Instagram
            | IdentifierKind::Visitor => check_platform_id(&value)?,
        }
        Ok(Identifier { kind, value })
    }

    /// A phone identifier from an already parsed number.
    pub fn phone(number: PhoneNumber) -> Self {
        Identifier {
            kind: IdentifierKind::Phone,
            value: number.0,
        }
    }

    /// An email identifier from an already parsed address.
    pub fn email(address: EmailAddress) -> Self {
        Identifier {
            kind: IdentifierKind::Email,
            value: address.0,
        }
    }

    /// The kind.
    pub fn kind(&self) -> IdentifierKind {
        self.kind
    }

    /// The normalised value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// `kind:value`, the form used as the Kafka record key.
impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// Whether lower-casing leaves `text` as it is, without making the lower
/// case: every character is its own lower case (what `str::to_lowercase`
/// gives is, and nothing else is).
fn is_lower_case(text: &str) -> bool {
    text.chars().all(|c| {
        if c.is_ascii() {
            !c.is_ascii_uppercase()
        } else {
            c.to_lowercase().eq(std::iter::once(c))
        }
    })
}

/// `value` as [`platform_id`] leaves it: trimmed, not empty, bounded, no
/// control characters.
fn check_platform_id(value: &str) -> Result<(), IdentifierError> {
    let trimmed = platform_id(value)?;
    if trimmed.len() != value.len() {
        return Err(IdentifierError::NotNormalised);
    }
    Ok(())
}

/// The form of E.164: `+`, then 3 to 20 digits (a country code of one to
/// three digits, never starting with 0, and a national number of 2 to 17,
/// libphonenumber's bounds), nothing else.
fn check_e164(value: &str) -> Result<(), IdentifierError> {
    let digits = value
        .strip_prefix('+')
        .ok_or(IdentifierError::NotNormalised)?;
    let well_formed = (3..=20).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if !well_formed {
        return Err(IdentifierError::InvalidPhone);
    }
    Ok(())
}

/// An address as [`EmailAddress::parse`] leaves it: trimmed, lower case,
/// bounded, a valid local part and domain.
fn check_normalised_email(value: &str) -> Result<(), IdentifierError> {
    if value.is_empty() {
        return Err(IdentifierError::Empty);
    }
    if !limits::EMAIL.admits(value) {
        return Err(IdentifierError::TooLong(limits::EMAIL.chars));
    }
    // Untrimmed or `mailto:` values fail the syntax below: no white space
    // or `:` in a local part, only letters, digits and `-` in a domain.
    if !is_lower_case(value) {
        return Err(IdentifierError::NotNormalised);
    }
    let (local, domain) = value
        .rsplit_once('@')
        .ok_or(IdentifierError::InvalidEmail)?;
    if !valid_local_part(local) || !valid_domain(domain) {
        return Err(IdentifierError::InvalidEmail);
    }
    Ok(())
}

fn platform_id(raw: &str) -> Result<&str, IdentifierError> {
    let id = non_empty_trimmed(raw).ok_or(IdentifierError::Empty)?;
    if !limits::PLATFORM_ID.admits(id) {
        return Err(IdentifierError::TooLong(limits::PLATFORM_ID.chars));
    }
    if has_control_chars(id) || id.contains(['\t', '\r', '\n']) {
        return Err(IdentifierError::ControlCharacters);
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn region(code: &str) -> Option<Region> {
        Some(code.parse().expect("known region"))
    }

    #[test]
    fn regions_print_as_their_iso_code() {
        let region: Region = " nl".parse().expect("known region");
        assert_eq!(region.to_string(), "NL");
        assert_eq!(region.to_string().parse::<Region>(), Ok(region));
    }

    #[test]
    fn phones_normalise_to_e164_across_regions() {
        let good = [
            ("+31 6 1234 5678", None, "+31612345678"),
            ("06-12345678", region("NL"), "+31612345678"),
            ("0031 6 12345678", None, "+31612345678"),
            ("(415) 555-2671", region("US"), "+14155552671"),
            ("+1 415 555 2671", region("NL"), "+14155552671"),
            ("020 7946 0958", region("GB"), "+442079460958"),
            ("07911 123456", region("GB"), "+447911123456"),
            ("030 123456", region("DE"), "+4930123456"),
            ("+49 30 123456", None, "+4930123456"),
            ("tel:+33-1-42-68-53-00", None, "+33142685300"),
            ("98765 43210", region("IN"), "+919876543210"),
        ];
        for (raw, default_region, expected) in good {
            let parsed = PhoneNumber::parse(raw, default_region)
                .unwrap_or_else(|e| panic!("{raw} should parse: {e}"));
            assert_eq!(parsed.as_str(), expected, "{raw}");
        }
    }

    #[test]
    fn bad_phones_are_refused_with_a_reason() {
        let bad = [
            ("", None, IdentifierError::Empty),
            ("   ", region("NL"), IdentifierError::Empty),
            ("06-12345678", None, IdentifierError::PhoneNeedsRegion),
            ("+31 6 1234", None, IdentifierError::InvalidPhone),
            ("+999 123456789", None, IdentifierError::InvalidPhone),
            ("call me maybe", region("NL"), IdentifierError::InvalidPhone),
            (
                "+31 6 1234 5678 ext; drop table",
                None,
                IdentifierError::InvalidPhone,
            ),
            ("12", region("US"), IdentifierError::InvalidPhone),
            (
                "+1 555 0100 0000 0000 0000 0000 0000 0000 0000",
                None,
                IdentifierError::TooLong(40),
            ),
        ];
        for (raw, default_region, expected) in bad {
            assert_eq!(
                PhoneNumber::parse(raw, default_region),
                Err(expected),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn emails_are_trimmed_lower_cased_and_checked() {
        assert_eq!(
            EmailAddress::parse("  Anna@Example.NL ").map(|e| e.0),
            Ok("anna@example.nl".into())
        );
        assert_eq!(
            EmailAddress::parse("mailto:a.b+tag@sub.example.com").map(|e| e.0),
            Ok("a.b+tag@sub.example.com".into())
        );
        assert_eq!(
            EmailAddress::parse("jürgen@bücher.de").map(|e| e.0),
            Ok("jürgen@bücher.de".into())
        );
        for bad in [
            "anna",
            "anna@",
            "@example.nl",
            "anna@example",
            "an na@example.nl",
            "anna@exa_mple.nl",
            "anna..b@example.nl",
            ".anna@example.nl",
            "anna@-example.nl",
            "anna@example.123",
            "<anna@example.nl>",
        ] {
            assert_eq!(
                EmailAddress::parse(bad),
                Err(IdentifierError::InvalidEmail),
                "{bad}"
            );
        }
        assert_eq!(EmailAddress::parse(""), Err(IdentifierError::Empty));
        let long = format!("{}@example.nl", "a".repeat(250));
        assert_eq!(
            EmailAddress::parse(&long),
            Err(IdentifierError::TooLong(254))
        );
        let long_local = format!("{}@example.nl", "a".repeat(65));
        assert_eq!(
            EmailAddress::parse(&long_local),
            Err(IdentifierError::InvalidEmail)
        );
    }

    #[test]
    fn platform_ids_are_trimmed_and_bounded() {
        let id = |kind, raw| Identifier::parse(kind, raw, None).map(|i| i.value().to_owned());
        assert_eq!(
            id(IdentifierKind::Account, "  C-1001 "),
            Ok("C-1001".into())
        );
        assert_eq!(
            id(IdentifierKind::Whatsapp, "+31612345678"),
            Ok("31612345678".into())
        );
        assert_eq!(
            id(IdentifierKind::Whatsapp, "31612345678"),
            Ok("31612345678".into())
        );
        assert_eq!(
            id(IdentifierKind::X, "@AnnaDeVries"),
            Ok("annadevries".into())
        );
        assert_eq!(id(IdentifierKind::X, "@"), Err(IdentifierError::Empty));
        assert_eq!(id(IdentifierKind::X, "@ "), Err(IdentifierError::Empty));
        assert_eq!(
            id(IdentifierKind::X, "@ AnnaDeVries"),
            id(IdentifierKind::X, "annadevries")
        );
        assert_eq!(
            id(IdentifierKind::Messenger, "6254823497921"),
            Ok("6254823497921".into())
        );
        assert_eq!(id(IdentifierKind::Visitor, ""), Err(IdentifierError::Empty));
        assert_eq!(
            id(IdentifierKind::Account, "a\u{0}b"),
            Err(IdentifierError::ControlCharacters)
        );
        assert_eq!(
            id(IdentifierKind::Account, "a\nb"),
            Err(IdentifierError::ControlCharacters)
        );
        assert_eq!(
            id(IdentifierKind::Instagram, &"9".repeat(129)),
            Err(IdentifierError::TooLong(128))
        );
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in IdentifierKind::ALL {
            assert_eq!(kind.as_str().parse::<IdentifierKind>(), Ok(kind));
        }
        assert!(matches!(
            "fax".parse::<IdentifierKind>(),
            Err(IdentifierError::UnknownKind(_))
        ));
        assert!("nl".parse::<Region>().is_ok());
        assert!("XX".parse::<Region>().is_err());
    }

    #[test]
    fn display_is_the_record_key_form() {
        let phone =
            Identifier::parse(IdentifierKind::Phone, "+31 6 1234 5678", None).expect("valid");
        assert_eq!(phone.to_string(), "phone:+31612345678");
    }

    #[test]
    fn handles_and_addresses_are_bounded_as_stored() {
        // `İ` is two characters in lower case: 100 of them would be stored
        // as 200, which would not parse again.
        let grows = "İ".repeat(100);
        assert_eq!(
            Identifier::parse(IdentifierKind::X, &grows, None),
            Err(IdentifierError::TooLong(128))
        );
        let fits = Identifier::parse(IdentifierKind::X, &"İ".repeat(64), None).expect("fits");
        assert_eq!(fits.value().chars().count(), 128);
        assert_eq!(
            Identifier::parse(IdentifierKind::X, fits.value(), None),
            Ok(fits.clone())
        );
        assert_eq!(
            id_value(IdentifierKind::X, "@@Anna"),
            Ok("anna".to_owned()),
            "every leading @ goes, or the stored handle would lose one more"
        );
        assert_eq!(
            id_value(IdentifierKind::X, "@ @"),
            Err(IdentifierError::Empty)
        );
        // 254 characters as written; the local part doubles in lower case.
        let label = "a".repeat(63);
        let address = format!(
            "{}@{label}.{label}.{label}.{}",
            "İ".repeat(32),
            "a".repeat(29)
        );
        assert!(
            address.chars().count() <= 254,
            "within the limit as written"
        );
        assert_eq!(
            EmailAddress::parse(&address),
            Err(IdentifierError::TooLong(254))
        );
    }

    fn id_value(kind: IdentifierKind, raw: &str) -> Result<String, IdentifierError> {
        Identifier::parse(kind, raw, None).map(|id| id.value().to_owned())
    }

    #[test]
    fn lower_case_is_stable_over_all_of_unicode() {
        // Normalising lower-cases handles and addresses once; the stored
        // value must come out of a second pass unchanged, and lower case
        // must not make white space, control characters or `@` (which
        // trimming and parsing would then treat differently).
        for c in (0..=0x10_FFFF).filter_map(char::from_u32) {
            let once: String = c.to_lowercase().collect();
            assert_eq!(once.to_lowercase(), once, "{c:?}");
            if !c.is_whitespace() && !c.is_control() && c != '@' {
                assert!(
                    !once
                        .chars()
                        .any(|l| l.is_whitespace() || l.is_control() || l == '@'),
                    "{c:?}"
                );
            }
        }
    }

    #[test]
    fn normalised_values_are_read_back_as_they_are() {
        for (kind, value) in [
            (IdentifierKind::Phone, "+31612345678"),
            (IdentifierKind::Phone, "+14155552671"),
            (IdentifierKind::Email, "jürgen@bücher.de"),
            (IdentifierKind::Whatsapp, "31612345678"),
            (IdentifierKind::Whatsapp, "+"),
            (IdentifierKind::X, "annadevries"),
            (IdentifierKind::Account, "C-1001"),
        ] {
            let read = Identifier::from_normalised(kind, value.to_owned());
            assert_eq!(read.as_ref().map(Identifier::value), Ok(value), "{kind}");
            assert_eq!(read, Identifier::parse(kind, value, None), "{kind}");
        }
    }

    #[test]
    fn values_the_normaliser_would_never_give_are_refused() {
        for (kind, value, error) in [
            (
                IdentifierKind::Phone,
                "+31 6 1234 5678",
                IdentifierError::InvalidPhone,
            ),
            (
                IdentifierKind::Phone,
                "0612345678",
                IdentifierError::NotNormalised,
            ),
            (
                IdentifierKind::Phone,
                "+0612345678",
                IdentifierError::InvalidPhone,
            ),
            (IdentifierKind::Phone, "+12", IdentifierError::InvalidPhone),
            (
                IdentifierKind::Phone,
                "+123456789012345678901",
                IdentifierError::InvalidPhone,
            ),
            (
                IdentifierKind::Phone,
                "+３１６１２３４５６７８",
                IdentifierError::InvalidPhone,
            ),
            (IdentifierKind::Phone, "", IdentifierError::NotNormalised),
            (
                IdentifierKind::Email,
                "Anna@Example.NL",
                IdentifierError::NotNormalised,
            ),
            (
                IdentifierKind::Email,
                " anna@example.nl",
                IdentifierError::InvalidEmail,
            ),
            (
                IdentifierKind::Email,
                "mailto:anna@example.nl",
                IdentifierError::InvalidEmail,
            ),
            (
                IdentifierKind::Email,
                "anna@example",
                IdentifierError::InvalidEmail,
            ),
            (IdentifierKind::Email, "", IdentifierError::Empty),
            (
                IdentifierKind::Whatsapp,
                "+31612345678",
                IdentifierError::NotNormalised,
            ),
            (IdentifierKind::X, "@anna", IdentifierError::NotNormalised),
            (IdentifierKind::X, "Anna", IdentifierError::NotNormalised),
            (
                IdentifierKind::Account,
                " C-1001",
                IdentifierError::NotNormalised,
            ),
            (
                IdentifierKind::Account,
                "C-1001\n",
                IdentifierError::NotNormalised,
            ),
            (
                IdentifierKind::Account,
                "a\u{0}b",
                IdentifierError::ControlCharacters,
            ),
            (IdentifierKind::Visitor, "", IdentifierError::Empty),
        ] {
            assert_eq!(
                Identifier::from_normalised(kind, value.to_owned()),
                Err(error),
                "{kind} {value:?}"
            );
        }
        assert_eq!(
            Identifier::from_normalised(IdentifierKind::Instagram, "9".repeat(129)),
            Err(IdentifierError::TooLong(128))
        );
        let long = format!("{}@example.nl", "a".repeat(250));
        assert_eq!(
            Identifier::from_normalised(IdentifierKind::Email, long),
            Err(IdentifierError::TooLong(254))
        );
    }

    /// Regions whose numbers differ in shape: leading zeros kept (IT),
    /// long national numbers (DE, AT), short ones (NU, TK, SH), shared
    /// country codes (US, CA, RU, KZ).
    const REGIONS: &[&str] = &[
        "NL", "US", "CA", "GB", "DE", "AT", "IT", "SM", "VA", "FR", "BE", "IN", "BR", "CN", "JP",
        "RU", "KZ", "AU", "NZ", "NU", "TK", "SH", "FO", "IS", "LI", "MC", "SG", "HK", "ZA", "NG",
        "AR", "MX", "IL", "AE", "SE", "FI",
    ];

    proptest! {
        /// Whatever normalising gives is read back to the same identifier.
        #[test]
        fn whatever_parses_is_read_back_as_normalised(
            kind in proptest::sample::select(IdentifierKind::ALL.to_vec()),
            raw in prop_oneof![
                "[+0-9a-zA-Z@. -]{1,30}".boxed(),
                any::<String>().boxed(),
                crate::arbitrary::identifier().prop_map(|draft| draft.value).boxed(),
            ],
            region in proptest::sample::select(REGIONS),
        ) {
            if let Ok(parsed) = Identifier::parse(kind, &raw, region.parse().ok()) {
                let read = Identifier::from_normalised(kind, parsed.value().to_owned());
                prop_assert_eq!(read, Ok(parsed));
            }
        }

        /// Phone numbers of every shape in many regions: what parses is in
        /// the E.164 form the cheap check expects.
        #[test]
        fn every_valid_phone_number_passes_the_cheap_check(
            national in "0?[1-9][0-9]{1,16}",
            international in any::<bool>(),
            region in proptest::sample::select(REGIONS),
        ) {
            let raw = if international { format!("+{national}") } else { national };
            if let Ok(parsed) = Identifier::parse(IdentifierKind::Phone, &raw, region.parse().ok()) {
                let read = Identifier::from_normalised(IdentifierKind::Phone, parsed.value().to_owned());
                prop_assert_eq!(read, Ok(parsed));
            }
        }

        /// The cheap check accepts only fixed points of normalising (a
        /// phone number: only the E.164 form), over all of Unicode, and
        /// never panics.
        #[test]
        fn the_cheap_check_accepts_only_normalised_values(
            kind in proptest::sample::select(IdentifierKind::ALL.to_vec()),
            value in prop_oneof![
                any::<String>().boxed(),
                "[+0-9a-zA-Z@. -]{1,30}".boxed(),
                crate::arbitrary::identifier().prop_map(|draft| draft.value).boxed(),
            ],
        ) {
            if let Ok(read) = Identifier::from_normalised(kind, value.clone()) {
                prop_assert_eq!(read.value(), value.as_str());
                if kind == IdentifierKind::Phone {
                    let digits = &value[1..];
                    prop_assert!(value.starts_with('+') && digits.len() <= 20);
                    prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()));
                } else {
                    prop_assert_eq!(Identifier::parse(kind, &value, None), Ok(read));
                }
            }
        }

        #[test]
        fn parsing_never_panics(kind in proptest::sample::select(IdentifierKind::ALL.to_vec()), raw in any::<String>()) {
            let _ = Identifier::parse(kind, &raw, "NL".parse().ok());
        }

        #[test]
        fn phone_like_input_never_panics(raw in "[+0-9 ()./-]{0,40}", region in proptest::sample::select(vec!["NL", "US", "GB", "DE", "IN", "BR"])) {
            let _ = PhoneNumber::parse(&raw, region.parse().ok());
        }

        #[test]
        fn normalisation_is_idempotent(
            kind in proptest::sample::select(IdentifierKind::ALL.to_vec()),
            raw in prop_oneof![
                "[+0-9a-zA-Z@. -]{1,30}".boxed(),
                any::<String>().boxed(),
                crate::arbitrary::identifier().prop_map(|draft| draft.value).boxed(),
            ],
            region in proptest::sample::select(vec!["NL", "US", "GB", "DE", "IN", "BR"]),
        ) {
            if let Ok(once) = Identifier::parse(kind, &raw, region.parse().ok()) {
                let twice = Identifier::parse(kind, once.value(), None);
                prop_assert_eq!(Ok(once), twice);
            }
        }
    }
}
