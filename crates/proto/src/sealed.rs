//! Sealed records: the personal part of a contact event encrypted on the
//! topic, so that destroying a person's keys in PostgreSQL leaves nothing
//! of them readable in the immutable log (crypto-shredding; the design and
//! its limits are in docs/privacy.md).
//!
//! Each identifier is a *subject*: an HMAC-SHA256 of `kind:value` under
//! the deployment's subject secret. Each subject has a random 32-byte key.
//! A sealed event is encrypted under a fresh data key, split into one XOR
//! share per subject, each share encrypted under its subject's key: the
//! event opens only with the key of every subject it names, so erasing any
//! one of them (a person named on someone else's event included) makes the
//! whole event unreadable. Nothing here talks to a database: keys come in
//! and go out as values.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use panorama_core::{ContactEvent, Identifier};
use prost::Message;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use uuid::Uuid;

use crate::{Checks, DecodeError, v1};

/// Bytes of a key, a share, a subject and the subject secret.
pub const KEY_LEN: usize = 32;

/// The format version sealed records carry.
const VERSION: u32 = 1;

/// The secret subjects are keyed hashes under. Generated once per
/// deployment and kept in PostgreSQL; without it a subject cannot be told
/// from a phone number by trying them all.
#[derive(Clone)]
pub struct SubjectSecret(hmac::Key);

impl SubjectSecret {
    /// The secret from its 32 bytes.
    pub fn new(bytes: &[u8; KEY_LEN]) -> Self {
        SubjectSecret(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// The subject of `identifier`: the HMAC of `kind:value`, its
    /// `Display` form.
    pub fn subject(&self, identifier: &Identifier) -> Subject {
        // The parts fed in turn, so that no `kind:value` string is made for
        // every identifier of every event.
        let mut context = hmac::Context::with_key(&self.0);
        context.update(identifier.kind().as_str().as_bytes());
        context.update(b":");
        context.update(identifier.value().as_bytes());
        let tag = context.sign();
        let mut bytes = [0; KEY_LEN];
        bytes.copy_from_slice(tag.as_ref());
        Subject(bytes)
    }

    /// The distinct subjects of `event`'s identifiers, in their order.
    pub fn subjects(&self, event: &ContactEvent) -> Vec<Subject> {
        let mut subjects: Vec<Subject> = Vec::with_capacity(event.identifiers.len());
        for identifier in event.plain_identifiers() {
            let subject = self.subject(identifier);
            if !subjects.contains(&subject) {
                subjects.push(subject);
            }
        }
        subjects
    }
}

impl fmt::Debug for SubjectSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubjectSecret(..)")
    }
}

/// A keyed hash of one identifier: what keys, suppressions and sealed
/// records name a person by.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subject([u8; KEY_LEN]);

impl Subject {
    /// The subject from its 32 bytes; `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Subject> {
        Some(Subject(bytes.try_into().ok()?))
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Lower-case hex, as a record key.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Subject({}..)", &self.to_hex()[..12])
    }
}

/// One subject's key. Its `Debug` form hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct SubjectKey([u8; KEY_LEN]);

impl SubjectKey {
    /// A fresh random key from the operating system's CSPRNG.
    pub fn generate() -> Result<SubjectKey, SealError> {
        random().map(SubjectKey)
    }

    /// The key from its stored bytes; `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<SubjectKey> {
        Some(SubjectKey(bytes.try_into().ok()?))
    }

    /// Its bytes, to store.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubjectKey(..)")
    }
}

/// Why an event could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// No key was given for one of its subjects.
    #[error("no key for subject {0:?}")]
    MissingKey(Subject),
    /// An event without identifiers has no subject to seal it to.
    #[error("an event without identifiers cannot be sealed")]
    NoSubject,
    /// The system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// The cipher refused its input (a key or record of an impossible size).
    #[error("the cipher refused the record")]
    Crypto,
}

/// Why a sealed record could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A subject's key is gone: the person was erased. Not an error of the
    /// record; it is dropped, not dead-lettered.
    #[error("the key of a subject of this event was erased")]
    Erased,
    /// The record is not what a gateway seals: it fails authentication or
    /// its inside breaks the contract.
    #[error(transparent)]
    Invalid(#[from] DecodeError),
}

