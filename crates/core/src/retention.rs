//! Retention rules: how long an event keeps its personal fields, by
//! channel or event type (`[privacy] retention`, README "Retention").
//!
//! A spec is a comma-separated list of `pattern=age`, read in order, the
//! first matching rule winning: `chat=90d,web=90d,call.*=730d,*=off`.
//!
//! - `pattern`: a channel (`chat`), an event type (`call.ended`), a type
//!   family (`call.*`: every type starting with `call.`) or `*` (anything).
//!   Names must be channels or types of the event contract, and a family
//!   must cover at least one type, so that a typo cannot keep data forever
//!   without anyone noticing.
//! - `age`: whole days (`90d`) or hours (`36h`), at least one hour and at
//!   most a hundred years; `off` keeps the events that match forever (and
//!   shields them from the rules after it).
//!
//! An event no rule matches is kept forever: the empty spec (the default)
//! anonymises nothing.

use std::fmt;
use std::time::Duration;

use crate::{Channel, EventType};

/// The longest age a rule may give, in hours: a hundred years.
const MAX_HOURS: u64 = 100 * 366 * 24;

/// Which events a rule is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetentionPattern {
    /// `*`: every event.
    Any,
    /// A channel name or an event type, matched exactly against both.
    Name(String),
    /// `family.*`: every event type starting with `family.` (the field
    /// holds `family.`, dot included).
    Prefix(String),
}

impl RetentionPattern {
    /// Whether an event on `channel` of type `event_type` matches.
    pub fn matches(&self, channel: &str, event_type: &str) -> bool {
        match self {
            RetentionPattern::Any => true,
            RetentionPattern::Name(name) => name == channel || name == event_type,
            RetentionPattern::Prefix(prefix) => event_type.starts_with(prefix.as_str()),
        }
    }
}

impl fmt::Display for RetentionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetentionPattern::Any => f.write_str("*"),
            RetentionPattern::Name(name) => f.write_str(name),
            RetentionPattern::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

/// One rule: the events it is about and how long they keep their
/// personal fields (`None`: forever).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionRule {
    /// Which events.
    pub pattern: RetentionPattern,
    /// How long, in hours; `None` for `off`.
    hours: Option<u64>,
}

impl RetentionRule {
    /// How long matching events keep their personal fields; `None`: forever.
    pub fn age(&self) -> Option<Duration> {
        self.hours.map(|hours| Duration::from_secs(hours * 3600))
    }
}

impl fmt::Display for RetentionRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.hours {
            None => write!(f, "{}=off", self.pattern),
            Some(hours) if hours % 24 == 0 => write!(f, "{}={}d", self.pattern, hours / 24),
            Some(hours) => write!(f, "{}={hours}h", self.pattern),
        }
    }
}

/// The retention rules, in the order they are tried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionRules {
    rules: Vec<RetentionRule>,
}

impl RetentionRules {
    /// Reads a spec (see the module documentation); the error names the
    /// rule at fault and what is wrong with it.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (pattern, age) = entry
                .split_once('=')
                .ok_or_else(|| format!("rule {entry:?}: expected pattern=age, e.g. chat=90d"))?;
            let pattern = parse_pattern(entry, pattern.trim())?;
            let hours = parse_age(entry, age.trim())?;
            rules.push(RetentionRule { pattern, hours });
        }
        Ok(RetentionRules { rules })
    }

    /// The rules, first match first.
    pub fn rules(&self) -> &[RetentionRule] {
        &self.rules
    }

    /// Whether no rule ever anonymises anything.
    pub fn is_off(&self) -> bool {
        self.rules.iter().all(|rule| rule.hours.is_none())
    }

    /// The age after which an event on `channel` of type `event_type`
    /// loses its personal fields: the first matching rule's; `None` when
    /// it is kept forever.
    pub fn age_of(&self, channel: &str, event_type: &str) -> Option<Duration> {
        self.rules
            .iter()
            .find(|rule| rule.pattern.matches(channel, event_type))
            .and_then(RetentionRule::age)
    }
}

impl fmt::Display for RetentionRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: Vec<String> = self.rules.iter().map(ToString::to_string).collect();
        f.write_str(&entries.join(","))
    }
}

