//! The priority tier of a customer, from a configurable rule over the
//! customer's attributes (the latest `customer.*` event attributes), so
//! service can be differentiated: e.g. `high:customer.tier=gold|platinum`.

use std::collections::BTreeMap;

/// Ordered rules: the first whose attribute has one of its values gives the
/// tier; none matching gives the default tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityRules {
    rules: Vec<PriorityRule>,
    default_tier: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PriorityRule {
    tier: String,
    attribute: String,
    values: Vec<String>,
}

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
    /// Parses `tier:attribute=value|value,...`, with an optional final
    /// `default=tier` entry (`normal` otherwise). Values compare without
    /// regard to case.
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
            rules.rules.push(PriorityRule {
                tier: tier_name(entry, tier)?,
                attribute: attribute.to_owned(),
                values,
            });
        }
        Ok(rules)
    }

    /// The tier for a customer with these attributes.
    pub fn tier(&self, attributes: &BTreeMap<String, String>) -> &str {
        self.rules
            .iter()
            .find(|rule| {
                attributes
                    .get(&rule.attribute)
                    .is_some_and(|value| rule.values.contains(&value.trim().to_lowercase()))
            })
            .map_or(&self.default_tier, |rule| &rule.tier)
    }
}

/// The rules as the spec [`PriorityRules::parse`] reads back: empty for the
/// defaults, `default=tier` only when the default tier is not `normal`.
impl std::fmt::Display for PriorityRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut entries: Vec<String> = self
            .rules
            .iter()
            .map(|rule| format!("{}:{}={}", rule.tier, rule.attribute, rule.values.join("|")))
            .collect();
        if self.default_tier != PriorityRules::default().default_tier {
            entries.push(format!("default={}", self.default_tier));
        }
        f.write_str(&entries.join(","))
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
    fn bad_rules_say_which_entry() {
        for bad in [
            "high",
            "high:tier",
            ":tier=gold",
            "high:=gold",
            "high:tier=",
            "h i:tier=x",
            "default=",
        ] {
            let error = PriorityRules::parse(bad).expect_err(bad);
            assert!(error.contains(bad.trim()), "{bad}: {error}");
        }
    }
}
