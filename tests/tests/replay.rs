//! `panorama replay` rebuilds the same projection from the topic into a
//! fresh schema (same customers by their identifiers and their trust, same
//! timelines, same aggregates), does not dead-letter again, and `--switch`
//! makes it the live schema, after which the projector carries on from
//! where the replay stopped.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use panorama::ProcessRole;
use panorama::replay::{ReplayOptions, replay};
use panorama_bus::{OutboundRecord, Producer, ProducerSettings};
use panorama_e2e::{at_minute, contact, contact_with, email_of, phone_of};
use panorama_store::{AuditQuery, AuditRecord, Store};
use panorama_testkit::{TestApp, WAIT, customer_with_email, eventually, migrated_database};
use tokio_postgres::NoTls;
use uuid::Uuid;

/// One customer's timeline (event ids, newest first), per-channel counts
/// and profile (name and first/last contact).
type CustomerView = (Vec<String>, Vec<(String, i64)>, String);

/// A projection with customer ids replaced by their identifiers, which a
/// replay keeps (it assigns new ids).
///
/// How many profiles were merged away is not part of it: a replay reads the
/// partitions in another interleaving, and a linking event read before the
/// second profile's first contact attaches instead of merging. The grouping
/// is the same either way, and that is what is compared.
#[derive(Debug, PartialEq, Eq)]
struct Canonical {
    /// Identifiers of each customer (as merged) → what it looks like.
    customers: BTreeMap<BTreeSet<String>, CustomerView>,
    conflicts: i64,
}

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

/// Every customer id of `public` (merged profiles included) → its
/// survivor and the identifiers of the survivor's whole customer.
async fn customer_groups(
    client: &tokio_postgres::Client,
) -> BTreeMap<Uuid, (Uuid, BTreeSet<String>)> {
    let rows = client
        .query(
            "SELECT c.id, c.survivor_id,
                    array(SELECT i.kind || ':' || i.value FROM identifiers i
                          JOIN customers p ON p.id = i.customer_id
                          WHERE p.survivor_id = c.survivor_id)
             FROM customers c",
            &[],
        )
        .await
        .expect("customers");
    rows.into_iter()
        .map(|row| {
            let identifiers: Vec<String> = row.get(2);
            (row.get(0), (row.get(1), identifiers.into_iter().collect()))
        })
        .collect()
}

