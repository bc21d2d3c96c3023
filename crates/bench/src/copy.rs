//! The baseline: a binary `COPY` of exactly the `events` rows the
//! projector wrote for a workload (same ids, customers and columns, every
//! value byte for byte) into a table made `LIKE events INCLUDING ALL`, so
//! it has the same indexes and defaults.

use std::error::Error as StdError;
use std::time::Instant;

use bytes::BytesMut;
use futures::pin_mut;
use tokio_postgres::Client;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use uuid::Uuid;

/// A column value in PostgreSQL's binary format, passed through as read.
#[derive(Debug, Clone)]
struct Raw(Option<Vec<u8>>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Raw(Some(raw.to_vec())))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Raw(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

impl ToSql for Raw {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match &self.0 {
            Some(bytes) => {
                out.extend_from_slice(bytes);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Copies the stored `events` rows of `ids` into a fresh table shaped and
/// indexed like `events` with one binary `COPY` (its own transaction,
/// committed durably), and returns (rows, seconds). The table is dropped
/// afterwards.
pub(crate) async fn copy_rows(
    client: &Client,
    ids: &[Uuid],
    table: &str,
) -> anyhow::Result<(u64, f64)> {
    let rows = client
        .query(
            "SELECT e.* FROM unnest($1::uuid[]) AS q (id) JOIN events AS e ON e.event_id = q.id",
            &[&ids],
        )
        .await?;
    let Some(first) = rows.first() else {
        anyhow::bail!("none of the workload's events is in the events table");
    };
    let types: Vec<Type> = first
        .columns()
        .iter()
        .map(|column| column.type_().clone())
        .collect();
    let values: Vec<Vec<Raw>> = rows
        .iter()
        .map(|row| {
            (0..types.len())
                .map(|index| row.get::<_, Raw>(index))
                .collect()
        })
        .collect();
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (LIKE events INCLUDING ALL)"
        ))
        .await?;
    // Let the table's creation reach disk before the clock starts.
    client.batch_execute("CHECKPOINT").await?;
    let started = Instant::now();
    let sink = client
        .copy_in(&format!("COPY {table} FROM STDIN (FORMAT binary)"))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    for row in &values {
        let refs: Vec<&(dyn ToSql + Sync)> = row
            .iter()
            .map(|value| value as &(dyn ToSql + Sync))
            .collect();
        writer.as_mut().write(&refs).await?;
    }
    let copied = writer.finish().await?;
    let seconds = started.elapsed().as_secs_f64();
    client.batch_execute(&format!("DROP TABLE {table}")).await?;
    Ok((copied, seconds))
}
