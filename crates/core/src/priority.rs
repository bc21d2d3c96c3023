//! The priority tier of a customer, from a configurable rule over the
//! customer's traits (the latest `customer.*` event attributes), so service
//! can be differentiated: e.g. `high:customer.tier=gold|platinum` (the
//! attribute's text, without regard to case) or, typed,
//! `high:trait.lifetime_value>=1000` (see [`crate::traits`]).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::traits::{self, TraitValue};

/// Ordered rules: the first whose condition holds gives the tier; none
/// holding gives the default tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityRules {
    rules: Vec<PriorityRule>,
    default_tier: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PriorityRule {
    tier: String,
    condition: Condition,
}

/// What a rule tests.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// `attribute=value|value`: the attribute's text is one of the values
    /// (lower-cased), trimmed and without regard to case.
    Attribute {
        attribute: String,
        values: Vec<String>,
    },
    /// `trait.name` with an operator: the trait `name` (attribute
    /// `customer.name`), compared by type.
    Trait {
        name: String,
        /// The attribute key: `customer.` and the name.
        key: String,
        test: TraitTest,
    },
}

/// A test of a trait's value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TraitTest {
    /// `=` (`!=` when negated) one of the values: numbers, booleans and
    /// times compare as such when both sides have the type, anything else
    /// as trimmed text without regard to case.
    Equals { values: Vec<String>, negated: bool },
    /// `>`, `>=`, `<`, `<=` a number or a time: holds only when the trait
    /// has the bound's type.
    Compare {
        operator: Operator,
        bound: Bound,
        text: String,
    },
}

/// An ordering operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

impl Operator {
    fn as_str(self) -> &'static str {
        match self {
            Operator::Greater => ">",
            Operator::GreaterOrEqual => ">=",
            Operator::Less => "<",
            Operator::LessOrEqual => "<=",
        }
    }

    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Operator::Greater => ordering == Ordering::Greater,
            Operator::GreaterOrEqual => ordering != Ordering::Less,
            Operator::Less => ordering == Ordering::Less,
            Operator::LessOrEqual => ordering != Ordering::Greater,
        }
    }
}

/// What an ordering operator compares with.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Bound {
    /// A finite number.
    Number(f64),
    Timestamp(DateTime<Utc>),
}

// Bounds are finite numbers (see `traits::json_number`): equality is total.
impl Eq for Bound {}

impl Default for PriorityRules {
    /// No rules: every customer is `normal`.
    fn default() -> Self {
        PriorityRules {
            rules: Vec::new(),
            default_tier: "normal".to_owned(),
        }
    }
}

impl PriorityRules {
    /// Parses `tier:condition,...`, with an optional final `default=tier`
    /// entry (`normal` otherwise). A condition is `attribute=value|value`
    /// (the attribute's text, without regard to case), or a trait test:
    /// `trait.name=value|value`, `trait.name!=value|value`, or
    /// `trait.name` with `>`, `>=`, `<`, `<=` and a number or an RFC 3339
    /// time.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut rules = PriorityRules::default();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Some(tier) = entry.strip_prefix("default=") {
                rules.default_tier = tier_name(entry, tier)?;
                continue;
            }
            let (tier, condition) = entry
                .split_once(':')
                .ok_or_else(|| format!("{entry:?}: expected tier:attribute=value"))?;
            let condition = match condition.trim_start().strip_prefix("trait.") {
                Some(test) => trait_condition(entry, test)?,
                None => attribute_condition(entry, condition)?,
            };
            rules.rules.push(PriorityRule {
                tier: tier_name(entry, tier)?,
                condition,
            });
        }
        Ok(rules)
    }

    /// The tier for a customer with these attributes (`customer.*` keys
    /// with their latest text).
    pub fn tier(&self, attributes: &BTreeMap<String, String>) -> &str {
        self.rules
            .iter()
            .find(|rule| rule.condition.holds(attributes))
            .map_or(&self.default_tier, |rule| &rule.tier)
    }
}

impl Condition {
    fn holds(&self, attributes: &BTreeMap<String, String>) -> bool {
        match self {
            Condition::Attribute { attribute, values } => attributes
                .get(attribute)
                .is_some_and(|value| values.contains(&value.trim().to_lowercase())),
            Condition::Trait { key, test, .. } => attributes
                .get(key)
                .is_some_and(|value| test.holds(&TraitValue::recognise(value))),
        }
    }
}

impl TraitTest {
    fn holds(&self, value: &TraitValue) -> bool {
        match self {
            TraitTest::Equals { values, negated } => {
                values.iter().any(|expected| equals(value, expected)) != *negated
            }
            TraitTest::Compare {
                operator, bound, ..
            } => {
                let ordering = match (value, bound) {
                    (TraitValue::Number(value), Bound::Number(bound)) => value.partial_cmp(bound),
                    (TraitValue::Timestamp(value), Bound::Timestamp(bound)) => {
                        Some(value.cmp(bound))
                    }
                    _ => None,
                };
                ordering.is_some_and(|ordering| operator.holds(ordering))
            }
        }
    }
}

