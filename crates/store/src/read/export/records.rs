//! The records of a customer export: one type per table, one field per
//! column under the column's name, read from a row by name (so the select
//! lists in `sections.rs` and these fields cannot drift apart silently: a
//! missing column fails the read). Nothing is left out as "empty": a
//! column without a value is `null`, so the document shows every field
//! held. The types carry `ToSchema` for the OpenAPI document.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::{AuditRecord, Result};

/// A record read from a row of its table.
pub(super) trait FromRow: Sized {
    /// Reads the record's columns by name.
    fn from_row(row: &Row) -> Result<Self>;
}

/// The column a field is read from: the field's name, without the `r#` of
/// a raw identifier (`type`).
fn column(field: &'static str) -> &'static str {
    field.trim_start_matches("r#")
}

/// Declares record types: a struct of public fields with `Serialize` and
/// `ToSchema`, and its [`FromRow`] by column name.
macro_rules! records {
    ($(
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$field_meta:meta])* $field:ident : $ty:ty ),+ $(,)?
        }
    )+) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
            pub struct $name {
                $( $(#[$field_meta])* pub $field: $ty, )+
            }

            impl FromRow for $name {
                fn from_row(row: &Row) -> Result<Self> {
                    Ok($name {
                        $( $field: row.try_get(column(stringify!($field)))?, )+
                    })
                }
            }
        )+
    };
}

