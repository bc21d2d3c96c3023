//! The timeline is written as JSON straight from its rows
//! (`Store::timeline_page`): these pages must be byte for byte what
//! serialising the entries (`Store::timeline_of`) writes, for rows with
//! awkward content: Unicode, every escape, control characters, keys whose
//! `jsonb` order differs from sorted order, keys with escapes, nested
//! values, numbers, NULLs, identifiers stored before trust existed.

use panorama_store::{Store, TimelineCursor, TimelineEntry, TimelineQuery};
use uuid::Uuid;

/// The rows: (occurred_at offset in seconds, identifiers, attributes,
/// consent, the other columns as SQL).
const EVENTS: &[(i64, &str, &str, &str, &str)] = &[
    (
        1,
        r#"[{"kind": "email", "value": "a@example.com"}, {"kind": "phone", "value": "+31612345678", "trust": "claimed"}]"#,
        r#"{"zz": "last by length", "a": "é ü 日本 🎉 \"quoted\" back\\slash", "customer.tier": "gold", "ctl": "\u0001\u001f\n\t\r\b\f\u007f", "rtl": "שלום", "mark": "e\u0301"}"#,
        r#"[{"channel": "email", "purpose": "marketing", "granted": false}]"#,
        "'inbound', 'conv \"1\"', 'reason\nwith newline', 'Sübject', 'Summary \\ / \u{2028}', 'agent-1', 'queue', 42, 'resolved', 0.25, 'nps', 9, 'great \"service\"', 'Zoë', NULL",
    ),
    (
        2,
        r#"[{"kind": "visitor", "value": "v-1", "extra": {"nested": [true, null]}}]"#,
        r#"{"n": 1.50, "e": 1e3, "big": 12345678901234567890123, "neg": -0, "a\"b": "escaped key", "tab\tkey": "x", "nested": {"b": [1, {"y": "z", "x": null}], "a": {}}}"#,
        "NULL",
        "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'NaN', 'csat', NULL, NULL, NULL, now()",
    ),
    (
        3,
        "[]",
        "{}",
        "[]",
        "'outbound', NULL, NULL, NULL, NULL, NULL, NULL, -1, NULL, -0.5, NULL, NULL, NULL, NULL, NULL",
    ),
    (
        3,
        r#"[{"value": "no kind", "zzz": "after trust"}, {"kind": "account", "trust": "verified", "value": "42"}, {}, "not an object"]"#,
        r#"{"": "empty key", "\u00e9": "escaped in the input only", "emoji🎉": "🎉"}"#,
        r#"[{"channel": "any", "purpose": "service", "granted": true}, {"channel": "sms", "purpose": "surveys", "granted": false}]"#,
        "NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, 'ces', 3, NULL, NULL, NULL",
    ),
];

/// One page the way the timeline route wrote it before: entries
/// serialised, one read beyond the page for its cursor.
async fn serialised_page(
    store: &Store,
    id: Uuid,
    query: &TimelineQuery,
) -> Option<(Uuid, Vec<u8>, Option<TimelineCursor>)> {
    let mut wanted = query.clone();
    wanted.limit = query.limit + 1;
    let (customer, mut entries): (Uuid, Vec<TimelineEntry>) =
        store.timeline_of(id, &wanted).await.expect("timeline")?;
    let next = (entries.len() > query.limit).then(|| {
        entries.truncate(query.limit);
        TimelineCursor::after(entries.last().expect("a page"))
    });
    Some((customer, serde_json::to_vec(&entries).expect("json"), next))
}

/// The same page written from the rows.
async fn raw_page(
    store: &Store,
    id: Uuid,
    query: &TimelineQuery,
) -> Option<(Uuid, Vec<u8>, Option<TimelineCursor>)> {
    let page = store.timeline_page(id, query).await.expect("timeline")?;
    let mut out = Vec::new();
    page.write_entries(&mut out);
    assert_eq!(page.len(), page.len().min(query.limit));
    Some((page.customer(), out, page.next_cursor()))
}

#[tokio::test]
async fn pages_written_from_rows_are_the_serialised_entries_byte_for_byte() {
    let (database, store) = panorama_testkit::migrated_database(2).await;
    let (client, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let survivor = Uuid::now_v7();
    let merged = Uuid::now_v7();
    let lonely = Uuid::now_v7();
    client
        .execute(
            "INSERT INTO customers (id, survivor_id) VALUES ($1, $1), ($2, $1), ($3, $3)",
            &[&survivor, &merged, &lonely],
        )
        .await
        .expect("customers");
    for (index, (offset, identifiers, attributes, consent, rest)) in EVENTS.iter().enumerate() {
        // Alternate between the two profiles of the tree.
        let profile = if index % 2 == 0 { survivor } else { merged };
        let consent = if *consent == "NULL" {
            "NULL".to_owned()
        } else {
            format!("$json${consent}$json$")
        };
        let sql = format!(
            "INSERT INTO events (event_id, customer_id, occurred_at, received_at, channel, source,
                 type, identifiers, attributes, consent, direction, conversation_id,
                 contact_reason, subject, summary, agent_id, queue, duration_seconds, outcome,
                 sentiment, feedback_metric, feedback_score, feedback_comment, display_name,
                 anonymised_at)
             VALUES ('{}', '{profile}', timestamptz '2026-01-01T00:00:00Z' + interval '{offset} seconds',
                 now(), 'email', 'src \"q\"', 'email.received', $json${identifiers}$json$,
                 $json${attributes}$json$, {consent}, {rest})",
            Uuid::now_v7(),
        );
        client
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|error| panic!("event {index}: {error}"));
    }

    for limit in [1, 2, 3, 50] {
        for asked in [survivor, merged] {
            let mut query = TimelineQuery {
                limit,
                ..TimelineQuery::default()
            };
            let mut pages = 0;
            loop {
                let old = serialised_page(&store, asked, &query).await.expect("found");
                let new = raw_page(&store, asked, &query).await.expect("found");
                assert_eq!(old.0, new.0, "the survivor");
                assert_eq!(
                    String::from_utf8_lossy(&new.1),
                    String::from_utf8_lossy(&old.1),
                    "limit {limit}, page {pages}"
                );
                assert_eq!(old.1, new.1, "the same bytes");
                assert_eq!(old.2, new.2, "the same next cursor");
                let parsed: serde_json::Value = serde_json::from_slice(&new.1).expect("JSON");
                assert!(
                    parsed
                        .as_array()
                        .is_some_and(|entries| entries.len() <= limit)
                );
                pages += 1;
                match new.2 {
                    Some(cursor) => query.cursor = Some(cursor),
                    None => break,
                }
            }
            assert_eq!(pages, EVENTS.len().div_ceil(limit).max(1), "limit {limit}");
        }
    }

    // A customer without events: a page without entries; nobody: none.
    let query = TimelineQuery {
        limit: 10,
        ..TimelineQuery::default()
    };
    let old = serialised_page(&store, lonely, &query)
        .await
        .expect("found");
    let new = raw_page(&store, lonely, &query).await.expect("found");
    assert_eq!((old.0, &old.1[..], old.2), (lonely, &b"[]"[..], None));
    assert_eq!((new.0, &new.1[..], new.2), (lonely, &b"[]"[..], None));
    assert!(raw_page(&store, Uuid::now_v7(), &query).await.is_none());
    assert!(
        serialised_page(&store, Uuid::now_v7(), &query)
            .await
            .is_none()
    );
}
