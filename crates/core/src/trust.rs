//! How far an identifier on an event is trusted. The gateway decides it from
//! the route and the credential an event arrived with, never from what the
//! sender wrote: a signed provider webhook or a channel token of a system
//! that authenticates its users vouches for the identifiers it sends; a
//! public browser write key vouches for nothing.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::identifier::Identifier;

/// How far the gateway trusts an identifier an event carries: `verified`,
/// or `claimed` (anyone could have typed it; it never merges customers).
///
/// Ordered, claimed below verified, so the trust a route allows caps what
/// an adapter found with `min`.
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
pub enum Trust {
    /// Anyone could have typed it: a public web form, a chat's pre-chat
    /// form, a beacon, anything posted with a browser write key, or an
    /// email sender whose domain did not authenticate. A claimed
    /// identifier never merges customers and never joins a customer that
    /// has verified identifiers.
    Claimed,
    /// The gateway can vouch for it: the caller's number of a signed Twilio
    /// webhook, a WhatsApp, Messenger or Instagram id from Meta, an email
    /// sender whose domain passed SPF, DKIM or DMARC, identifiers from a
    /// channel token of a system that authenticates its users (a CRM, a
    /// PBX, a logged-in web back end), or an identifier an agent confirmed.
    Verified,
}

impl Trust {
    /// Both values, the most trusted first.
    pub const ALL: [Trust; 2] = [Trust::Verified, Trust::Claimed];

    /// The lower-case name used in JSON and SQL.
    pub fn as_str(self) -> &'static str {
        match self {
            Trust::Claimed => "claimed",
            Trust::Verified => "verified",
        }
    }

    /// `Verified`: what a draft's identifiers start as, until the gateway
    /// caps them by the route they came through.
    pub fn verified() -> Trust {
        Trust::Verified
    }
}

impl fmt::Display for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Trust {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "claimed" => Ok(Trust::Claimed),
            "verified" => Ok(Trust::Verified),
            other => Err(format!(
                "unknown trust \"{}\"; expected verified or claimed",
                other.chars().take(40).collect::<String>()
            )),
        }
    }
}

/// An identifier as an event carries it: what it is, and how far the
/// gateway trusts it. Serialises as `{"kind", "value", "trust"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventIdentifier {
    /// The identifier.
    pub identifier: Identifier,
    /// How far it is trusted.
    pub trust: Trust,
}

impl EventIdentifier {
    /// A verified identifier.
    pub fn verified(identifier: Identifier) -> Self {
        EventIdentifier {
            identifier,
            trust: Trust::Verified,
        }
    }

    /// A claimed identifier.
    pub fn claimed(identifier: Identifier) -> Self {
        EventIdentifier {
            identifier,
            trust: Trust::Claimed,
        }
    }

    /// Whether the gateway vouches for it.
    pub fn is_verified(&self) -> bool {
        self.trust == Trust::Verified
    }
}

impl Serialize for EventIdentifier {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut state = serializer.serialize_struct("EventIdentifier", 3)?;
        state.serialize_field("kind", &self.identifier.kind())?;
        state.serialize_field("value", self.identifier.value())?;
        state.serialize_field("trust", &self.trust)?;
        state.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IdentifierKind;

    #[test]
    fn a_route_caps_trust_with_min() {
        assert_eq!(Trust::Verified.min(Trust::Claimed), Trust::Claimed);
        assert_eq!(Trust::Claimed.min(Trust::Verified), Trust::Claimed);
        assert_eq!(Trust::Verified.min(Trust::Verified), Trust::Verified);
    }

    #[test]
    fn trust_reads_back_what_it_writes() {
        for trust in Trust::ALL {
            assert_eq!(trust.as_str().parse::<Trust>(), Ok(trust));
            assert_eq!(
                serde_json::to_value(trust).expect("json"),
                serde_json::json!(trust.as_str())
            );
        }
        assert!("trusted".parse::<Trust>().is_err());
    }

    #[test]
    fn event_identifiers_serialise_with_their_trust() {
        let identifier =
            Identifier::parse(IdentifierKind::Email, "Anna@Example.NL", None).expect("valid");
        assert_eq!(
            serde_json::to_value(EventIdentifier::claimed(identifier)).expect("json"),
            serde_json::json!({"kind": "email", "value": "anna@example.nl", "trust": "claimed"})
        );
    }
}
