//! Consent: a customer's contact preferences per channel and purpose
//! ("service calls yes, marketing email no"), as events state them, and the
//! rule that tells an agent planning a follow-up whether the customer
//! allows it.
//!
//! An event carries a list of statements (`consent`), each a channel, a
//! purpose and whether the customer grants it; a `consent.updated` event
//! (from a preference centre, a CRM, or an agent) must carry at least one,
//! and any other event may (a web form whose opt-in box was ticked). The
//! projection keeps the latest statement per customer, channel and purpose
//! by `occurred_at` (then event id), whatever order the events arrive in.
//!
//! Reading them: a statement about channel `any` speaks for every channel;
//! for one channel, the latest of its own statement and the `any` one wins,
//! and on the same instant the channel's own (so one event can say "no
//! contact but email"). A follow-up task is a service contact: it is
//! checked against purpose `service` ([`follow_up_status`]).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{Channel, FieldError, string_enum};

string_enum!(
    /// The channel a consent statement is about: a way of reaching the
    /// customer, finer than [`Channel`] for social messaging (each platform
    /// asks its own opt-in), or `any` for every channel at once.
    ConsentChannel, "consent channel" {
        /// Every channel: the statement holds wherever no later one about
        /// the channel itself says otherwise.
        Any => "any",
        /// Voice calls.
        Phone => "phone",
        /// Email.
        Email => "email",
        /// Text messages.
        Sms => "sms",
        /// WhatsApp.
        Whatsapp => "whatsapp",
        /// Facebook Messenger.
        Messenger => "messenger",
        /// Instagram direct messages.
        Instagram => "instagram",
        /// The website: proactive chat, web messages.
        Web => "web",
    }
);

string_enum!(
    /// What the customer may be contacted for.
    ConsentPurpose, "consent purpose" {
        /// Service: about their orders, cases and accounts, follow-ups
        /// included.
        Service => "service",
        /// Marketing: offers, newsletters, campaigns.
        Marketing => "marketing",
        /// Surveys: NPS, CSAT and CES invitations.
        Surveys => "surveys",
    }
);

string_enum!(
    /// Whether a contact through a channel for a purpose is allowed, as the
    /// customer's latest statements say.
    ConsentStatus, "consent status" {
        /// The customer allows it.
        Allowed => "allowed",
        /// The customer refused it.
        Refused => "refused",
        /// The customer never said.
        Unknown => "unknown",
    }
);

/// Most statements one event may carry: one per channel and purpose.
pub const MAX_STATEMENTS: usize = ConsentChannel::ALL.len() * ConsentPurpose::ALL.len();

/// A validated consent statement of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Consent {
    /// The channel, or `any`.
    pub channel: ConsentChannel,
    /// The purpose.
    pub purpose: ConsentPurpose,
    /// `true`: the customer allows it; `false`: refuses it.
    pub granted: bool,
}

/// A consent statement as a caller sends it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentDraft {
    /// `any`, `phone`, `email`, `sms`, `whatsapp`, `messenger`,
    /// `instagram` or `web`.
    #[schema(value_type = ConsentChannel)]
    pub channel: String,
    /// `service`, `marketing` or `surveys`.
    #[schema(value_type = ConsentPurpose)]
    pub purpose: String,
    /// `true`: the customer allows it; `false`: refuses it.
    #[serde(default)]
    #[schema(value_type = bool, required = true)]
    pub granted: Option<bool>,
}

impl From<Consent> for ConsentDraft {
    fn from(consent: Consent) -> Self {
        ConsentDraft {
            channel: consent.channel.as_str().to_owned(),
            purpose: consent.purpose.as_str().to_owned(),
            granted: Some(consent.granted),
        }
    }
}

