//! The guarded resolver: stitches events to customers, merges customers that
//! an event links, and refuses the merges that would likely join two
//! different people (per-kind limits, weak-only links, do-not-merge pairs),
//! recording each refusal as a conflict for review.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::claims::{EventIdentity, TrustChange};
use super::rules::{IdentityRules, slot};
use crate::identifier::{Identifier, IdentifierKind};
use crate::trust::{EventIdentifier, Trust};

/// Per-kind identifier counts, indexed by [`slot`].
type KindCounts = [usize; IdentifierKind::ALL.len()];

/// What the resolver knows before a batch: every customer that owns one of
/// the batch's identifiers, with all of that customer's identifiers, which
/// of those links are only claimed, and the pairs of customers that must not
/// be merged automatically.
///
/// The two maps must agree: `owners[i] == c` exactly when `identifiers[c]`
/// contains `i`. [`resolve`] keeps them in agreement as it links and merges.
/// Claimed links belong to customers without verified identifiers only
/// (see [`resolve_trusted`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The customer owning each identifier.
    pub owners: HashMap<Identifier, Uuid>,
    /// Every identifier of each customer.
    pub identifiers: HashMap<Uuid, Vec<Identifier>>,
    /// Pairs of (surviving) customers that are never merged automatically,
    /// stored as `(smaller, larger)`; see [`Snapshot::forbid_merge`].
    pub do_not_merge: HashSet<(Uuid, Uuid)>,
    /// The identifiers whose link is only claimed (absent: verified).
    pub claimed: HashSet<Identifier>,
}

impl Snapshot {
    /// A snapshot of these customers and their identifiers.
    pub fn from_customers(customers: impl IntoIterator<Item = (Uuid, Vec<Identifier>)>) -> Self {
        let mut snapshot = Snapshot::default();
        for (customer, identifiers) in customers {
            for identifier in &identifiers {
                snapshot.owners.insert(identifier.clone(), customer);
            }
            snapshot
                .identifiers
                .entry(customer)
                .or_default()
                .extend(identifiers);
        }
        snapshot
    }

    /// The customer owning `identifier`, if any.
    pub fn owner(&self, identifier: &Identifier) -> Option<Uuid> {
        self.owners.get(identifier).copied()
    }

    /// The identifiers of `customer` (none when unknown).
    pub fn identifiers_of(&self, customer: Uuid) -> &[Identifier] {
        self.identifiers.get(&customer).map_or(&[], Vec::as_slice)
    }

    /// Marks the link of `identifier` as claimed, not verified.
    pub fn mark_claimed(&mut self, identifier: Identifier) {
        self.claimed.insert(identifier);
    }

    /// How far the link of `identifier` is trusted (`None`: no owner).
    pub fn trust_of(&self, identifier: &Identifier) -> Option<Trust> {
        self.owners.contains_key(identifier).then(|| {
            if self.claimed.contains(identifier) {
                Trust::Claimed
            } else {
                Trust::Verified
            }
        })
    }

    /// Whether `customer` owns a verified identifier: a customer of its
    /// own, whom claimed identifiers can no longer reach.
    pub fn has_verified(&self, customer: Uuid) -> bool {
        self.identifiers_of(customer)
            .iter()
            .any(|identifier| !self.claimed.contains(identifier))
    }

    /// Marks `a` and `b` as never to be merged automatically (after an
    /// unmerge); the order of the two does not matter.
    pub fn forbid_merge(&mut self, a: Uuid, b: Uuid) {
        self.do_not_merge.insert(pair(a, b));
    }

    /// Whether `a` and `b` must not be merged automatically.
    pub fn is_merge_forbidden(&self, a: Uuid, b: Uuid) -> bool {
        self.do_not_merge.contains(&pair(a, b))
    }

    /// How many identifiers of each kind `customer` owns with `trust`: the
    /// limits count verified links, and claimed ones among themselves.
    pub(super) fn kind_counts(&self, customer: Uuid, trust: Trust) -> KindCounts {
        let mut counts = [0; IdentifierKind::ALL.len()];
        for identifier in self.identifiers_of(customer) {
            if (trust == Trust::Claimed) == self.claimed.contains(identifier) {
                counts[slot(identifier.kind())] += 1;
            }
        }
        counts
    }

    /// Whether `customer` is known: it has a verified strong identifier.
    fn has_strong(&self, customer: Uuid, rules: &IdentityRules) -> bool {
        self.identifiers_of(customer).iter().any(|identifier| {
            rules.is_strong(identifier.kind()) && !self.claimed.contains(identifier)
        })
    }

