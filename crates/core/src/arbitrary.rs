//! Proptest strategies for event drafts over all of Unicode, at and near the
//! contract's [limits](crate::limits): four-byte characters, combining
//! marks, characters whose lower case is longer (`İ`), right-to-left text,
//! noncharacters, odd spaces, and now and then control characters. For the
//! property tests of this crate, of the wire format and of the projection
//! (whatever validates must validate to itself, survive the wire and be
//! writable); built with the `proptest` feature.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Offset, SecondsFormat, Utc};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;
use uuid::Uuid;

use crate::attributes::{TASK_ASSIGNEE, TASK_CHANNEL, TASK_DUE_AT, TASK_ID};
use crate::limits::{self, TextLimit};
use crate::{
    Channel, ConsentChannel, ConsentDraft, ConsentPurpose, Direction, EventDraft, EventType,
    FeedbackDraft, FeedbackMetric, IdentifierDraft, IdentifierKind, ValidationContext,
};

/// Characters with special case mappings: `İ` lower-cases to two
/// characters, `ß` and the ligatures upper-case to several, `ǅ` is title
/// case, `Σ` has a final form, the Kelvin and Ohm signs fold onto Latin and
/// Greek letters, `𐐀` and `𞤀` are four bytes with four-byte lower case.
const CASE_CHANGING: &[char] = &[
    'İ',
    'ı',
    'ß',
    'ẞ',
    'ǅ',
    'ǈ',
    'ǋ',
    'Σ',
    'ς',
    'ﬃ',
    'ŉ',
    'ǰ',
    'ΐ',
    'ᾼ',
    '\u{212A}',
    '\u{2126}',
    '\u{212B}',
    'Ⅻ',
    'Ⓐ',
    'Ꞵ',
    '\u{10400}',
    '\u{1E900}',
    'A',
    'Z',
];

/// Case-changing letters that stay letters in lower case (`İ` gains a
/// combining mark, which no domain label may hold).
const DOMAIN_CASE_CHANGING: &[char] = &[
    'ß',
    'ẞ',
    'Σ',
    'ǅ',
    '\u{212A}',
    '\u{2126}',
    '\u{212B}',
    '\u{10400}',
];

/// Characters that are easy to mishandle: noncharacters, bidirectional
/// controls, zero-width and unusual spaces, the byte-order mark, the
/// replacement character, and the separators the contract itself uses.
/// (Tab and line breaks, allowed in text but not in identifiers, come with
/// the control characters of [`Pool::Anything`].)
const AWKWARD: &[char] = &[
    '\u{FFFE}',
    '\u{FFFF}',
    '\u{10FFFF}',
    '\u{1FFFE}',
    '\u{200F}',
    '\u{202E}',
    '\u{2066}',
    '\u{FEFF}',
    '\u{200B}',
    '\u{3000}',
    '\u{A0}',
    '\u{2028}',
    '\u{2029}',
    '\u{1680}',
    '\u{FFFD}',
    ' ',
    '@',
    '.',
    '-',
    '+',
    ':',
    '"',
    '\\',
    '\'',
    '%',
    '_',
];

/// Times that sit on an edge: the contract's range, offsets that carry a
/// time across it, leap seconds, nanoseconds, lower-case separators.
const EDGE_TIMES: &[&str] = &[
    "1970-01-01T00:00:00Z",
    "1970-01-01T00:59:59+01:00",
    "1969-12-31T23:59:59.999999999Z",
    "9999-12-31T23:59:59.999999999Z",
    "9999-12-31T23:59:59-23:59",
    "0000-01-01T00:00:00+23:59",
    "2016-12-31T23:59:60Z",
    "2026-11-23T10:14:60.5+01:00",
    "2026-11-23T10:00:00.123456789Z",
    "2026-11-23t10:00:00z",
    "2026-11-23 10:00:00Z",
];

/// Which characters one text is made of.
#[derive(Debug, Clone, Copy)]
enum Pool {
    /// Every script and width, mostly printable.
    Mixed,
    /// Only four-byte characters: the most bytes for the characters.
    FourByte,
    /// Only characters with special case mappings.
    CaseChanging,
    /// Anything, control characters included.
    Anything,
}