/// A record on the contact-event topic.
#[derive(Debug)]
pub enum Record {
    /// A contact event in clear (records from before sealing, or from a
    /// deployment that does not seal).
    Event(Box<ContactEvent>),
    /// A sealed contact event: it opens with its subjects' keys.
    Sealed(Box<SealedEvent>),
    /// A request to erase a customer.
    Erasure(ErasureRequest),
}

/// A sealed contact event, authenticated only once opened.
#[derive(Debug, Clone)]
pub struct SealedEvent {
    /// The event's id (in clear on the record).
    pub event_id: Uuid,
    /// Its subjects, in the order of its shares.
    pub subjects: Vec<Subject>,
    message: v1::ContactEvent,
    /// How the inside is checked once opened: as the record was decoded.
    checks: Checks,
}

/// A request to erase a customer and its merge tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureRequest {
    /// The request's id, also the record's event id.
    pub request_id: Uuid,
    /// The customer the admin named (possibly merged away since).
    pub customer_id: Uuid,
    /// The name of the API token that asked.
    pub requested_by: String,
    /// When the API accepted it.
    pub requested_at: chrono::DateTime<chrono::Utc>,
}

/// The event type of an erasure request record.
pub const ERASURE_TYPE: &str = "privacy.erasure_requested";

/// The source of an erasure request record.
pub const ERASURE_SOURCE: &str = "privacy";

/// The record key of a sealed event: its first subject in hex, so the
/// partition follows the first identifier as before, without showing it.
pub fn partition_key(subjects: &[Subject]) -> String {
    subjects.first().map(Subject::to_hex).unwrap_or_default()
}

/// Seals `event` to `subjects` (from [`SubjectSecret::subjects`]), each
/// with its key in `keys`; the record value to publish.
pub fn seal(
    event: &ContactEvent,
    subjects: &[Subject],
    keys: &HashMap<Subject, SubjectKey>,
) -> Result<Vec<u8>, SealError> {
    if subjects.is_empty() {
        return Err(SealError::NoSubject);
    }
    let data_key: [u8; KEY_LEN] = random()?;
    let event_id = event.event_id.as_bytes();
    let mut last_share = data_key;
    let mut shares = Vec::with_capacity(subjects.len());
    for (index, subject) in subjects.iter().enumerate() {
        let key = keys.get(subject).ok_or(SealError::MissingKey(*subject))?;
        // Every share but the last is random; the last makes their XOR the
        // data key.
        let share: [u8; KEY_LEN] = if index + 1 == subjects.len() {
            last_share
        } else {
            let share = random()?;
            xor_into(&mut last_share, &share);
            share
        };
        let nonce: [u8; NONCE_LEN] = random()?;
        let wrapped = encrypt(&key.0, nonce, &share_aad(event_id, subject), share.to_vec())?;
        shares.push(v1::KeyShare {
            subject: subject.0.to_vec(),
            nonce: nonce.to_vec(),
            wrapped,
        });
    }
    let nonce: [u8; NONCE_LEN] = random()?;
    let inside = crate::to_proto(event).encode_to_vec();
    let ciphertext = encrypt(&data_key, nonce, event_id, inside)?;
    let outside = v1::ContactEvent {
        sealed: Some(v1::Sealed {
            version: VERSION,
            shares,
            nonce: nonce.to_vec(),
            ciphertext,
        }),
        ..clear_part(crate::to_proto(event))
    };
    Ok(outside.encode_to_vec())
}

/// What a sealed record shows in clear of `whole`: the event's id, times,
/// channel, source, type, direction and trace context.
fn clear_part(whole: v1::ContactEvent) -> v1::ContactEvent {
    v1::ContactEvent {
        event_id: whole.event_id,
        occurred_at: whole.occurred_at,
        received_at: whole.received_at,
        channel: whole.channel,
        source: whole.source,
        r#type: whole.r#type,
        direction: whole.direction,
        traceparent: whole.traceparent,
        ..v1::ContactEvent::default()
    }
}

