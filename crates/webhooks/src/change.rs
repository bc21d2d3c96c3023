//! A record of the change feed (`panorama.customer-changes.v1`, a protobuf
//! `panorama.v1.CustomerChange`) turned into what is delivered: the
//! Standard Webhooks payload `{"type", "timestamp", "data"}`, signed and
//! posted as is to every subscription asking for the type.

use chrono::{DateTime, SecondsFormat, Utc};
use panorama_proto::v1::customer_change::Detail;
use panorama_proto::v1::{CustomerChange, IdentifierKind, Trust};
use panorama_store::ChangeToDeliver;
use prost::Message as _;
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// Why a record of the change feed cannot be delivered.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// Not a protobuf `CustomerChange`.
    #[error("not a panorama.v1.CustomerChange: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// A field breaks the contract.
    #[error("invalid customer change: {0}")]
    Invalid(&'static str),
}

/// The delivery of the change in `value`.
pub fn decode(value: &[u8]) -> Result<ChangeToDeliver, ChangeError> {
    let change = CustomerChange::decode(value)?;
    let change_id = uuid(&change.change_id).ok_or(ChangeError::Invalid("change_id"))?;
    let customer_id = uuid(&change.customer_id).ok_or(ChangeError::Invalid("customer_id"))?;
    if change.r#type.is_empty() {
        return Err(ChangeError::Invalid("type"));
    }
    let time = change
        .time
        .as_ref()
        .and_then(timestamp)
        .ok_or(ChangeError::Invalid("time"))?;
    let mut data = Map::new();
    data.insert("change_id".into(), json!(change_id));
    data.insert("customer_id".into(), json!(customer_id));
    if let Some(event_id) = uuid(&change.event_id) {
        data.insert("event_id".into(), json!(event_id));
    }
    if let Some(detail) = &change.detail {
        add_detail(&mut data, detail);
    }
    let body = json!({
        "type": change.r#type,
        "timestamp": time.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": data,
    });
    Ok(ChangeToDeliver {
        change_id,
        change_type: change.r#type,
        customer_id,
        body: body.to_string(),
    })
}

/// The fields of a change's detail, beside the customer's id.
fn add_detail(data: &mut Map<String, Value>, detail: &Detail) {
    match detail {
        Detail::Updated(update) => {
            if let Some(name) = &update.display_name {
                data.insert("display_name".into(), json!(name));
            }
            let attributes: serde_json::Map<String, Value> = update
                .attributes
                .iter()
                .map(|(key, value)| (key.clone(), json!(value)))
                .collect();
            data.insert("attributes".into(), Value::Object(attributes));
        }
        Detail::Merged(merge) => {
            data.insert("survivor_id".into(), json!(uuid(&merge.survivor_id)));
        }
        Detail::Unmerged(unmerge) => {
            let restored: Vec<Option<Uuid>> =
                unmerge.restored_ids.iter().map(|id| uuid(id)).collect();
            data.insert("restored_ids".into(), json!(restored));
        }
        Detail::IdentifierAdded(identifier) => {
            data.insert(
                "identifier".into(),
                identifier_json(identifier.kind(), &identifier.value, identifier.trust()),
            );
        }
        Detail::Case(case) => {
            data.insert("case_id".into(), json!(uuid(&case.case_id)));
            data.insert("reason".into(), json!(case.reason));
            data.insert("status".into(), json!(case.status));
        }
        Detail::Task(task) => {
            data.insert("task_id".into(), json!(uuid(&task.task_id)));
            data.insert("status".into(), json!(task.status));
            if let Some(due) = task.due_at.as_ref().and_then(timestamp) {
                data.insert(
                    "due_at".into(),
                    json!(due.to_rfc3339_opts(SecondsFormat::Secs, true)),
                );
            }
            if !task.channel.is_empty() {
                data.insert("channel".into(), json!(task.channel));
            }
            if !task.assignee.is_empty() {
                data.insert("assignee".into(), json!(task.assignee));
            }
        }
        Detail::Conflict(conflict) => {
            data.insert("conflict_id".into(), json!(uuid(&conflict.conflict_id)));
            let identifiers: Vec<Value> = conflict
                .identifiers
                .iter()
                .map(|identifier| {
                    identifier_json(identifier.kind(), &identifier.value, identifier.trust())
                })
                .collect();
            data.insert("identifiers".into(), Value::Array(identifiers));
            let customers: Vec<Option<Uuid>> =
                conflict.customers.iter().map(|id| uuid(id)).collect();
            data.insert("customers".into(), json!(customers));
            data.insert("status".into(), json!(conflict.status));
        }
    }
}

/// `{"kind": "phone", "value": "+31...", "trust": "verified"}`.
fn identifier_json(kind: IdentifierKind, value: &str, trust: Trust) -> Value {
    let kind = kind
        .as_str_name()
        .strip_prefix("IDENTIFIER_KIND_")
        .unwrap_or("unspecified")
        .to_ascii_lowercase();
    let trust = match trust {
        Trust::Claimed => "claimed",
        Trust::Verified | Trust::Unspecified => "verified",
    };
    json!({"kind": kind, "value": value, "trust": trust})
}

/// A 16-byte UUID; `None` for anything else (an absent one is empty).
fn uuid(bytes: &[u8]) -> Option<Uuid> {
    Uuid::from_slice(bytes).ok()
}

fn timestamp(time: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(time.nanos).ok()?;
    DateTime::from_timestamp(time.seconds, nanos)
}

#[cfg(test)]
mod tests {
    use panorama_proto::v1::Merge;

    use super::*;

    #[test]
    fn a_merge_becomes_the_standard_payload() {
        let change_id = Uuid::now_v7();
        let customer = Uuid::now_v7();
        let survivor = Uuid::now_v7();
        let record = CustomerChange {
            change_id: change_id.as_bytes().to_vec(),
            r#type: "customer.merged".into(),
            time: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 5_000_000,
            }),
            customer_id: customer.as_bytes().to_vec(),
            event_id: Vec::new(),
            detail: Some(Detail::Merged(Merge {
                survivor_id: survivor.as_bytes().to_vec(),
            })),
        }
        .encode_to_vec();
        let change = decode(&record).expect("decodes");
        assert_eq!(change.change_id, change_id);
        assert_eq!(change.customer_id, customer);
        let body: Value = serde_json::from_str(&change.body).expect("json");
        assert_eq!(body["type"], "customer.merged");
        assert_eq!(body["timestamp"], "2023-11-14T22:13:20.005Z");
        assert_eq!(body["data"]["survivor_id"], json!(survivor));
        assert_eq!(body["data"]["customer_id"], json!(customer));
        assert!(body["data"].get("event_id").is_none());
    }

    #[test]
    fn records_without_ids_or_time_are_refused() {
        assert!(decode(b"\xff\xff").is_err());
        let empty = CustomerChange::default().encode_to_vec();
        assert!(matches!(
            decode(&empty),
            Err(ChangeError::Invalid("change_id"))
        ));
    }
}