    pub(super) fn link(&mut self, identifier: Identifier, customer: Uuid) {
        self.owners.insert(identifier.clone(), customer);
        self.identifiers
            .entry(customer)
            .or_default()
            .push(identifier);
    }

    /// Lets go the link of `identifier` to `customer`.
    pub(super) fn release(&mut self, identifier: &Identifier, customer: Uuid) {
        self.owners.remove(identifier);
        self.claimed.remove(identifier);
        if let Some(identifiers) = self.identifiers.get_mut(&customer) {
            identifiers.retain(|owned| owned != identifier);
        }
    }

    /// Moves every identifier of `merged` to `survivor`, and carries the
    /// do-not-merge pairs of `merged` over to `survivor`. Returns what moved.
    fn absorb(&mut self, survivor: Uuid, merged: Uuid) -> Vec<Identifier> {
        let moved = self.identifiers.remove(&merged).unwrap_or_default();
        for identifier in &moved {
            self.owners.insert(identifier.clone(), survivor);
        }
        self.identifiers
            .entry(survivor)
            .or_default()
            .extend(moved.iter().cloned());
        let inherited: Vec<(Uuid, Uuid)> = self
            .do_not_merge
            .iter()
            .filter_map(|&(a, b)| match (a == merged, b == merged) {
                (true, _) => Some(pair(survivor, b)),
                (_, true) => Some(pair(a, survivor)),
                _ => None,
            })
            .collect();
        self.do_not_merge.extend(inherited);
        moved
    }
}

fn pair(a: Uuid, b: Uuid) -> (Uuid, Uuid) {
    (a.min(b), a.max(b))
}

/// The decisions for one batch of events, in terms the store can apply:
/// create `new_customers`, insert `new_links`, apply `trust_changes` in
/// event order, then apply `merges` in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decisions {
    /// The customer of each event, in the order the events were given. An
    /// event never names a customer merged away before or by that event; an
    /// earlier event keeps the id it was given even when a later event of
    /// the batch merges it away (follow [`Decisions::merges`]).
    pub event_customers: Vec<Uuid>,
    /// Customers to create, in the order they were first needed.
    pub new_customers: Vec<Uuid>,
    /// Identifiers seen for the first time and the customer they were linked
    /// to (which a later merge of the batch may move on, see
    /// [`Merge::moved`]), all verified. Identifiers refused by a limit are
    /// not here.
    pub new_links: Vec<(Identifier, Uuid)>,
    /// Claimed links made, claimed links that became verified, and claimed
    /// links let go, in the order they were decided (see [`TrustChange`]).
    pub trust_changes: Vec<TrustChange>,
    /// Merges, in the order they were decided.
    pub merges: Vec<Merge>,
    /// Merges refused and identifiers left unlinked, for review.
    pub conflicts: Vec<Conflict>,
}

/// One customer merged into another by an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    /// The customer that remains: the smallest (oldest) id among those the
    /// event linked.
    pub survivor: Uuid,
    /// The customer merged away; it should point at `survivor` from now on.
    pub merged: Uuid,
    /// The event (its index in the batch) that linked them.
    pub event_index: usize,
    /// The event's identifiers owned by `survivor` or `merged` before the
    /// merge, in the event's order: the links that caused it.
    pub via: Vec<Identifier>,
    /// Every identifier `merged` owned and that now belongs to `survivor`
    /// (what an unmerge gives back).
    pub moved: Vec<Identifier>,
}

/// A merge the resolver refused, or identifiers it left unlinked, for an
/// agent to review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The event (its index in the batch) that raised it.
    pub event_index: usize,
    /// The customers concerned, smallest id first: those not merged, or the
    /// one customer an identifier could not join.
    pub customers: Vec<Uuid>,
    /// The event's identifiers concerned: those linking the customers (and,
    /// for a limit, the event's new identifiers of that kind), or the
    /// identifiers left unlinked.
    pub identifiers: Vec<Identifier>,
    /// Why.
    pub reason: ConflictReason,
}

/// Why a merge was refused or an identifier left unlinked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictReason {
    /// One customer would own more identifiers of this kind than allowed
    /// (e.g. two different account numbers).
    Limit(IdentifierKind),
    /// A customer with strong identifiers was linked to other customers with
    /// strong identifiers only through weak ones (a shared web visitor id).
    WeakLinkOnly,
    /// An agent undid an earlier merge of these customers.
    DoNotMerge,
}