/// The record value of an erasure request.
pub fn encode_erasure(request: &ErasureRequest) -> Vec<u8> {
    v1::ContactEvent {
        event_id: request.request_id.as_bytes().to_vec(),
        occurred_at: Some(crate::timestamp(request.requested_at)),
        received_at: Some(crate::timestamp(request.requested_at)),
        channel: v1::Channel::Agent as i32,
        source: ERASURE_SOURCE.to_owned(),
        r#type: ERASURE_TYPE.to_owned(),
        erasure: Some(v1::Erasure {
            request_id: request.request_id.as_bytes().to_vec(),
            customer_id: request.customer_id.as_bytes().to_vec(),
            requested_by: request.requested_by.clone(),
        }),
        ..v1::ContactEvent::default()
    }
    .encode_to_vec()
}

/// Decodes a record value of any kind; a clear event is validated as
/// [`crate::decode`] does, a sealed one only in its outer form (and in
/// full once opened).
pub fn decode_record(bytes: &[u8]) -> Result<Record, DecodeError> {
    decode_record_with(bytes, Checks::Full)
}

/// Decodes a record value of any kind, a clear event checked as `checks`
/// says, a sealed one only in its outer form (and as `checks` says once
/// opened). The projector reads its topic with [`Checks::Normalised`]:
/// only its gateway writes there.
pub fn decode_record_with(bytes: &[u8], checks: Checks) -> Result<Record, DecodeError> {
    let message = v1::ContactEvent::decode(bytes)?;
    if message.erasure.is_some() {
        return erasure_from_proto(message).map(Record::Erasure);
    }
    if message.sealed.is_some() {
        return sealed_from_proto(message, checks).map(|sealed| Record::Sealed(Box::new(sealed)));
    }
    Ok(Record::Event(Box::new(crate::from_proto_with(
        message, checks,
    )?)))
}

impl SealedEvent {
    /// The W3C trace context the record carries in clear, if any.
    pub fn traceparent(&self) -> Option<&str> {
        Some(self.message.traceparent.as_str()).filter(|trace| !trace.is_empty())
    }

    /// Opens the event with its subjects' keys: [`OpenError::Erased`] when
    /// one is missing from `keys`. The inside must name exactly the
    /// subjects the outside lists (under `secret`), so a record cannot be
    /// sealed to someone other than the people it is about.
    pub fn open(
        &self,
        secret: &SubjectSecret,
        keys: &HashMap<Subject, SubjectKey>,
    ) -> Result<ContactEvent, OpenError> {
        let tampered = || OpenError::Invalid(invalid("sealed", "does not open: tampered with"));
        let sealed = self.message.sealed.as_ref().ok_or_else(tampered)?;
        let event_id = self.event_id.as_bytes();
        let mut data_key = [0; KEY_LEN];
        for (share, subject) in sealed.shares.iter().zip(&self.subjects) {
            let key = keys.get(subject).ok_or(OpenError::Erased)?;
            let plain = decrypt(
                &key.0,
                &share.nonce,
                &share_aad(event_id, subject),
                share.wrapped.clone(),
            )
            .ok_or_else(tampered)?;
            let share: [u8; KEY_LEN] = plain.as_slice().try_into().map_err(|_| tampered())?;
            xor_into(&mut data_key, &share);
        }
        let inside = decrypt(
            &data_key,
            &sealed.nonce,
            event_id,
            sealed.ciphertext.clone(),
        )
        .ok_or_else(tampered)?;
        let inside = v1::ContactEvent::decode(inside.as_slice()).map_err(DecodeError::from)?;
        // The clear part must be the inside's own: it is what logs and
        // dead letters show of a record.
        if inside.sealed.is_some()
            || inside.erasure.is_some()
            || !is_clear_part_of(&self.message, &inside)
        {
            return Err(tampered());
        }
        let event = crate::from_proto_with(inside, self.checks).map_err(DecodeError::from)?;
        let named: BTreeSet<Subject> = secret.subjects(&event).into_iter().collect();
        let listed: BTreeSet<Subject> = self.subjects.iter().copied().collect();
        if named != listed {
            return Err(OpenError::Invalid(invalid(
                "sealed.shares",
                "do not name the event's identifiers",
            )));
        }
        Ok(event)
    }
}