/// Whether a trait's value equals a rule's value: by type when both have
/// the same one, else as trimmed text without regard to case.
fn equals(value: &TraitValue, expected: &str) -> bool {
    match (value, TraitValue::recognise(expected)) {
        (TraitValue::Number(a), TraitValue::Number(b)) => *a == b,
        (TraitValue::Boolean(a), TraitValue::Boolean(b)) => *a == b,
        (TraitValue::Timestamp(a), TraitValue::Timestamp(b)) => *a == b,
        (TraitValue::String(text), _) => text.trim().to_lowercase() == expected.to_lowercase(),
        (typed, _) => {
            let text = match typed.to_json() {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            };
            text.to_lowercase() == expected.to_lowercase()
        }
    }
}

/// `attribute=value|value`.
fn attribute_condition(entry: &str, condition: &str) -> Result<Condition, String> {
    let (attribute, values) = condition
        .split_once('=')
        .ok_or_else(|| format!("{entry:?}: expected tier:attribute=value"))?;
    let attribute = attribute.trim();
    if attribute.is_empty() {
        return Err(format!("{entry:?}: the attribute is empty"));
    }
    let values: Vec<String> = values
        .split('|')
        .map(|value| value.trim().to_lowercase())
        .filter(|value| !value.is_empty())
        .collect();
    if values.is_empty() {
        return Err(format!("{entry:?}: no value to match"));
    }
    Ok(Condition::Attribute {
        attribute: attribute.to_owned(),
        values,
    })
}

/// `name<operator>value`, after `trait.`.
fn trait_condition(entry: &str, test: &str) -> Result<Condition, String> {
    let expected = || format!("{entry:?}: expected trait.name=value, !=, >, >=, < or <=");
    let at = test.find(['=', '!', '<', '>']).ok_or_else(expected)?;
    let name = test[..at].trim();
    if name.is_empty() {
        return Err(format!("{entry:?}: the trait is empty"));
    }
    let rest = &test[at..];
    let (operator, value) = [">=", "<=", "!=", "=", ">", "<"]
        .iter()
        .find_map(|operator| Some((*operator, rest.strip_prefix(operator)?)))
        .ok_or_else(expected)?;
    let test = match operator {
        "=" | "!=" => {
            let values: Vec<String> = value
                .split('|')
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
                .collect();
            if values.is_empty() {
                return Err(format!("{entry:?}: no value to match"));
            }
            TraitTest::Equals {
                values,
                negated: operator == "!=",
            }
        }
        _ => {
            let operator = match operator {
                ">" => Operator::Greater,
                ">=" => Operator::GreaterOrEqual,
                "<" => Operator::Less,
                _ => Operator::LessOrEqual,
            };
            let text = value.trim();
            let bound = traits::json_number(text)
                .map(Bound::Number)
                .or_else(|| traits::timestamp(text).map(Bound::Timestamp))
                .ok_or_else(|| format!("{entry:?}: compare with a number or an RFC 3339 time"))?;
            TraitTest::Compare {
                operator,
                bound,
                text: text.to_owned(),
            }
        }
    };
    Ok(Condition::Trait {
        name: name.to_owned(),
        key: format!("{}{name}", traits::PREFIX),
        test,
    })
}

/// The rules as the spec [`PriorityRules::parse`] reads back: empty for the
/// defaults, `default=tier` only when the default tier is not `normal`.
impl std::fmt::Display for PriorityRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut entries: Vec<String> = self
            .rules
            .iter()
            .map(|rule| format!("{}:{}", rule.tier, rule.condition))
            .collect();
        if self.default_tier != PriorityRules::default().default_tier {
            entries.push(format!("default={}", self.default_tier));
        }
        f.write_str(&entries.join(","))
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Condition::Attribute { attribute, values } => {
                write!(f, "{attribute}={}", values.join("|"))
            }
            Condition::Trait { name, test, .. } => match test {
                TraitTest::Equals { values, negated } => {
                    let operator = if *negated { "!=" } else { "=" };
                    write!(f, "trait.{name}{operator}{}", values.join("|"))
                }
                TraitTest::Compare { operator, text, .. } => {
                    write!(f, "trait.{name}{}{text}", operator.as_str())
                }
            },
        }
    }
}

