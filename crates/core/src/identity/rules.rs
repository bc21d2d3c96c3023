//! Per-kind identity rules: how strongly a kind identifies a person, and how
//! many identifiers of the kind one customer may own.

use serde::{Deserialize, Serialize};

use crate::identifier::IdentifierKind;

/// How strongly an identifier kind identifies a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strength {
    /// Identifies a person: links through it may merge customers.
    Strong,
    /// Identifies a device or a session (a web visitor cookie): it attaches
    /// events, and merges an anonymous profile into a known customer, but
    /// never merges two customers who both have strong identifiers.
    Weak,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KindRule {
    strength: Strength,
    limit: Option<usize>,
}

impl KindRule {
    const fn strong(limit: usize) -> Self {
        KindRule {
            strength: Strength::Strong,
            limit: Some(limit),
        }
    }
}

/// The strength of each identifier kind and how many identifiers of the kind
/// one customer may own (`None`: no limit).
///
/// The defaults: `account` strong, at most 1; `email` and `phone` strong, at
/// most 5; `whatsapp`, `messenger`, `instagram` and `x` strong, at most 3;
/// `visitor` weak, no limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRules {
    kinds: [KindRule; IdentifierKind::ALL.len()],
}

/// The position of `kind` in [`IdentifierKind::ALL`], used to index per-kind
/// tables.
pub(crate) fn slot(kind: IdentifierKind) -> usize {
    kind as usize
}

impl Default for IdentityRules {
    fn default() -> Self {
        IdentityRules {
            kinds: IdentifierKind::ALL.map(|kind| match kind {
                IdentifierKind::Account => KindRule::strong(1),
                IdentifierKind::Phone | IdentifierKind::Email => KindRule::strong(5),
                IdentifierKind::Whatsapp
                | IdentifierKind::Messenger
                | IdentifierKind::Instagram
                | IdentifierKind::X => KindRule::strong(3),
                IdentifierKind::Visitor => KindRule {
                    strength: Strength::Weak,
                    limit: None,
                },
            }),
        }
    }
}

impl IdentityRules {
    /// The default strengths with no limits at all: every link that is not
    /// weak merges. Meant for tests and for replaying history without guards.
    pub fn unlimited() -> Self {
        let mut rules = IdentityRules::default();
        for rule in &mut rules.kinds {
            rule.limit = None;
        }
        rules
    }

    /// These rules with `kind` limited to `limit` identifiers per customer
    /// (`None`: no limit).
    #[must_use]
    pub fn with_limit(mut self, kind: IdentifierKind, limit: Option<usize>) -> Self {
        self.kinds[slot(kind)].limit = limit;
        self
    }

    /// These rules with `kind` given `strength`.
    #[must_use]
    pub fn with_strength(mut self, kind: IdentifierKind, strength: Strength) -> Self {
        self.kinds[slot(kind)].strength = strength;
        self
    }

    /// How strongly `kind` identifies a person.
    pub fn strength(&self, kind: IdentifierKind) -> Strength {
        self.kinds[slot(kind)].strength
    }

    /// Whether `kind` is strong: links through it may merge customers who
    /// both have strong identifiers.
    pub fn is_strong(&self, kind: IdentifierKind) -> bool {
        self.strength(kind) == Strength::Strong
    }

    /// How many identifiers of `kind` one customer may own (`None`: no
    /// limit).
    pub fn limit(&self, kind: IdentifierKind) -> Option<usize> {
        self.kinds[slot(kind)].limit
    }

    /// These rules changed by a textual spec, as configuration gives it:
    /// comma-separated `kind=limit` entries, where the limit is a whole
    /// number or `none`, and an optional `:weak` or `:strong` suffix sets
    /// the strength (`account=1,email=3,visitor=none:weak,x=2:weak`).
    pub fn with_spec(mut self, spec: &str) -> Result<Self, String> {
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (kind, rest) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?}: expected kind=limit"))?;
            let kind: IdentifierKind =
                kind.trim().parse().map_err(|e| format!("{entry:?}: {e}"))?;
            let (limit, strength) = match rest.split_once(':') {
                Some((limit, "weak")) => (limit, Some(Strength::Weak)),
                Some((limit, "strong")) => (limit, Some(Strength::Strong)),
                Some((_, other)) => {
                    return Err(format!("{entry:?}: {other:?} is not weak or strong"));
                }
                None => (rest, None),
            };
            let limit = match limit.trim() {
                "none" => None,
                number => Some(number.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(
                    || format!("{entry:?}: the limit must be a positive whole number or none"),
                )?),
            };
            self.kinds[slot(kind)].limit = limit;
            if let Some(strength) = strength {
                self.kinds[slot(kind)].strength = strength;
            }
        }
        Ok(self)
    }

    /// The highest-priority kind (see [`IdentifierKind::priority`]; the first
    /// in [`IdentifierKind::ALL`] among equals) whose count in `counts`
    /// (indexed by [`slot`]) exceeds its limit.
    pub(crate) fn first_breach(
        &self,
        counts: &[usize; IdentifierKind::ALL.len()],
    ) -> Option<IdentifierKind> {
        IdentifierKind::ALL
            .into_iter()
            .filter(|&kind| {
                self.limit(kind)
                    .is_some_and(|limit| counts[slot(kind)] > limit)
            })
            .min_by_key(|kind| std::cmp::Reverse(kind.priority()))
    }
}