/// Whether `outside` (a sealed record, its `sealed` field aside) is
/// exactly [`clear_part`] of `inside`: the same clear fields, nothing
/// else. Compared field by field, without copying either.
fn is_clear_part_of(outside: &v1::ContactEvent, inside: &v1::ContactEvent) -> bool {
    // Every field named, so that a field added to the contract must be
    // placed on one side or the other here.
    let v1::ContactEvent {
        event_id,
        occurred_at,
        received_at,
        channel,
        source,
        r#type,
        direction,
        traceparent,
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
        attributes,
        display_name,
        case_id,
        consent,
        sealed: _,
        erasure,
    } = outside;
    let same_clear_fields = *event_id == inside.event_id
        && *occurred_at == inside.occurred_at
        && *received_at == inside.received_at
        && *channel == inside.channel
        && *source == inside.source
        && *r#type == inside.r#type
        && *direction == inside.direction
        && *traceparent == inside.traceparent;
    let nothing_else = identifiers.is_empty()
        && conversation_id.is_empty()
        && contact_reason.is_empty()
        && subject.is_empty()
        && summary.is_empty()
        && agent_id.is_empty()
        && queue.is_empty()
        && duration_seconds.is_none()
        && outcome.is_empty()
        && sentiment.is_none()
        && feedback.is_none()
        && attributes.is_empty()
        && display_name.is_empty()
        && case_id.is_empty()
        && consent.is_empty()
        && erasure.is_none();
    same_clear_fields && nothing_else
}

fn sealed_from_proto(
    message: v1::ContactEvent,
    checks: Checks,
) -> Result<SealedEvent, DecodeError> {
    let event_id =
        Uuid::from_slice(&message.event_id).map_err(|_| invalid("event_id", "must be 16 bytes"))?;
    let clear_only = message.identifiers.is_empty()
        && message.summary.is_empty()
        && message.display_name.is_empty()
        && message.attributes.is_empty()
        && message.feedback.is_none()
        && message.contact_reason.is_empty()
        && message.subject.is_empty()
        && message.conversation_id.is_empty();
    if !clear_only {
        return Err(invalid(
            "sealed",
            "a sealed record carries its personal fields only sealed",
        ));
    }
    let sealed = message
        .sealed
        .as_ref()
        .ok_or_else(|| invalid("sealed", "is required"))?;
    if sealed.version != VERSION {
        return Err(invalid("sealed.version", "must be 1"));
    }
    if sealed.shares.is_empty() {
        return Err(invalid("sealed.shares", "must name at least one subject"));
    }
    if sealed.nonce.len() != NONCE_LEN {
        return Err(invalid("sealed.nonce", "must be 12 bytes"));
    }
    let mut subjects = Vec::with_capacity(sealed.shares.len());
    for (index, share) in sealed.shares.iter().enumerate() {
        let subject = Subject::from_slice(&share.subject).ok_or_else(|| {
            invalid(
                &format!("sealed.shares[{index}].subject"),
                "must be 32 bytes",
            )
        })?;
        if share.nonce.len() != NONCE_LEN {
            return Err(invalid(
                &format!("sealed.shares[{index}].nonce"),
                "must be 12 bytes",
            ));
        }
        if subjects.contains(&subject) {
            return Err(invalid(
                &format!("sealed.shares[{index}].subject"),
                "is listed twice",
            ));
        }
        subjects.push(subject);
    }
    Ok(SealedEvent {
        event_id,
        subjects,
        message,
        checks,
    })
}

fn erasure_from_proto(message: v1::ContactEvent) -> Result<ErasureRequest, DecodeError> {
    let erasure = message
        .erasure
        .as_ref()
        .ok_or_else(|| invalid("erasure", "is required"))?;
    if message.r#type != ERASURE_TYPE || !message.identifiers.is_empty() || message.sealed.is_some()
    {
        return Err(invalid(
            "erasure",
            "an erasure request has type privacy.erasure_requested and no identifiers",
        ));
    }
    let request_id = Uuid::from_slice(&erasure.request_id)
        .map_err(|_| invalid("erasure.request_id", "must be 16 bytes"))?;
    if message.event_id != erasure.request_id {
        return Err(invalid("event_id", "must be the erasure request's id"));
    }
    let customer_id = Uuid::from_slice(&erasure.customer_id)
        .map_err(|_| invalid("erasure.customer_id", "must be 16 bytes"))?;
    let requested_at = crate::event_time("received_at", message.received_at)?;
    Ok(ErasureRequest {
        request_id,
        customer_id,
        requested_by: erasure.requested_by.clone(),
        requested_at,
    })
}

