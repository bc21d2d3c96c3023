//! How settings are written in TOML, variables and flags, and checked as
//! they are read: durations as whole numbers of the unit their key names,
//! rules as their textual spec, secrets trimmed, lists comma-separated.
//! A refused value is a serde error, which names the key it came from.

use std::fmt::Display;

use panorama_core::CrashPoints;
use panorama_core::cases::CaseRules;
use panorama_core::identity::IdentityRules;
use panorama_core::priority::PriorityRules;
use panorama_core::retention::RetentionRules;
use panorama_server::{ChannelSettings, FrameAncestors};
use panorama_store::ViewRules;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

/// A whole number of at least 1.
pub(super) fn positive<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + PartialOrd + From<u8> + Display,
{
    let value = T::deserialize(deserializer)?;
    if value < T::from(1) {
        return Err(D::Error::custom(format!("must be at least 1, got {value}")));
    }
    Ok(value)
}

/// A PostgreSQL URL whose TLS parameters (`sslmode`, `sslrootcert`, ...)
/// make sense; the rest is read when the pool is built. The message never
/// repeats the URL, which may hold a password.
pub(super) fn database_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let url = String::deserialize(deserializer)?;
    match panorama_store::check_database_url(&url) {
        Ok(()) => Ok(url),
        Err(panorama_store::Error::Config(why)) => Err(D::Error::custom(why)),
        Err(other) => Err(D::Error::custom(other)),
    }
}

/// A topic's `retention.ms`: -1 (forever) or positive.
pub(super) fn retention_ms<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    match i64::deserialize(deserializer)? {
        millis if millis == -1 || millis > 0 => Ok(millis),
        other => Err(D::Error::custom(format!(
            "must be -1 (forever) or positive, got {other}"
        ))),
    }
}

/// A duration as a whole number of units of `UNIT` milliseconds, at least
/// `MIN` of them.
pub(super) mod duration {
    use std::time::Duration;

    use serde::de::Error as _;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(in crate::options) fn serialize<S: Serializer, const UNIT: u64>(
        value: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let units = value.as_millis() / u128::from(UNIT);
        serializer.serialize_u64(u64::try_from(units).unwrap_or(u64::MAX))
    }

    pub(in crate::options) fn deserialize<
        'de,
        D: Deserializer<'de>,
        const UNIT: u64,
        const MIN: u64,
    >(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let units = u64::deserialize(deserializer)?;
        if units < MIN {
            return Err(D::Error::custom(format!(
                "must be at least {MIN}, got {units}"
            )));
        }
        Ok(Duration::from_millis(units.saturating_mul(UNIT)))
    }
}

/// Milliseconds; 0 for none.
pub(super) mod optional_millis {
    use std::time::Duration;

    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(in crate::options) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let millis = value.map_or(0, |value| value.as_millis());
        serializer.serialize_u64(u64::try_from(millis).unwrap_or(u64::MAX))
    }

    pub(in crate::options) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let millis = u64::deserialize(deserializer)?;
        Ok((millis > 0).then(|| Duration::from_millis(millis)))
    }
}

/// A whole number of days from 1 to 3650.
mod days {
    use serde::de::Error as _;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &chrono::Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(value.num_days())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<chrono::Duration, D::Error> {
        let days = u32::deserialize(deserializer)?;
        if !(1..=3650).contains(&days) {
            return Err(D::Error::custom(format!(
                "must be from 1 to 3650 days, got {days}"
            )));
        }
        Ok(chrono::Duration::days(i64::from(days)))
    }
}

/// The case window, in days.
mod case_days {
    use panorama_core::cases::CaseRules;
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &CaseRules,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        super::days::serialize(&value.window, serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<CaseRules, D::Error> {
        Ok(CaseRules {
            window: super::days::deserialize(deserializer)?,
        })
    }
}

/// Rules written as a textual spec, read back as [`Display`] prints them.
pub(super) trait Spec: Sized + Display {
    /// Parses the spec; the error says what is wrong with it.
    fn parse_spec(spec: &str) -> Result<Self, String>;
}

impl Spec for IdentityRules {
    /// A spec changes the default rules.
    fn parse_spec(spec: &str) -> Result<Self, String> {
        IdentityRules::default().with_spec(spec)
    }
}

impl Spec for PriorityRules {
    fn parse_spec(spec: &str) -> Result<Self, String> {
        PriorityRules::parse(spec)
    }
}

impl Spec for RetentionRules {
    fn parse_spec(spec: &str) -> Result<Self, String> {
        RetentionRules::parse(spec)
    }
}

impl Spec for CrashPoints {
    fn parse_spec(spec: &str) -> Result<Self, String> {
        CrashPoints::parse(spec)
    }
}

impl Spec for FrameAncestors {
    fn parse_spec(spec: &str) -> Result<Self, String> {
        FrameAncestors::parse(spec)
    }
}

/// A [`Spec`] as text.
pub(super) mod spec {
    use serde::de::Error as _;
    use serde::{Deserialize as _, Deserializer, Serializer};

    use super::Spec;

    pub(in crate::options) fn serialize<S: Serializer, T: Spec>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub(in crate::options) fn deserialize<'de, D: Deserializer<'de>, T: Spec>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        let spec = String::deserialize(deserializer)?;
        T::parse_spec(&spec).map_err(D::Error::custom)
    }
}

