//! The client's traffic: requests of one event or a batch of 1 to 100,
//! events of several channels from a pool of people, drawn from the seed.
//! Pure: the same seed, sizes and clock give the same requests.
//!
//! Each person has a phone number, an email address, a WhatsApp id, a web
//! visitor id and, for one in four, an account number. An event carries
//! its channel's identifier, often one more of the same person (so the
//! customers that person's channels created merge), and now and then one
//! of their household partner's (so two people's customers merge, or are
//! refused when both have an account). Event times lie in the last 30
//! days, out of order, and never repeat, so "the latest" of anything is
//! never a tie.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rand::seq::IndexedRandom as _;
use rand::{Rng as _, RngCore as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use uuid::Uuid;

/// Most events in one request.
pub const MAX_BATCH: usize = 100;

/// How far back event times go.
const HISTORY_DAYS: i64 = 30;

/// Share of requests that post one event as a plain object.
const SINGLE_SHARE: f64 = 0.25;

/// Share of events that carry a second identifier of the same person.
const SECOND_IDENTIFIER_SHARE: f64 = 0.3;

/// Share of events that carry an identifier of the person's partner.
const PARTNER_SHARE: f64 = 0.01;

/// Share of events that are survey answers.
const FEEDBACK_SHARE: f64 = 0.08;

/// Contact reasons, in the customer's words: contacts with the same one
/// within the case window share a case.
const REASONS: [&str; 6] = [
    "My parcel did not arrive",
    "Question about my invoice",
    "The device stopped working",
    "I want to change my contract",
    "Moving house",
    "Cancel my subscription",
];

/// An identifier kind a channel uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Phone,
    Email,
    Whatsapp,
    Visitor,
    Account,
}

/// What an event is: channel, type, direction and the identifiers its
/// channel carries.
#[derive(Debug, Clone, Copy)]
struct Shape {
    channel: &'static str,
    event_type: &'static str,
    direction: &'static str,
    kinds: &'static [Kind],
}

/// The events of the traffic, contacts and history alike.
const SHAPES: [Shape; 13] = [
    shape("phone", "call.ended", "inbound", &[Kind::Phone]),
    shape("phone", "call.missed", "inbound", &[Kind::Phone]),
    shape("phone", "call.started", "outbound", &[Kind::Phone]),
    shape("email", "email.received", "inbound", &[Kind::Email]),
    shape("email", "email.sent", "outbound", &[Kind::Email]),
    shape("email", "email.auto_reply", "inbound", &[Kind::Email]),
    shape("social", "message.received", "inbound", &[Kind::Whatsapp]),
    shape("social", "message.sent", "outbound", &[Kind::Whatsapp]),
    shape("social", "message.read", "outbound", &[Kind::Whatsapp]),
    shape("sms", "message.received", "inbound", &[Kind::Phone]),
    shape(
        "web",
        "form.submitted",
        "inbound",
        &[Kind::Email, Kind::Visitor],
    ),
    shape("web", "page.viewed", "inbound", &[Kind::Visitor]),
    shape(
        "chat",
        "chat.started",
        "inbound",
        &[Kind::Visitor, Kind::Email],
    ),
];

const fn shape(
    channel: &'static str,
    event_type: &'static str,
    direction: &'static str,
    kinds: &'static [Kind],
) -> Shape {
    Shape {
        channel,
        event_type,
        direction,
        kinds,
    }
}

/// A person's identifiers, from their number in the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Their number in the pool.
    pub index: u64,
    /// A Dutch mobile number, E.164.
    pub phone: String,
    /// An email address.
    pub email: String,
    /// Their WhatsApp id (the phone number's digits).
    pub whatsapp: String,
    /// Their browser's visitor id.
    pub visitor: String,
    /// An account number, for one in four.
    pub account: Option<String>,
}

impl Person {
    /// Person `index` of the pool (up to ten million people).
    pub fn new(index: u64) -> Person {
        let digits = format!("3161{:07}", index % 10_000_000);
        Person {
            index,
            phone: format!("+{digits}"),
            email: format!("person{index}@example.com"),
            whatsapp: digits,
            visitor: format!("v-{index:010x}"),
            account: (index % 4 == 0).then(|| format!("ACC{index:08}")),
        }
    }

