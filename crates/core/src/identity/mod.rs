//! Identity resolution: which customer an event belongs to, decided from the
//! owners of its identifiers. Pure functions over one batch, so the
//! projector can look up every owner in one query, decide in memory, and
//! write the outcome in set-based statements.
//!
//! Two resolvers live here:
//! - [`resolve`] is the full one: it merges the customers an event links into
//!   the oldest, guarded by per-kind [`IdentityRules`] (strength and limit)
//!   and do-not-merge pairs, and records every refused merge as a
//!   [`Conflict`]. [`check_merge`] applies the same limits to a manual merge.
//! - [`resolve_batch`] never merges: an event attaches to the owner of its
//!   highest-priority identifier.

use std::collections::HashMap;

use uuid::Uuid;

use crate::identifier::Identifier;

mod resolve;
mod rules;

pub use resolve::{Conflict, ConflictReason, Decisions, Merge, Snapshot, check_merge, resolve};
pub use rules::{IdentityRules, Strength};

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod resolve_tests;

/// The decisions for one batch of events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    /// The customer of each event, in the order the events were given.
    pub event_customers: Vec<Uuid>,
    /// Customers to create, in the order they were first needed.
    pub new_customers: Vec<Uuid>,
    /// Identifiers seen for the first time and the customer they now belong to.
    pub new_links: Vec<(Identifier, Uuid)>,
}

/// Resolves a batch of events, given the current owner of each of their
/// identifiers that already belongs to a customer.
///
/// An event whose identifiers belong to nobody creates a customer. Otherwise
/// it attaches to the owner of its highest-priority owned identifier (see
/// [`IdentifierKind::priority`](crate::IdentifierKind::priority); the first
/// in the event among equals), and its unowned identifiers join that
/// customer. Later events in the batch see the links made by earlier ones.
pub fn resolve_batch<'a>(
    owners: &HashMap<Identifier, Uuid>,
    events: impl IntoIterator<Item = &'a [Identifier]>,
    mut new_customer_id: impl FnMut() -> Uuid,
) -> Resolution {
    let mut resolution = Resolution::default();
    let mut linked: HashMap<&'a Identifier, Uuid> = HashMap::new();
    for identifiers in events {
        let owner_of = |linked: &HashMap<&Identifier, Uuid>, identifier: &Identifier| {
            owners
                .get(identifier)
                .or_else(|| linked.get(identifier))
                .copied()
        };
        let best_owned = identifiers
            .iter()
            .filter_map(|identifier| owner_of(&linked, identifier).map(|owner| (identifier, owner)))
            .fold(
                None::<(&Identifier, Uuid)>,
                |best, (identifier, owner)| match best {
                    Some((kept, _)) if kept.kind().priority() >= identifier.kind().priority() => {
                        best
                    }
                    _ => Some((identifier, owner)),
                },
            );
        let customer = match best_owned.map(|(_, owner)| owner) {
            Some(customer) => customer,
            None => {
                let customer = new_customer_id();
                resolution.new_customers.push(customer);
                customer
            }
        };
        for identifier in identifiers {
            if owner_of(&linked, identifier).is_none() {
                linked.insert(identifier, customer);
                resolution.new_links.push((identifier.clone(), customer));
            }
        }
        resolution.event_customers.push(customer);
    }
    resolution
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identifier::IdentifierKind;

    fn id(kind: IdentifierKind, value: &str) -> Identifier {
        Identifier::parse(kind, value, None).expect("valid identifier")
    }

    fn counter() -> impl FnMut() -> Uuid {
        let mut next = 0u128;
        move || {
            next += 1;
            Uuid::from_u128(next)
        }
    }

    #[test]
    fn unknown_identifiers_create_one_customer_per_person() {
        let anna = [id(IdentifierKind::Phone, "+31612345678")];
        let bob = [id(IdentifierKind::Email, "bob@example.com")];
        let again = [id(IdentifierKind::Phone, "+31612345678")];
        let resolution = resolve_batch(
            &HashMap::new(),
            [&anna[..], &bob[..], &again[..]],
            counter(),
        );
        assert_eq!(
            resolution.new_customers,
            vec![Uuid::from_u128(1), Uuid::from_u128(2)]
        );
        assert_eq!(
            resolution.event_customers,
            vec![Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(1)]
        );
        assert_eq!(resolution.new_links.len(), 2);
    }

    #[test]
    fn a_strong_identifier_outranks_a_web_visitor() {
        let visitor = id(IdentifierKind::Visitor, "v-1");
        let email = id(IdentifierKind::Email, "anna@example.nl");
        let account = id(IdentifierKind::Account, "C-1");
        let (browsing, known, customer) =
            (Uuid::from_u128(7), Uuid::from_u128(8), Uuid::from_u128(9));
        let owners = HashMap::from([
            (visitor.clone(), browsing),
            (email.clone(), known),
            (account.clone(), customer),
        ]);
        let form = [visitor.clone(), email.clone()];
        let resolution = resolve_batch(&owners, [&form[..]], counter());
        assert_eq!(resolution.event_customers, vec![known]);
        let with_account = [visitor, email, account];
        let resolution = resolve_batch(&owners, [&with_account[..]], counter());
        assert_eq!(resolution.event_customers, vec![customer]);
    }

    #[test]
    fn a_known_identifier_attaches_and_brings_new_ones_along() {
        let phone = id(IdentifierKind::Phone, "+31612345678");
        let email = id(IdentifierKind::Email, "anna@example.nl");
        let known = Uuid::from_u128(99);
        let owners = HashMap::from([(phone.clone(), known)]);
        let event = [email.clone(), phone];
        let resolution = resolve_batch(&owners, [&event[..]], counter());
        assert!(resolution.new_customers.is_empty());
        assert_eq!(resolution.event_customers, vec![known]);
        assert_eq!(resolution.new_links, vec![(email, known)]);
    }
}
