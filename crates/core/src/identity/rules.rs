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
