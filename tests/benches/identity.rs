//! Merge cost against history size: two customers with N events each are
//! merged (and unmerged) by hand, for N = 10, 1,000 and 100,000, on the real
//! PostgreSQL. The baseline, measured in the same run on the same rows, is
//! what a merge that re-points the merged customer's events would pay: one
//! `UPDATE events SET customer_id = ...` over those N rows.
//!
//! `cargo bench -p panorama-e2e --bench identity` (`BENCH_SIZES=10,1000` to
//! change the sizes). Prints one line per size.

use std::time::Instant;

use panorama_core::{EventDraft, ValidationContext};
use panorama_e2e::latency::{median, ms};
use panorama_e2e::{contact_with, epoch};
use panorama_store::{MergeOutcome, PartitionOffset, Store, UnmergeOutcome};
use panorama_testkit::{customer_with_email, migrated_database};
use uuid::Uuid;

const SAMPLES: usize = 5;
const WRITE_BATCH: usize = 5_000;

/// Projects `count` events of one person (identified by `email`) and
/// returns the customer.
async fn customer_with(store: &Store, email: &str, count: usize) -> Uuid {
    let context = ValidationContext::now(None);
    for start in (0..count).step_by(WRITE_BATCH) {
        let events: Vec<_> = (start..count.min(start + WRITE_BATCH))
            .map(|n| {
                let json = contact_with(
                    &format!("{email}-{n}"),
                    epoch() + chrono::Duration::seconds(n as i64),
                    "email",
                    &[("email", email)],
                );
                serde_json::from_value::<EventDraft>(json)
                    .expect("draft")
                    .validate(&context)
                    .expect("valid")
            })
            .collect();
        let offsets: [PartitionOffset; 0] = [];
        store
            .apply_batch("bench", &events, &offsets)
            .await
            .expect("batch");
    }
    customer_with_email(store, email).await
}

fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "10,1000,100000".into())
        .split(',')
        .filter_map(|size| size.trim().parse().ok())
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (database, store) = migrated_database(4).await;
        let (client, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        for size in sizes {
            let mut merges = Vec::new();
            let mut unmerges = Vec::new();
            let mut repoints = Vec::new();
            for sample in 0..SAMPLES {
                let a = customer_with(&store, &format!("a{size}-{sample}@example.com"), size).await;
                let b = customer_with(&store, &format!("b{size}-{sample}@example.com"), size).await;
                let started = Instant::now();
                let outcome = store
                    .merge_customers(a, b, "bench", None)
                    .await
                    .expect("merge");
                merges.push(started.elapsed());
                assert!(matches!(outcome, MergeOutcome::Merged(_)), "{outcome:?}");
                let started = Instant::now();
                let outcome = store.unmerge(a, b, "bench").await.expect("unmerge");
                unmerges.push(started.elapsed());
                assert!(
                    matches!(outcome, UnmergeOutcome::Unmerged(_)),
                    "{outcome:?}"
                );
                // Baseline: re-point the merged customer's events, as a
                // merge that moves history would. The customers are not
                // used again.
                let started = Instant::now();
                let moved = client
                    .execute(
                        "UPDATE events SET customer_id = $1 WHERE customer_id = $2",
                        &[&a, &b],
                    )
                    .await
                    .expect("re-point");
                repoints.push(started.elapsed());
                assert_eq!(moved as usize, size);
            }
            let (merge, unmerge, repoint) = (median(merges), median(unmerges), median(repoints));
            println!(
                "{size:>7} events each: merge {} (baseline re-point {}; ratio {:.3}), unmerge {}",
                ms(merge),
                ms(repoint),
                merge.as_secs_f64() / repoint.as_secs_f64(),
                ms(unmerge),
            );
        }
    });
}