fn invalid(field: &str, message: &str) -> DecodeError {
    DecodeError::Invalid(panorama_core::FieldError {
        field: field.to_owned(),
        message: message.to_owned(),
    })
}

fn share_aad(event_id: &[u8], subject: &Subject) -> Vec<u8> {
    [event_id, subject.as_bytes().as_slice()].concat()
}

fn xor_into(into: &mut [u8; KEY_LEN], other: &[u8; KEY_LEN]) {
    for (byte, other) in into.iter_mut().zip(other) {
        *byte ^= other;
    }
}

fn random<const N: usize>() -> Result<[u8; N], SealError> {
    let mut bytes = [0; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SealError::Random)?;
    Ok(bytes)
}

fn aead_key(key: &[u8; KEY_LEN]) -> Option<LessSafeKey> {
    UnboundKey::new(&CHACHA20_POLY1305, key)
        .ok()
        .map(LessSafeKey::new)
}

fn encrypt(
    key: &[u8; KEY_LEN],
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    mut data: Vec<u8>,
) -> Result<Vec<u8>, SealError> {
    // Every key seals with a fresh random nonce: data keys once, subject
    // keys once per event (2^-96 collision odds per pair).
    let nonce = Nonce::assume_unique_for_key(nonce);
    aead_key(key)
        .ok_or(SealError::Crypto)?
        .seal_in_place_append_tag(nonce, Aad::from(aad), &mut data)
        .map_err(|_| SealError::Crypto)?;
    Ok(data)
}