records! {
    /// A row of `customers`: the customer itself, or a profile merged into
    /// it.
    ExportCustomer {
        /// Customer (profile) id.
        id: Uuid,
        /// Best-known name.
        display_name: Option<String>,
        /// When the event the name came from happened.
        display_name_at: Option<DateTime<Utc>>,
        /// When the profile was created.
        created_at: DateTime<Utc>,
        /// When its row last changed.
        updated_at: DateTime<Utc>,
        /// First contact.
        first_contact_at: Option<DateTime<Utc>>,
        /// Latest contact.
        last_contact_at: Option<DateTime<Utc>>,
        /// Events counted on it.
        event_count: i64,
        /// The profile it was merged into; `null` for the customer itself.
        merged_into: Option<Uuid>,
        /// The customer at the root of its merge tree.
        survivor_id: Uuid,
        /// When it was merged away.
        merged_at: Option<DateTime<Utc>>,
    }

    /// A row of `customer_aliases`: an id the person had in a projection a
    /// replay replaced, which now leads to this customer.
    ExportAlias {
        /// The old id.
        id: Uuid,
        /// The profile it leads to.
        customer_id: Uuid,
        /// When the alias was made.
        created_at: DateTime<Utc>,
    }

    /// A row of `identifiers`: a phone number, address, account or handle
    /// linked to the person, with where it came from.
    ExportIdentifier {
        /// `phone`, `email`, `account`, `whatsapp`, ...
        kind: String,
        /// Normalised value.
        value: String,
        /// The profile it came through.
        customer_id: Uuid,
        /// The source (provider) that first brought it.
        source: String,
        /// First event carrying it.
        first_seen_at: DateTime<Utc>,
        /// Latest event carrying it, as of when it was linked.
        last_seen_at: DateTime<Utc>,
        /// `verified` or `claimed`.
        trust: String,
    }

    /// A row of `customer_channels`: contacts through one channel.
    ExportChannel {
        /// The profile the figures are kept on.
        customer_id: Uuid,
        /// Channel.
        channel: String,
        /// Events through it.
        event_count: i64,
        /// When the latest happened.
        last_event_at: DateTime<Utc>,
        /// Its direction.
        last_direction: Option<String>,
    }

    /// A row of `customer_daily_contacts`: contacts on one day (UTC).
    ExportDailyContacts {
        /// The profile the figures are kept on.
        customer_id: Uuid,
        /// The day.
        day: NaiveDate,
        /// Contacts that day.
        contacts: i32,
    }

    /// A row of `customer_attributes`: a trait, the latest value of a
    /// `customer.*` event attribute, with where it came from.
    ExportAttribute {
        /// The profile it is kept on.
        customer_id: Uuid,
        /// Attribute name, such as `customer.tier`.
        key: String,
        /// Its latest value, as the event carried it (its type is
        /// recognised from this text: see the profile's `traits`).
        value: String,
        /// When the event that set it happened.
        at: DateTime<Utc>,
        /// The event that set it.
        event_id: Uuid,
        /// The event's source.
        source: String,
        /// The event's channel.
        channel: String,
    }

    /// A row of `customer_feedback`: survey answers for one metric.
    ExportFeedback {
        /// The profile the figures are kept on.
        customer_id: Uuid,
        /// `nps`, `csat` or `ces`.
        metric: String,
        /// Answers given.
        responses: i64,
        /// Their sum.
        score_sum: i64,
        /// The latest answer.
        latest_score: i16,
        /// When it was given.
        latest_at: DateTime<Utc>,
    }

    /// A row of `customer_consent`: the person's latest statement about
    /// being contacted through a channel for a purpose.
    ExportConsent {
        /// The profile it is kept on.
        customer_id: Uuid,
        /// The channel, or `any`.
        channel: String,
        /// `service`, `marketing` or `surveys`.
        purpose: String,
        /// Whether the person allows it.
        granted: bool,
        /// When the person said so.
        at: DateTime<Utc>,
        /// The event that said so.
        event_id: Uuid,
        /// Who passed it on: `agent`, or the system that sent the event.
        source: String,
    }

    /// A row of `cases`: contacts grouped by the reason for contact.
    ExportCase {
        /// Case id.
        id: Uuid,
        /// The profile it was opened under.
        customer_id: Uuid,
        /// `open` or `resolved`.
        status: String,
        /// The reason in the customer's words.
        reason: Option<String>,
        /// The reason in the agent's words.
        agent_reason: Option<String>,
        /// When it was opened.
        opened_at: DateTime<Utc>,
        /// The agent who opened it.
        opened_by: Option<String>,
        /// First contact.
        first_contact_at: Option<DateTime<Utc>>,
        /// Latest contact.
        last_contact_at: Option<DateTime<Utc>>,
        /// Contacts about it.
        contact_count: i32,
        /// The channels they came through.
        channels: Vec<String>,
        /// The conversations (threads, calls, chats) they belong to.
        conversation_ids: Vec<String>,
        /// When it was resolved.
        resolved_at: Option<DateTime<Utc>>,
        /// How it ended.
        outcome: Option<String>,
        /// The agent's note on resolving.
        resolution_note: Option<String>,
        /// The case a later contact bridged it into.
        merged_into: Option<Uuid>,
        /// When its row last changed.
        updated_at: DateTime<Utc>,
    }

    /// A row of `tasks`: a follow-up an agent planned.
    ExportTask {
        /// Task id.
        id: Uuid,
        /// The profile it was created under.
        customer_id: Uuid,
        /// The case it belongs to.
        case_id: Option<Uuid>,
        /// What to do.
        title: String,
        /// The channel to contact the customer through.
        channel: String,
        /// When it is due.
        due_at: DateTime<Utc>,
        /// Who should do it.
        assignee: Option<String>,
        /// `open` or `done`.
        status: String,
        /// When it was created.
        created_at: DateTime<Utc>,
        /// By whom.
        created_by: Option<String>,
        /// When it was done.
        completed_at: Option<DateTime<Utc>>,
        /// When its row last changed.
        updated_at: DateTime<Utc>,
    }

    /// A row of `identity_history`: a merge, a refused merge or an unmerge
    /// concerning the person.
    ExportHistory {
        /// Entry id.
        id: Uuid,
        /// When.
        at: DateTime<Utc>,
        /// `merge`, `refused` or `unmerge`.
        action: String,
        /// Merge: the survivor; unmerge: the customer it was taken from.
        survivor_id: Option<Uuid>,
        /// Merge: the customer merged away; unmerge: the one brought back.
        merged_id: Option<Uuid>,
        /// Every customer concerned.
        customers: Vec<Uuid>,
        /// The event that caused it.
        event_id: Option<Uuid>,
        /// Who did it (manual decisions).
        actor: Option<String>,
        /// Why.
        reason: Option<String>,
        /// For a refusal by a limit: the identifier kind.
        kind: Option<String>,
        /// The identifiers that linked the customers.
        #[schema(value_type = Vec<Object>)]
        identifiers: Value,
        /// What moved: profiles, identifiers, event count.
        #[schema(value_type = Option<Object>)]
        moved: Option<Value>,
    }

    /// A row of `identity_conflicts`: a refused merge or an identifier left
    /// unlinked, for review.
    ExportConflict {
        /// Conflict id.
        id: Uuid,
        /// First raised.
        created_at: DateTime<Utc>,
        /// Last raised.
        last_seen_at: DateTime<Utc>,
        /// How many events raised it.
        occurrences: i32,
        /// `open`, `merged` or `dismissed`.
        status: String,
        /// `limit`, `weak_link_only` or `do_not_merge`.
        reason: String,
        /// For `limit`: the identifier kind (empty otherwise).
        kind: String,
        /// The customers concerned, as they were when it was raised.
        customers: Vec<Uuid>,
        /// The identifiers concerned.
        #[schema(value_type = Vec<Object>)]
        identifiers: Value,
        /// The first event that raised it.
        event_id: Option<Uuid>,
        /// The latest.
        last_event_id: Option<Uuid>,
        /// When it was settled.
        resolved_at: Option<DateTime<Utc>>,
        /// By whom.
        resolved_by: Option<String>,
        /// How.
        resolution: Option<String>,
    }

    /// A row of `identity_separations`: an agent's decision that two
    /// profiles are different people.
    ExportSeparation {
        /// One profile (the smaller id).
        customer_a: Uuid,
        /// The other.
        customer_b: Uuid,
        /// When.
        created_at: DateTime<Utc>,
        /// By whom.
        created_by: Option<String>,
    }

    /// A change of `customer_changes`, the change log behind live updates
    /// (kept for a day): one entry of a row, which holds the changes of one
    /// transaction (one record per entry keeps every record small).
    ExportChange {
        /// The row's sequence number.
        seq: i64,
        /// The entry's position in the row, from 0.
        index: i64,
        /// The customer (the survivor at the time).
        customer_id: Uuid,
        /// What changed: `timeline`, `profile`, `case`, ...
        kind: String,
        /// The event behind it.
        event_id: Option<Uuid>,
        /// The case (or other thing) it is about.
        subject_id: Option<Uuid>,
        /// When.
        at: DateTime<Utc>,
    }

    /// A row of `dead_letters` naming one of the person's events: a record
    /// the projector set aside (the record itself is on the dead-letter
    /// topic, not in the database).
    ExportDeadLetter {
        /// The projector's consumer group.
        consumer_group: String,
        /// The topic the record came from.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// The event's id.
        event_id: Option<Uuid>,
        /// `undecodable`, `invalid` or `rejected`.
        reason: String,
        /// PostgreSQL's error code, when it refused the event.
        sqlstate: Option<String>,
        /// What was wrong.
        error: String,
        /// When.
        at: DateTime<Utc>,
    }

    /// A row of `events`: one contact or agent action of the person's
    /// history, with everything stored of it. Notes are events of type
    /// `note.added` (the text in `summary`); survey answers are
    /// `feedback.submitted` events (`feedback_*`).
    ExportEvent {
        /// Event id.
        event_id: Uuid,
        /// The profile it came through.
        customer_id: Uuid,
        /// When it happened.
        occurred_at: DateTime<Utc>,
        /// When the gateway received it.
        received_at: DateTime<Utc>,
        /// When it was written to the history.
        projected_at: DateTime<Utc>,
        /// Channel.
        channel: String,
        /// Provider.
        source: String,
        /// Event type.
        r#type: String,
        /// `inbound` or `outbound`.
        direction: Option<String>,
        /// The identifiers it carried (`{"kind", "value", "trust"}`; events
        /// written before trust existed carry none).
        #[schema(value_type = Vec<Object>)]
        identifiers: Value,
        /// Thread.
        conversation_id: Option<String>,
        /// Reason for contact.
        contact_reason: Option<String>,
        /// Subject.
        subject: Option<String>,
        /// Text: an excerpt of the message, or a note's text.
        summary: Option<String>,
        /// Agent.
        agent_id: Option<String>,
        /// Queue.
        queue: Option<String>,
        /// Duration.
        duration_seconds: Option<i32>,
        /// Outcome.
        outcome: Option<String>,
        /// Sentiment.
        sentiment: Option<f32>,
        /// Survey metric.
        feedback_metric: Option<String>,
        /// Survey score.
        feedback_score: Option<i16>,
        /// Survey comment.
        feedback_comment: Option<String>,
        /// Name as given on this event.
        display_name: Option<String>,
        /// Extra values.
        #[schema(value_type = BTreeMap<String, String>)]
        attributes: Value,
        /// The case it was grouped into.
        case_id: Option<Uuid>,
        /// SHA-256 of the event as accepted, hex (for idempotency checks).
        fingerprint: Option<String>,
        /// The consent statements it carried
        /// (`{"channel", "purpose", "granted"}`).
        #[schema(value_type = Option<Vec<Object>>)]
        consent: Option<Value>,
        /// When retention cleared its personal fields; `null` while it
        /// has them.
        anonymised_at: Option<DateTime<Utc>>,
    }
}