fn pool() -> impl Strategy<Value = Pool> {
    prop_oneof![
        24 => Just(Pool::Mixed),
        8 => Just(Pool::FourByte),
        6 => Just(Pool::CaseChanging),
        1 => Just(Pool::Anything),
    ]
}

fn four_byte_char() -> BoxedStrategy<char> {
    prop_oneof![
        // CJK Unified Ideographs Extension B.
        4 => proptest::char::range('\u{20000}', '\u{2A6DF}'),
        // Emoji.
        1 => proptest::char::range('\u{1F300}', '\u{1FAFF}'),
        1 => select(&['\u{10FFFF}', '\u{1FFFE}', '\u{10400}', '\u{1E900}'][..]),
    ]
    .boxed()
}

fn char_from(pool: Pool) -> BoxedStrategy<char> {
    match pool {
        Pool::Mixed => prop_oneof![
            4 => proptest::char::range('a', 'z'),
            1 => proptest::char::range('A', 'Z'),
            1 => proptest::char::range('0', '9'),
            // Two bytes: Latin, Greek, Cyrillic, Armenian, Hebrew, Arabic.
            1 => proptest::char::range('\u{A0}', '\u{7FF}'),
            // Combining marks.
            1 => proptest::char::range('\u{300}', '\u{36F}'),
            // Right to left.
            1 => proptest::char::range('\u{590}', '\u{6FF}'),
            // Three bytes.
            1 => proptest::char::range('\u{4E00}', '\u{9FFF}'),
            2 => four_byte_char(),
            1 => select(CASE_CHANGING),
            1 => select(AWKWARD),
        ]
        .boxed(),
        Pool::FourByte => four_byte_char(),
        Pool::CaseChanging => select(CASE_CHANGING).boxed(),
        Pool::Anything => any::<char>().boxed(),
    }
}

/// The longest prefix of `chars` of at most `bytes` bytes.
fn within_bytes(chars: Vec<char>, bytes: usize) -> String {
    let mut text = String::new();
    for c in chars {
        if text.len() + c.len_utf8() > bytes {
            break;
        }
        text.push(c);
    }
    text
}

/// Text for a field bounded by `limit`: mostly short, often at or just
/// under the limit in characters (and in bytes, where the limit has them),
/// now and then just past it.
pub fn text(limit: TextLimit) -> BoxedStrategy<String> {
    let chars = limit.chars;
    let within_bytes_limit = limit.bytes.unwrap_or(usize::MAX);
    let mut budgets: Vec<(u32, BoxedStrategy<(usize, usize)>)> = vec![
        (20, (0..=12usize).prop_map(|n| (n, usize::MAX)).boxed()),
        (
            15,
            (chars.saturating_sub(3)..=chars)
                .prop_map(move |n| (n, within_bytes_limit))
                .boxed(),
        ),
        (
            1,
            (chars + 1..=chars + 2)
                .prop_map(|n| (n, usize::MAX))
                .boxed(),
        ),
    ];
    if let Some(bytes) = limit.bytes {
        budgets.push((
            15,
            (bytes.saturating_sub(4)..=bytes)
                .prop_map(move |b| (chars, b))
                .boxed(),
        ));
        budgets.push((
            1,
            (bytes + 1..=bytes + 4)
                .prop_map(move |b| (chars + 1, b))
                .boxed(),
        ));
    }
    (Union::new_weighted(budgets), pool())
        .prop_flat_map(|((chars, bytes), pool)| {
            vec(char_from(pool), chars).prop_map(move |cs| within_bytes(cs, bytes))
        })
        .boxed()
}

fn uuid_text() -> BoxedStrategy<String> {
    any::<u128>()
        .prop_map(|n| Uuid::from_u128(n).to_string())
        .boxed()
}

/// A time near `around` in RFC 3339 with an arbitrary offset, an edge time,
/// or text that is not a time at all.
fn time_text(around: DateTime<Utc>) -> BoxedStrategy<String> {
    // Mostly after 1970 and at most a day after `around`.
    let earliest = -around.timestamp().clamp(0, 400_000_000);
    prop_oneof![
        16 => (earliest - 10..=90_010, 0u32..2_000_000_000, -1439i32..=1439).prop_map(
            move |(seconds, nanos, offset_minutes)| {
                let seconds = around.timestamp().saturating_add(seconds);
                // Nanoseconds past a second are a leap second, which only
                // the last second of a minute can have.
                let at = DateTime::from_timestamp(seconds, nanos)
                    .or_else(|| DateTime::from_timestamp(seconds, nanos % 1_000_000_000))
                    .unwrap_or(around);
                let offset = FixedOffset::east_opt(offset_minutes * 60)
                    .unwrap_or_else(|| Utc.fix());
                at.with_timezone(&offset)
                    .to_rfc3339_opts(SecondsFormat::AutoSi, false)
            }
        ),
        2 => select(EDGE_TIMES).prop_map(str::to_owned),
        1 => text(TextLimit::chars(40)),
    ]
    .boxed()
}

