//! Decoding cost per event: the protobuf decode alone, a clear record read
//! in full and as normalised, and a sealed record opened both ways, in the
//! same run (the machine may be busy: compare the ratios).
//!
//! `cargo bench -p panorama-proto --bench decode`; an argument `full`,
//! `normalised`, `sealed-full` or `sealed-normalised` with a count runs that
//! one alone that many times, for `valgrind --tool=callgrind`.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use panorama_core::{
    ContactEvent, EventDraft, FeedbackDraft, IdentifierDraft, IdentifierKind, ValidationContext,
};
use panorama_proto::sealed::{self, Record, Subject, SubjectKey, SubjectSecret};
use panorama_proto::{Checks, v1};
use prost::Message;

/// Events like the ones a contact centre sends: a call with a phone number
/// and an email address, a WhatsApp message, an email, a survey answer.
fn events() -> Vec<ContactEvent> {
    let context = ValidationContext::now(None);
    let draft = |n: u32, channel: &str, kind: &str, identifiers: Vec<IdentifierDraft>| EventDraft {
        event_id: Some(format!("bench-{n}")),
        channel: Some(channel.into()),
        source: Some("bench".into()),
        event_type: Some(kind.into()),
        direction: Some("inbound".into()),
        identifiers,
        conversation_id: Some(format!("conversation-{n}")),
        summary: Some("Where is my parcel? It was due on Monday.".into()),
        agent_id: Some("agent-7".into()),
        queue: Some("support".into()),
        attributes: [("order".to_owned(), format!("{n}"))].into_iter().collect(),
        display_name: Some("Anna de Vries".into()),
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        ..EventDraft::default()
    };
    let phone =
        |n: u32| IdentifierDraft::new(IdentifierKind::Phone, format!("+316{:08}", 12_345_678 + n));
    let email =
        |n: u32| IdentifierDraft::new(IdentifierKind::Email, format!("anna.{n}@example.nl"));
    (0..64u32)
        .map(|n| {
            let draft = match n % 4 {
                0 => draft(n, "phone", "call.ended", vec![phone(n), email(n)]),
                1 => draft(
                    n,
                    "social",
                    "message.received",
                    vec![
                        IdentifierDraft::new(
                            IdentifierKind::Whatsapp,
                            format!("316{:08}", 12_345_678 + n),
                        ),
                        phone(n),
                    ],
                ),
                2 => draft(n, "email", "email.received", vec![email(n)]),
                _ => EventDraft {
                    feedback: Some(FeedbackDraft {
                        metric: "csat".into(),
                        score: 4,
                        comment: Some("quick and kind".into()),
                    }),
                    ..draft(n, "web", "feedback.submitted", vec![phone(n)])
                },
            };
            draft.validate(&context).expect("a valid event")
        })
        .collect()
}

/// One way of decoding, over every record.
type Decoder<'a> = Box<dyn Fn(&[u8]) + 'a>;

fn decoders<'a>(
    secret: &'a SubjectSecret,
    keys: &'a HashMap<Subject, SubjectKey>,
) -> Vec<(&'static str, bool, Decoder<'a>)> {
    let open = move |checks: Checks| -> Decoder<'a> {
        Box::new(
            move |bytes: &[u8]| match sealed::decode_record_with(bytes, checks) {
                Ok(Record::Sealed(sealed)) => {
                    black_box(sealed.open(secret, keys).expect("opens"));
                }
                other => panic!("not sealed: {other:?}"),
            },
        )
    };
    vec![
        (
            "protobuf",
            false,
            Box::new(|bytes: &[u8]| {
                black_box(v1::ContactEvent::decode(bytes).expect("protobuf"));
            }),
        ),
        (
            "full",
            false,
            Box::new(|bytes: &[u8]| {
                black_box(sealed::decode_record(bytes).expect("decodes"));
            }),
        ),
        (
            "normalised",
            false,
            Box::new(|bytes: &[u8]| {
                black_box(sealed::decode_record_with(bytes, Checks::Normalised).expect("decodes"));
            }),
        ),
        ("sealed-full", true, open(Checks::Full)),
        ("sealed-normalised", true, open(Checks::Normalised)),
    ]
}

fn main() {
    let secret = SubjectSecret::new(&[7; 32]);
    let events = events();
    let mut keys = HashMap::new();
    let clear: Vec<Vec<u8>> = events.iter().map(panorama_proto::encode).collect();
    let sealed: Vec<Vec<u8>> = events
        .iter()
        .map(|event| {
            let subjects = secret.subjects(event);
            for subject in &subjects {
                keys.entry(*subject)
                    .or_insert_with(|| SubjectKey::generate().expect("key"));
            }
            sealed::seal(event, &subjects, &keys).expect("sealed")
        })
        .collect();
    let decoders = decoders(&secret, &keys);
    let records = |is_sealed: bool| if is_sealed { &sealed } else { &clear };

    // One decoder alone, a given number of times over the records.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let [name, rounds] = args.as_slice() {
        let rounds: usize = rounds.parse().expect("a number of rounds");
        let (_, is_sealed, decode) = decoders
            .iter()
            .find(|(n, _, _)| n == name)
            .expect("a decoder's name");
        for _ in 0..rounds {
            for record in records(*is_sealed) {
                decode(record);
            }
        }
        return;
    }

    // Interleaved rounds; the best of each is the least disturbed.
    let mut best = vec![Duration::MAX; decoders.len()];
    let per_round = 200;
    for _ in 0..15 {
        for ((_, is_sealed, decode), best) in decoders.iter().zip(&mut best) {
            let started = Instant::now();
            for _ in 0..per_round {
                for record in records(*is_sealed) {
                    decode(record);
                }
            }
            *best = (*best).min(started.elapsed());
        }
    }
    let per_event = |at: usize| best[at].as_secs_f64() * 1e6 / (per_round * events.len()) as f64;
    for (at, (name, _, _)) in decoders.iter().enumerate() {
        println!("{name:>18}: {:6.2} µs/event", per_event(at));
    }
    println!(
        "clear record, full / normalised: {:.2}x; sealed, full / normalised: {:.2}x",
        per_event(1) / per_event(2),
        per_event(3) / per_event(4)
    );
}