    /// Their partner in the pool: persons 0 and 1 share a household, 2 and
    /// 3, and so on.
    pub fn partner(&self) -> Person {
        Person::new(self.index ^ 1)
    }

    /// Their identifier of `kind`; the phone number for an account they do
    /// not have.
    fn identifier(&self, kind: Kind) -> Value {
        let (name, value) = match kind {
            Kind::Phone => ("phone", self.phone.as_str()),
            Kind::Email => ("email", self.email.as_str()),
            Kind::Whatsapp => ("whatsapp", self.whatsapp.as_str()),
            Kind::Visitor => ("visitor", self.visitor.as_str()),
            Kind::Account => match &self.account {
                Some(account) => ("account", account.as_str()),
                None => ("phone", self.phone.as_str()),
            },
        };
        json!({ "kind": name, "value": value })
    }
}

/// One request of the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Its number, from 0, in the order requests are made.
    pub seq: u64,
    /// The ids of its events, in order.
    pub ids: Vec<Uuid>,
    /// The JSON body: one event, or `{"events": [...]}`.
    pub body: String,
}

/// Makes the client's requests.
#[derive(Debug)]
pub struct Generator {
    rng: ChaCha8Rng,
    /// People in the pool.
    persons: u64,
    /// Events to make in all.
    total: u64,
    /// Events made so far.
    made: u64,
    /// Requests made so far.
    requests: u64,
    /// Event times lie before this.
    now: DateTime<Utc>,
}