fn phone() -> BoxedStrategy<String> {
    prop_oneof![
        // Dutch mobile numbers: 06-1 to 06-5.
        12 => (10_000_000u32..60_000_000).prop_map(|n| format!("+316{n:08}")),
        4 => (10_000_000u32..100_000_000).prop_map(|n| format!("tel:+1 (415) 555-{:04}", n % 10_000)),
        2 => (10_000_000u32..60_000_000).prop_map(|n| format!("06 {n:08}")),
        1 => "[+0-9 ()./-]{0,41}".boxed(),
        1 => text(limits::PHONE_INPUT),
    ]
    .boxed()
}

fn email() -> BoxedStrategy<String> {
    let local_char = prop_oneof![
        6 => proptest::char::range('a', 'z'),
        2 => proptest::char::range('A', 'Z'),
        1 => proptest::char::range('0', '9'),
        1 => select(&['+', '-', '_', '!', '#', '\u{FFFE}'][..]),
        2 => select(CASE_CHANGING),
        2 => four_byte_char(),
        1 => proptest::char::range('\u{100}', '\u{17F}'),
    ]
    .boxed();
    let label_char = prop_oneof![
        6 => proptest::char::range('a', 'z'),
        1 => proptest::char::range('A', 'Z'),
        1 => proptest::char::range('0', '9'),
        1 => select(DOMAIN_CASE_CHANGING),
        2 => proptest::char::range('\u{20000}', '\u{2A6DF}'),
        1 => proptest::char::range('\u{100}', '\u{17F}'),
    ]
    .boxed();
    let length = |limit: usize| {
        prop_oneof![
            48 => 1..=8usize,
            24 => limit - 6..=limit,
            1 => limit + 1..=limit + 2,
        ]
    };
    let word = |chars: BoxedStrategy<char>, limit: usize| {
        length(limit).prop_flat_map(move |n| vec(chars.clone(), n).prop_map(String::from_iter))
    };
    let domain = vec(word(label_char, 63), 1..=4).prop_map(|labels| labels.join("."));
    let top_level = prop_oneof![
        8 => "[a-zA-Z]{2,6}".boxed(),
        1 => "xn--[a-z0-9]{1,10}".boxed(),
        1 => vec(select(DOMAIN_CASE_CHANGING), 1..4)
            .prop_map(String::from_iter)
            .boxed(),
    ];
    let prefix = prop_oneof![
        30 => Just(""),
        3 => Just("mailto:"),
        3 => Just(" "),
        1 => Just("MAILTO:"),
    ];
    prop_oneof![
        36 => (prefix, word(local_char, 64), domain, top_level).prop_map(
            |(prefix, local, domain, top_level)| format!("{prefix}{local}@{domain}.{top_level}")
        ),
        // At the whole address's limit as written, with a local part that
        // lengthens in lower case (to at most 64 characters).
        3 => (1..=32usize, 246..=254usize).prop_map(|(dotted, total)| {
            let local = format!("{}{}", "İ".repeat(dotted), "a".repeat(64 - 2 * dotted));
            let label = "b".repeat(63);
            let last = (total - 195).saturating_sub(local.chars().count()).max(1);
            format!("{local}@{label}.{label}.{label}.{}.nl", "c".repeat(last))
        }),
        1 => text(limits::EMAIL),
    ]
    .boxed()
}

