//! Path and query parameters of the agent routes: the customer id in a
//! path and the customer it leads to, and a route's query parameters
//! deserialised into its own struct ([`query`]) with the `deserialize_with`
//! functions below for page sizes, cursors, times and ids. Every refusal is
//! a 400 `/problems/invalid-parameter` naming the parameter.
//!
//! Each route declares its query parameters once, as a struct deriving
//! `Deserialize` (with `deny_unknown_fields`) and `IntoParams` (with
//! `parameter_in = Query`), listed in its `#[utoipa::path]` `params(...)`:
//! the field's doc comment is the parameter's description, its type the
//! documented type.

use std::fmt::{self, Display};
use std::str::FromStr;

use actix_web::web;
use chrono::{DateTime, Utc};
use panorama_store::{AuditCursor, ConflictCursor, TimelineCursor};
use serde::Deserialize;
use serde::de::value::MapDeserializer;
use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, Visitor};
use serde_json::json;
use uuid::Uuid;

use crate::error::ApiError;
use crate::{AppState, store};

/// Largest page of a list: a timeline, cases, tasks, conflicts, the audit
/// trail.
pub(crate) const MAX_PAGE: usize = 200;
/// Page size when `limit` is not given.
pub(crate) const DEFAULT_PAGE: usize = 50;

/// A 400 naming `field`: a path or query parameter that is wrong.
pub(crate) fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidParameter {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// A customer id in a path; refused naming `id` when it is no UUID.
pub(crate) fn parse_customer_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| invalid("id", "customer ids are UUIDs"))
}

/// The customer id in a path and the customer it leads to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InPath {
    /// The id in the path: the customer's, a profile merged into it, or an
    /// alias from before a replay.
    pub(crate) requested: Uuid,
    /// The customer (the survivor).
    pub(crate) customer: Uuid,
}

impl InPath {
    /// `fields` with `customer_id` and `requested_id` added, for an answer.
    pub(crate) fn answer(self, mut fields: serde_json::Value) -> serde_json::Value {
        if let Some(object) = fields.as_object_mut() {
            object.insert("customer_id".into(), json!(self.customer));
            object.insert("requested_id".into(), json!(self.requested));
        }
        fields
    }
}

/// The customer the id in the path leads to, or 404.
pub(crate) async fn customer_in_path(state: &AppState, raw: &str) -> Result<InPath, ApiError> {
    let requested = parse_customer_id(raw)?;
    let customer = store(state)?
        .survivor_of(requested)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no customer {requested}")))?;
    Ok(InPath {
        requested,
        customer,
    })
}

/// Trims a page read with one row more than `page` and gives the cursor
/// of the next page, if there is one.
pub(crate) fn next_page<T>(
    items: &mut Vec<T>,
    page: usize,
    cursor_after: impl Fn(&T) -> String,
) -> Option<String> {
    if items.len() <= page {
        return None;
    }
    items.truncate(page);
    items.last().map(cursor_after)
}

/// The opaque cursor of a (time, id) position.
pub(crate) fn position(at: DateTime<Utc>, id: Uuid) -> String {
    TimelineCursor {
        occurred_at: at,
        event_id: id,
    }
    .encode()
}

/// The query parameters in `query` (a request's query string) as `T`, a
/// route's parameter struct. A parameter given twice counts once, with its
/// last value. An unknown parameter is refused naming it and the known
/// ones, a bad value naming its parameter with what its `deserialize_with`
/// function found wrong.
pub(crate) fn query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
        .map_err(|error| invalid("query", error.to_string()))?;
    let mut given: Vec<(String, Text)> = Vec::new();
    for (name, value) in pairs.into_inner() {
        match given.iter_mut().find(|(known, _)| *known == name) {
            Some((_, earlier)) => *earlier = Text(value),
            None => given.push((name, Text(value))),
        }
    }
    serde_path_to_error::deserialize(MapDeserializer::new(given.into_iter())).map_err(|error| {
        let field = match &error.inner().field {
            Some(field) => field.clone(),
            None => error.path().to_string(),
        };
        invalid(&field, error.into_inner().message)
    })
}

/// Why a query does not deserialise: the parameter, when serde names it
/// (an unknown one), and what is wrong.
#[derive(Debug)]
struct ParamError {
    field: Option<String>,
    message: String,
}

impl Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParamError {}