impl FromRow for AuditRecord {
    fn from_row(row: &Row) -> Result<Self> {
        Ok(AuditRecord {
            id: row.try_get("id")?,
            at: row.try_get("at")?,
            actor: row.try_get("actor")?,
            role: row.try_get("role")?,
            method: row.try_get("method")?,
            route: row.try_get("route")?,
            customer_id: row.try_get("customer_id")?,
            status: row.try_get("status")?,
            identifier_kind: row.try_get("identifier_kind")?,
        })
    }
}

/// The whole export document, for the OpenAPI document: the stream writes
/// it member by member in this order ([`super::sections::MEMBERS`]), each
/// list as it is read, never built in memory.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustomerExport {
    /// `panorama.customer-export.v1`: what the document is and the version
    /// of its shape.
    #[schema(example = "panorama.customer-export.v1")]
    pub format: String,
    /// When the export was taken: every list below is one consistent
    /// snapshot as of this moment.
    pub exported_at: DateTime<Utc>,
    /// The id asked for.
    pub requested_id: Uuid,
    /// The customer exported: the survivor of the id asked for.
    pub customer_id: Uuid,
    /// The customer's row.
    pub customer: ExportCustomer,
    /// The profiles merged into it (their own rows), oldest first.
    pub merged_profiles: Vec<ExportCustomer>,
    /// Ids from replaced projections that lead to it.
    pub aliases: Vec<ExportAlias>,
    /// Every identifier, by kind and value.
    pub identifiers: Vec<ExportIdentifier>,
    /// Contacts per channel.
    pub channels: Vec<ExportChannel>,
    /// Contacts per day.
    pub daily_contacts: Vec<ExportDailyContacts>,
    /// Traits: the latest `customer.*` attributes, with where they came
    /// from.
    pub attributes: Vec<ExportAttribute>,
    /// Survey answers per metric.
    pub feedback: Vec<ExportFeedback>,
    /// Contact preferences: the latest statement per channel and purpose.
    pub consent: Vec<ExportConsent>,
    /// Cases, oldest first.
    pub cases: Vec<ExportCase>,
    /// Follow-up tasks, oldest first.
    pub tasks: Vec<ExportTask>,
    /// Merges, refused merges and unmerges concerning any of its profiles,
    /// oldest first.
    pub identity_history: Vec<ExportHistory>,
    /// Conflicts naming any of its profiles, oldest first.
    pub identity_conflicts: Vec<ExportConflict>,
    /// Separations from other profiles.
    pub identity_separations: Vec<ExportSeparation>,
    /// Recent entries of the change log (live updates).
    pub changes: Vec<ExportChange>,
    /// Dead letters naming its events.
    pub dead_letters: Vec<ExportDeadLetter>,
    /// The whole history, oldest first by `occurred_at`, then `event_id`:
    /// contacts on every channel, agents' notes, case and task events,
    /// survey answers.
    pub events: Vec<ExportEvent>,
    /// The audit trail about it (who read or changed the record, when,
    /// through which route), oldest first, up to the export itself: the
    /// export's own entry is written as it starts and is in the next one.
    pub audit: Vec<AuditRecord>,
}