/// Checks an event's statements, in their order, naming the field at fault
/// (`consent[1].channel`): known channels and purposes, `granted` given, at
/// most one statement per channel and purpose.
pub(crate) fn parse_consent(drafts: Vec<ConsentDraft>) -> Result<Vec<Consent>, FieldError> {
    if drafts.len() > MAX_STATEMENTS {
        return Err(FieldError::new(
            "consent",
            format!("at most {MAX_STATEMENTS} statements, one per channel and purpose"),
        ));
    }
    let mut statements: Vec<Consent> = Vec::with_capacity(drafts.len());
    for (index, draft) in drafts.into_iter().enumerate() {
        let field = |name: &str| format!("consent[{index}].{name}");
        let channel = draft
            .channel
            .trim()
            .parse::<ConsentChannel>()
            .map_err(|e| FieldError::new(field("channel"), e))?;
        let purpose = draft
            .purpose
            .trim()
            .parse::<ConsentPurpose>()
            .map_err(|e| FieldError::new(field("purpose"), e))?;
        let granted = draft.granted.ok_or_else(|| {
            FieldError::new(
                field("granted"),
                "is required: true (allowed) or false (refused)",
            )
        })?;
        if let Some(first) = statements
            .iter()
            .position(|s| s.channel == channel && s.purpose == purpose)
        {
            return Err(FieldError::new(
                format!("consent[{index}]"),
                format!(
                    "repeats the channel and purpose of consent[{first}]: one statement per channel and purpose"
                ),
            ));
        }
        statements.push(Consent {
            channel,
            purpose,
            granted,
        });
    }
    Ok(statements)
}

/// A statement as the projection keeps it: the latest of a customer for its
/// channel and purpose, with when it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement {
    /// The channel, or `any`.
    pub channel: ConsentChannel,
    /// The purpose.
    pub purpose: ConsentPurpose,
    /// Whether the customer allows it.
    pub granted: bool,
    /// When the customer said so (`occurred_at` of its event).
    pub at: DateTime<Utc>,
}

impl ConsentChannel {
    /// The consent channels a contact through `channel` uses: a follow-up
    /// `social` message goes out on one of the messaging platforms, a chat
    /// on the website. Agent actions reach nobody.
    pub fn reaching(channel: Channel) -> &'static [ConsentChannel] {
        match channel {
            Channel::Phone => &[ConsentChannel::Phone],
            Channel::Email => &[ConsentChannel::Email],
            Channel::Sms => &[ConsentChannel::Sms],
            Channel::Web | Channel::Chat => &[ConsentChannel::Web],
            Channel::Social => &[
                ConsentChannel::Whatsapp,
                ConsentChannel::Messenger,
                ConsentChannel::Instagram,
            ],
            Channel::Agent => &[],
        }
    }
}

/// Whether a contact through consent channel `channel` for `purpose` is
/// allowed by the customer's `statements` (the latest per channel and
/// purpose): the later of the channel's own statement and the `any` one,
/// the channel's own on the same instant.
pub fn status(
    statements: &[Statement],
    channel: ConsentChannel,
    purpose: ConsentPurpose,
) -> ConsentStatus {
    let latest_about = |about: ConsentChannel| {
        statements
            .iter()
            .filter(|s| s.channel == about && s.purpose == purpose)
            .max_by_key(|s| s.at)
    };
    let own = latest_about(channel);
    let general = latest_about(ConsentChannel::Any);
    let deciding = match (own, general) {
        (Some(own), Some(general)) if general.at > own.at => Some(general),
        (Some(own), _) => Some(own),
        (None, general) => general,
    };
    match deciding {
        Some(statement) if statement.granted => ConsentStatus::Allowed,
        Some(_) => ConsentStatus::Refused,
        None => ConsentStatus::Unknown,
    }
}