fn tier_name(entry: &str, tier: &str) -> Result<String, String> {
    let tier = tier.trim();
    if tier.is_empty()
        || !tier
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!("{entry:?}: a tier is a word such as high"));
    }
    Ok(tier.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn attributes(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn rules_print_as_a_spec_that_reads_back() {
        assert_eq!(PriorityRules::default().to_string(), "");
        for spec in [
            "high:customer.tier=gold|platinum",
            "vip:customer.segment=vip,high:customer.tier=gold,default=low",
            "high:trait.tier=Gold|platinum,vip:trait.lifetime_value>=1000,low:trait.churned!=false",
            "late:trait.last_order<2024-01-01T00:00:00Z,x:trait.a>-1.5,y:trait.b<=0",
        ] {
            let rules = PriorityRules::parse(spec).expect("valid");
            assert_eq!(rules.to_string(), spec);
            assert_eq!(PriorityRules::parse(&rules.to_string()), Ok(rules));
        }
    }

    #[test]
    fn the_first_matching_rule_gives_the_tier() {
        let rules = PriorityRules::parse(
            "high:customer.tier=Gold|platinum, low:customer.tier=basic, high:customer.vip=yes, default=standard",
        )
        .expect("valid");
        assert_eq!(
            rules.tier(&attributes(&[("customer.tier", "gold")])),
            "high"
        );
        assert_eq!(
            rules.tier(&attributes(&[("customer.tier", " PLATINUM ")])),
            "high"
        );
        assert_eq!(
            rules.tier(&attributes(&[("customer.tier", "basic")])),
            "low"
        );
        assert_eq!(
            rules.tier(&attributes(&[
                ("customer.tier", "basic"),
                ("customer.vip", "yes")
            ])),
            "low",
            "rules apply in order"
        );
        assert_eq!(rules.tier(&attributes(&[])), "standard");
        assert_eq!(PriorityRules::default().tier(&attributes(&[])), "normal");
        assert_eq!(PriorityRules::parse(""), Ok(PriorityRules::default()));
    }

    #[test]
    fn trait_rules_compare_by_type() {
        let rules = PriorityRules::parse(
            "vip:trait.lifetime_value>=1000, gold:trait.tier=Gold, \
             new:trait.signed_up>2024-01-01T00:00:00+01:00, flagged:trait.vip=true, \
             exact:trait.orders=1e1, other:trait.region!=eu|us",
        )
        .expect("valid");
        let tier_of = |pairs: &[(&str, &str)]| rules.tier(&attributes(pairs)).to_owned();
        assert_eq!(tier_of(&[("customer.lifetime_value", "1000")]), "vip");
        assert_eq!(tier_of(&[("customer.lifetime_value", "1e4")]), "vip");
        assert_eq!(
            tier_of(&[("customer.lifetime_value", "999.99")]),
            "normal",
            "numbers compare as numbers"
        );
        assert_eq!(
            tier_of(&[("customer.lifetime_value", "a lot")]),
            "normal",
            "a string is not ordered against a number"
        );
        assert_eq!(tier_of(&[("customer.tier", " gold ")]), "gold");
        assert_eq!(
            tier_of(&[("customer.signed_up", "2024-01-01T00:00:01+01:00")]),
            "new"
        );
        assert_eq!(
            tier_of(&[("customer.signed_up", "2023-12-31T23:00:00Z")]),
            "normal",
            "the same instant is not later"
        );
        assert_eq!(tier_of(&[("customer.vip", "true")]), "flagged");
        assert_eq!(tier_of(&[("customer.vip", "yes")]), "normal");
        assert_eq!(tier_of(&[("customer.orders", "10")]), "exact");
        assert_eq!(tier_of(&[("customer.region", "EU")]), "normal");
        assert_eq!(tier_of(&[("customer.region", "apac")]), "other");
        assert_eq!(tier_of(&[]), "normal", "!= needs the trait");
        assert_eq!(
            tier_of(&[("lifetime_value", "5000")]),
            "normal",
            "a trait is a customer.* attribute"
        );
    }

    #[test]
    fn bad_rules_say_which_entry() {
        for bad in [
            "high",
            "high:tier",
            ":tier=gold",
            "high:=gold",
            "high:tier=",
            "h i:tier=x",
            "default=",
            "high:trait.tier",
            "high:trait.=gold",
            "high:trait.tier=",
            "high:trait.tier!gold",
            "high:trait.ltv>=many",
            "high:trait.ltv>1|2",
            "high:trait.ltv<",
        ] {
            let error = PriorityRules::parse(bad).expect_err(bad);
            assert!(error.contains(bad.trim()), "{bad}: {error}");
        }
    }

    /// Rule-like text: tiers, `trait.` and `customer.` names, operators
    /// and values, mixed with any text.
    fn rule_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("high:".to_owned()),
            Just("trait.".to_owned()),
            Just("customer.tier".to_owned()),
            Just("default=".to_owned()),
            Just(",".to_owned()),
            Just("|".to_owned()),
            Just("=".to_owned()),
            Just("!=".to_owned()),
            Just(">=".to_owned()),
            Just("<".to_owned()),
            Just("1000".to_owned()),
            Just("2024-01-01T00:00:00Z".to_owned()),
            any::<String>(),
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        /// Any spec, over all of Unicode: parsing never panics, a parsed
        /// spec prints as one that reads back the same, and any attributes
        /// give a tier.
        #[test]
        fn any_spec_parses_or_is_refused_and_reads_back(
            spec in prop_oneof![any::<String>(), rule_text()],
            value in any::<String>(),
        ) {
            if let Ok(rules) = PriorityRules::parse(&spec) {
                prop_assert_eq!(PriorityRules::parse(&rules.to_string()), Ok(rules.clone()));
                let attributes = attributes(&[
                    ("customer.tier", &value),
                    ("customer.", &value),
                ]);
                let _ = rules.tier(&attributes);
            }
        }
    }
}
