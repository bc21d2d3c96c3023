//! A customer's traits as the profile shows them: per `customer.*`
//! attribute key (without the prefix) its latest value, typed by
//! `panorama_core::traits`, and when and where it came from. The same rows
//! feed the priority rule, as the attributes' text.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use panorama_core::traits::{self, TraitType, TraitValue};
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

/// A customer's trait: the latest value of a `customer.*` event attribute.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TraitView {
    /// The value, typed: a string, a number, a boolean, or for a
    /// `timestamp` its RFC 3339 text in UTC.
    #[schema(schema_with = trait_value_schema)]
    pub value: serde_json::Value,
    /// How the value's text was recognised: `string`, `number`, `boolean`
    /// or `timestamp`.
    #[serde(rename = "type")]
    pub kind: TraitType,
    /// When the event that set it happened.
    pub at: DateTime<Utc>,
    /// The event's source: the system that sent it (`segment`, `web.form`,
    /// `crm`, ...).
    pub source: String,
    /// The event's channel.
    pub channel: String,
    /// The event that set it.
    pub event_id: Uuid,
}

/// A trait's value in the OpenAPI document: a string, number or boolean.
fn trait_value_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    let one_of = OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .description(Some(
            "The value, typed: a string, a number, a boolean, or for a `timestamp` its \
             RFC 3339 text in UTC",
        ))
        .build();
    Schema::OneOf(one_of)
}

/// The query of the traits of the customer `survivor` (an SQL expression
/// giving a surviving customer's id), in the column order
/// [`ProfileTraits::from_rows`] reads.
pub(crate) fn traits_of(survivor: &str) -> String {
    format!(
        "SELECT key, value, at, source, channel, event_id
         FROM customer_attributes WHERE customer_id = {survivor}"
    )
}

/// The traits part of a profile.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ProfileTraits {
    /// By attribute key (`customer.tier`), the text: what the priority rule
    /// reads.
    pub(crate) attributes: BTreeMap<String, String>,
    /// By trait name (`tier`), typed.
    pub(crate) traits: BTreeMap<String, TraitView>,
}

impl ProfileTraits {
    /// Reads the rows of [`traits_of`].
    pub(crate) fn from_rows(rows: &[Row]) -> ProfileTraits {
        let mut read = ProfileTraits::default();
        for row in rows {
            let key: String = row.get(0);
            let text: String = row.get(1);
            let value = TraitValue::recognise(&text);
            if let Some(name) = traits::trait_name(&key) {
                read.traits.insert(
                    name.to_owned(),
                    TraitView {
                        value: value.to_json(),
                        kind: value.kind(),
                        at: row.get(2),
                        source: row.get(3),
                        channel: row.get(4),
                        event_id: row.get(5),
                    },
                );
            }
            read.attributes.insert(key, text);
        }
        read
    }
}