impl fmt::Display for ConflictReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConflictReason::Limit(kind) => write!(
                f,
                "one customer would have more {kind} identifiers than allowed"
            ),
            ConflictReason::WeakLinkOnly => {
                f.write_str("the customers are linked only through a weak identifier")
            }
            ConflictReason::DoNotMerge => f.write_str("an agent separated these customers before"),
        }
    }
}

/// Resolves a batch of events against `snapshot`, updating it as it goes so
/// later events see the customers, links and merges of earlier ones.
///
/// For each event, the owners of its identifiers decide:
/// - none: a new customer is created, named by `new_customer_id` from the
///   event's index in `events` (the projector derives it from the event,
///   [`customer_id_for`](crate::identity::customer_id_for));
/// - one: the event attaches to it;
/// - several: they merge into the smallest id (the oldest: a customer's id
///   starts with the time of the contact that created it), except
///   that a customer with strong identifiers linked to the event only through
///   weak ones is left out when another of them has strong identifiers too
///   ([`ConflictReason::WeakLinkOnly`]), and nothing merges when the merged
///   customer would break a limit (counting the event's new identifiers) or
///   when two of them are a do-not-merge pair. A refused merge attaches the
///   event to the owner of its highest-priority identifier
///   ([`IdentifierKind::priority`], the first in the event among equals).
///
/// The event's identifiers that belong to nobody then join its customer,
/// except those that would break the customer's limit for their kind: they
/// stay unlinked and a [`ConflictReason::Limit`] conflict is recorded.
///
/// Every identifier is taken as verified; [`resolve_trusted`] is the same
/// with each identifier's trust.
pub fn resolve(
    snapshot: &mut Snapshot,
    events: &[&[Identifier]],
    rules: &IdentityRules,
    new_customer_id: impl FnMut(usize) -> Uuid,
) -> Decisions {
    let carried: Vec<Vec<EventIdentifier>> = events
        .iter()
        .map(|identifiers| {
            identifiers
                .iter()
                .cloned()
                .map(EventIdentifier::verified)
                .collect()
        })
        .collect();
    let events: Vec<EventIdentity<'_>> = carried
        .iter()
        .map(|identifiers| EventIdentity {
            identifiers,
            anchored: false,
        })
        .collect();
    resolve_trusted(snapshot, &events, rules, new_customer_id)
}

/// [`resolve`] with each identifier's trust. Verified identifiers decide as
/// [`resolve`] says; claimed ones never merge customers and never join a
/// customer that has verified identifiers:
///
/// - An event with verified identifiers goes where they lead. A verified
///   identifier whose link is claimed (by a customer of claimed identifiers
///   only) adopts that customer: it takes part like any owner, merges
///   included, and the link becomes verified. Once the event's customer has
///   a verified identifier, every claimed link it still holds is let go
///   (they stay on their events): claimed identifiers never reach a
///   customer with verified ones. The event's own claimed identifiers are
///   neither looked up nor linked; they stay on the event.
/// - An event with only claimed identifiers goes, for display, to the one
///   customer with verified identifiers that owns any of them, else to the
///   one customer of claims that does; nothing is linked to a customer with
///   verified identifiers, while a customer of claims takes the new ones as
///   claimed. When none owns them, or several customers with verified
///   identifiers (or, with none of those, several of claims) do, the event
///   gets a customer of its own that holds its new identifiers as claimed,
///   so the same visitor's later claimed events group there.
/// - An anchored event ([`EventIdentity::anchored`], an agent confirming an
///   identifier) also reaches the owner of its first identifier when that
///   is claimed, without verifying it.
///
/// Claimed links obey the limits among themselves and raise no conflicts:
/// nothing was merged or refused that an agent must settle.
pub fn resolve_trusted(
    snapshot: &mut Snapshot,
    events: &[EventIdentity<'_>],
    rules: &IdentityRules,
    mut new_customer_id: impl FnMut(usize) -> Uuid,
) -> Decisions {
    let mut resolver = Resolver {
        snapshot,
        rules,
        decisions: Decisions::default(),
    };
    for (event_index, event) in events.iter().enumerate() {
        let customer = resolver.event(event_index, event, &mut new_customer_id);
        resolver.decisions.event_customers.push(customer);
    }
    resolver.decisions
}

/// Whether an agent may merge `other` into `survivor`: refused with
/// [`ConflictReason::Limit`] when the merged customer would own more
/// identifiers of a kind than `rules` allow. Manual merges ignore weak links
/// and do-not-merge pairs: an agent decides those.
pub fn check_merge(
    snapshot: &Snapshot,
    survivor: Uuid,
    other: Uuid,
    rules: &IdentityRules,
) -> Result<(), ConflictReason> {
    if survivor == other {
        return Ok(());
    }
    let mut counts = snapshot.kind_counts(survivor, Trust::Verified);
    add_counts(&mut counts, &snapshot.kind_counts(other, Trust::Verified));
    match rules.first_breach(&counts) {
        Some(kind) => Err(ConflictReason::Limit(kind)),
        None => Ok(()),
    }
}

pub(super) fn add_counts(total: &mut KindCounts, more: &KindCounts) {
    for (total, more) in total.iter_mut().zip(more) {
        *total += more;
    }
}

pub(super) struct Resolver<'a> {
    pub(super) snapshot: &'a mut Snapshot,
    pub(super) rules: &'a IdentityRules,
    pub(super) decisions: Decisions,
}

