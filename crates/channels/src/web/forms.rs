//! The `form` of a `form.submitted` event (or a chat's pre-chat form): who
//! filled it in, what they asked, and the other fields as attributes.

use panorama_core::EventDraft;
use serde_json::Value;

use super::{Given, MAX_SUBJECT, Person, scalar};
use crate::text::SUMMARY_CHARS;
use crate::{
    ChannelError, MAX_REASON, Result, bounded, json_object, json_path, json_take,
    sensitive_field as sensitive, set_attribute,
};

const FORM_FIELDS: &[&str] = &["id", "fields"];
/// Most form fields accepted.
const MAX_FORM_FIELDS: usize = 100;
/// Most extra form fields kept as attributes.
const MAX_FORM_ATTRIBUTES: usize = 32;

/// A form: its id, the fields Panorama reads, and the rest.
#[derive(Debug, Default)]
pub(super) struct WebForm {
    id: Option<String>,
    subject: Option<String>,
    message: Option<String>,
    extra: Vec<(String, String)>,
}

impl WebForm {
    /// Sets what the form says on `draft`: subject, summary and contact
    /// reason from its `subject` and `message`, and its other fields as
    /// `form.<name>` attributes.
    pub(super) fn fill(&self, draft: &mut EventDraft) {
        draft.subject = self
            .subject
            .as_deref()
            .and_then(|s| bounded(s, MAX_SUBJECT));
        draft.summary = self
            .message
            .as_deref()
            .and_then(|m| bounded(m, SUMMARY_CHARS));
        draft.contact_reason = self.message.as_deref().and_then(|m| bounded(m, MAX_REASON));
        if let Some(id) = &self.id {
            set_attribute(draft, "form.id", id);
        }
        for (name, value) in self.extra.iter().take(MAX_FORM_ATTRIBUTES) {
            set_attribute(draft, &format!("form.{name}"), value);
        }
    }
}

/// Reads a form; its identifying fields fill the gaps in `person`.
pub(super) fn parse_form(value: Value, path: &str, person: &mut Person) -> Result<WebForm> {
    let mut form = json_object(value, path, FORM_FIELDS)?;
    let id = json_take::<String>(&mut form, "id", path)?;
    let fields_path = json_path(path, "fields");
    let fields = match form.remove("fields") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(fields)) => fields,
        Some(_) => {
            return Err(ChannelError::malformed(
                fields_path,
                "must be an object of form fields",
            ));
        }
    };
    if fields.len() > MAX_FORM_FIELDS {
        return Err(ChannelError::malformed(
            fields_path,
            format!("at most {MAX_FORM_FIELDS} fields"),
        ));
    }
    let mut parsed = WebForm {
        id,
        ..WebForm::default()
    };
    let (mut first_name, mut last_name) = (None, None);
    for (name, value) in fields {
        let Some(value) = scalar(value) else {
            return Err(ChannelError::malformed(
                json_path(&fields_path, &name),
                "must be a string, number or boolean",
            ));
        };
        if value.trim().is_empty() {
            continue;
        }
        let identifier = match name.as_str() {
            "email" => Some(&mut person.email),
            "phone" => Some(&mut person.phone),
            "account" => Some(&mut person.account),
            _ => None,
        };
        if let Some(slot) = identifier {
            // The customer object (a logged-in session) wins over what was
            // typed.
            slot.get_or_insert(Given {
                field: json_path(&fields_path, &name),
                value,
            });
            continue;
        }
        let slot = match name.as_str() {
            "name" => &mut person.name,
            "first_name" => &mut first_name,
            "last_name" => &mut last_name,
            "subject" => &mut parsed.subject,
            "message" => &mut parsed.message,
            _ => {
                let key_fits = name.chars().count() <= 58 && !name.chars().any(char::is_control);
                if key_fits && !name.is_empty() && !sensitive(&name) {
                    parsed.extra.push((name, value));
                }
                continue;
            }
        };
        // The customer object (a logged-in session) wins over what was typed.
        slot.get_or_insert(value);
    }
    if person.name.is_none() {
        let full: Vec<String> = [first_name, last_name].into_iter().flatten().collect();
        if !full.is_empty() {
            person.name = Some(full.join(" "));
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_field_names_are_recognised() {
        for name in [
            "password",
            "Password_confirm",
            "cvv",
            "card_number",
            "api_token",
            "pin",
            "IBAN",
        ] {
            assert!(sensitive(name), "{name}");
        }
        for name in ["shipping_method", "order_number", "opinion", "spinach"] {
            assert!(!sensitive(name), "{name}");
        }
    }
}