async fn canonical(client: &tokio_postgres::Client, schema: &str) -> Canonical {
    let rows = client
        .query(
            &format!(
                "SELECT c.survivor_id::text, i.kind || ':' || i.value || ':' || i.trust
                 FROM {schema}.identifiers i JOIN {schema}.customers c ON c.id = i.customer_id"
            ),
            &[],
        )
        .await
        .expect("identifiers");
    let mut identifiers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in rows {
        identifiers
            .entry(row.get(0))
            .or_default()
            .insert(row.get(1));
    }
    let mut timelines: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in client
        .query(
            &format!(
                "SELECT c.survivor_id::text, e.event_id::text
                 FROM {schema}.events e JOIN {schema}.customers c ON c.id = e.customer_id
                 ORDER BY e.occurred_at DESC, e.event_id DESC"
            ),
            &[],
        )
        .await
        .expect("events")
    {
        timelines.entry(row.get(0)).or_default().push(row.get(1));
    }
    let mut channels: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    for row in client
        .query(
            &format!(
                "SELECT c.survivor_id::text, cc.channel, sum(cc.event_count)::bigint
                 FROM {schema}.customer_channels cc JOIN {schema}.customers c ON c.id = cc.customer_id
                 GROUP BY 1, 2 ORDER BY 1, 2"
            ),
            &[],
        )
        .await
        .expect("channels")
    {
        channels.entry(row.get(0)).or_default().push((row.get(1), row.get(2)));
    }
    let mut profiles: BTreeMap<String, String> = BTreeMap::new();
    for row in client
        .query(
            &format!(
                "SELECT id::text, coalesce(display_name, '') || '|' ||
                        coalesce(first_contact_at::text, '') || '|' || coalesce(last_contact_at::text, '')
                 FROM {schema}.customers WHERE survivor_id = id"
            ),
            &[],
        )
        .await
        .expect("profiles")
    {
        profiles.insert(row.get(0), row.get(1));
    }
    let count = |sql: String| async move {
        client
            .query_one(&sql, &[])
            .await
            .expect("count")
            .get::<_, i64>(0)
    };
    Canonical {
        customers: identifiers
            .into_iter()
            .map(|(survivor, ids)| {
                let value = (
                    timelines.remove(&survivor).unwrap_or_default(),
                    channels.remove(&survivor).unwrap_or_default(),
                    profiles.remove(&survivor).unwrap_or_default(),
                );
                (ids, value)
            })
            .collect(),
        conflicts: count(format!("SELECT count(*) FROM {schema}.identity_conflicts")).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_rebuilds_the_same_projection_and_switches_over() {
    let mut app = TestApp::spawn().await;
    let mut posted = 0;
    for customer in 0..6 {
        for (index, channel) in ["phone", "email", "chat", "web"].iter().enumerate() {
            let id = format!("r-{customer}-{index}");
            let minute = (customer * 10 + index) as i64;
            assert_eq!(
                app.post_events(&contact(customer, &id, at_minute(minute), channel))
                    .await
                    .status(),
                202
            );
            posted += 1;
        }
    }
    // Every profile exists before the links arrive, so they merge.
    app.wait_for_events(posted).await;
    // Merges: customer 0's phone with customer 1's email, 2's with 3's.
    for (event, (a, b)) in [("r-link-1", (0, 1)), ("r-link-2", (2, 3))] {
        let phone = phone_of(a);
        let email = email_of(b);
        let link = contact_with(
            event,
            at_minute(100),
            "email",
            &[("phone", &phone), ("email", &email)],
        );
        assert_eq!(app.post_events(&link).await.status(), 202);
        posted += 1;
    }
    // A conflict: two account numbers for one customer. The email comes
    // first, so both events share its partition and keep their order in a
    // replay too (A-1 is accepted, A-2 refused).
    let conflict = contact_with(
        "r-accounts",
        at_minute(120),
        "web",
        &[("email", &email_of(4)), ("account", "A-1")],
    );
    assert_eq!(app.post_events(&conflict).await.status(), 202);
    let other = contact_with(
        "r-accounts-2",
        at_minute(121),
        "web",
        &[("email", &email_of(4)), ("account", "A-2")],
    );
    assert_eq!(app.post_events(&other).await.status(), 202);
    posted += 2;
    // Claims, as a browser form makes them: one naming customer 5's phone
    // (its first identifier, so it shares the partition and the order of
    // customer 5's events) with a stranger's address, shown on customer 5
    // and linked to nobody; one from a walk-in nobody knows, a customer of
    // claims. Their trust is on the record, so a replay decides the same.
    let producer =
        Producer::new(&ProducerSettings::new(&app.options.kafka.brokers)).expect("producer");
    let phone_5 = phone_of(5);
    let claims: [(&str, &[(&str, &str)]); 2] = [
        (
            "r-claim-1",
            &[("phone", &phone_5), ("email", "stranger@example.org")],
        ),
        (
            "r-claim-2",
            &[("email", "walk-in@example.org"), ("visitor", "v-walk-in")],
        ),
    ];
    let mut claim_ids = Vec::new();
    for (event_id, identifiers) in claims {
        let mut draft: panorama_core::EventDraft =
            serde_json::from_value(contact_with(event_id, at_minute(130), "web", identifiers))
                .expect("draft");
        draft.cap_trust(panorama_core::Trust::Claimed);
        let event = draft
            .validate(&panorama_core::ValidationContext::now(None))
            .expect("valid");
        producer
            .publish(
                &app.options.kafka.topic,
                &[OutboundRecord {
                    key: event.partition_key(),
                    payload: panorama_proto::encode(&event),
                    headers: vec![],
                }],
            )
            .await
            .expect("claim");
        claim_ids.push(event.event_id.to_string());
        posted += 1;
    }
    // One record the projector cannot read.
    producer
        .publish(
            &app.options.kafka.topic,
            &[OutboundRecord {
                key: "junk".into(),
                payload: b"\xff\xfe garbage".to_vec(),
                headers: vec![],
            }],
        )
        .await
        .expect("garbage");
    app.wait_for_events(posted).await;
    let records = app.records_in(&app.options.kafka.topic).await;
    app.wait_for_offsets(records).await;
    let dead_letters = app.records_in(&app.options.kafka.dlq_topic).await;
    assert_eq!(dead_letters, 1);

    let db = client(&app.database.url).await;
    let live = canonical(&db, "public").await;
    let merged: i64 = db
        .query_one(
            "SELECT count(*) FROM customers WHERE survivor_id <> id",
            &[],
        )
        .await
        .expect("merged")
        .get(0);
    assert_eq!(merged, 2);
    assert_eq!(
        live.customers.len(),
        5,
        "0+1, 2+3, 4, 5 and the walk-in's claims"
    );
    assert!(live.conflicts >= 1);
    let claims: BTreeSet<String> = [
        "email:walk-in@example.org:claimed",
        "visitor:v-walk-in:claimed",
    ]
    .map(str::to_owned)
    .into();
    assert!(live.customers.contains_key(&claims), "{live:?}");
    let fives = live
        .customers
        .iter()
        .find(|(ids, _)| ids.contains(&format!("phone:{phone_5}:verified")))
        .expect("customer 5");
    assert!(
        !fives.0.iter().any(|id| id.contains("stranger")),
        "a claim never joins a known customer"
    );
    assert!(
        fives.1.0.contains(&claim_ids[0]),
        "the claim is shown on customer 5's history"
    );

    let old_ids = customer_groups(&db).await;

    let report = replay(&app.options, &ReplayOptions::new("replay_one"))
        .await
        .expect("replay");
    assert_eq!(report.records, records);
    assert!(report.switched.is_none());
    let replayed = canonical(&db, "replay_one").await;
    assert_eq!(
        replayed, live,
        "the replay differs from the live projection"
    );
    assert_eq!(
        app.records_in(&app.options.kafka.dlq_topic).await,
        dead_letters,
        "a replay does not dead-letter again"
    );

    // Switch: the live projector must be out of its group first.
    let mut switch = ReplayOptions::new("replay_one");
    switch.switch = true;
    let refused = replay(&app.options, &switch).await;
    assert!(refused.is_err(), "switched while the live projector runs");
    app.running
        .as_mut()
        .expect("running")
        .stop_projector()
        .await;
    // The broker forgets a member that left after a moment.
    let report = eventually("the switch once the projector left", WAIT, || async {
        match replay(&app.options, &switch).await {
            Ok(report) => Some(report),
            Err(error) => {
                eprintln!("switch refused: {error:#}");
                tokio::time::sleep(Duration::from_millis(500)).await;
                None
            }
        }
    })
    .await;
    let switched = report.switched.expect("switched");
    assert!(switched.previous_schema.starts_with("panorama_old_"));
    assert!(
        switched
            .carried_over
            .contains(&("api_tokens".to_owned(), 1))
    );

    // A fresh connection sees the replayed schema as public.
    let fresh = client(&app.database.url).await;
    assert_eq!(canonical(&fresh, "public").await, live);
    assert_eq!(canonical(&fresh, &switched.previous_schema).await, live);

    // Every customer id of the replaced projection, merged ones included,
    // still leads to the customer with the same identifiers: kept by the
    // replay, or an alias of it.
    let store = Store::connect(&app.database.url, 1).expect("store");
    let groups = customer_groups(&fresh).await;
    let mut aliased = 0;
    for (id, identifiers) in &old_ids {
        let survivor = store
            .survivor_of(*id)
            .await
            .expect("survivor")
            .unwrap_or_else(|| panic!("old id {id} leads nowhere after the switch"));
        let now = groups.get(&survivor).expect("a survivor's group");
        assert_eq!(&now.1, &identifiers.1, "old id {id}");
        if !groups.contains_key(id) {
            aliased += 1;
        }
    }
    assert_eq!(switched.aliases, aliased);
    let offsets: i64 = fresh
        .query_one(
            "SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets WHERE consumer_group = $1",
            &[&app.options.kafka.consumer_group],
        )
        .await
        .expect("offsets")
        .get(0);
    assert_eq!(offsets, records);

    // A projector started after the switch carries on into the new schema.
    let mut options = app.options.clone();
    options.http.addr = "127.0.0.1:0".into();
    let projector = panorama::start(&options, ProcessRole::Projector)
        .await
        .expect("projector");
    assert_eq!(
        app.post_events(&contact(9, "r-after", at_minute(200), "phone"))
            .await
            .status(),
        202
    );
    eventually(
        "the event after the switch in the new schema",
        WAIT,
        || async {
            let count: i64 = fresh
                .query_one("SELECT count(*) FROM public.events", &[])
                .await
                .ok()?
                .get(0);
            (count == posted + 1).then_some(())
        },
    )
    .await;
    projector.stop().await.expect("projector stops");
    app.stop().await;
}

/// An event to project: its id, minute and identifiers (kind, value).
type Scripted<'a> = (&'a str, i64, &'a [(&'a str, &'a str)]);

/// Projects `events` through `store`, one batch each, in the order given.
async fn project(store: &Store, events: &[Scripted<'_>]) {
    let context = panorama_core::ValidationContext::now(None);
    for (id, minute, identifiers) in events {
        let json = contact_with(id, at_minute(*minute), "email", identifiers);
        let event = serde_json::from_value::<panorama_core::EventDraft>(json)
            .expect("draft")
            .validate(&context)
            .expect("valid");
        let offsets: [panorama_store::PartitionOffset; 0] = [];
        store
            .apply_batch("test", &[event], &offsets)
            .await
            .expect("batch");
    }
}

async fn survivor(store: &Store, id: Uuid) -> Uuid {
    store
        .survivor_of(id)
        .await
        .expect("survivor")
        .unwrap_or_else(|| panic!("{id} leads nowhere"))
}

/// A replay that reads a customer's events in another order names the
/// customer after another event. The switch makes the old ids aliases, so
/// they lead to the same customers; a second replay carries those aliases
/// on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_customer_ids_still_lead_to_their_customers_after_a_switch() {
    let (database, live) = migrated_database(2).await;
    let early: &[(&str, &str)] = &[("email", "early@example.com")];
    let link: &[(&str, &str)] = &[("email", "q@example.com"), ("email", "r@example.com")];
    let q: &[(&str, &str)] = &[("email", "q@example.com")];
    let r: &[(&str, &str)] = &[("email", "r@example.com")];
    // Live: each event creates its customer, the link merges q and r.
    project(
        &live,
        &[
            ("a-1", 1, early),
            ("a-2", 2, early),
            ("q", 3, q),
            ("r", 4, r),
            ("link", 5, link),
        ],
    )
    .await;
    let first = customer_with_email(&live, "early@example.com").await;
    let kept = customer_with_email(&live, "q@example.com").await;
    // The profile r came through, merged into q's.
    let merged: Uuid = client(&database.url)
        .await
        .query_one(
            "SELECT customer_id FROM identifiers WHERE value = 'r@example.com'",
            &[],
        )
        .await
        .expect("r's profile")
        .get(0);
    assert_ne!(merged, kept);
    // An admin once read the merged profile by its own id.
    let read = AuditRecord {
        id: Uuid::now_v7(),
        // PostgreSQL keeps microseconds.
        at: chrono::DateTime::from_timestamp_micros(chrono::Utc::now().timestamp_micros())
            .expect("now"),
        actor: "desk-1".into(),
        role: "agent".into(),
        method: "GET".into(),
        route: "/v1/customers/{id}".into(),
        customer_id: Some(merged),
        status: 200,
        identifier_kind: None,
    };
    live.record_audit(std::slice::from_ref(&read))
        .await
        .expect("audit");

    // Each replay reads the events in another order, so every customer is
    // created by another event and gets another id.
    let orders: [&[Scripted<'_>]; 2] = [
        &[
            ("a-2", 2, early),
            ("link", 5, link),
            ("a-1", 1, early),
            ("q", 3, q),
            ("r", 4, r),
        ],
        // The first projection's creators again: their ids are customers
        // once more, and the first replay's ids become the aliases.
        &[
            ("r", 4, r),
            ("a-1", 1, early),
            ("q", 3, q),
            ("a-2", 2, early),
            ("link", 5, link),
        ],
    ];
    // Every id ever given, with the customer (by email) it belongs to.
    let mut known: BTreeMap<Uuid, &str> = BTreeMap::from([
        (first, "early@example.com"),
        (kept, "q@example.com"),
        (merged, "q@example.com"),
    ]);
    let about = |customer: Uuid| AuditQuery {
        customer: Some(customer),
        limit: 10,
        ..AuditQuery::default()
    };
    for (round, order) in orders.iter().enumerate() {
        let schema = format!("replay_{round}");
        let replay = Store::connect_in_schema(&database.url, 2, Some(&schema)).expect("store");
        live.create_schema(&schema).await.expect("schema");
        replay.migrate().await.expect("migrate");
        project(&replay, order).await;
        let replayed: BTreeSet<Uuid> = client(&database.url)
            .await
            .query(&format!("SELECT id FROM {schema}.customers"), &[])
            .await
            .expect("ids")
            .iter()
            .map(|row| row.get(0))
            .collect();
        let switched = live
            .switch_schema(&schema, "live", &format!("live-replay-{round}"))
            .await
            .expect("switch");
        let now = Store::connect(&database.url, 2).expect("store");
        assert_eq!(
            customer_with_email(&now, "q@example.com").await,
            customer_with_email(&now, "r@example.com").await
        );
        let aliases = known.keys().filter(|id| !replayed.contains(id)).count();
        assert!(aliases >= 2, "round {round}: the replay gave other ids");
        assert_eq!(switched.aliases, aliases as u64, "round {round}");
        for (id, email) in &known {
            assert_eq!(
                survivor(&now, *id).await,
                customer_with_email(&now, email).await,
                "round {round}: {id} of {email}"
            );
        }
        // The audit trail of a customer still shows what was read under the
        // ids it had before, asked by its new id or an old one.
        let q_now = customer_with_email(&now, "q@example.com").await;
        for asked in [q_now, kept, merged] {
            assert_eq!(
                now.audit(&about(asked)).await.expect("audit"),
                vec![read.clone()],
                "round {round}: asked by {asked}"
            );
        }
        let early_now = customer_with_email(&now, "early@example.com").await;
        let early_reads = now.audit(&about(early_now)).await.expect("audit");
        assert!(early_reads.is_empty(), "round {round}: {early_reads:?}");
        for id in replayed {
            let email = if survivor(&now, id).await
                == customer_with_email(&now, "early@example.com").await
            {
                "early@example.com"
            } else {
                "q@example.com"
            };
            known.insert(id, email);
        }
    }
}
