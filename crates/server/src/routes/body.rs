//! Small JSON request bodies of the agent API, read field by field so every
//! problem names the field at fault.

use actix_web::{HttpRequest, web};
use chrono::{DateTime, Utc};
use panorama_core::{FieldError, Identifier, IdentifierKind, Region};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::ApiError;
use crate::payload::{read_body, require_json};

/// Largest body of an agent request.
const MAX_BODY: usize = 64 * 1024;

/// A JSON object body; unknown fields are refused by [`JsonBody::finish`].
#[derive(Debug)]
pub(crate) struct JsonBody {
    fields: Map<String, Value>,
    known: Vec<&'static str>,
}

/// A 422 naming `field`: a body field that is missing, of the wrong type or
/// out of range.
pub(crate) fn invalid_field(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Validation(FieldError {
        field: field.to_owned(),
        message: message.into(),
    })
}

impl JsonBody {
    /// Reads the request body as a JSON object.
    pub(crate) async fn read(
        request: &HttpRequest,
        payload: web::Payload,
    ) -> Result<Self, ApiError> {
        require_json(request)?;
        let body = read_body(payload, MAX_BODY).await?;
        Self::parse(&body)
    }

    fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
        match value {
            Value::Object(fields) => Ok(JsonBody {
                fields,
                known: Vec::new(),
            }),
            _ => Err(invalid_field("$", "expected a JSON object")),
        }
    }

    /// A required UUID field.
    pub(crate) fn uuid(&mut self, name: &'static str) -> Result<Uuid, ApiError> {
        self.optional_uuid(name)?
            .ok_or_else(|| invalid_field(name, "required"))
    }

    /// An optional UUID field.
    pub(crate) fn optional_uuid(&mut self, name: &'static str) -> Result<Option<Uuid>, ApiError> {
        self.known.push(name);
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Uuid::parse_str(text)
                .map(Some)
                .map_err(|_| invalid_field(name, "must be a UUID")),
            Some(_) => Err(invalid_field(name, "must be a UUID string")),
        }
    }

    /// An optional non-blank text field of at most `max` characters,
    /// trimmed.
    pub(crate) fn optional_text(
        &mut self,
        name: &'static str,
        max: usize,
    ) -> Result<Option<String>, ApiError> {
        self.known.push(name);
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => {
                let text = text.trim();
                if text.is_empty() {
                    Err(invalid_field(name, "must not be blank"))
                } else if text.chars().count() > max {
                    Err(invalid_field(name, format!("at most {max} characters")))
                } else {
                    Ok(Some(text.to_owned()))
                }
            }
            Some(_) => Err(invalid_field(name, "must be a string")),
        }
    }

    /// A required non-blank text field of at most `max` characters.
    pub(crate) fn text(&mut self, name: &'static str, max: usize) -> Result<String, ApiError> {
        self.optional_text(name, max)?
            .ok_or_else(|| invalid_field(name, "required"))
    }

    /// A required array of 1 to `max_items` strings, each non-blank and
    /// of at most `max` characters; a problem names the element
    /// (`types[2]`).
    pub(crate) fn text_list(
        &mut self,
        name: &'static str,
        max_items: usize,
        max: usize,
    ) -> Result<Vec<String>, ApiError> {
        self.known.push(name);
        let items = match self.fields.get(name) {
            None | Some(Value::Null) => return Err(invalid_field(name, "required")),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(invalid_field(name, "must be an array of strings")),
        };
        if items.is_empty() || items.len() > max_items {
            return Err(invalid_field(name, format!("1 to {max_items} items")));
        }
        items
            .iter()
            .enumerate()
            .map(|(index, item)| match item {
                Value::String(text) if !text.trim().is_empty() && text.chars().count() <= max => {
                    Ok(text.trim().to_owned())
                }
                _ => Err(invalid_field(
                    &format!("{name}[{index}]"),
                    format!("must be a non-blank string of at most {max} characters"),
                )),
            })
            .collect()
    }

    /// An optional RFC 3339 time.
    pub(crate) fn optional_time(
        &mut self,
        name: &'static str,
    ) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.optional_text(name, 64)?
            .map(|text| {
                DateTime::parse_from_rfc3339(&text)
                    .map(|at| at.with_timezone(&Utc))
                    .map_err(|_| {
                        invalid_field(
                            name,
                            "must be an RFC 3339 time such as 2026-11-23T10:00:00Z",
                        )
                    })
            })
            .transpose()
    }

    /// A required whole number.
    pub(crate) fn integer(&mut self, name: &'static str) -> Result<i64, ApiError> {
        self.known.push(name);
        match self.fields.get(name) {
            None | Some(Value::Null) => Err(invalid_field(name, "required")),
            Some(value) => value
                .as_i64()
                .ok_or_else(|| invalid_field(name, "must be a whole number")),
        }
    }

    /// A required `true` or `false`.
    pub(crate) fn boolean(&mut self, name: &'static str) -> Result<bool, ApiError> {
        self.known.push(name);
        match self.fields.get(name) {
            None | Some(Value::Null) => Err(invalid_field(name, "required")),
            Some(value) => value
                .as_bool()
                .ok_or_else(|| invalid_field(name, "must be true or false")),
        }
    }

    /// A required identifier object, `{"kind": "phone", "value": "..."}`,
    /// normalised as events' identifiers are. Problems name
    /// `<name>.kind` or `<name>.value`.
    pub(crate) fn identifier(
        &mut self,
        name: &'static str,
        default_region: Option<Region>,
    ) -> Result<Identifier, ApiError> {
        self.known.push(name);
        let object = match self.fields.get(name) {
            None | Some(Value::Null) => return Err(invalid_field(name, "required")),
            Some(Value::Object(object)) => object,
            Some(_) => {
                return Err(invalid_field(
                    name,
                    "must be an object such as {\"kind\": \"phone\", \"value\": \"+31612345678\"}",
                ));
            }
        };
        let member = |member: &str| match object.get(member) {
            Some(Value::String(text)) if !text.trim().is_empty() => Ok(text.trim()),
            Some(Value::String(_)) => Err(invalid_field(
                &format!("{name}.{member}"),
                "must not be blank",
            )),
            None | Some(Value::Null) => Err(invalid_field(&format!("{name}.{member}"), "required")),
            Some(_) => Err(invalid_field(
                &format!("{name}.{member}"),
                "must be a string",
            )),
        };
        let kind = member("kind")?;
        let kind = kind
            .parse::<IdentifierKind>()
            .map_err(|error| invalid_field(&format!("{name}.kind"), error.to_string()))?;
        let value = member("value")?;
        if let Some(unknown) = object
            .keys()
            .find(|key| !["kind", "value"].contains(&key.as_str()))
        {
            return Err(invalid_field(
                &format!("{name}.{unknown}"),
                "unknown field; expected kind, value",
            ));
        }
        Identifier::parse(kind, value, default_region)
            .map_err(|error| invalid_field(&format!("{name}.value"), error.to_string()))
    }

    /// Refuses fields no accessor asked for: a misspelt field is an error,
    /// not silently ignored.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        match self
            .fields
            .keys()
            .find(|key| !self.known.contains(&key.as_str()))
        {
            Some(unknown) => Err(invalid_field(
                unknown,
                format!("unknown field; expected {}", self.known.join(", ")),
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(error: ApiError) -> String {
        match error {
            ApiError::Validation(error) => error.field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn fields_are_read_and_problems_name_them() {
        let id = Uuid::now_v7();
        let mut body =
            JsonBody::parse(format!(r#"{{"other":"{id}","reason":"  same person "}}"#).as_bytes())
                .expect("object");
        assert_eq!(body.uuid("other").expect("uuid"), id);
        assert_eq!(
            body.optional_text("reason", 20).expect("text").as_deref(),
            Some("same person")
        );
        body.finish().expect("no unknown fields");

        let mut body = JsonBody::parse(br#"{"other":"nope"}"#).expect("object");
        assert_eq!(field_of(body.uuid("other").expect_err("bad")), "other");
        let mut body = JsonBody::parse(br#"{}"#).expect("object");
        assert_eq!(field_of(body.uuid("other").expect_err("missing")), "other");
        let mut body = JsonBody::parse(br#"{"reason":"   "}"#).expect("object");
        assert_eq!(
            field_of(body.optional_text("reason", 5).expect_err("blank")),
            "reason"
        );
        let mut body = JsonBody::parse(br#"{"othr":"x"}"#).expect("object");
        body.optional_uuid("other").expect("absent is fine");
        assert_eq!(field_of(body.finish().expect_err("unknown")), "othr");
        assert_eq!(field_of(JsonBody::parse(b"[1]").expect_err("array")), "$");

        let mut body =
            JsonBody::parse(br#"{"identifier":{"kind":"email","value":" Ann@Example.COM "}}"#)
                .expect("object");
        let identifier = body.identifier("identifier", None).expect("identifier");
        assert_eq!(identifier.value(), "ann@example.com");
        for (raw, field) in [
            (&br#"{}"#[..], "identifier"),
            (br#"{"identifier":"+31612345678"}"#, "identifier"),
            (br#"{"identifier":{"value":"x"}}"#, "identifier.kind"),
            (
                br#"{"identifier":{"kind":"fax","value":"x"}}"#,
                "identifier.kind",
            ),
            (br#"{"identifier":{"kind":"phone"}}"#, "identifier.value"),
            (
                br#"{"identifier":{"kind":"phone","value":"not a number"}}"#,
                "identifier.value",
            ),
            (
                br#"{"identifier":{"kind":"phone","value":"+31612345678","x":1}}"#,
                "identifier.x",
            ),
        ] {
            let mut body = JsonBody::parse(raw).expect("object");
            let error = body.identifier("identifier", None).expect_err("refused");
            assert_eq!(field_of(error), field, "{}", String::from_utf8_lossy(raw));
        }
        assert!(matches!(
            JsonBody::parse(b"{").expect_err("malformed"),
            ApiError::MalformedJson(_)
        ));
    }

    #[test]
    fn booleans_are_true_or_false() {
        let mut body = JsonBody::parse(br#"{"granted":false}"#).expect("object");
        assert!(!body.boolean("granted").expect("a boolean"));
        for raw in [
            &br#"{}"#[..],
            br#"{"granted":null}"#,
            br#"{"granted":"no"}"#,
            br#"{"granted":0}"#,
        ] {
            let mut body = JsonBody::parse(raw).expect("object");
            let error = body.boolean("granted").expect_err("refused");
            assert_eq!(
                field_of(error),
                "granted",
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