fn x_handle() -> BoxedStrategy<String> {
    let prefix = select(&["", "@", "@@", "@ ", " @ @", "\u{3000}@"][..]);
    prop_oneof![
        // `İ` doubles in lower case: 64 of them are 128 characters stored.
        2 => (prefix.clone(), prop_oneof![9 => 1usize..=64, 1 => 65usize..=130])
            .prop_map(|(prefix, n)| format!("{prefix}{}", "İ".repeat(n))),
        2 => (prefix.clone(), vec(select(CASE_CHANGING), 1..=64))
            .prop_map(|(prefix, cs)| format!("{prefix}{}", String::from_iter(cs))),
        3 => (prefix, text(limits::PLATFORM_ID)).prop_map(|(prefix, handle)| format!("{prefix}{handle}")),
    ]
    .boxed()
}

/// The kinds whose values are ids of the platform (no syntax of their own).
const PLATFORM_KINDS: &[IdentifierKind] = &[
    IdentifierKind::Account,
    IdentifierKind::Whatsapp,
    IdentifierKind::Messenger,
    IdentifierKind::Instagram,
    IdentifierKind::X,
    IdentifierKind::Visitor,
];

/// An identifier of every kind, valid or not, at and near its limits, and
/// verified or claimed.
pub fn identifier() -> BoxedStrategy<IdentifierDraft> {
    (untrusted_identifier(), select(crate::Trust::ALL.to_vec()))
        .prop_map(|(draft, trust)| draft.with_trust(trust))
        .boxed()
}

fn untrusted_identifier() -> BoxedStrategy<IdentifierDraft> {
    prop_oneof![
        8 => phone().prop_map(|value| IdentifierDraft::new(IdentifierKind::Phone, value)),
        8 => email().prop_map(|value| IdentifierDraft::new(IdentifierKind::Email, value)),
        8 => x_handle().prop_map(|value| IdentifierDraft::new(IdentifierKind::X, value)),
        12 => (select(PLATFORM_KINDS), text(limits::PLATFORM_ID))
            .prop_map(|(kind, value)| IdentifierDraft::new(kind, value)),
        1 => (text(TextLimit::chars(10)), text(limits::PLATFORM_ID))
            .prop_map(|(kind, value)| IdentifierDraft { kind, value, ..IdentifierDraft::default() }),
    ]
    .boxed()
}

fn channel_name() -> BoxedStrategy<String> {
    prop_oneof![
        19 => select(Channel::ALL).prop_map(|channel| channel.as_str().to_owned()),
        1 => text(TextLimit::chars(12)),
    ]
    .boxed()
}

/// An attribute key: never empty (that is a refusal), often at its limit.
fn attribute_key() -> BoxedStrategy<String> {
    text(limits::ATTRIBUTE_KEY)
        .prop_map(|key| if key.is_empty() { "k".to_owned() } else { key })
        .boxed()
}

