//! Versioned, embedded schema migrations. Applying them is idempotent and
//! safe to run from several processes at once (an advisory lock serialises
//! them); an applied migration whose text changed is refused.
//!
//! Versions only have to increase; a gap is allowed. Each version is applied
//! once, whatever else is applied already, so a lower version that arrives
//! later (work on two branches that took numbers side by side) is applied on
//! the next `migrate`. Such migrations must therefore not depend on each
//! other.

use crate::{Error, Result, Store};

struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "identity",
        sql: include_str!("../migrations/0002_identity.sql"),
    },
    Migration {
        version: 3,
        name: "access",
        sql: include_str!("../migrations/0003_access.sql"),
    },
    Migration {
        version: 4,
        name: "changes",
        sql: include_str!("../migrations/0004_changes.sql"),
    },
    Migration {
        version: 5,
        name: "agent view",
        sql: include_str!("../migrations/0005_agent_view.sql"),
    },
    Migration {
        version: 6,
        name: "customer aliases",
        sql: include_str!("../migrations/0006_customer_aliases.sql"),
    },
    Migration {
        version: 7,
        name: "reliability",
        sql: include_str!("../migrations/0007_reliability.sql"),
    },
    Migration {
        version: 8,
        name: "audit lookups",
        sql: include_str!("../migrations/0008_audit_lookups.sql"),
    },
    Migration {
        version: 9,
        name: "identifier trust",
        sql: include_str!("../migrations/0009_identifier_trust.sql"),
    },
    Migration {
        version: 10,
        name: "event fingerprints",
        sql: include_str!("../migrations/0010_event_fingerprints.sql"),
    },
    Migration {
        version: 11,
        name: "token sources",
        sql: include_str!("../migrations/0011_token_sources.sql"),
    },
    Migration {
        version: 12,
        name: "consent",
        sql: include_str!("../migrations/0012_consent.sql"),
    },
    Migration {
        version: 13,
        name: "privacy",
        sql: include_str!("../migrations/0013_privacy.sql"),
    },
    Migration {
        version: 14,
        name: "erasure indexes",
        sql: include_str!("../migrations/0014_erasure_indexes.sql"),
    },
    Migration {
        version: 15,
        name: "retention",
        sql: include_str!("../migrations/0015_retention.sql"),
    },
    Migration {
        version: 16,
        name: "change feed",
        sql: include_str!("../migrations/0016_change_feed.sql"),
    },
    Migration {
        version: 17,
        name: "webhooks",
        sql: include_str!("../migrations/0017_webhooks.sql"),
    },
    Migration {
        version: 18,
        name: "traits",
        sql: include_str!("../migrations/0018_traits.sql"),
    },
    Migration {
        version: 19,
        name: "webhook erasure",
        sql: include_str!("../migrations/0019_webhook_erasure.sql"),
    },
    Migration {
        version: 20,
        name: "outbox notify",
        sql: include_str!("../migrations/0020_outbox_notify.sql"),
    },
    Migration {
        version: 21,
        name: "change rows",
        sql: include_str!("../migrations/0021_change_rows.sql"),
    },
    Migration {
        version: 22,
        name: "rollup shards",
        sql: include_str!("../migrations/0022_rollup_shards.sql"),
    },
    Migration {
        version: 23,
        name: "write path storage",
        sql: include_str!("../migrations/0023_write_path_storage.sql"),
    },
];

/// Advisory lock key for migrations ("panomigr" in ASCII).
const MIGRATION_LOCK: i64 = 0x7061_6e6f_6d69_6772;

/// FNV-1a, enough to notice an edited migration.
fn checksum(sql: &str) -> String {
    let hash = sql.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

impl Store {
    /// Applies every migration not applied yet; returns how many ran.
    #[tracing::instrument(skip(self))]
    pub async fn migrate(&self) -> Result<usize> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        transaction
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                    version    integer PRIMARY KEY,
                    name       text NOT NULL,
                    checksum   text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())",
            )
            .await?;
        let applied = transaction
            .query("SELECT version, checksum FROM schema_migrations", &[])
            .await?;
        let mut ran = 0;
        for migration in MIGRATIONS {
            let sum = checksum(migration.sql);
            let existing = applied
                .iter()
                .find(|row| row.get::<_, i32>(0) == migration.version);
            match existing {
                Some(row) if row.get::<_, String>(1) == sum => continue,
                Some(_) => {
                    return Err(Error::Migration(format!(
                        "migration {} ({}) was changed after it was applied",
                        migration.version, migration.name
                    )));
                }
                None => {}
            }
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "applying migration"
            );
            transaction.batch_execute(migration.sql).await?;
            transaction
                .execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    &[&migration.version, &migration.name, &sum],
                )
                .await?;
            ran += 1;
        }
        transaction.commit().await?;
        Ok(ran)
    }

    /// Whether every embedded migration has been applied (and no newer one
    /// this build does not know).
    pub async fn migrations_current(&self) -> Result<bool> {
        let client = self.pool.get().await?;
        let rows = client
            .query("SELECT version FROM schema_migrations", &[])
            .await;
        let applied: Vec<i32> = match rows {
            Ok(rows) => rows.iter().map(|row| row.get(0)).collect(),
            Err(error)
                if error.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) =>
            {
                return Ok(false);
            }
            Err(error) => return Err(error.into()),
        };
        Ok(schema_is_current(&applied))
    }
}

/// Every embedded version applied, and nothing newer than the newest.
fn schema_is_current(applied: &[i32]) -> bool {
    let latest = MIGRATIONS.last().map_or(0, |m| m.version);
    MIGRATIONS
        .iter()
        .all(|migration| applied.contains(&migration.version))
        && applied.iter().all(|version| *version <= latest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_versions_increase_and_files_match() {
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].version < pair[1].version, "versions must increase");
        }
        assert!(MIGRATIONS.iter().all(|m| m.version > 0));
    }

    #[test]
    fn current_means_every_embedded_version_and_nothing_newer() {
        let all: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert!(schema_is_current(&all));
        assert!(!schema_is_current(&all[..all.len() - 1]));
        assert!(!schema_is_current(&[]));
        let mut newer = all.clone();
        newer.push(all[all.len() - 1] + 1);
        assert!(!schema_is_current(&newer));
        // A version this build does not embed, below the newest (a gap
        // another build filled), does not make the schema stale.
        let mut gap_filled = all.clone();
        gap_filled.push(2);
        assert!(schema_is_current(&gap_filled));
    }

    #[test]
    fn checksum_notices_edits() {
        assert_eq!(checksum("select 1"), checksum("select 1"));
        assert_ne!(checksum("select 1"), checksum("select 2"));
    }
}