fn parse_pattern(entry: &str, pattern: &str) -> Result<RetentionPattern, String> {
    let pattern = pattern.to_ascii_lowercase();
    if pattern == "*" {
        return Ok(RetentionPattern::Any);
    }
    if let Some(family) = pattern.strip_suffix(".*") {
        let prefix = format!("{family}.");
        let covers = EventType::ALL
            .iter()
            .any(|event_type| event_type.as_str().starts_with(&prefix));
        if family.is_empty() || !covers {
            return Err(format!(
                "rule {entry:?}: {pattern:?} covers no event type (e.g. call.*)"
            ));
        }
        return Ok(RetentionPattern::Prefix(prefix));
    }
    let known = Channel::ALL
        .iter()
        .any(|channel| channel.as_str() == pattern)
        || EventType::ALL
            .iter()
            .any(|event_type| event_type.as_str() == pattern);
    if !known {
        return Err(format!(
            "rule {entry:?}: {pattern:?} is neither a channel nor an event type \
             (use a channel such as chat, a type such as call.ended, a family such as call.*, or *)"
        ));
    }
    Ok(RetentionPattern::Name(pattern))
}

fn parse_age(entry: &str, age: &str) -> Result<Option<u64>, String> {
    if age.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let invalid =
        || format!("rule {entry:?}: the age must be days (90d), hours (36h) or off, got {age:?}");
    let (number, unit_hours) = if let Some(days) = age.strip_suffix(['d', 'D']) {
        (days, 24)
    } else if let Some(hours) = age.strip_suffix(['h', 'H']) {
        (hours, 1)
    } else {
        return Err(invalid());
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let hours = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_hours))
        .filter(|hours| *hours <= MAX_HOURS)
        .ok_or_else(|| format!("rule {entry:?}: the age is longer than a hundred years"))?;
    if hours == 0 {
        return Err(format!(
            "rule {entry:?}: the age must be at least 1h (use off to keep forever)"
        ));
    }
    Ok(Some(hours))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 3600;

    #[test]
    fn first_matching_rule_wins() {
        let rules = RetentionRules::parse("chat=90d, web=90d,call.*=730d,email.sent=off,*=36h")
            .expect("valid");
        let days = |channel: &str, event_type: &str| {
            rules
                .age_of(channel, event_type)
                .map(|age| age.as_secs() / 3600)
        };
        assert_eq!(days("chat", "message.received"), Some(90 * 24));
        assert_eq!(days("phone", "call.ended"), Some(730 * 24));
        // A channel rule comes first: a chat transcript ending a call-like
        // type still follows chat.
        assert_eq!(days("chat", "chat.ended"), Some(90 * 24));
        assert_eq!(days("email", "email.sent"), None);
        assert_eq!(days("email", "email.received"), Some(36));
        assert!(!rules.is_off());
    }

    #[test]
    fn empty_spec_keeps_everything() {
        let rules = RetentionRules::parse("").expect("valid");
        assert!(rules.rules().is_empty());
        assert!(rules.is_off());
        assert_eq!(rules.age_of("chat", "message.received"), None);
        assert!(RetentionRules::parse("*=off").expect("valid").is_off());
    }

    #[test]
    fn display_reads_back_the_same_rules() {
        let spec = "chat=90d,call.*=730d,email.received=36h,*=off";
        let rules = RetentionRules::parse(spec).expect("valid");
        assert_eq!(rules.to_string(), spec);
        assert_eq!(RetentionRules::parse(&rules.to_string()), Ok(rules));
        assert_eq!(
            RetentionRules::parse("CHAT=48H")
                .expect("valid")
                .to_string(),
            "chat=2d"
        );
        assert_eq!(
            RetentionRules::parse("chat=1d").expect("valid").rules()[0].age(),
            Some(Duration::from_secs(DAY))
        );
    }

    #[test]
    fn errors_name_the_rule() {
        for (spec, rule) in [
            ("chat", "chat"),
            ("chta=90d", "chta=90d"),
            ("chat=90", "chat=90"),
            ("chat=0d", "chat=0d"),
            ("chat=-1d", "chat=-1d"),
            ("chat=99999999999999999999d", "chat=99999999999999999999d"),
            ("chat=40000d", "chat=40000d"),
            ("nope.*=1d", "nope.*=1d"),
            (".*=1d", ".*=1d"),
            ("chat=90d,=1d", "=1d"),
            ("chat=d", "chat=d"),
            ("chat=1w", "chat=1w"),
        ] {
            let error = RetentionRules::parse(spec).expect_err(spec);
            assert!(
                error.contains(&format!("{rule:?}")),
                "{spec}: {error} does not name {rule:?}"
            );
        }
    }

    #[test]
    fn unicode_garbage_is_refused_without_panicking() {
        for spec in [
            "ч=90d",
            "chat=９０d",
            "chat=90ｄ",
            "💬=1d",
            "chat=1d\u{0}",
            "call.\u{301}*=1d",
            "*=\u{FEFF}off",
            "é=é",
            "chat=1ḑ",
            "\u{202E}chat=1d",
        ] {
            let error = RetentionRules::parse(spec).expect_err(spec);
            assert!(error.starts_with("rule "), "{spec}: {error}");
        }
    }
}
