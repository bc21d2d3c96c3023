//! Identity resolution under concurrent projectors: the same stream of
//! events that link overlapping identities, projected by 1, 2 and 4
//! instances of one consumer group working on different partitions at the
//! same time. Without guards the final grouping is the connected components
//! of the identifier graph, whatever the interleaving; with guards firing
//! every invariant holds.

use std::collections::{BTreeSet, HashMap};

use panorama::ProcessRole;
use panorama_bus::{Producer, ProducerSettings};
use panorama_core::identity::IdentityRules;
use panorama_e2e::{at_minute, contact_with};
use panorama_projector::Projector;
use panorama_testkit::{TestApp, WAIT, eventually};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const EVENTS: usize = 5_000;
const PEOPLE: usize = 300;
const PARTITIONS: i32 = 4;

/// An event's identifiers as (kind, value).
type Identifiers = Vec<(String, String)>;

fn person_identifiers(person: usize, guarded: bool) -> Identifiers {
    let mut identifiers = vec![
        ("phone".to_owned(), format!("+3161{:07}", person)),
        ("email".to_owned(), format!("p{person}@example.com")),
        ("whatsapp".to_owned(), format!("3162{:07}", person)),
    ];
    if guarded {
        if person % 3 == 0 {
            identifiers.push(("account".to_owned(), format!("ACC-{person}")));
        }
        identifiers.push(("visitor".to_owned(), format!("v-{person}")));
    }
    identifiers
}

/// A reproducible stream of `EVENTS` events by `PEOPLE` people. Each event
/// carries one to three of its person's identifiers; some also carry an
/// identifier of another person (a shared phone, a shared computer, a typo
/// in an email address), which links the two.
fn stream(seed: u64, guarded: bool) -> Vec<Identifiers> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..EVENTS)
        .map(|_| {
            let person = rng.random_range(0..PEOPLE);
            let own = person_identifiers(person, guarded);
            let count = rng.random_range(1..=3);
            let mut identifiers: Identifiers =
                own.choose_multiple(&mut rng, count).cloned().collect();
            if rng.random_bool(0.03) {
                let other = person_identifiers(rng.random_range(0..PEOPLE), guarded);
                if let Some(shared) = other.choose(&mut rng) {
                    if !identifiers.contains(shared) {
                        identifiers.push(shared.clone());
                    }
                }
            }
            identifiers
        })
        .collect()
}

fn events_json(stream: &[Identifiers]) -> Vec<Value> {
    stream
        .iter()
        .enumerate()
        .map(|(n, identifiers)| {
            let pairs: Vec<(&str, &str)> = identifiers
                .iter()
                .map(|(kind, value)| (kind.as_str(), value.as_str()))
                .collect();
            contact_with(&format!("c-{n}"), at_minute(n as i64), "chat", &pairs)
        })
        .collect()
}

/// The grouping the projection ended with, independent of customer ids:
/// each customer's identifiers, sorted, and the list of those sorted.
type Grouping = Vec<Vec<String>>;

/// What the projection looks like after a run.
struct Outcome {
    grouping: Grouping,
    violations: Vec<String>,
    merges: i64,
    refusals: i64,
}

