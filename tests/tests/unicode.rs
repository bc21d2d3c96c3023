//! Whatever the gateway accepts, the projection can write. Events with every
//! field filled with arbitrary Unicode at and near the contract's limits
//! (four-byte text, characters that grow in lower case, combining marks,
//! right-to-left text, noncharacters) and agent actions (tasks, cases,
//! notes) are validated as the gateway does, read back through the wire
//! format as the projector reads them, and written with `apply_batch` into a
//! real PostgreSQL, whose index entries are limited in bytes.

use std::cell::Cell;

use panorama_core::arbitrary::draft_in_context;
use panorama_store::Store;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

/// Batches to write: enough to reach every limit, few enough to stay well
/// under a minute.
const BATCHES: u32 = 128;

/// Runs `sql` (one number) in the test's database.
fn number(database: &str, sql: &str) -> i64 {
    let out = panorama_testkit::postgres()
        .psql(database, sql)
        .expect("psql");
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{sql}: {out:?}"))
}

#[test]
fn whatever_validates_is_decoded_unchanged_and_written() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let database = panorama_testkit::postgres()
        .create_database()
        .expect("database");
    let store = Store::connect(&database.url, 2).expect("store");
    runtime.block_on(store.migrate()).expect("migrate");

    let accepted = Cell::new(0usize);
    // Seeded, so the reach checks below hold on every run rather than on
    // most; PANORAMA_UNICODE_SEED explores other batches.
    let seed: u64 = std::env::var("PANORAMA_UNICODE_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(1203);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: BATCHES,
            // A failing batch is rolled back, so it fails again while it
            // shrinks; keep shrinking short all the same.
            max_shrink_iters: 256,
            failure_persistence: None,
            ..Config::default()
        },
        rng,
    );
    let batches = proptest::collection::vec(draft_in_context(), 2..=6);
    let result = runner.run(&batches, |drafts| {
        let mut events = Vec::new();
        for (context, draft) in drafts {
            let Ok(event) = draft.validate(&context) else {
                continue;
            };
            // The projector decodes the record, which validates it again.
            let decoded = panorama_proto::decode(&panorama_proto::encode(&event))
                .map_err(|error| TestCaseError::fail(format!("accepted, then {error}")))?;
            prop_assert_eq!(&decoded, &event);
            events.push(decoded);
        }
        runtime
            .block_on(store.apply_batch("unicode", &events, &[]))
            .map_err(|error| TestCaseError::fail(format!("accepted, then {error}")))?;
        accepted.set(accepted.get() + events.len());
        Ok(())
    });
    if let Err(error) = result {
        panic!("seed {seed}: {error}");
    }

    // The property says little unless the batches held many events, and
    // reached the limits where PostgreSQL's are near.
    let name = &database.name;
    let written = number(name, "SELECT count(*) FROM events");
    assert!(
        written >= i64::from(BATCHES),
        "only {written} events written ({} accepted)",
        accepted.get()
    );
    let conversation = number(
        name,
        "SELECT coalesce(max(octet_length(c)), 0) FROM cases, unnest(conversation_ids) AS c",
    );
    assert!(
        conversation > 1500,
        "longest indexed conversation id: {conversation} bytes"
    );
    let assignee = number(
        name,
        "SELECT coalesce(max(octet_length(assignee)), 0) FROM tasks",
    );
    assert!(assignee > 400, "longest task assignee: {assignee} bytes");
    let identifier = number(
        name,
        "SELECT coalesce(max(octet_length(value)), 0) FROM identifiers",
    );
    assert!(identifier > 400, "longest identifier: {identifier} bytes");
}