/// Whether a follow-up (a service contact) through task channel `channel`
/// is allowed: through a channel of several platforms (`social`), allowed
/// when one of them is, refused when every one is. A channel that is no
/// [`Channel`] is unknown.
pub fn follow_up_status(statements: &[Statement], channel: &str) -> ConsentStatus {
    let Ok(channel) = channel.parse::<Channel>() else {
        return ConsentStatus::Unknown;
    };
    let reaching = ConsentChannel::reaching(channel);
    let statuses: Vec<ConsentStatus> = reaching
        .iter()
        .map(|&platform| status(statements, platform, ConsentPurpose::Service))
        .collect();
    if statuses.contains(&ConsentStatus::Allowed) {
        ConsentStatus::Allowed
    } else if !statuses.is_empty() && statuses.iter().all(|s| *s == ConsentStatus::Refused) {
        ConsentStatus::Refused
    } else {
        ConsentStatus::Unknown
    }
}

/// The follow-up status of every channel a task can use (all but `agent`),
/// by channel name.
pub fn follow_up_by_channel(
    statements: &[Statement],
) -> std::collections::BTreeMap<String, ConsentStatus> {
    Channel::ALL
        .iter()
        .filter(|channel| **channel != Channel::Agent)
        .map(|channel| {
            (
                channel.as_str().to_owned(),
                follow_up_status(statements, channel.as_str()),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn draft(channel: &str, purpose: &str, granted: Option<bool>) -> ConsentDraft {
        ConsentDraft {
            channel: channel.into(),
            purpose: purpose.into(),
            granted,
        }
    }

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + chrono::Duration::minutes(minute)
    }

    fn said(
        channel: ConsentChannel,
        purpose: ConsentPurpose,
        granted: bool,
        minute: i64,
    ) -> Statement {
        Statement {
            channel,
            purpose,
            granted,
            at: at(minute),
        }
    }

    #[test]
    fn statements_parse_in_order_and_problems_name_the_field() {
        let parsed = parse_consent(vec![
            draft(" email ", "marketing", Some(false)),
            draft("phone", "service", Some(true)),
        ])
        .expect("valid");
        assert_eq!(
            parsed,
            vec![
                Consent {
                    channel: ConsentChannel::Email,
                    purpose: ConsentPurpose::Marketing,
                    granted: false
                },
                Consent {
                    channel: ConsentChannel::Phone,
                    purpose: ConsentPurpose::Service,
                    granted: true
                },
            ]
        );
        let field_of = |drafts| parse_consent(drafts).expect_err("refused").field;
        assert_eq!(
            field_of(vec![draft("email", "spam", Some(true))]),
            "consent[0].purpose"
        );
        assert_eq!(
            field_of(vec![
                draft("email", "service", Some(true)),
                draft("fax", "service", Some(true))
            ]),
            "consent[1].channel"
        );
        assert_eq!(
            field_of(vec![draft("email", "service", None)]),
            "consent[0].granted"
        );
        assert_eq!(
            field_of(vec![
                draft("any", "marketing", Some(false)),
                draft("email", "service", Some(true)),
                draft("any", " marketing", Some(true)),
            ]),
            "consent[2]"
        );
        // Names are exact: no case folding, no look-alikes.
        for name in [
            "Email", "EMAIL", "emaıl", "ｅmail", "e-mail", "", "social", "agent",
        ] {
            assert_eq!(
                field_of(vec![draft(name, "service", Some(true))]),
                "consent[0].channel",
                "{name:?}"
            );
        }
        for name in ["Service", "SERVİCE", "survey", "any"] {
            assert_eq!(
                field_of(vec![draft("email", name, Some(true))]),
                "consent[0].purpose",
                "{name:?}"
            );
        }
    }

    #[test]
    fn one_statement_per_channel_and_purpose_bounds_the_list() {
        let every: Vec<ConsentDraft> = ConsentChannel::ALL
            .iter()
            .flat_map(|channel| {
                ConsentPurpose::ALL
                    .iter()
                    .map(move |purpose| draft(channel.as_str(), purpose.as_str(), Some(true)))
            })
            .collect();
        assert_eq!(every.len(), MAX_STATEMENTS);
        assert_eq!(
            parse_consent(every.clone()).map(|s| s.len()),
            Ok(MAX_STATEMENTS)
        );
        let mut too_many = every;
        too_many.push(draft("email", "service", Some(false)));
        assert_eq!(
            parse_consent(too_many).expect_err("refused").field,
            "consent"
        );
    }

    #[test]
    fn the_later_of_the_channel_and_any_decides_and_the_channel_wins_a_tie() {
        use ConsentChannel::{Any, Email, Phone};
        use ConsentPurpose::{Marketing, Service};
        let statements = [
            said(Any, Marketing, false, 10),
            said(Email, Marketing, true, 20),
            said(Phone, Marketing, true, 5),
            said(Any, Service, true, 30),
            said(Email, Service, false, 30),
        ];
        assert_eq!(
            status(&statements, Email, Marketing),
            ConsentStatus::Allowed
        );
        assert_eq!(
            status(&statements, Phone, Marketing),
            ConsentStatus::Refused
        );
        assert_eq!(
            status(&statements, ConsentChannel::Sms, Marketing),
            ConsentStatus::Refused
        );
        assert_eq!(status(&statements, Email, Service), ConsentStatus::Refused);
        assert_eq!(status(&statements, Phone, Service), ConsentStatus::Allowed);
        assert_eq!(
            status(&statements, Email, ConsentPurpose::Surveys),
            ConsentStatus::Unknown
        );
        assert_eq!(status(&[], Any, Service), ConsentStatus::Unknown);
    }

    #[test]
    fn follow_ups_are_service_contacts_on_the_channels_a_task_uses() {
        use ConsentChannel::{Email, Instagram, Messenger, Phone, Web, Whatsapp};
        use ConsentPurpose::{Marketing, Service};
        let statements = [
            said(Email, Marketing, false, 1),
            said(Phone, Service, true, 1),
            said(Email, Service, false, 2),
            said(Web, Service, false, 2),
        ];
        assert_eq!(
            follow_up_status(&statements, "phone"),
            ConsentStatus::Allowed
        );
        assert_eq!(
            follow_up_status(&statements, "email"),
            ConsentStatus::Refused
        );
        assert_eq!(
            follow_up_status(&statements, "chat"),
            ConsentStatus::Refused
        );
        assert_eq!(follow_up_status(&statements, "sms"), ConsentStatus::Unknown);
        assert_eq!(
            follow_up_status(&statements, "social"),
            ConsentStatus::Unknown
        );
        assert_eq!(
            follow_up_status(&statements, "agent"),
            ConsentStatus::Unknown
        );
        assert_eq!(
            follow_up_status(&statements, "pigeon"),
            ConsentStatus::Unknown
        );
        // Social: refused only when every platform is, allowed when one is.
        let some = [
            said(Whatsapp, Service, false, 1),
            said(Messenger, Service, false, 1),
        ];
        assert_eq!(follow_up_status(&some, "social"), ConsentStatus::Unknown);
        let every = [
            said(Whatsapp, Service, false, 1),
            said(Messenger, Service, false, 1),
            said(Instagram, Service, false, 1),
        ];
        assert_eq!(follow_up_status(&every, "social"), ConsentStatus::Refused);
        let one = [
            said(Whatsapp, Service, false, 1),
            said(Instagram, Service, true, 1),
        ];
        assert_eq!(follow_up_status(&one, "social"), ConsentStatus::Allowed);
        let by_channel = follow_up_by_channel(&statements);
        assert_eq!(
            by_channel.keys().map(String::as_str).collect::<Vec<_>>(),
            ["chat", "email", "phone", "sms", "social", "web"]
        );
        assert_eq!(by_channel["email"], ConsentStatus::Refused);
    }

    #[test]
    fn the_document_lists_the_wire_names() {
        fn documented<T: utoipa::PartialSchema>() -> Vec<String> {
            let schema = serde_json::to_value(T::schema()).expect("the schema serialises");
            schema["enum"]
                .as_array()
                .expect("an enum")
                .iter()
                .map(|value| value.as_str().expect("a string").to_owned())
                .collect()
        }
        fn wire<T: Copy + fmt::Display>(all: &[T]) -> Vec<String> {
            all.iter().map(ToString::to_string).collect()
        }
        assert_eq!(documented::<ConsentChannel>(), wire(ConsentChannel::ALL));
        assert_eq!(documented::<ConsentPurpose>(), wire(ConsentPurpose::ALL));
        assert_eq!(documented::<ConsentStatus>(), wire(ConsentStatus::ALL));
        assert_eq!(
            MAX_STATEMENTS, 24,
            "the schema's max_items of EventDraft.consent"
        );
    }

    fn any_statement() -> impl Strategy<Value = Statement> {
        (
            proptest::sample::select(ConsentChannel::ALL),
            proptest::sample::select(ConsentPurpose::ALL),
            any::<bool>(),
            0i64..5,
        )
            .prop_map(|(channel, purpose, granted, minute)| said(channel, purpose, granted, minute))
    }

    proptest! {
        /// Any text, over all of Unicode: parsing never panics, and a
        /// statement parses exactly when its trimmed names are known.
        #[test]
        fn any_names_parse_only_when_known(
            channel in prop_oneof![
                proptest::sample::select(ConsentChannel::ALL).prop_map(|c| format!(" {c}\u{3000}")),
                any::<String>(),
                "[a-zİıſK]{0,10}",
            ],
            purpose in prop_oneof![
                proptest::sample::select(ConsentPurpose::ALL).prop_map(|p| p.to_string()),
                any::<String>(),
            ],
            granted in proptest::option::of(any::<bool>()),
        ) {
            let known_channel = ConsentChannel::from_str(channel.trim()).is_ok();
            let known_purpose = ConsentPurpose::from_str(purpose.trim()).is_ok();
            let parsed = parse_consent(vec![draft(&channel, &purpose, granted)]);
            match parsed {
                Ok(statements) => {
                    prop_assert!(known_channel && known_purpose && granted.is_some());
                    prop_assert_eq!(statements[0].channel.as_str(), channel.trim());
                    prop_assert_eq!(statements[0].purpose.as_str(), purpose.trim());
                    // The statement validates to itself.
                    let again = parse_consent(vec![ConsentDraft::from(statements[0])]);
                    prop_assert_eq!(again, Ok(statements));
                }
                Err(error) => {
                    let expected = if !known_channel {
                        "consent[0].channel"
                    } else if !known_purpose {
                        "consent[0].purpose"
                    } else {
                        "consent[0].granted"
                    };
                    prop_assert_eq!(error.field, expected);
                }
            }
        }

        /// The order statements are listed in never changes the answer,
        /// and the answer is the latest statement about the channel or
        /// `any`, the channel's own on a tie.
        #[test]
        fn the_answer_is_the_latest_statement_whatever_the_order(
            statements in proptest::collection::vec(any_statement(), 0..12),
            channel in proptest::sample::select(ConsentChannel::ALL),
            purpose in proptest::sample::select(ConsentPurpose::ALL),
        ) {
            // What the projection keeps: the latest per channel and purpose.
            let mut kept: Vec<Statement> = Vec::new();
            for statement in &statements {
                match kept.iter_mut().find(|k| k.channel == statement.channel && k.purpose == statement.purpose) {
                    Some(k) if statement.at > k.at => *k = *statement,
                    Some(_) => {}
                    None => kept.push(*statement),
                }
            }
            let answer = status(&kept, channel, purpose);
            let mut reversed = kept.clone();
            reversed.reverse();
            prop_assert_eq!(status(&reversed, channel, purpose), answer);
            let relevant = kept
                .iter()
                .filter(|s| s.purpose == purpose && (s.channel == channel || s.channel == ConsentChannel::Any))
                .max_by_key(|s| (s.at, s.channel == channel));
            let expected = match relevant {
                None => ConsentStatus::Unknown,
                Some(s) if s.granted => ConsentStatus::Allowed,
                Some(_) => ConsentStatus::Refused,
            };
            prop_assert_eq!(answer, expected);
        }
    }
}