fn decrypt(key: &[u8; KEY_LEN], nonce: &[u8], aad: &[u8], mut data: Vec<u8>) -> Option<Vec<u8>> {
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let plain = aead_key(key)?
        .open_in_place(nonce, Aad::from(aad), &mut data)
        .ok()?;
    Some(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use panorama_core::{EventDraft, ValidationContext};
    use proptest::prelude::*;

    use super::*;

    fn secret() -> SubjectSecret {
        SubjectSecret::new(&[7; KEY_LEN])
    }

    fn event(identifiers: serde_json::Value) -> ContactEvent {
        let draft: EventDraft = serde_json::from_value(serde_json::json!({
            "event_id": "SM123",
            "occurred_at": "2026-11-23T09:58:00Z",
            "channel": "social",
            "source": "meta.whatsapp",
            "type": "message.received",
            "direction": "inbound",
            "identifiers": identifiers,
            "summary": "Where is my parcel? Anna, Dorpsstraat 1",
            "display_name": "Anna de Vries",
            "attributes": {"order": "1234"},
            "feedback": {"metric": "csat", "score": 2, "comment": "slow"},
        }))
        .expect("draft");
        draft
            .validate(&ValidationContext::now(None))
            .expect("valid")
    }

    fn two_people() -> ContactEvent {
        event(serde_json::json!([
            {"kind": "whatsapp", "value": "31612345678"},
            {"kind": "email", "value": "bob@example.org"}
        ]))
    }

    fn keys_for(subjects: &[Subject]) -> HashMap<Subject, SubjectKey> {
        subjects
            .iter()
            .map(|subject| (*subject, SubjectKey::generate().expect("key")))
            .collect()
    }

    fn sealed(record: &[u8]) -> SealedEvent {
        match decode_record(record).expect("decodes") {
            Record::Sealed(sealed) => *sealed,
            other => panic!("not sealed: {other:?}"),
        }
    }

    #[test]
    fn a_sealed_event_opens_with_its_keys_and_shows_nothing_personal() {
        let event = two_people();
        let subjects = secret().subjects(&event);
        assert_eq!(subjects.len(), 2);
        let keys = keys_for(&subjects);
        let record = seal(&event, &subjects, &keys).expect("sealed");
        for personal in [
            "31612345678",
            "bob@example.org",
            "Anna",
            "parcel",
            "1234",
            "slow",
        ] {
            assert!(
                !record
                    .windows(personal.len())
                    .any(|w| w == personal.as_bytes()),
                "{personal} in the record"
            );
        }
        let sealed = sealed(&record);
        assert_eq!(sealed.event_id, event.event_id);
        assert_eq!(sealed.subjects, subjects);
        assert_eq!(sealed.open(&secret(), &keys).expect("opens"), event);
        assert_eq!(partition_key(&subjects), subjects[0].to_hex());
        assert!(crate::decode(&record).is_err(), "plain decode refuses it");
    }

    #[test]
    fn erasing_any_subject_makes_the_event_unreadable() {
        let event = two_people();
        let subjects = secret().subjects(&event);
        let keys = keys_for(&subjects);
        let record = seal(&event, &subjects, &keys).expect("sealed");
        for erased in &subjects {
            let mut left = keys.clone();
            left.remove(erased);
            assert!(matches!(
                sealed(&record).open(&secret(), &left),
                Err(OpenError::Erased)
            ));
        }
        // A key of the same subject made anew opens nothing old.
        let mut renewed = keys.clone();
        renewed.insert(subjects[0], SubjectKey::generate().expect("key"));
        assert!(matches!(
            sealed(&record).open(&secret(), &renewed),
            Err(OpenError::Invalid(_))
        ));
    }

    #[test]
    fn a_record_sealed_to_other_subjects_or_altered_is_refused() {
        let event = two_people();
        let subjects = secret().subjects(&event);
        let keys = keys_for(&subjects);
        // Sealed to only one of its two people: erasing the other would
        // leave it readable.
        let partial = seal(&event, &subjects[..1], &keys).expect("sealed");
        assert!(matches!(
            sealed(&partial).open(&secret(), &keys),
            Err(OpenError::Invalid(_))
        ));
        // Another deployment's secret names other subjects.
        let other = SubjectSecret::new(&[8; KEY_LEN]);
        let record = seal(&event, &subjects, &keys).expect("sealed");
        assert!(matches!(
            sealed(&record).open(&other, &keys),
            Err(OpenError::Invalid(_))
        ));
        // Flipping any byte of the record breaks it (or its decoding).
        for index in (0..record.len()).step_by(7) {
            let mut altered = record.clone();
            altered[index] ^= 0x01;
            if let Ok(Record::Sealed(sealed)) = decode_record(&altered) {
                assert!(sealed.open(&secret(), &keys).is_err(), "byte {index}");
            }
        }
    }

    #[test]
    fn erasure_requests_round_trip() {
        let request = ErasureRequest {
            request_id: Uuid::now_v7(),
            customer_id: Uuid::now_v7(),
            requested_by: "ops".into(),
            requested_at: chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("time"),
        };
        match decode_record(&encode_erasure(&request)).expect("decodes") {
            Record::Erasure(decoded) => assert_eq!(decoded, request),
            other => panic!("not an erasure: {other:?}"),
        }
        assert!(crate::decode(&encode_erasure(&request)).is_err());
    }

    #[test]
    fn clear_records_still_decode() {
        let event = two_people();
        match decode_record(&crate::encode(&event)).expect("decodes") {
            Record::Event(decoded) => assert_eq!(*decoded, event),
            other => panic!("not clear: {other:?}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Every event the gateway accepts seals and opens to itself.
        #[test]
        fn every_valid_event_seals_and_opens((context, draft) in panorama_core::arbitrary::draft_in_context()) {
            if let Ok(event) = draft.validate(&context) {
                let subjects = secret().subjects(&event);
                prop_assume!(!subjects.is_empty());
                let keys = keys_for(&subjects);
                let record = seal(&event, &subjects, &keys).expect("sealed");
                let opened = sealed(&record).open(&secret(), &keys).expect("opens");
                let plain = crate::decode(&crate::encode(&event)).expect("plain");
                prop_assert_eq!(opened, plain);
            }
        }

        /// No byte string panics the record decoder or the opener.
        #[test]
        fn any_bytes_decode_or_fail(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(Record::Sealed(sealed)) = decode_record(&bytes) {
                let _ = sealed.open(&secret(), &HashMap::new());
            }
        }
    }
}