/// Projects `stream` with `instances` concurrent projectors and reads the
/// outcome.
async fn project(stream: &[Identifiers], instances: usize, rules: &IdentityRules) -> Outcome {
    let app = TestApp::builder()
        .role(ProcessRole::Gateway)
        .partitions(PARTITIONS)
        .spawn()
        .await;
    let mut settings = app.options.projector_settings().expect("settings");
    settings.max_batch = 100;
    let store = app.store.clone().with_identity_rules(rules.clone());
    let projectors: Vec<Projector> = (0..instances)
        .map(|_| {
            let dlq = Producer::new(&ProducerSettings::new(&app.options.kafka.brokers))
                .expect("producer");
            Projector::spawn(settings.clone(), store.clone(), dlq).expect("projector")
        })
        .collect();
    // Every member owns partitions before the first event, so they all work
    // at the same time from the start.
    eventually("every projector owns partitions", WAIT, || async {
        projectors.iter().all(Projector::is_assigned).then_some(())
    })
    .await;
    let stats: Vec<_> = projectors.iter().map(Projector::stats).collect();
    for chunk in events_json(stream).chunks(500) {
        let response = app.post_events(&json!({ "events": chunk })).await;
        assert_eq!(response.status(), 202);
    }
    app.wait_for_offsets(EVENTS as i64).await;
    app.wait_for_events(EVENTS as i64).await;
    for projector in projectors {
        tokio::task::spawn_blocking(move || projector.stop())
            .await
            .expect("stopped");
    }
    for (member, stats) in stats.iter().enumerate() {
        assert!(
            stats.records() > 0,
            "member {member} of {instances} projected records"
        );
    }
    let outcome = inspect(&app, rules).await;
    eprintln!(
        "{instances} projector(s): {} customers, {} merges, {} refusals, records per member {:?}",
        outcome.grouping.len(),
        outcome.merges,
        outcome.refusals,
        stats.iter().map(|s| s.records()).collect::<Vec<_>>()
    );
    app.stop().await;
    outcome
}

async fn inspect(app: &TestApp, rules: &IdentityRules) -> Outcome {
    let (client, connection) = tokio_postgres::connect(&app.database.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let mut violations = Vec::new();

    // Merge trees: following merged_into from any profile reaches, without
    // a cycle, a customer that is its own survivor and the profile's.
    let rows = client
        .query("SELECT id, merged_into, survivor_id FROM customers", &[])
        .await
        .expect("customers");
    let parents: HashMap<uuid::Uuid, (Option<uuid::Uuid>, uuid::Uuid)> = rows
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2))))
        .collect();
    for (&id, &(_, survivor)) in &parents {
        let mut at = id;
        let mut steps = 0;
        while let Some(&(Some(parent), _)) = parents.get(&at) {
            at = parent;
            steps += 1;
            if steps > parents.len() {
                violations.push(format!("cycle through {id}"));
                break;
            }
        }
        if at != survivor {
            violations.push(format!("{id} leads to {at} but names {survivor}"));
        }
        if parents.get(&at).map(|&(_, own)| own) != Some(at) {
            violations.push(format!("root {at} is not its own survivor"));
        }
    }

    let checks = [
        (
            "events of no customer",
            "SELECT count(*) FROM events AS e
             WHERE NOT EXISTS (SELECT 1 FROM customers AS c WHERE c.id = e.customer_id)",
        ),
        (
            "events whose customer owns none of their identifiers",
            "SELECT count(*) FROM events AS e JOIN customers AS c ON c.id = e.customer_id
             WHERE NOT EXISTS (
                 SELECT 1 FROM jsonb_array_elements(e.identifiers) AS x
                 JOIN identifiers AS i ON i.kind = x->>'kind' AND i.value = x->>'value'
                 JOIN customers AS owner ON owner.id = i.customer_id
                 WHERE owner.survivor_id = c.survivor_id)",
        ),
        (
            "events linking customers without a recorded refusal",
            "SELECT count(*) FROM events AS e
             WHERE (SELECT count(DISTINCT owner.survivor_id)
                    FROM jsonb_array_elements(e.identifiers) AS x
                    JOIN identifiers AS i ON i.kind = x->>'kind' AND i.value = x->>'value'
                    JOIN customers AS owner ON owner.id = i.customer_id) > 1
               AND NOT EXISTS (SELECT 1 FROM identity_history AS h
                               WHERE h.action = 'refused' AND h.event_id = e.event_id)",
        ),
    ];
    for (what, sql) in checks {
        let count: i64 = client.query_one(sql, &[]).await.expect(what).get(0);
        if count > 0 {
            violations.push(format!("{count} {what}"));
        }
    }
    let per_kind = client
        .query(
            "SELECT c.survivor_id, i.kind, count(*) FROM identifiers AS i
             JOIN customers AS c ON c.id = i.customer_id GROUP BY 1, 2",
            &[],
        )
        .await
        .expect("identifiers per kind");
    for row in &per_kind {
        let (customer, kind, count): (uuid::Uuid, &str, i64) = (row.get(0), row.get(1), row.get(2));
        let limit = kind
            .parse()
            .ok()
            .and_then(|kind| rules.limit(kind))
            .unwrap_or(usize::MAX);
        if count as usize > limit {
            violations.push(format!("{customer} owns {count} {kind} identifiers"));
        }
    }

    let rows = client
        .query(
            "SELECT c.survivor_id, i.kind || ':' || i.value FROM identifiers AS i
             JOIN customers AS c ON c.id = i.customer_id",
            &[],
        )
        .await
        .expect("grouping");
    let mut groups: HashMap<uuid::Uuid, Vec<String>> = HashMap::new();
    for row in &rows {
        groups.entry(row.get(0)).or_default().push(row.get(1));
    }
    let mut grouping: Grouping = groups
        .into_values()
        .map(|mut group| {
            group.sort();
            group
        })
        .collect();
    grouping.sort();
    let counts = client
        .query_one(
            "SELECT count(*) FILTER (WHERE action = 'merge'),
                    count(*) FILTER (WHERE action = 'refused')
             FROM identity_history",
            &[],
        )
        .await
        .expect("history");
    Outcome {
        grouping,
        violations,
        merges: counts.get(0),
        refusals: counts.get(1),
    }
}

