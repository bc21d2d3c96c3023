//! Sealed records on the topic (docs/privacy.md): nothing personal is
//! readable in a record's key or value; destroying a person's subject keys
//! makes every record naming them unreadable, so a replay does not bring
//! them back; and the gateway drops the events of a suppressed person.

use std::collections::BTreeSet;

use panorama_e2e::{at_minute, contact_with};
use panorama_proto::sealed::{Record, SubjectSecret, decode_record};
use panorama_testkit::{TestApp, WAIT, eventually};
use serde_json::json;

#[path = "support/topic.rs"]
mod topic;
use topic::read_records;

/// An event of a person with a name and words nobody else uses.
fn call(event_id: &str, phone: &str, email: &str, name: &str) -> serde_json::Value {
    let mut event = contact_with(
        event_id,
        at_minute(1),
        "phone",
        &[("phone", phone), ("email", email)],
    );
    event["display_name"] = json!(name);
    event["summary"] = json!(format!("{name} asks about parcel Zeppelin-42"));
    event
}

/// The subjects of `identifiers` (kind, value) under the app's secret, as
/// the `bytea` literal list SQL takes.
async fn subjects_sql(app: &TestApp, identifiers: &[(&str, &str)]) -> String {
    let secret = SubjectSecret::new(&app.store.subject_secret().await.expect("secret"));
    identifiers
        .iter()
        .map(|(kind, value)| {
            let identifier =
                panorama_core::Identifier::parse(kind.parse().expect("kind"), value, None)
                    .expect("identifier");
            format!("'\\x{}'::bytea", secret.subject(&identifier).to_hex())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.psql(sql).await.trim().parse().expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_show_nothing_personal_and_still_project() {
    let app = TestApp::spawn().await;
    let phone = "+31687001122";
    let email = "mirjam.sealed@example.org";
    let name = "Mirjam Verzegeld";
    assert_eq!(
        app.post_events(&call("sealed-1", phone, email, name))
            .await
            .status(),
        202
    );
    app.wait_for_events(1).await;
    let records = read_records(&app, &app.options.kafka.topic, 1).await;
    assert_eq!(records.len(), 1);
    let record = &records[0];
    let payload = record.payload.as_deref().expect("payload");
    let key = record.key.as_deref().expect("key");
    for personal in [phone, &phone[1..], email, name, "Zeppelin-42"] {
        for (what, bytes) in [("value", payload), ("key", key)] {
            assert!(
                !bytes
                    .windows(personal.len())
                    .any(|window| window == personal.as_bytes()),
                "{personal} readable in the record's {what}"
            );
        }
    }
    assert!(matches!(decode_record(payload), Ok(Record::Sealed(_))));
    // The projection has it all.
    let shown = app
        .psql("SELECT display_name FROM customers WHERE display_name IS NOT NULL")
        .await;
    assert_eq!(shown.trim(), name);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_persons_keys_their_records_stay_unread_and_their_events_are_dropped() {
    let app = TestApp::builder()
        .configure(|options| {
            // Every publish reads keys and suppressions afresh.
            options.privacy.key_cache = std::time::Duration::ZERO;
        })
        .spawn()
        .await;
    let (gone_phone, gone_email) = ("+31687003344", "gone@example.org");
    let (kept_phone, kept_email) = ("+31687005566", "kept@example.org");
    let (lost_phone, lost_email) = ("+31687007788", "lost@example.org");
    for (id, phone, email, name) in [
        ("gone-1", gone_phone, gone_email, "Gerrit Weg"),
        ("gone-2", gone_phone, gone_email, "Gerrit Weg"),
        ("kept-1", kept_phone, kept_email, "Karin Blijft"),
        ("lost-1", lost_phone, lost_email, "Lotte Kwijt"),
    ] {
        assert_eq!(
            app.post_events(&call(id, phone, email, name))
                .await
                .status(),
            202
        );
    }
    app.wait_for_events(4).await;

    // What an erasure does to the keys: destroy them, suppress the subjects.
    let gone = subjects_sql(&app, &[("phone", gone_phone), ("email", gone_email)]).await;
    app.psql(&format!(
        "DELETE FROM panorama_privacy.subject_keys WHERE subject IN ({gone});
         INSERT INTO panorama_privacy.suppressions (subject, kind)
         SELECT s, 'phone' FROM unnest(ARRAY[{gone}]) AS s;"
    ))
    .await;
    // Only the key of one identifier of another person: every record that
    // names it stays shut, whatever else it names.
    let lost = subjects_sql(&app, &[("email", lost_email)]).await;
    app.psql(&format!(
        "DELETE FROM panorama_privacy.subject_keys WHERE subject IN ({lost})"
    ))
    .await;

    // A late event of the erased person: answered as usual, never stored.
    let late = call("gone-late", gone_phone, gone_email, "Gerrit Weg");
    assert_eq!(app.post_events(&late).await.status(), 202);
    eventually("the late event counted as suppressed", WAIT, || async {
        let metrics = app.metrics_text().await;
        metrics
            .lines()
            .any(|line| {
                line.starts_with("panorama_ingest_events_total")
                    && line.contains("outcome=\"suppressed\"")
                    && !line.ends_with(" 0")
            })
            .then_some(())
    })
    .await;
    let on_topic = app.records_in(&app.options.kafka.topic).await;
    assert_eq!(on_topic, 4, "the suppressed event was not published");

    // A replay into a fresh schema reads the same records: the erased
    // person's do not open, the other's do.
    let report = panorama::replay::replay(
        &app.options,
        &panorama::replay::ReplayOptions::new("sealed_replay"),
    )
    .await
    .expect("replay");
    assert_eq!(report.records, 4);
    let replayed: BTreeSet<String> = app
        .psql("SELECT event_id FROM sealed_replay.events")
        .await
        .lines()
        .map(str::to_owned)
        .collect();
    let kept_id = app
        .psql("SELECT event_id FROM public.events WHERE summary LIKE 'Karin%'")
        .await;
    assert_eq!(replayed, BTreeSet::from([kept_id.trim().to_owned()]));
    for table in ["events", "identifiers", "customers"] {
        let back = count(
            &app,
            &format!(
                "SELECT count(*) FROM sealed_replay.{table} AS t
                 WHERE t::text LIKE '%gone@example.org%' OR t::text LIKE '%Gerrit%'
                    OR t::text LIKE '%87003344%' OR t::text LIKE '%Lotte%'
                    OR t::text LIKE '%87007788%'"
            ),
        )
        .await;
        assert_eq!(back, 0, "an erased person is back in {table}");
    }
    let metrics = app.metrics_text().await;
    for reason in ["erased", "suppressed"] {
        let series = format!("panorama_projector_erased_records_total{{reason=\"{reason}\"}}");
        assert!(
            metrics
                .lines()
                .any(|line| line.starts_with(&series) && !line.ends_with(" 0")),
            "skipped records are counted: {reason}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_asking_for_the_subject_secret_at_once_get_the_same_one() {
    let app = TestApp::spawn().await;
    // Nothing was sealed yet, so the secret does not exist: every caller
    // races to make it, and all must come back with the one that won.
    let asks = (0..16).map(|_| {
        let store = app.store.clone();
        tokio::spawn(async move { store.subject_secret().await })
    });
    let mut secrets = BTreeSet::new();
    for ask in asks {
        secrets.insert(ask.await.expect("task").expect("a secret"));
    }
    assert_eq!(secrets.len(), 1);
    app.stop().await;
}