/// Extra attributes: free keys, `customer.*` keys, and for task events the
/// task attributes the projection reads.
fn attributes(
    event_type: Option<EventType>,
    received_at: DateTime<Utc>,
) -> BoxedStrategy<BTreeMap<String, String>> {
    let free = prop_oneof![
        2 => (attribute_key(), text(limits::ATTRIBUTE_VALUE)),
        2 => (text(TextLimit::chars(55)), text(limits::ATTRIBUTE_VALUE))
            .prop_map(|(key, value)| (format!("customer.{key}"), value)),
    ];
    let extra = prop_oneof![
        19 => vec(free, 0..=3),
        1 => vec((attribute_key(), Just(String::new())), 60..=66),
    ];
    let is_task = matches!(
        event_type,
        Some(EventType::TaskCreated | EventType::TaskRescheduled | EventType::TaskCompleted)
    );
    let task = if is_task {
        (
            prop_oneof![9 => uuid_text(), 1 => text(TextLimit::chars(40))],
            proptest::option::weighted(0.9, time_text(received_at)),
            proptest::option::weighted(
                0.8,
                prop_oneof![
                    3 => text(limits::SHORT_TEXT),
                    1 => text(limits::ATTRIBUTE_VALUE),
                ],
            ),
            proptest::option::of(channel_name()),
        )
            .prop_map(|(id, due_at, assignee, channel)| {
                let mut task = vec![(TASK_ID.to_owned(), id)];
                task.extend(due_at.map(|at| (TASK_DUE_AT.to_owned(), at)));
                task.extend(assignee.map(|name| (TASK_ASSIGNEE.to_owned(), name)));
                task.extend(channel.map(|name| (TASK_CHANNEL.to_owned(), name)));
                task
            })
            .boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    (task, extra)
        .prop_map(|(task, extra)| task.into_iter().chain(extra).collect())
        .boxed()
}

/// An event type: often a contact (which the projection groups into cases,
/// indexing their conversations) or an agent action the projection reads
/// (tasks, cases, notes).
fn event_type() -> BoxedStrategy<Option<String>> {
    let contacts: Vec<EventType> = EventType::ALL
        .iter()
        .copied()
        .filter(|t| t.is_customer_contact())
        .collect();
    prop_oneof![
        12 => select(contacts).prop_map(|t| Some(t.as_str().to_owned())),
        6 => Just(Some(EventType::TaskCreated.as_str().to_owned())),
        3 => Just(Some(EventType::CaseOpened.as_str().to_owned())),
        3 => Just(Some(EventType::NoteAdded.as_str().to_owned())),
        2 => Just(Some(EventType::FeedbackSubmitted.as_str().to_owned())),
        2 => Just(Some(EventType::ConsentUpdated.as_str().to_owned())),
        6 => select(EventType::ALL).prop_map(|t| Some(t.as_str().to_owned())),
        1 => proptest::option::of(text(TextLimit::chars(20))),
    ]
    .boxed()
}

fn feedback() -> BoxedStrategy<FeedbackDraft> {
    (
        prop_oneof![
            9 => select(FeedbackMetric::ALL).prop_map(|m| m.as_str().to_owned()),
            1 => text(TextLimit::chars(8)),
        ],
        prop_oneof![9 => 0..=10i32, 1 => any::<i32>()],
        proptest::option::of(text(limits::COMMENT)),
    )
        .prop_map(|(metric, score, comment)| FeedbackDraft {
            metric,
            score,
            comment,
        })
        .boxed()
}

/// A consent statement: mostly known names (now and then padded with odd
/// spaces), sometimes any text, now and then without `granted`.
fn consent_statement() -> BoxedStrategy<ConsentDraft> {
    let padded = |name: &'static str| {
        prop_oneof![
            8 => Just(name.to_owned()),
            1 => select(&[" ", "\u{3000}", "\u{A0}", "\t"][..]).prop_map(move |pad| format!("{pad}{name}{pad}")),
        ]
    };
    (
        prop_oneof![
            12 => select(ConsentChannel::ALL).prop_flat_map(move |c| padded(c.as_str())),
            1 => text(TextLimit::chars(12)),
        ],
        prop_oneof![
            12 => select(ConsentPurpose::ALL).prop_flat_map(move |p| padded(p.as_str())),
            1 => text(TextLimit::chars(12)),
        ],
        proptest::option::weighted(0.95, any::<bool>()),
    )
        .prop_map(|(channel, purpose, granted)| ConsentDraft {
            channel,
            purpose,
            granted,
        })
        .boxed()
}

/// The statements of an event: one to a few for `consent.updated` (now
/// and then none, or past the limit), rarely any on other events.
fn consent(event_type: Option<EventType>) -> BoxedStrategy<Vec<ConsentDraft>> {
    if event_type == Some(EventType::ConsentUpdated) {
        prop_oneof![
            30 => vec(consent_statement(), 1..=3),
            1 => Just(Vec::new()),
            1 => vec(consent_statement(), 20..=26),
        ]
        .boxed()
    } else {
        prop_oneof![
            19 => Just(Vec::new()),
            1 => vec(consent_statement(), 1..=2),
        ]
        .boxed()
    }
}

fn optional_text(limit: TextLimit) -> BoxedStrategy<Option<String>> {
    proptest::option::of(text(limit)).boxed()
}