impl Generator {
    /// A generator of `total` events of `persons` people, from `seed`, with
    /// event times in the 30 days before `now`.
    pub fn new(seed: u64, total: u64, persons: u64, now: DateTime<Utc>) -> Generator {
        Generator {
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x6576_656e_7473),
            persons: persons.max(2),
            total,
            made: 0,
            requests: 0,
            now,
        }
    }

    /// Events made so far.
    pub fn made(&self) -> u64 {
        self.made
    }

    /// Events to make in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The next request, with event ids made at `unix_ms` (UUIDv7); `None`
    /// once every event was made.
    pub fn next_request(&mut self, unix_ms: u64) -> Option<Request> {
        let left = self.total - self.made;
        if left == 0 {
            return None;
        }
        let single = self.rng.random_bool(SINGLE_SHARE);
        let size = if single {
            1
        } else {
            self.rng.random_range(1..=MAX_BATCH as u64).min(left)
        };
        let mut ids = Vec::with_capacity(size as usize);
        let mut events = Vec::with_capacity(size as usize);
        for _ in 0..size {
            let id = self.event_id(unix_ms);
            events.push(self.event(id));
            ids.push(id);
        }
        let body = if single {
            events.pop().unwrap_or_default()
        } else {
            json!({ "events": events })
        };
        let request = Request {
            seq: self.requests,
            ids,
            body: body.to_string(),
        };
        self.requests += 1;
        Some(request)
    }

    /// A UUIDv7 at `unix_ms` with random bits from the seed.
    fn event_id(&mut self, unix_ms: u64) -> Uuid {
        let mut random = [0u8; 10];
        self.rng.fill_bytes(&mut random);
        uuid::Builder::from_unix_timestamp_millis(unix_ms, &random).into_uuid()
    }

    /// The next event, with id `id`.
    fn event(&mut self, id: Uuid) -> Value {
        let seq = self.made;
        self.made += 1;
        let person = Person::new(self.rng.random_range(0..self.persons));
        // A random second of the history, and the event's number as the
        // microseconds: no two events of a run share a time.
        let second = self.rng.random_range(60..HISTORY_DAYS * 86_400);
        let occurred_at = self.now - Duration::seconds(second)
            + Duration::microseconds(i64::try_from(seq % 1_000_000).unwrap_or_default());
        let occurred_at = occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true);

        if self.rng.random_bool(FEEDBACK_SHARE) {
            let (metric, top) = *[("nps", 10), ("csat", 5), ("ces", 7)]
                .choose(&mut self.rng)
                .unwrap_or(&("nps", 10));
            let low = i32::from(metric != "nps");
            return json!({
                "event_id": id,
                "occurred_at": occurred_at,
                "channel": "web",
                "source": "faults",
                "type": "feedback.submitted",
                "identifiers": [person.identifier(Kind::Email)],
                "feedback": {"metric": metric, "score": self.rng.random_range(low..=top)},
            });
        }

        let shape = SHAPES[self.rng.random_range(0..SHAPES.len())];
        let mut identifiers: Vec<Value> = shape
            .kinds
            .iter()
            .map(|kind| person.identifier(*kind))
            .collect();
        if self.rng.random_bool(SECOND_IDENTIFIER_SHARE) {
            let kind = *[Kind::Phone, Kind::Email, Kind::Account]
                .choose(&mut self.rng)
                .unwrap_or(&Kind::Phone);
            let extra = person.identifier(kind);
            if !identifiers.contains(&extra) {
                identifiers.push(extra);
            }
        }
        if self.rng.random_bool(PARTNER_SHARE) {
            let kind = *[Kind::Phone, Kind::Email]
                .choose(&mut self.rng)
                .unwrap_or(&Kind::Phone);
            identifiers.push(person.partner().identifier(kind));
        }
        let mut event = json!({
            "event_id": id,
            "occurred_at": occurred_at,
            "channel": shape.channel,
            "source": "faults",
            "type": shape.event_type,
            "direction": shape.direction,
            "identifiers": identifiers,
        });
        if self.rng.random_bool(0.5) {
            event["contact_reason"] = json!(REASONS.choose(&mut self.rng));
        }
        if self.rng.random_bool(0.15) {
            event["conversation_id"] = json!(format!(
                "conv-{}-{}",
                person.index,
                self.rng.random_range(0..3)
            ));
        }
        if self.rng.random_bool(0.2) {
            event["display_name"] = json!(format!(
                "Person {} {}",
                person.index,
                ["A.", "B.", "C."].choose(&mut self.rng).unwrap_or(&"A.")
            ));
        }
        if self.rng.random_bool(0.1) {
            let tier = ["gold", "silver", "basic"].choose(&mut self.rng);
            event["attributes"] = json!({ "customer.tier": tier });
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use panorama_core::{EventDraft, ValidationContext};

    use super::*;

    fn requests(seed: u64, total: u64, persons: u64) -> Vec<Request> {
        let now = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let mut generator = Generator::new(seed, total, persons, now);
        let mut requests = Vec::new();
        while let Some(request) = generator.next_request(1_772_366_400_000 + requests.len() as u64)
        {
            requests.push(request);
        }
        assert_eq!(generator.made(), total);
        requests
    }

    fn events(request: &Request) -> Vec<Value> {
        let body: Value = serde_json::from_str(&request.body).expect("JSON body");
        match body.get("events") {
            Some(Value::Array(events)) => events.clone(),
            _ => vec![body],
        }
    }

    #[test]
    fn every_event_is_made_once_with_its_own_uuid_v7() {
        let requests = requests(1, 5_000, 300);
        let ids: Vec<Uuid> = requests.iter().flat_map(|r| r.ids.clone()).collect();
        assert_eq!(ids.len(), 5_000);
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 5_000);
        assert!(ids.iter().all(|id| id.get_version_num() == 7));
        for (seq, request) in requests.iter().enumerate() {
            assert_eq!(request.seq, seq as u64);
            let body_ids: Vec<Uuid> = events(request)
                .iter()
                .map(|event| {
                    event["event_id"]
                        .as_str()
                        .expect("id")
                        .parse()
                        .expect("uuid")
                })
                .collect();
            assert_eq!(body_ids, request.ids);
        }
    }

    #[test]
    fn requests_are_single_events_and_batches_of_up_to_a_hundred() {
        let requests = requests(2, 20_000, 2_000);
        let singles = requests
            .iter()
            .filter(|r| !r.body.starts_with("{\"events\""))
            .count();
        let sizes: Vec<usize> = requests.iter().map(|r| r.ids.len()).collect();
        assert!(sizes.iter().all(|size| (1..=MAX_BATCH).contains(size)));
        assert!(sizes.contains(&MAX_BATCH) || sizes.iter().any(|size| *size > 90));
        assert!(
            singles > requests.len() / 6,
            "{singles} of {}",
            requests.len()
        );
        assert!(
            singles < requests.len() / 2,
            "{singles} of {}",
            requests.len()
        );
    }

    #[test]
    fn the_gateway_would_accept_every_event() {
        let context = ValidationContext::now(None);
        for request in requests(3, 3_000, 200) {
            for event in events(&request) {
                let draft: EventDraft =
                    serde_json::from_value(event.clone()).expect("an event of the contract");
                if let Err(error) = draft.validate(&context) {
                    panic!("{event}: {error:?}");
                }
            }
        }
    }

    #[test]
    fn traffic_covers_channels_identifier_kinds_feedback_and_merges() {
        let all: Vec<Value> = requests(4, 10_000, 1_000).iter().flat_map(events).collect();
        let channels: BTreeSet<&str> = all.iter().filter_map(|e| e["channel"].as_str()).collect();
        assert_eq!(
            channels,
            BTreeSet::from(["chat", "email", "phone", "sms", "social", "web"])
        );
        let kinds: BTreeSet<&str> = all
            .iter()
            .flat_map(|e| e["identifiers"].as_array().into_iter().flatten())
            .filter_map(|identifier| identifier["kind"].as_str())
            .collect();
        assert_eq!(
            kinds,
            BTreeSet::from(["account", "email", "phone", "visitor", "whatsapp"])
        );
        assert!(all.iter().any(|e| e["type"] == "feedback.submitted"));
        // Events naming two people of one household.
        let households = all
            .iter()
            .filter(|event| {
                let people: BTreeSet<u64> = event["identifiers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|identifier| {
                        let value = identifier["value"].as_str()?;
                        let digits: String = value.chars().filter(char::is_ascii_digit).collect();
                        match identifier["kind"].as_str()? {
                            "phone" | "whatsapp" => digits.get(4..)?.parse().ok(),
                            "email" => digits.parse().ok(),
                            _ => None,
                        }
                    })
                    .collect();
                people.len() == 2
            })
            .count();
        assert!(households > 20, "{households} events link two people");
    }

    #[test]
    fn no_two_events_share_a_time_and_none_lies_ahead() {
        let all: Vec<Value> = requests(5, 20_000, 500).iter().flat_map(events).collect();
        let times: Vec<DateTime<Utc>> = all
            .iter()
            .map(|e| {
                DateTime::parse_from_rfc3339(e["occurred_at"].as_str().expect("time"))
                    .expect("RFC 3339")
                    .with_timezone(&Utc)
            })
            .collect();
        assert_eq!(times.iter().collect::<HashSet<_>>().len(), times.len());
        let now = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z").expect("now");
        assert!(
            times
                .iter()
                .all(|t| *t < now && *t > now - Duration::days(31))
        );
    }

    #[test]
    fn a_seed_gives_the_same_traffic() {
        assert_eq!(requests(9, 2_000, 100), requests(9, 2_000, 100));
        assert_ne!(requests(9, 2_000, 100), requests(10, 2_000, 100));
    }

    #[test]
    fn people_have_distinct_identifiers_and_a_partner() {
        let first = Person::new(6);
        assert_eq!(first.phone, "+31610000006");
        assert_eq!(first.whatsapp, "31610000006");
        assert_eq!(first.partner().index, 7);
        assert_eq!(first.partner().partner(), first);
        assert!(first.account.is_none());
        assert_eq!(Person::new(8).account.as_deref(), Some("ACC00000008"));
        assert_ne!(Person::new(1).visitor, Person::new(2).visitor);
    }
}
