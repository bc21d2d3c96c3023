//! Versioned, embedded schema migrations. Applying them is idempotent and
//! safe to run from several processes at once (an advisory lock serialises
//! them); an applied migration whose text changed is refused.

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
        let row = client
            .query_opt("SELECT max(version) FROM schema_migrations", &[])
            .await;
        let latest = MIGRATIONS.last().map_or(0, |m| m.version);
        match row {
            Ok(Some(row)) => Ok(row.get::<_, Option<i32>>(0) == Some(latest)),
            Ok(None) => Ok(false),
            Err(error)
                if error.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) =>
            {
                Ok(false)
            }
            Err(error) => Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, index as i32 + 1);
        }
    }

    #[test]
    fn checksum_notices_edits() {
        assert_eq!(checksum("select 1"), checksum("select 1"));
        assert_ne!(checksum("select 1"), checksum("select 2"));
    }
}