/// An event draft as a channel or a caller could send it, received at
/// `received_at`: every field filled with arbitrary Unicode at and near its
/// limits, and for task events the task attributes. Most drafts validate.
pub fn event_draft(received_at: DateTime<Utc>) -> BoxedStrategy<EventDraft> {
    event_type()
        .prop_flat_map(move |event_type| {
            let known = event_type
                .as_deref()
                .and_then(|t| t.parse::<EventType>().ok());
            let feedback = if known == Some(EventType::FeedbackSubmitted) {
                feedback().prop_map(Some).boxed()
            } else {
                proptest::option::weighted(0.1, feedback()).boxed()
            };
            let header = (
                Just(event_type),
                prop_oneof![
                    4 => Just(None),
                    4 => uuid_text().prop_map(Some),
                    1 => text(limits::PROVIDER_EVENT_ID).prop_map(Some),
                ],
                proptest::option::weighted(0.7, time_text(received_at)),
                channel_name().prop_map(Some),
                prop_oneof![
                    12 => Just(None),
                    24 => "[a-z0-9._-]{1,64}".prop_map(Some),
                    1 => text(TextLimit::chars(64)).prop_map(Some),
                ],
                proptest::option::of(prop_oneof![
                    9 => select(Direction::ALL).prop_map(|d| d.as_str().to_owned()),
                    1 => text(TextLimit::chars(10)),
                ]),
                prop_oneof![
                    19 => vec(identifier(), 1..=3),
                    1 => vec(identifier(), 0..=22),
                ],
                proptest::option::weighted(
                    0.2,
                    prop_oneof![
                        4 => "00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}",
                        1 => "00-[0-9A-F]{32}-[0-9A-F]{16}-[0-9A-F]{2}",
                        1 => text(TextLimit::chars(60)),
                    ],
                ),
                proptest::option::weighted(
                    0.3,
                    prop_oneof![
                        9 => uuid_text(),
                        1 => text(TextLimit::chars(40)),
                    ],
                ),
            );
            let texts = (
                optional_text(limits::CONVERSATION_ID),
                optional_text(limits::CONTACT_REASON),
                // A task's title: the projection makes no task without one.
                if known == Some(EventType::TaskCreated) {
                    proptest::option::weighted(0.95, text(limits::SUBJECT)).boxed()
                } else {
                    optional_text(limits::SUBJECT)
                },
                optional_text(limits::SUMMARY),
                optional_text(limits::SHORT_TEXT),
                optional_text(limits::SHORT_TEXT),
                optional_text(limits::SHORT_TEXT),
                optional_text(limits::SHORT_TEXT),
            );
            let rest = (
                proptest::option::of(any::<u32>()),
                proptest::option::of(prop_oneof![9 => -1.0f32..=1.0, 1 => any::<f32>()]),
                feedback,
                attributes(known, received_at),
                consent(known),
            );
            (header, texts, rest).prop_map(
                |(
                    (
                        event_type,
                        event_id,
                        occurred_at,
                        channel,
                        source,
                        direction,
                        identifiers,
                        traceparent,
                        case_id,
                    ),
                    (
                        conversation_id,
                        contact_reason,
                        subject,
                        summary,
                        agent_id,
                        queue,
                        outcome,
                        display_name,
                    ),
                    (duration_seconds, sentiment, feedback, attributes, consent),
                )| EventDraft {
                    event_id,
                    occurred_at,
                    channel,
                    source,
                    event_type,
                    direction,
                    identifiers,
                    conversation_id,
                    contact_reason,
                    subject,
                    summary,
                    agent_id,
                    queue,
                    duration_seconds,
                    outcome,
                    sentiment,
                    feedback,
                    consent,
                    attributes,
                    display_name,
                    traceparent,
                    case_id,
                },
            )
        })
        .boxed()
}

/// When an event is received: mostly an ordinary day, sometimes the first
/// or the last instant the contract allows, sometimes any time in between.
pub fn received_at() -> BoxedStrategy<DateTime<Utc>> {
    let ordinary =
        DateTime::from_timestamp(1_795_428_000, 0).unwrap_or(limits::EARLIEST_EVENT_TIME);
    prop_oneof![
        8 => Just(ordinary),
        1 => Just(limits::EARLIEST_EVENT_TIME),
        1 => Just(limits::LATEST_EVENT_TIME),
        1 => (0..=limits::LATEST_EVENT_TIME.timestamp()).prop_map(move |seconds| {
            DateTime::from_timestamp(seconds, 0).unwrap_or(ordinary)
        }),
    ]
    .boxed()
}

/// A draft with the context it is validated in: when it was received, and
/// with or without a default region for national phone numbers.
pub fn draft_in_context() -> BoxedStrategy<(ValidationContext, EventDraft)> {
    (received_at(), select(&[Some("NL"), Some("US"), None][..]))
        .prop_flat_map(|(received_at, region)| {
            let context = ValidationContext {
                received_at,
                default_region: region.and_then(|code| code.parse().ok()),
            };
            (Just(context), event_draft(received_at))
        })
        .boxed()
}
