//! Which profile of a merge tree each event and each new identifier came
//! through. The resolver decides in terms of surviving customers; the store
//! records the profile (a node of the survivor's merge tree) so that an
//! unmerge can give a profile back exactly what arrived through it, events
//! after the merge included.

use std::collections::HashMap;

use panorama_core::Identifier;
use panorama_core::identity::Decisions;
use uuid::Uuid;

/// Profiles for one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Attribution {
    /// The profile of each event, in batch order.
    pub(crate) event_profiles: Vec<Uuid>,
    /// The profile each new identifier joins, in the order of
    /// [`Decisions::new_links`].
    pub(crate) link_profiles: Vec<Uuid>,
    /// The survivor of every profile after the batch's merges.
    pub(crate) survivors: HashMap<Uuid, Uuid>,
}

/// Attributes each event to the profile owning its highest-priority
/// identifier among those of the customer the resolver chose (the first in
/// the event among equals), or to that customer itself when none is known
/// yet (a new customer). New identifiers join the profile of the event that
/// linked them.
///
/// `profiles` maps every known identifier to its profile, and `survivors`
/// every known profile to its survivor, both as before the batch.
pub(crate) fn attribute(
    events: &[&[Identifier]],
    decisions: &Decisions,
    mut profiles: HashMap<Identifier, Uuid>,
    mut survivors: HashMap<Uuid, Uuid>,
) -> Attribution {
    let new_links: HashMap<&Identifier, Uuid> = decisions
        .new_links
        .iter()
        .map(|(identifier, customer)| (identifier, *customer))
        .collect();
    let mut merges = decisions.merges.iter().peekable();
    let mut event_profiles = Vec::with_capacity(events.len());
    for (index, identifiers) in events.iter().enumerate() {
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
        for identifier in identifiers.iter() {
            let Some(&profile) = profiles.get(identifier) else {
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
        for identifier in identifiers.iter() {
            if !profiles.contains_key(identifier) && new_links.get(identifier) == Some(&customer) {
                profiles.insert(identifier.clone(), profile);
            }
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
    let link_profiles = decisions
        .new_links
        .iter()
        .map(|(identifier, customer)| profiles.get(identifier).copied().unwrap_or(*customer))
        .collect();
    Attribution {
        event_profiles,
        link_profiles,
        survivors,
    }
}

#[cfg(test)]
mod tests {
    use panorama_core::IdentifierKind;
    use panorama_core::identity::{IdentityRules, Snapshot, resolve};

    use super::*;

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
        let attribution = attribute(
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
        assert_eq!(attribution.link_profiles, vec![anna_email]);
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
        let attribution = attribute(
            &events,
            &decisions,
            HashMap::from([(email, bob)]),
            HashMap::from([(bob, bob), (bob_old_profile, bob)]),
        );
        assert_eq!(attribution.event_profiles, vec![anonymous, bob]);
        assert_eq!(attribution.link_profiles, vec![anonymous]);
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
        let attribution = attribute(
            &events,
            &decisions,
            HashMap::from([(first, carol)]),
            HashMap::from([(carol, carol)]),
        );
        assert_eq!(attribution.event_profiles, vec![carol, other]);
        assert_eq!(attribution.link_profiles, vec![other, other]);
    }
}
