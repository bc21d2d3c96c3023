//! Which profile of a merge tree each event and each new identifier came
//! through. The resolver decides in terms of surviving customers; the store
//! records the profile (a node of the survivor's merge tree) so that an
//! unmerge can give a profile back exactly what arrived through it, events
//! after the merge included. The identifier links the batch changes (new
//! ones, claims verified or let go) are followed event by event, so the
//! rows written are the batch's end state whatever happened in between.

use std::collections::{HashMap, HashSet};

use panorama_core::identity::{Decisions, EventIdentity, LinkChange};
use panorama_core::{Identifier, Trust};
use uuid::Uuid;

/// Profiles for one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Attribution {
    /// The profile of each event, in batch order.
    pub(crate) event_profiles: Vec<Uuid>,
    /// The identifier links the batch changed, in the order first changed.
    pub(crate) links: Vec<LinkRow>,
    /// The survivor of every profile after the batch's merges.
    pub(crate) survivors: HashMap<Uuid, Uuid>,
}

/// An identifier link the batch changed: what its row becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkRow {
    /// The identifier.
    pub(crate) identifier: Identifier,
    /// Whether it had a row before the batch (as the locked trees showed).
    pub(crate) existed: bool,
    /// The profile and trust it ends the batch with; `None`: let go.
    pub(crate) link: Option<(Uuid, Trust)>,
}

