//! Rebuilding the projection into a fresh schema, and switching over to it.
//!
//! A replay projects the whole topic into schema `NAME` (same migrations,
//! same projector), then [`Store::switch_schema`] swaps it in for `public`
//! in one transaction. Schema names are checked before they are put in
//! DDL, which cannot take them as parameters.

use crate::{Error, Result, Store};

/// Tables that hold what agents and operators did in the database, not
/// events from the topic: a replay cannot rebuild them, so the switch
/// copies them from the schema it replaces. A new table written by people
/// rather than by the projector belongs here (and, if it references
/// customers, needs its customer ids carried over too, which a replay
/// reassigns).
pub const CARRIED_OVER_TABLES: &[&str] = &["api_tokens", "audit_log"];

/// Whether `name` can be a replay schema: lower-case letters, digits and
/// `_`, starting with a letter, at most 48 characters, and not one of
/// PostgreSQL's own or `public`.
pub fn valid_schema_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let starts_well = bytes.next().is_some_and(|first| first.is_ascii_lowercase());
    starts_well
        && name.len() <= 48
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
        && name != "public"
        && !name.starts_with("pg_")
        && name != "information_schema"
}

fn checked(name: &str) -> Result<&str> {
    if valid_schema_name(name) {
        Ok(name)
    } else {
        Err(Error::Config(format!(
            "invalid schema name {name:?}: lower-case letters, digits and _, starting with a letter"
        )))
    }
}

/// What the switch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switched {
    /// What the replaced `public` schema is called now.
    pub previous_schema: String,
    /// Rows copied over per carried-over table.
    pub carried_over: Vec<(String, u64)>,
    /// Customer ids of the replaced projection that the replay did not give
    /// again, now aliases of the customer holding their identifiers.
    pub aliases: u64,
}

impl Store {
    /// Creates `schema` if it does not exist yet.
    #[tracing::instrument(skip(self))]
    pub async fn create_schema(&self, schema: &str) -> Result<()> {
        let schema = checked(schema)?;
        let client = self.pool.get().await?;
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .await?;
        Ok(())
    }

    /// Whether `schema` exists.
    pub async fn schema_exists(&self, schema: &str) -> Result<bool> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                &[&schema],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Identity decisions people made in this store's schema, which a replay
    /// does not bring back: manual merges and unmerges, agent separations
    /// and settled conflicts.
    pub async fn manual_identity_decisions(&self) -> Result<i64> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM identity_history
                          WHERE actor IS NOT NULL OR action = 'unmerge')
                      + (SELECT count(*) FROM identity_separations)
                      + (SELECT count(*) FROM identity_conflicts WHERE resolved_by IS NOT NULL)",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Makes `replacement` the live schema in one transaction: copies the
    /// [`CARRIED_OVER_TABLES`] from `public` into it, makes every customer
    /// id of `public` that the replay did not give again (and every alias)
    /// an alias of the replay's customer that owns one of its identifiers,
    /// so old ids still lead somewhere, stores the replay's
    /// offsets (`replay_group`) under the live projector's group
    /// (`live_group`) so the live projector resumes where the replay ended,
    /// renames `public` to `panorama_old_<unix time>` and `replacement` to
    /// `public`. Waits at most 10 s for the locks. Run it on a store whose
    /// search path is the default one, with every projector stopped.
    #[tracing::instrument(skip(self))]
    pub async fn switch_schema(
        &self,
        replacement: &str,
        live_group: &str,
        replay_group: &str,
    ) -> Result<Switched> {
        let replacement = checked(replacement)?;
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        transaction
            .batch_execute("SET LOCAL lock_timeout = '10s'")
            .await?;
        // Nothing else may write the live projection while it is swapped.
        transaction
            .batch_execute("LOCK TABLE public.consumer_offsets, public.events IN EXCLUSIVE MODE")
            .await?;
        let mut carried_over = Vec::new();
        for table in CARRIED_OVER_TABLES {
            transaction
                .batch_execute(&format!("DELETE FROM \"{replacement}\".{table}"))
                .await?;
            let copied = transaction
                .execute(
                    &format!("INSERT INTO \"{replacement}\".{table} SELECT * FROM public.{table}"),
                    &[],
                )
                .await?;
            carried_over.push(((*table).to_owned(), copied));
        }
        let aliases = transaction
            .execute(
                &include_str!("../sql/carry_over_aliases.sql")
                    .replace("{replacement}", replacement),
                &[],
            )
            .await?;
        transaction
            .execute(
                &format!(
                    "INSERT INTO \"{replacement}\".consumer_offsets
                         (consumer_group, topic, partition, next_offset)
                     SELECT $1, topic, partition, next_offset
                     FROM \"{replacement}\".consumer_offsets WHERE consumer_group = $2
                     ON CONFLICT (consumer_group, topic, partition)
                     DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()"
                ),
                &[&live_group, &replay_group],
            )
            .await?;
        // `panorama_old_<unix time>`, or with `_2`, `_3`, ... when an
        // earlier switch in the same second took that name.
        let stamp = chrono::Utc::now().timestamp();
        let taken = transaction
            .query_one(
                "SELECT count(*) FROM pg_namespace WHERE nspname = $1 OR nspname LIKE $1 || '\\_%'",
                &[&format!("panorama_old_{stamp}")],
            )
            .await?
            .get::<_, i64>(0);
        let previous = match taken {
            0 => format!("panorama_old_{stamp}"),
            taken => format!("panorama_old_{stamp}_{}", taken + 1),
        };
        transaction
            .batch_execute(&format!(
                "ALTER SCHEMA public RENAME TO \"{previous}\";
                 ALTER SCHEMA \"{replacement}\" RENAME TO public;"
            ))
            .await?;
        transaction.commit().await?;
        Ok(Switched {
            previous_schema: previous,
            carried_over,
            aliases,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_schema_names_are_accepted() {
        assert!(valid_schema_name("panorama_replay"));
        assert!(valid_schema_name("r2"));
        for bad in [
            "",
            "public",
            "pg_temp",
            "Replay",
            "2fast",
            "a-b",
            "a\"; DROP",
            "information_schema",
        ] {
            assert!(!valid_schema_name(bad), "{bad:?}");
        }
        assert!(!valid_schema_name(&"a".repeat(49)));
    }
}