/// An ISO region code; empty for none.
pub(super) mod region {
    use panorama_core::Region;
    use serde::de::Error as _;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(in crate::options) fn serialize<S: Serializer>(
        value: &Option<Region>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(region) => serializer.collect_str(region),
            None => serializer.serialize_none(),
        }
    }

    pub(in crate::options) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Region>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(None),
            Some(code) if code.trim().is_empty() => Ok(None),
            Some(code) => code.parse::<Region>().map(Some).map_err(D::Error::custom),
        }
    }
}

/// A secret or an address: trimmed, and none when empty.
pub(super) mod secret {
    use serde::{Deserialize as _, Deserializer, Serialize as _, Serializer};

    pub(in crate::options) fn serialize<S: Serializer>(
        value: &Option<String>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.serialize(serializer)
    }

    pub(in crate::options) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<String>, D::Error> {
        Ok(Option::<String>::deserialize(deserializer)?
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty()))
    }
}

/// A list: comma-separated text (as variables and flags give it) or a TOML
/// array; blank items are dropped.
mod list {
    use serde::{Deserialize, Deserializer, Serialize as _, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Items(Vec<String>),
    }

    pub(super) fn serialize<S: Serializer>(
        value: &[String],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<String>, D::Error> {
        let items = match Written::deserialize(deserializer)? {
            Written::Text(text) => text.split(',').map(str::to_owned).collect(),
            Written::Items(items) => items,
        };
        Ok(items
            .iter()
            .map(|item| item.trim())
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

/// `[view_rules]`: how the agent's view groups cases and ranks customers.
#[derive(Serialize, Deserialize)]
#[serde(remote = "ViewRules", default, deny_unknown_fields)]
pub(super) struct ViewRulesForm {
    /// Contacts with the same reason this many days apart share a case.
    #[serde(rename = "case_window_days", with = "case_days")]
    cases: CaseRules,
    /// An open case whose last contact is older raises
    /// `unresolved_after_contact`.
    #[serde(rename = "unresolved_after_days", with = "days")]
    unresolved_after: chrono::Duration,
    /// Priority tiers over traits (`customer.*` attributes).
    #[serde(rename = "priority_rules", with = "spec")]
    priority: PriorityRules,
}

impl Default for ViewRulesForm {
    /// The store's defaults: serde fills missing keys from them.
    fn default() -> Self {
        let ViewRules {
            cases,
            unresolved_after,
            priority,
        } = ViewRules::default();
        ViewRulesForm {
            cases,
            unresolved_after,
            priority,
        }
    }
}

/// `[channels]`: the channel adapters' secrets and settings.
#[derive(Serialize, Deserialize)]
#[serde(remote = "ChannelSettings", default, deny_unknown_fields)]
pub(super) struct ChannelSettingsForm {
    #[serde(with = "secret")]
    public_url: Option<String>,
    #[serde(with = "secret")]
    twilio_auth_token: Option<String>,
    #[serde(with = "secret")]
    meta_app_secret: Option<String>,
    #[serde(with = "secret")]
    meta_verify_token: Option<String>,
    #[serde(with = "secret")]
    mailgun_signing_key: Option<String>,
    #[serde(with = "secret")]
    sendgrid_secret: Option<String>,
    #[serde(with = "list")]
    channel_tokens: Vec<String>,
    #[serde(with = "list")]
    web_write_keys: Vec<String>,
    #[serde(with = "list")]
    web_allowed_origins: Vec<String>,
    #[serde(with = "list")]
    segment_write_keys: Vec<String>,
    #[serde(with = "list")]
    segment_verified_write_keys: Vec<String>,
    #[serde(with = "list")]
    segment_contact_events: Vec<String>,
    #[serde(with = "list")]
    mime_authserv_ids: Vec<String>,
}

impl Default for ChannelSettingsForm {
    /// Every adapter off: serde fills missing keys from this.
    fn default() -> Self {
        let ChannelSettings {
            public_url,
            twilio_auth_token,
            meta_app_secret,
            meta_verify_token,
            mailgun_signing_key,
            sendgrid_secret,
            channel_tokens,
            web_write_keys,
            web_allowed_origins,
            segment_write_keys,
            segment_verified_write_keys,
            segment_contact_events,
            mime_authserv_ids,
        } = ChannelSettings::default();
        ChannelSettingsForm {
            public_url,
            twilio_auth_token,
            meta_app_secret,
            meta_verify_token,
            mailgun_signing_key,
            sendgrid_secret,
            channel_tokens,
            web_write_keys,
            web_allowed_origins,
            segment_write_keys,
            segment_verified_write_keys,
            segment_contact_events,
            mime_authserv_ids,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Options;

    /// What the defaults print as reads back as the defaults: the forms
    /// lose nothing, so `panorama config` output is a valid config file.
    #[test]
    fn the_defaults_read_back_from_their_written_form() {
        let written = toml::to_string(&Options::default()).expect("serialises");
        let read: Options = toml::from_str(&written).expect("reads back");
        assert_eq!(
            toml::to_string(&read).expect("serialises"),
            written,
            "{written}"
        );
    }
}