/// The rules as a spec that [`IdentityRules::with_spec`] reads back over the
/// defaults: every kind with its limit, and its strength where it is weak or
/// differs from the default (`phone=5,...,visitor=none:weak`).
impl std::fmt::Display for IdentityRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let defaults = IdentityRules::default();
        for (position, kind) in IdentifierKind::ALL.into_iter().enumerate() {
            if position > 0 {
                f.write_str(",")?;
            }
            match self.limit(kind) {
                Some(limit) => write!(f, "{kind}={limit}")?,
                None => write!(f, "{kind}=none")?,
            }
            match self.strength(kind) {
                Strength::Weak => f.write_str(":weak")?,
                Strength::Strong if defaults.strength(kind) == Strength::Weak => {
                    f.write_str(":strong")?;
                }
                Strength::Strong => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_order_of_all_kinds() {
        for (position, kind) in IdentifierKind::ALL.into_iter().enumerate() {
            assert_eq!(slot(kind), position, "{kind}");
        }
    }

    #[test]
    fn defaults_match_the_documented_rules() {
        let rules = IdentityRules::default();
        let expected = [
            (IdentifierKind::Account, true, Some(1)),
            (IdentifierKind::Email, true, Some(5)),
            (IdentifierKind::Phone, true, Some(5)),
            (IdentifierKind::Whatsapp, true, Some(3)),
            (IdentifierKind::Messenger, true, Some(3)),
            (IdentifierKind::Instagram, true, Some(3)),
            (IdentifierKind::X, true, Some(3)),
            (IdentifierKind::Visitor, false, None),
        ];
        for (kind, strong, limit) in expected {
            assert_eq!(rules.is_strong(kind), strong, "{kind}");
            assert_eq!(rules.limit(kind), limit, "{kind}");
        }
    }

    #[test]
    fn unlimited_keeps_strength_and_drops_limits() {
        let rules = IdentityRules::unlimited();
        for kind in IdentifierKind::ALL {
            assert_eq!(rules.limit(kind), None, "{kind}");
            assert_eq!(
                rules.strength(kind),
                IdentityRules::default().strength(kind),
                "{kind}"
            );
        }
    }

    #[test]
    fn builders_change_one_kind_only() {
        let rules = IdentityRules::default()
            .with_limit(IdentifierKind::Email, Some(2))
            .with_strength(IdentifierKind::X, Strength::Weak);
        assert_eq!(rules.limit(IdentifierKind::Email), Some(2));
        assert_eq!(rules.limit(IdentifierKind::Phone), Some(5));
        assert!(!rules.is_strong(IdentifierKind::X));
        assert!(rules.is_strong(IdentifierKind::Instagram));
    }

    #[test]
    fn specs_change_the_kinds_they_name_and_bad_ones_say_why() {
        let rules = IdentityRules::default()
            .with_spec(" account=2, email=none ,x=1:weak,")
            .expect("valid spec");
        assert_eq!(rules.limit(IdentifierKind::Account), Some(2));
        assert_eq!(rules.limit(IdentifierKind::Email), None);
        assert_eq!(rules.limit(IdentifierKind::X), Some(1));
        assert!(!rules.is_strong(IdentifierKind::X));
        assert_eq!(rules.limit(IdentifierKind::Phone), Some(5));
        assert_eq!(
            IdentityRules::default().with_spec(""),
            Ok(IdentityRules::default())
        );
        for bad in ["account", "fax=1", "email=0", "email=-1", "email=2:medium"] {
            let error = IdentityRules::default()
                .with_spec(bad)
                .expect_err("invalid spec");
            assert!(error.contains(bad), "{bad}: {error}");
        }
    }

    #[test]
    fn rules_print_as_a_spec_that_reads_back() {
        assert_eq!(
            IdentityRules::default().to_string(),
            "phone=5,email=5,account=1,whatsapp=3,messenger=3,instagram=3,x=3,visitor=none:weak"
        );
        for spec in [
            "",
            "account=2,email=none,x=1:weak",
            "visitor=4:strong,phone=none",
        ] {
            let rules = IdentityRules::default()
                .with_spec(spec)
                .expect("valid spec");
            assert_eq!(
                IdentityRules::default().with_spec(&rules.to_string()),
                Ok(rules),
                "{spec}"
            );
        }
    }

    #[test]
    fn the_reported_breach_is_the_highest_priority_kind() {
        let rules = IdentityRules::default();
        let mut counts = [0; IdentifierKind::ALL.len()];
        assert_eq!(rules.first_breach(&counts), None);
        counts[slot(IdentifierKind::Whatsapp)] = 4;
        assert_eq!(rules.first_breach(&counts), Some(IdentifierKind::Whatsapp));
        counts[slot(IdentifierKind::Email)] = 6;
        counts[slot(IdentifierKind::Phone)] = 6;
        assert_eq!(rules.first_breach(&counts), Some(IdentifierKind::Phone));
        counts[slot(IdentifierKind::Account)] = 2;
        assert_eq!(rules.first_breach(&counts), Some(IdentifierKind::Account));
        counts[slot(IdentifierKind::Visitor)] = 1_000;
        assert_eq!(rules.first_breach(&counts), Some(IdentifierKind::Account));
    }
}