impl de::Error for ParamError {
    fn custom<T: Display>(message: T) -> Self {
        ParamError {
            field: None,
            message: message.to_string(),
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let expected = match expected {
            [] => String::new(),
            [only] => (*only).to_owned(),
            [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
        };
        ParamError {
            field: Some(field.to_owned()),
            message: format!("unknown parameter; expected {expected}"),
        }
    }
}

/// A parameter's value: text, which stands for a present optional value
/// (so `Option<String>` fields need no `deserialize_with`).
struct Text(String);

impl<'de> IntoDeserializer<'de, ParamError> for Text {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> Deserializer<'de> for Text {
    type Error = ParamError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_string(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_some(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple tuple_struct
        map struct enum identifier ignored_any
    }
}

/// `deserialize_with` of a parameter's text, parsed with `parse`, whose
/// error is the problem's detail.
pub(crate) fn parsed_with<'de, D, T, E>(
    deserializer: D,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    E: Display,
{
    let text = String::deserialize(deserializer)?;
    parse(&text).map(Some).map_err(de::Error::custom)
}

/// `deserialize_with` of a value with a `FromStr` (a channel, an event
/// type): its parse error is the detail.
pub(crate) fn parsed<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    parsed_with(deserializer, str::parse::<T>)
}

/// `deserialize_with` of a time in RFC 3339.
pub(crate) fn time<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    parsed_with(deserializer, |text| {
        DateTime::parse_from_rfc3339(text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|_| "must be an RFC 3339 timestamp such as 2026-11-23T10:00:00Z")
    })
}

/// `deserialize_with` of a page size (`limit`): a whole number from 1 to
/// [`MAX_PAGE`].
pub(crate) fn page_size<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u32>, D::Error> {
    parsed_with(deserializer, |text| {
        text.parse::<usize>()
            .ok()
            .filter(|limit| (1..=MAX_PAGE).contains(limit))
            .and_then(|limit| u32::try_from(limit).ok())
            .ok_or_else(|| format!("must be a whole number from 1 to {MAX_PAGE}"))
    })
}

/// A page size given as `limit`, or [`DEFAULT_PAGE`].
pub(crate) fn page(limit: Option<u32>) -> usize {
    limit.map_or(DEFAULT_PAGE, |limit| limit as usize)
}

/// Longest name (a token name, an assignee) a list can be filtered by.
pub(crate) const MAX_NAME: usize = 200;

/// `deserialize_with` of a name a list is filtered by (the audit trail's
/// actor, the tasks' assignee): 1 to [`MAX_NAME`] characters and no
/// control characters, which no name holds and PostgreSQL refuses in text
/// (NUL) — so a query with one is the caller's mistake, not a 500.
pub(crate) fn name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    parsed_with(deserializer, |text| {
        if text.is_empty() || text.chars().count() > MAX_NAME {
            Err(format!("1 to {MAX_NAME} characters"))
        } else if text.chars().any(char::is_control) {
            Err("must not contain control characters".to_owned())
        } else {
            Ok(text.to_owned())
        }
    })
}

/// `deserialize_with` of a customer id given as a parameter.
pub(crate) fn customer_id<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Uuid>, D::Error> {
    parsed_with(deserializer, |text| {
        Uuid::parse_str(text).map_err(|_| "customer ids are UUIDs")
    })
}

/// `deserialize_with` of a status filter, one of `allowed`.
pub(crate) fn one_of<'de, D: Deserializer<'de>>(
    deserializer: D,
    allowed: &[&str],
) -> Result<Option<String>, D::Error> {
    parsed_with(deserializer, |text| {
        if allowed.contains(&text) {
            Ok(text.to_owned())
        } else {
            Err(format!("one of {}", allowed.join(", ")))
        }
    })
}

/// Refuses a cursor this API did not hand out.
const NOT_A_CURSOR: &str = "not a cursor this API handed out";

/// `deserialize_with` of a timeline cursor, and of the (time, id)
/// positions of case and task pages ([`position`]).
pub(crate) fn timeline_cursor<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<TimelineCursor>, D::Error> {
    parsed_with(deserializer, |text| {
        TimelineCursor::decode(text).ok_or(NOT_A_CURSOR)
    })
}

/// `deserialize_with` of an audit trail cursor.
pub(crate) fn audit_cursor<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<AuditCursor>, D::Error> {
    parsed_with(deserializer, |text| {
        AuditCursor::decode(text).ok_or(NOT_A_CURSOR)
    })
}

/// `deserialize_with` of a conflict list cursor.
pub(crate) fn conflict_cursor<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ConflictCursor>, D::Error> {
    parsed_with(deserializer, |text| {
        ConflictCursor::decode(text).ok_or(NOT_A_CURSOR)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        name: Option<String>,
        #[serde(default, deserialize_with = "status")]
        status: Option<String>,
        #[serde(default, deserialize_with = "page_size")]
        limit: Option<u32>,
        #[serde(default, deserialize_with = "time")]
        since: Option<DateTime<Utc>>,
        #[serde(default, deserialize_with = "timeline_cursor")]
        cursor: Option<TimelineCursor>,
    }

    fn status<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
        one_of(deserializer, &["open", "done"])
    }

    fn refused(query: &str) -> (String, String) {
        match super::query::<Sample>(query) {
            Err(ApiError::InvalidParameter { field, message }) => (field, message),
            other => panic!("expected an invalid parameter, got {other:?}"),
        }
    }

    #[test]
    fn parameters_deserialise_and_the_last_of_a_repeated_one_counts() {
        let sample: Sample =
            query("name=a+b%21&limit=5&limit=7&since=2026-01-01T00:00:00Z&status=done")
                .expect("valid");
        assert_eq!(sample.name.as_deref(), Some("a b!"));
        assert_eq!(sample.limit, Some(7));
        assert_eq!(page(sample.limit), 7);
        assert_eq!(sample.status.as_deref(), Some("done"));
        assert!(sample.since.is_some());
        let empty: Sample = query("").expect("nothing given");
        assert!(empty.name.is_none() && empty.cursor.is_none());
        assert_eq!(page(empty.limit), DEFAULT_PAGE);
    }

    #[test]
    fn refusals_name_the_parameter_and_say_what_is_wrong() {
        assert_eq!(
            refused("name=x&colour=red"),
            (
                "colour".to_owned(),
                "unknown parameter; expected name, status, limit, since or cursor".to_owned()
            )
        );
        assert_eq!(
            refused("limit=0"),
            (
                "limit".to_owned(),
                "must be a whole number from 1 to 200".to_owned()
            )
        );
        assert_eq!(refused("limit=201").0, "limit");
        assert_eq!(refused("limit=ten").0, "limit");
        assert_eq!(
            refused("status=later"),
            ("status".to_owned(), "one of open, done".to_owned())
        );
        assert_eq!(
            refused("since=tomorrow"),
            (
                "since".to_owned(),
                "must be an RFC 3339 timestamp such as 2026-11-23T10:00:00Z".to_owned()
            )
        );
        assert_eq!(
            refused("cursor=xyz"),
            (
                "cursor".to_owned(),
                "not a cursor this API handed out".to_owned()
            )
        );
    }
}
