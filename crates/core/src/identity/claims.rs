//! Trust in identity resolution: what the resolver reads of an event
//! (identifiers with their trust), and the steps that keep claimed
//! identifiers from taking over anyone. A claimed identifier never merges
//! customers and never joins a customer that has verified identifiers; a
//! customer of claimed identifiers only is adopted by the first verified
//! identifier that reaches it, and lets its other claims go.

use uuid::Uuid;

use super::resolve::Resolver;
use super::rules::slot;
use crate::event::{ContactEvent, EventType};
use crate::identifier::Identifier;
use crate::trust::{EventIdentifier, Trust};

/// What the resolver reads of one event.
#[derive(Debug, Clone, Copy)]
pub struct EventIdentity<'a> {
    /// Its identifiers, each with its trust.
    pub identifiers: &'a [EventIdentifier],
    /// Whether its first identifier names its customer even when claimed:
    /// an agent confirming an identifier of a customer known only by
    /// claimed ones (`identifier.confirmed`). The first identifier leads to
    /// its owner without becoming verified.
    pub anchored: bool,
}

impl<'a> EventIdentity<'a> {
    /// What the resolver reads of `event`.
    pub fn of(event: &'a ContactEvent) -> Self {
        EventIdentity {
            identifiers: &event.identifiers,
            anchored: event.event_type == EventType::IdentifierConfirmed,
        }
    }

    /// The distinct identifiers with `trust`, in the event's order.
    pub(super) fn distinct(&self, trust: Trust) -> Vec<&'a Identifier> {
        let mut distinct: Vec<&Identifier> = Vec::new();
        for carried in self.identifiers {
            if carried.trust == trust && !distinct.contains(&&carried.identifier) {
                distinct.push(&carried.identifier);
            }
        }
        distinct
    }

    /// The claimed first identifier of an anchored event.
    pub(super) fn anchor(&self) -> Option<&'a Identifier> {
        let first = self.identifiers.first()?;
        (self.anchored && first.trust == Trust::Claimed).then_some(&first.identifier)
    }
}

/// A change to the trust of an identifier's link, decided at an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustChange {
    /// The event (its index in the batch) it was decided at.
    pub event_index: usize,
    /// The identifier.
    pub identifier: Identifier,
    /// What happened to its link.
    pub change: LinkChange,
}

/// What happened to an identifier's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkChange {
    /// Seen for the first time, claimed, and linked (as claimed) to this
    /// customer of claimed identifiers only.
    Claimed(Uuid),
    /// Its claimed link became verified; it stays with the profile it came
    /// through.
    Verified,
    /// Its claimed link was let go: its customer has verified identifiers
    /// now. It stays on its events.
    Released,
}

impl Resolver<'_> {
    /// An event with claimed identifiers only: the one customer with
    /// verified identifiers owning any of them, else the one customer of
    /// claims owning any, else a customer of its own; new identifiers are
    /// linked as claimed to a customer without verified ones.
    pub(super) fn claimed_event(
        &mut self,
        event_index: usize,
        claimed: &[&Identifier],
        new_customer_id: &mut impl FnMut(usize) -> Uuid,
    ) -> Uuid {
        let mut owners: Vec<Uuid> = claimed
            .iter()
            .filter_map(|identifier| self.snapshot.owner(identifier))
            .collect();
        owners.sort_unstable();
        owners.dedup();
        let unowned: Vec<&Identifier> = claimed
            .iter()
            .copied()
            .filter(|identifier| self.snapshot.owner(identifier).is_none())
            .collect();
        let known: Vec<Uuid> = owners
            .iter()
            .copied()
            .filter(|&owner| self.snapshot.has_verified(owner))
            .collect();
        // A visitor's own earlier claims do not keep their form off the
        // known customer it names: showing it there links nothing.
        let candidates = if known.is_empty() { &owners } else { &known };
        let customer = match candidates.as_slice() {
            [only] => *only,
            // Nobody, or identifiers that disagree about who this is: the
            // event shows on nobody's history but its own.
            _ => self.new_customer(event_index, new_customer_id),
        };
        if !self.snapshot.has_verified(customer) {
            self.link_claimed(event_index, customer, &unowned);
        }
        customer
    }

    /// Links `unowned` claimed identifiers to `customer` (one of claimed
    /// identifiers only), within the limits counted among its claims.
    fn link_claimed(&mut self, event_index: usize, customer: Uuid, unowned: &[&Identifier]) {
        let mut counts = self.snapshot.kind_counts(customer, Trust::Claimed);
        for &identifier in unowned {
            let kind = identifier.kind();
            if self
                .rules
                .limit(kind)
                .is_some_and(|limit| counts[slot(kind)] >= limit)
            {
                continue;
            }
            counts[slot(kind)] += 1;
            self.snapshot.link(identifier.clone(), customer);
            self.snapshot.mark_claimed(identifier.clone());
            self.decisions.trust_changes.push(TrustChange {
                event_index,
                identifier: identifier.clone(),
                change: LinkChange::Claimed(customer),
            });
        }
    }

    /// Verifies the claimed links of `verifying` that `customer` now owns,
    /// within its limits for verified identifiers; the others keep their
    /// claim (and a limit refusal is a conflict, as for new links).
    pub(super) fn verify_links(
        &mut self,
        event_index: usize,
        customer: Uuid,
        verifying: &[&Identifier],
    ) {
        let mut counts = self.snapshot.kind_counts(customer, Trust::Verified);
        for &identifier in verifying {
            if self.snapshot.owner(identifier) != Some(customer)
                || !self.snapshot.claimed.contains(identifier)
            {
                continue;
            }
            let kind = identifier.kind();
            if self
                .rules
                .limit(kind)
                .is_some_and(|limit| counts[slot(kind)] >= limit)
            {
                self.decisions.conflicts.push(super::Conflict {
                    event_index,
                    customers: vec![customer],
                    identifiers: vec![identifier.clone()],
                    reason: super::ConflictReason::Limit(kind),
                });
                continue;
            }
            counts[slot(kind)] += 1;
            self.snapshot.claimed.remove(identifier);
            self.decisions.trust_changes.push(TrustChange {
                event_index,
                identifier: identifier.clone(),
                change: LinkChange::Verified,
            });
        }
    }

    /// Lets go every claimed link of `customer` once it has a verified
    /// identifier: claimed identifiers never reach such a customer.
    pub(super) fn release_claimed(&mut self, event_index: usize, customer: Uuid) {
        if !self.snapshot.has_verified(customer) {
            return;
        }
        let released: Vec<Identifier> = self
            .snapshot
            .identifiers_of(customer)
            .iter()
            .filter(|identifier| self.snapshot.claimed.contains(*identifier))
            .cloned()
            .collect();
        for identifier in released {
            self.snapshot.release(&identifier, customer);
            self.decisions.trust_changes.push(TrustChange {
                event_index,
                identifier,
                change: LinkChange::Released,
            });
        }
    }
}