impl Resolver<'_> {
    /// Decides one event's customer and links its new identifiers.
    fn event(
        &mut self,
        event_index: usize,
        event: &EventIdentity<'_>,
        new_customer_id: &mut impl FnMut(usize) -> Uuid,
    ) -> Uuid {
        let verified = event.distinct(Trust::Verified);
        if verified.is_empty() {
            return self.claimed_event(
                event_index,
                &event.distinct(Trust::Claimed),
                new_customer_id,
            );
        }
        let mut owned: Vec<(&Identifier, Uuid)> = Vec::new();
        let mut unowned: Vec<&Identifier> = Vec::new();
        for identifier in verified {
            match self.snapshot.owner(identifier) {
                Some(owner) => owned.push((identifier, owner)),
                None => unowned.push(identifier),
            }
        }
        // Claimed links the event verifies: they count against the limits
        // like new links.
        let verifying: Vec<&Identifier> = owned
            .iter()
            .map(|&(identifier, _)| identifier)
            .filter(|identifier| self.snapshot.claimed.contains(*identifier))
            .collect();
        let mut linking = owned.clone();
        if let Some(anchor) = event.anchor()
            && let Some(owner) = self.snapshot.owner(anchor)
        {
            linking.push((anchor, owner));
        }
        let mut customers: Vec<Uuid> = linking.iter().map(|&(_, owner)| owner).collect();
        customers.sort_unstable();
        customers.dedup();
        let customer = match customers.as_slice() {
            [] => self.new_customer(event_index, new_customer_id),
            [only] => *only,
            _ => {
                let mut incoming = unowned.clone();
                incoming.extend(verifying.iter().copied());
                self.join(event_index, &linking, &incoming, &customers)
            }
        };
        self.verify_links(event_index, customer, &verifying);
        self.link_new(event_index, customer, &unowned);
        self.release_claimed(event_index, customer);
        customer
    }

    /// A customer of the event's own.
    pub(super) fn new_customer(
        &mut self,
        event_index: usize,
        new_customer_id: &mut impl FnMut(usize) -> Uuid,
    ) -> Uuid {
        let customer = new_customer_id(event_index);
        self.decisions.new_customers.push(customer);
        self.snapshot.identifiers.entry(customer).or_default();
        customer
    }

    /// An event linked several `customers` (sorted): merges those the guards
    /// allow and returns the event's customer.
    fn join(
        &mut self,
        event_index: usize,
        owned: &[(&Identifier, Uuid)],
        unowned: &[&Identifier],
        customers: &[Uuid],
    ) -> Uuid {
        let rules = self.rules;
        let known: Vec<Uuid> = customers
            .iter()
            .copied()
            .filter(|&customer| self.snapshot.has_strong(customer, rules))
            .collect();
        let weakly_linked = |customer: Uuid| {
            owned
                .iter()
                .filter(|&&(_, owner)| owner == customer)
                .all(|(identifier, _)| !rules.is_strong(identifier.kind()))
        };
        // A known customer reached only through weak identifiers stays out
        // when another known customer is linked too; an anonymous profile
        // (no strong identifiers) always joins.
        let (left_out, group): (Vec<Uuid>, Vec<Uuid>) =
            customers.iter().copied().partition(|&customer| {
                known.contains(&customer)
                    && known.iter().any(|&other| other != customer)
                    && weakly_linked(customer)
            });
        if !left_out.is_empty() {
            self.decisions.conflicts.push(Conflict {
                event_index,
                customers: customers.to_vec(),
                identifiers: owned
                    .iter()
                    .map(|(identifier, _)| (*identifier).clone())
                    .collect(),
                reason: ConflictReason::WeakLinkOnly,
            });
        }
        match group.as_slice() {
            // Only weakly linked known customers: none merges, the event
            // goes to the owner of its best identifier.
            [] => best_owner(owned).unwrap_or(customers[0]),
            [only] => *only,
            [survivor, ..] => {
                let linking: Vec<(&Identifier, Uuid)> = owned
                    .iter()
                    .copied()
                    .filter(|(_, owner)| group.contains(owner))
                    .collect();
                if let Some(reason) = self.merge_refusal(&group, unowned) {
                    let mut identifiers: Vec<Identifier> = linking
                        .iter()
                        .map(|(identifier, _)| (*identifier).clone())
                        .collect();
                    if let ConflictReason::Limit(kind) = reason {
                        identifiers.extend(
                            unowned
                                .iter()
                                .filter(|identifier| identifier.kind() == kind)
                                .map(|identifier| (*identifier).clone()),
                        );
                    }
                    self.decisions.conflicts.push(Conflict {
                        event_index,
                        customers: group.clone(),
                        identifiers,
                        reason,
                    });
                    // Refused: the event goes to the owner of its best
                    // identifier among the group, links stay as they were.
                    best_owner(&linking).unwrap_or(*survivor)
                } else {
                    for &merged in &group[1..] {
                        self.merge(event_index, *survivor, merged, &linking);
                    }
                    *survivor
                }
            }
        }
    }

    /// Why merging `group` would be wrong, if it would: a limit broken by
    /// the group's verified identifiers plus those the event verifies, or a
    /// do-not-merge pair inside the group.
    fn merge_refusal(&self, group: &[Uuid], unowned: &[&Identifier]) -> Option<ConflictReason> {
        let mut counts = [0; IdentifierKind::ALL.len()];
        for &customer in group {
            add_counts(
                &mut counts,
                &self.snapshot.kind_counts(customer, Trust::Verified),
            );
        }
        for identifier in unowned {
            counts[slot(identifier.kind())] += 1;
        }
        if let Some(kind) = self.rules.first_breach(&counts) {
            return Some(ConflictReason::Limit(kind));
        }
        let forbidden = group.iter().enumerate().any(|(position, &a)| {
            group[position + 1..]
                .iter()
                .any(|&b| self.snapshot.is_merge_forbidden(a, b))
        });
        forbidden.then_some(ConflictReason::DoNotMerge)
    }

    fn merge(
        &mut self,
        event_index: usize,
        survivor: Uuid,
        merged: Uuid,
        linking: &[(&Identifier, Uuid)],
    ) {
        let via = linking
            .iter()
            .filter(|&&(_, owner)| owner == survivor || owner == merged)
            .map(|(identifier, _)| (*identifier).clone())
            .collect();
        let moved = self.snapshot.absorb(survivor, merged);
        self.decisions.merges.push(Merge {
            survivor,
            merged,
            event_index,
            via,
            moved,
        });
    }

    /// Links the event's `unowned` identifiers to `customer`, within its
    /// limits; the others stay unlinked, one conflict per kind.
    fn link_new(&mut self, event_index: usize, customer: Uuid, unowned: &[&Identifier]) {
        let mut counts = self.snapshot.kind_counts(customer, Trust::Verified);
        let mut refused: Vec<&Identifier> = Vec::new();
        for &identifier in unowned {
            let kind = identifier.kind();
            if self
                .rules
                .limit(kind)
                .is_some_and(|limit| counts[slot(kind)] >= limit)
            {
                refused.push(identifier);
                continue;
            }
            counts[slot(kind)] += 1;
            self.snapshot.link(identifier.clone(), customer);
            self.decisions
                .new_links
                .push((identifier.clone(), customer));
        }
        let mut kinds: Vec<IdentifierKind> = Vec::new();
        for identifier in &refused {
            if !kinds.contains(&identifier.kind()) {
                kinds.push(identifier.kind());
            }
        }
        for kind in kinds {
            self.decisions.conflicts.push(Conflict {
                event_index,
                customers: vec![customer],
                identifiers: refused
                    .iter()
                    .filter(|identifier| identifier.kind() == kind)
                    .map(|identifier| (*identifier).clone())
                    .collect(),
                reason: ConflictReason::Limit(kind),
            });
        }
    }
}

/// The owner of the highest-priority identifier in `owned` (the first among
/// equals); `None` when `owned` is empty.
fn best_owner(owned: &[(&Identifier, Uuid)]) -> Option<Uuid> {
    let mut best: Option<(&Identifier, Uuid)> = None;
    for &(identifier, owner) in owned {
        match best {
            Some((kept, _)) if kept.kind().priority() >= identifier.kind().priority() => {}
            _ => best = Some((identifier, owner)),
        }
    }
    best.map(|(_, owner)| owner)
}