/// The connected components of the identifier graph (identifiers linked by
/// appearing in one event), in the form of [`Grouping`].
fn components(stream: &[Identifiers]) -> Grouping {
    fn find(parent: &mut HashMap<String, String>, item: &str) -> String {
        let mut root = item.to_owned();
        while let Some(next) = parent.get(&root).filter(|next| **next != root) {
            root = next.clone();
        }
        parent.insert(item.to_owned(), root.clone());
        root
    }
    let mut parent: HashMap<String, String> = HashMap::new();
    for identifiers in stream {
        let names: Vec<String> = identifiers
            .iter()
            .map(|(kind, value)| format!("{kind}:{value}"))
            .collect();
        for name in &names {
            parent.entry(name.clone()).or_insert_with(|| name.clone());
        }
        for pair in names.windows(2) {
            let (a, b) = (find(&mut parent, &pair[0]), find(&mut parent, &pair[1]));
            if a != b {
                parent.insert(a, b);
            }
        }
    }
    let names: Vec<String> = parent.keys().cloned().collect();
    let mut groups: HashMap<String, BTreeSet<String>> = HashMap::new();
    for name in names {
        let root = find(&mut parent, &name);
        groups.entry(root).or_default().insert(name);
    }
    let mut grouping: Grouping = groups
        .into_values()
        .map(|group| group.into_iter().collect())
        .collect();
    grouping.sort();
    grouping
}

/// Projects `stream` with 1, 2 and 4 projectors in turn, each on a fresh
/// database, and checks that every run keeps the invariants and merges.
async fn project_each(stream: &[Identifiers], rules: &IdentityRules) -> Vec<(usize, Outcome)> {
    let mut outcomes = Vec::new();
    for instances in [1, 2, 4] {
        let outcome = project(stream, instances, rules).await;
        assert!(
            outcome.violations.is_empty(),
            "{instances} projectors: {:?}",
            outcome.violations
        );
        assert!(
            outcome.merges > 0,
            "{instances} projectors: events linked customers"
        );
        outcomes.push((instances, outcome));
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_guards_the_grouping_is_the_same_for_1_2_and_4_projectors() {
    let stream = stream(7, false);
    let expected = components(&stream);
    assert!(
        expected.len() < PEOPLE,
        "the stream links people: {} groups",
        expected.len()
    );
    for (instances, outcome) in project_each(&stream, &IdentityRules::unlimited()).await {
        assert_eq!(outcome.refusals, 0, "no guard fires");
        assert!(
            outcome.grouping == expected,
            "{instances} projectors: {} groups, expected the {} connected components",
            outcome.grouping.len(),
            expected.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_guards_firing_every_invariant_holds_for_1_2_and_4_projectors() {
    let stream = stream(11, true);
    for (instances, outcome) in project_each(&stream, &IdentityRules::default()).await {
        assert!(outcome.refusals > 0, "{instances} projectors: guards fired");
    }
}
