//! `application/x-www-form-urlencoded` bodies, as Twilio and Mailgun post
//! them: an ordered list of name/value pairs.

use crate::{ChannelError, Result};

/// Decoded form parameters, in body order (names may repeat).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    /// Parses a form body; invalid UTF-8 is refused (providers send UTF-8).
    pub fn parse(body: &[u8]) -> Result<Self> {
        if std::str::from_utf8(body).is_err() {
            return Err(ChannelError::malformed_body("form body is not UTF-8"));
        }
        let pairs = form_urlencoded::parse(body)
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        Ok(Form { pairs })
    }

    /// A form from pairs (multipart bodies, tests).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Form { pairs }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first non-blank value of `name`, or a malformed-payload error
    /// naming it.
    pub fn require(&self, name: &str) -> Result<&str> {
        self.get(name)
            .filter(|value| !value.trim().is_empty())
            .ok_or_else(|| ChannelError::malformed(name, format!("{name} is required")))
    }

    /// Every pair, in body order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_in_order_and_names_missing_fields() {
        let form = Form::parse(b"From=%2B14158675310&To=%2B14155551212&Caller=a+b").expect("form");
        assert_eq!(form.get("From"), Some("+14158675310"));
        assert_eq!(form.get("Caller"), Some("a b"));
        assert_eq!(form.pairs().len(), 3);
        let missing = form.require("CallSid").expect_err("missing");
        assert_eq!(
            missing,
            ChannelError::malformed("CallSid", "CallSid is required")
        );
        assert!(Form::parse(b"\xff\xfe").is_err());
    }
}