/// Attributes each event to the profile owning its highest-priority
/// identifier among those of the customer the resolver chose (the first in
/// the event among equals), or to that customer itself when none is known
/// yet (a new customer). New identifiers join the profile of the event that
/// linked them; a claim that becomes verified stays with its profile.
///
/// `profiles` maps every known identifier to its profile, `claimed` holds
/// the known links that are only claimed, and `survivors` maps every known
/// profile to its survivor, all as before the batch.
pub(crate) fn attribute(
    events: &[EventIdentity<'_>],
    decisions: &Decisions,
    profiles: HashMap<Identifier, Uuid>,
    claimed: &HashSet<Identifier>,
    mut survivors: HashMap<Uuid, Uuid>,
) -> Attribution {
    let new_links: HashMap<&Identifier, Uuid> = decisions
        .new_links
        .iter()
        .map(|(identifier, customer)| (identifier, *customer))
        .collect();
    let existed: HashSet<Identifier> = profiles.keys().cloned().collect();
    let mut links: HashMap<Identifier, (Uuid, Trust)> = profiles
        .into_iter()
        .map(|(identifier, profile)| {
            let trust = if claimed.contains(&identifier) {
                Trust::Claimed
            } else {
                Trust::Verified
            };
            (identifier, (profile, trust))
        })
        .collect();
    let mut changed: Vec<Identifier> = Vec::new();
    let mut merges = decisions.merges.iter().peekable();
    let mut changes = decisions.trust_changes.iter().peekable();
    let mut event_profiles = Vec::with_capacity(events.len());
    for (index, event) in events.iter().enumerate() {
        while let Some(merge) = merges.next_if(|merge| merge.event_index == index) {
            for survivor in survivors.values_mut() {
                if *survivor == merge.merged {
                    *survivor = merge.survivor;
                }
            }
        }
        let customer = decisions.event_customers[index];
        survivors.entry(customer).or_insert(customer);
        let mut best: Option<(&Identifier, Uuid)> = None;
        for carried in event.identifiers {
            let identifier = &carried.identifier;
            let Some(&(profile, _)) = links.get(identifier) else {
                continue;
            };
            if survivors.get(&profile) != Some(&customer) {
                continue;
            }
            match best {
                Some((kept, _)) if kept.kind().priority() >= identifier.kind().priority() => {}
                _ => best = Some((identifier, profile)),
            }
        }
        let profile = best.map_or(customer, |(_, profile)| profile);
        for carried in event.identifiers.iter().filter(|c| c.is_verified()) {
            let identifier = &carried.identifier;
            if !links.contains_key(identifier) && new_links.get(identifier) == Some(&customer) {
                links.insert(identifier.clone(), (profile, Trust::Verified));
                changed.push(identifier.clone());
            }
        }
        while let Some(change) = changes.next_if(|change| change.event_index == index) {
            let identifier = &change.identifier;
            match change.change {
                LinkChange::Claimed(_) => {
                    links.insert(identifier.clone(), (profile, Trust::Claimed));
                }
                LinkChange::Verified => {
                    if let Some(link) = links.get_mut(identifier) {
                        link.1 = Trust::Verified;
                    }
                }
                LinkChange::Released => {
                    links.remove(identifier);
                }
            }
            changed.push(identifier.clone());
        }
        event_profiles.push(profile);
    }
    for merge in merges {
        for survivor in survivors.values_mut() {
            if *survivor == merge.merged {
                *survivor = merge.survivor;
            }
        }
    }
    let mut seen = HashSet::new();
    let links = changed
        .into_iter()
        .filter(|identifier| seen.insert(identifier.clone()))
        .map(|identifier| LinkRow {
            existed: existed.contains(&identifier),
            link: links.get(&identifier).copied(),
            identifier,
        })
        .collect();
    Attribution {
        event_profiles,
        links,
        survivors,
    }
}

#[cfg(test)]
mod tests {
    use panorama_core::identity::{IdentityRules, Snapshot, resolve, resolve_trusted};
    use panorama_core::{EventIdentifier, IdentifierKind};

    use super::*;

    fn row(identifier: Identifier, existed: bool, link: Option<(Uuid, Trust)>) -> LinkRow {
        LinkRow {
            identifier,
            existed,
            link,
        }
    }

    /// `attribute` for events whose identifiers are all verified.
    fn attribute_verified(
        events: &[&[Identifier]],
        decisions: &Decisions,
        profiles: HashMap<Identifier, Uuid>,
        survivors: HashMap<Uuid, Uuid>,
    ) -> Attribution {
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
        let identities: Vec<EventIdentity<'_>> = carried
            .iter()
            .map(|identifiers| EventIdentity {
                identifiers,
                anchored: false,
            })
            .collect();
        attribute(&identities, decisions, profiles, &HashSet::new(), survivors)
    }

    fn id(kind: IdentifierKind, value: &str) -> Identifier {
        Identifier::parse(kind, value, None).expect("valid identifier")
    }

    fn ids(n: u128) -> impl FnMut(usize) -> Uuid {
        let mut next = n;
        move |_| {
            next += 1;
            Uuid::from_u128(next)
        }
    }

    #[test]
    fn events_after_a_merge_keep_the_profile_of_their_identifier() {
        let phone = id(IdentifierKind::Phone, "+31612345678");
        let email = id(IdentifierKind::Email, "anna@example.nl");
        let new_email = id(IdentifierKind::Email, "anna@work.example");
        let (anna_phone, anna_email) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut snapshot = Snapshot::from_customers([
            (anna_phone, vec![phone.clone()]),
            (anna_email, vec![email.clone()]),
        ]);
        let linking = [email.clone(), phone.clone()];
        let by_email = [email.clone(), new_email.clone()];
        let by_phone = [phone.clone()];
        let events: [&[Identifier]; 3] = [&linking, &by_email, &by_phone];
        let decisions = resolve(&mut snapshot, &events, &IdentityRules::default(), ids(10));
        assert_eq!(decisions.merges.len(), 1);
        let attribution = attribute_verified(
            &events,
            &decisions,
            HashMap::from([(phone, anna_phone), (email, anna_email)]),
            HashMap::from([(anna_phone, anna_phone), (anna_email, anna_email)]),
        );
        // The linking event came through its highest-priority identifier:
        // phone and email rank equal, so the first in the event, the email.
        assert_eq!(
            attribution.event_profiles,
            vec![anna_email, anna_email, anna_phone]
        );
        assert_eq!(
            attribution.links,
            vec![row(new_email, false, Some((anna_email, Trust::Verified)))]
        );
        assert_eq!(attribution.survivors[&anna_email], anna_phone);
        assert_eq!(attribution.survivors[&anna_phone], anna_phone);
    }

    #[test]
    fn a_new_customer_is_its_own_profile_and_merged_trees_follow_the_survivor() {
        let visitor = id(IdentifierKind::Visitor, "v-1");
        let email = id(IdentifierKind::Email, "bob@example.com");
        let (bob, bob_old_profile) = (Uuid::from_u128(1), Uuid::from_u128(3));
        let mut snapshot = Snapshot::from_customers([(bob, vec![email.clone()])]);
        let browsing = [visitor.clone()];
        let signed_in = [visitor.clone(), email.clone()];
        let events: [&[Identifier]; 2] = [&browsing, &signed_in];
        let decisions = resolve(&mut snapshot, &events, &IdentityRules::default(), ids(10));
        let anonymous = Uuid::from_u128(11);
        assert_eq!(decisions.new_customers, vec![anonymous]);
        let attribution = attribute_verified(
            &events,
            &decisions,
            HashMap::from([(email, bob)]),
            HashMap::from([(bob, bob), (bob_old_profile, bob)]),
        );
        assert_eq!(attribution.event_profiles, vec![anonymous, bob]);
        assert_eq!(
            attribution.links,
            vec![row(visitor, false, Some((anonymous, Trust::Verified)))]
        );
        assert_eq!(attribution.survivors[&anonymous], bob);
        assert_eq!(attribution.survivors[&bob_old_profile], bob);
    }

    #[test]
    fn an_identifier_refused_for_one_customer_joins_the_one_that_links_it() {
        let first = id(IdentifierKind::Account, "A-1");
        let second = id(IdentifierKind::Account, "A-2");
        let email = id(IdentifierKind::Email, "carol@example.com");
        let carol = Uuid::from_u128(1);
        let mut snapshot = Snapshot::from_customers([(carol, vec![first.clone()])]);
        // The second account cannot join Carol (one account each); a later
        // event brings it alone and it starts a customer of its own.
        let refused = [first.clone(), second.clone()];
        let alone = [second.clone(), email.clone()];
        let events: [&[Identifier]; 2] = [&refused, &alone];
        let decisions = resolve(&mut snapshot, &events, &IdentityRules::default(), ids(10));
        let other = Uuid::from_u128(11);
        assert_eq!(decisions.event_customers, vec![carol, other]);
        let attribution = attribute_verified(
            &events,
            &decisions,
            HashMap::from([(first, carol)]),
            HashMap::from([(carol, carol)]),
        );
        assert_eq!(attribution.event_profiles, vec![carol, other]);
        assert_eq!(
            attribution.links,
            vec![
                row(second, false, Some((other, Trust::Verified))),
                row(email, false, Some((other, Trust::Verified))),
            ]
        );
    }

    #[test]
    fn links_end_the_batch_as_the_last_event_left_them() {
        let email = id(IdentifierKind::Email, "dora@example.com");
        let phone = id(IdentifierKind::Phone, "+31612345678");
        // A customer of claims: someone typed Dora's address and a number.
        let claims = Uuid::from_u128(1);
        let mut snapshot = Snapshot::from_customers([(claims, vec![email.clone(), phone.clone()])]);
        snapshot.mark_claimed(email.clone());
        snapshot.mark_claimed(phone.clone());
        let initially_claimed = snapshot.claimed.clone();
        // Dora writes (verified), then a form names the number alone.
        let mail = [EventIdentifier::verified(email.clone())];
        let form = [EventIdentifier::claimed(phone.clone())];
        let events = [
            EventIdentity {
                identifiers: &mail,
                anchored: false,
            },
            EventIdentity {
                identifiers: &form,
                anchored: false,
            },
        ];
        let decisions = resolve_trusted(&mut snapshot, &events, &IdentityRules::default(), ids(10));
        let form_customer = Uuid::from_u128(11);
        assert_eq!(decisions.event_customers, vec![claims, form_customer]);
        let attribution = attribute(
            &events,
            &decisions,
            HashMap::from([(email.clone(), claims), (phone.clone(), claims)]),
            &initially_claimed,
            HashMap::from([(claims, claims)]),
        );
        assert_eq!(attribution.event_profiles, vec![claims, form_customer]);
        assert_eq!(
            attribution.links,
            vec![
                row(email, true, Some((claims, Trust::Verified))),
                row(phone, true, Some((form_customer, Trust::Claimed))),
            ]
        );
    }
}
