//! A customer export: everything held about a person, as one JSON document
//! streamed while it is read (the privacy export behind
//! `GET /v1/customers/{id}/export`).
//!
//! What it covers: the customer and every profile merged into it (its
//! merge tree, found from any id that leads to it), their identifiers with
//! sources and first and last sightings, aggregates, contact preferences
//! (consent), cases, tasks, the
//! identity history, conflicts and separations naming any of them, the
//! change log, dead letters naming their events, the whole event history
//! (notes and survey answers are events) and the audit trail about them.
//! `records.rs` has one record type per table, `sections.rs` the queries.
//!
//! How: one `REPEATABLE READ READ ONLY` transaction, so every list comes
//! from one snapshot, taken before [`Store::export`] returns (before the
//! export's own audit entry is written). Each list is read through a
//! portal (a server-side cursor), [`EXPORT_PAGE_ROWS`] rows per round trip,
//! and written out as it is read, in chunks of about
//! [`EXPORT_CHUNK_BYTES`]. The reading runs only while the reader asks for
//! the next chunk, and at most one finished chunk waits for it, so the
//! memory an export holds is one page of rows and two chunks, whatever the
//! length of the history; a reader that stops reading stops the queries.
//! The connection stays out of the pool until the document is complete or
//! the stream is dropped (the transaction is then rolled back).

mod records;
mod sections;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt as _};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_postgres::IsolationLevel;
use tokio_postgres::types::ToSql;
use tracing::Instrument as _;
use uuid::Uuid;

pub use records::{
    CustomerExport, ExportAlias, ExportAttribute, ExportCase, ExportChange, ExportChannel,
    ExportConflict, ExportConsent, ExportCustomer, ExportDailyContacts, ExportDeadLetter,
    ExportEvent, ExportFeedback, ExportHistory, ExportIdentifier, ExportSeparation, ExportTask,
};

use self::records::FromRow;
use super::identity::SURVIVOR_OF;
use crate::{AuditRecord, Error, Result, Store};

/// Rows read per round trip of a list.
pub const EXPORT_PAGE_ROWS: usize = 500;
/// Bytes gathered before they are handed to the reader as a chunk (a
/// chunk may exceed it by one record).
pub const EXPORT_CHUNK_BYTES: usize = 64 * 1024;
/// The document's `format`: what it is and the version of its shape.
pub const EXPORT_FORMAT: &str = "panorama.customer-export.v1";

/// What the reading side hands to the stream.
enum Produced {
    /// The customer the id leads to (`None`: no customer), before any
    /// bytes.
    Found(Option<Uuid>),
    /// The next bytes of the document.
    Bytes(Vec<u8>),
}

/// Why the reading side stopped before the end.
enum Stop {
    /// The stream was dropped (the client left): nobody to tell.
    Gone,
    /// A query failed, or a record could not be encoded.
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(error: Error) -> Self {
        Stop::Failed(error)
    }
}

impl From<tokio_postgres::Error> for Stop {
    fn from(error: tokio_postgres::Error) -> Self {
        Stop::Failed(error.into())
    }
}

/// The reading side of an export, polled by the stream.
type Producer = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The chunks of an export: polls the reading side, which runs only while
/// the stream is polled and blocks once a chunk waits unread, and passes
/// on what it sends.
struct Chunks {
    producer: Option<Producer>,
    receiver: mpsc::Receiver<Result<Produced>>,
}

impl Stream for Chunks {
    type Item = Result<Produced>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(producer) = this.producer.as_mut()
            && producer.as_mut().poll(cx).is_ready()
        {
            this.producer = None;
        }
        // The reading side drops its sender when it is done, so the
        // channel ends once its last chunk is taken.
        this.receiver.poll_recv(cx)
    }
}

/// A customer export as a stream of JSON chunks that make up one
/// [`CustomerExport`] document. An `Err` item means the document is
/// incomplete: the reader must not take what it got for the whole.
pub struct ExportStream {
    customer_id: Uuid,
    requested_id: Uuid,
    chunks: Chunks,
}

impl std::fmt::Debug for ExportStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportStream")
            .field("customer_id", &self.customer_id)
            .field("requested_id", &self.requested_id)
            .finish_non_exhaustive()
    }
}

impl ExportStream {
    /// The customer exported: the survivor of the id asked for.
    pub fn customer_id(&self) -> Uuid {
        self.customer_id
    }

    /// The id asked for.
    pub fn requested_id(&self) -> Uuid {
        self.requested_id
    }
}

impl Stream for ExportStream {
    type Item = Result<Vec<u8>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            return match std::task::ready!(self.chunks.poll_next_unpin(cx)) {
                Some(Ok(Produced::Bytes(bytes))) => Poll::Ready(Some(Ok(bytes))),
                Some(Ok(Produced::Found(_))) => continue,
                Some(Err(error)) => Poll::Ready(Some(Err(error))),
                None => Poll::Ready(None),
            };
        }
    }
}

impl Store {
    /// Everything held about the customer `id` leads to (itself, the
    /// survivor it was merged into, or the customer an alias leads to) as
    /// a stream of JSON chunks; `None` when no customer has that id. The
    /// snapshot the whole document is read from is taken before this
    /// returns. See the module documentation for what it covers and how.
    #[tracing::instrument(skip(self))]
    pub async fn export(&self, id: Uuid) -> Result<Option<ExportStream>> {
        let client = self.pool.get().await?;
        // One chunk in the channel at most: the reading side waits for the
        // reader rather than reading ahead.
        let (sender, receiver) = mpsc::channel(1);
        let span = tracing::info_span!("customer_export", requested = %id);
        let producer = Box::pin(produce(client, id, Utc::now(), sender).instrument(span));
        let mut chunks = Chunks {
            producer: Some(producer),
            receiver,
        };
        match chunks.next().await {
            Some(Ok(Produced::Found(Some(customer_id)))) => Ok(Some(ExportStream {
                customer_id,
                requested_id: id,
                chunks,
            })),
            Some(Err(error)) => Err(error),
            // The reading side reports what it found before anything else;
            // it ended without a word only if there was no one to find.
            Some(Ok(Produced::Found(None) | Produced::Bytes(_))) | None => Ok(None),
        }
    }
}

/// The reading side: writes the document into the channel, reporting a
/// failure as the stream's last item.
async fn produce(
    mut client: deadpool_postgres::Object,
    requested: Uuid,
    exported_at: DateTime<Utc>,
    sender: mpsc::Sender<Result<Produced>>,
) {
    match write(&mut client, requested, exported_at, &sender).await {
        Ok(()) => tracing::debug!("customer export complete"),
        Err(Stop::Gone) => tracing::info!("customer export ended early: the reader left"),
        Err(Stop::Failed(error)) => {
            tracing::error!(%error, "customer export failed");
            // Nobody to tell when the reader is gone too.
            let _ = sender.send(Err(error)).await;
        }
    }
}

/// Reads everything about the customer `requested` leads to in one
/// snapshot and writes it as the export document.
async fn write(
    client: &mut deadpool_postgres::Object,
    requested: Uuid,
    exported_at: DateTime<Utc>,
    sender: &mpsc::Sender<Result<Produced>>,
) -> Result<(), Stop> {
    let transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    // The first statement takes the snapshot every list is read from.
    let survivor_of = transaction.prepare_cached(SURVIVOR_OF).await?;
    let survivor: Option<Uuid> = transaction
        .query_opt(&survivor_of, &[&requested])
        .await?
        .map(|row| row.get(0));
    let Some(survivor) = survivor else {
        transaction.commit().await?;
        return send(sender, Produced::Found(None)).await;
    };
    let ids = |rows: Vec<tokio_postgres::Row>| -> Vec<Uuid> {
        rows.iter().map(|row| row.get(0)).collect()
    };
    let profiles = transaction.prepare_cached(sections::PROFILES).await?;
    let profiles = ids(transaction.query(&profiles, &[&survivor]).await?);
    let aliases = transaction.prepare_cached(sections::ALIAS_IDS).await?;
    let aliases = ids(transaction.query(&aliases, &[&profiles]).await?);
    // Audit entries name the id as asked for: any profile, or an alias.
    let subjects: Vec<Uuid> = profiles.iter().chain(&aliases).copied().collect();
    send(sender, Produced::Found(Some(survivor))).await?;

    let mut document = Document::new(sender);
    document.value("format", &EXPORT_FORMAT)?;
    document.value("exported_at", &exported_at)?;
    document.value("requested_id", &requested)?;
    document.value("customer_id", &survivor)?;
    let customer = transaction.prepare_cached(sections::CUSTOMER).await?;
    let customer = transaction.query_one(&customer, &[&survivor]).await?;
    document.value("customer", &ExportCustomer::from_row(&customer)?)?;
    let tree = &profiles;
    document
        .list::<ExportCustomer>(
            &transaction,
            "merged_profiles",
            sections::MERGED_PROFILES,
            &survivor,
        )
        .await?;
    document
        .list::<ExportAlias>(&transaction, "aliases", sections::ALIASES, tree)
        .await?;
    document
        .list::<ExportIdentifier>(&transaction, "identifiers", sections::IDENTIFIERS, tree)
        .await?;
    document
        .list::<ExportChannel>(&transaction, "channels", sections::CHANNELS, tree)
        .await?;
    document
        .list::<ExportDailyContacts>(
            &transaction,
            "daily_contacts",
            sections::DAILY_CONTACTS,
            tree,
        )
        .await?;
    document
        .list::<ExportAttribute>(&transaction, "attributes", sections::ATTRIBUTES, tree)
        .await?;
    document
        .list::<ExportFeedback>(&transaction, "feedback", sections::FEEDBACK, tree)
        .await?;
    document
        .list::<ExportConsent>(&transaction, "consent", sections::CONSENT, tree)
        .await?;
    document
        .list::<ExportCase>(&transaction, "cases", sections::CASES, tree)
        .await?;
    document
        .list::<ExportTask>(&transaction, "tasks", sections::TASKS, tree)
        .await?;
    document
        .list::<ExportHistory>(
            &transaction,
            "identity_history",
            sections::IDENTITY_HISTORY,
            tree,
        )
        .await?;
    document
        .list::<ExportConflict>(
            &transaction,
            "identity_conflicts",
            sections::IDENTITY_CONFLICTS,
            tree,
        )
        .await?;
    document
        .list::<ExportSeparation>(
            &transaction,
            "identity_separations",
            sections::IDENTITY_SEPARATIONS,
            tree,
        )
        .await?;
    document
        .list::<ExportChange>(&transaction, "changes", sections::CHANGES, tree)
        .await?;
    document
        .list::<ExportDeadLetter>(&transaction, "dead_letters", sections::DEAD_LETTERS, tree)
        .await?;
    document
        .list::<ExportEvent>(&transaction, "events", sections::EVENTS, tree)
        .await?;
    document
        .list::<AuditRecord>(&transaction, "audit", sections::AUDIT, &subjects)
        .await?;
    transaction.commit().await?;
    document.finish().await
}

/// Hands `produced` to the stream; [`Stop::Gone`] when it was dropped.
async fn send(sender: &mpsc::Sender<Result<Produced>>, produced: Produced) -> Result<(), Stop> {
    sender.send(Ok(produced)).await.map_err(|_| Stop::Gone)
}

/// The document being written: one JSON object, member by member, handed
/// to the stream a chunk at a time.
struct Document<'a> {
    sender: &'a mpsc::Sender<Result<Produced>>,
    buffer: Vec<u8>,
    members: usize,
}

impl<'a> Document<'a> {
    fn new(sender: &'a mpsc::Sender<Result<Produced>>) -> Self {
        Document {
            sender,
            buffer: Vec::with_capacity(EXPORT_CHUNK_BYTES),
            members: 0,
        }
    }

    /// Starts the member `name` (a fixed ASCII name, no escaping needed).
    fn member(&mut self, name: &str) {
        self.buffer
            .push(if self.members == 0 { b'{' } else { b',' });
        self.members += 1;
        self.buffer.push(b'"');
        self.buffer.extend_from_slice(name.as_bytes());
        self.buffer.extend_from_slice(b"\":");
    }

    /// Writes the member `name` with one value.
    fn value<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<(), Stop> {
        self.member(name);
        serde_json::to_writer(&mut self.buffer, value).map_err(Error::from)?;
        Ok(())
    }

    /// Writes the member `name` as the list of the rows `sql` selects with
    /// `key` as `$1`, read through a portal a page at a time and handed on
    /// a chunk at a time.
    async fn list<T: FromRow + Serialize>(
        &mut self,
        transaction: &deadpool_postgres::Transaction<'_>,
        name: &str,
        sql: &str,
        key: &(dyn ToSql + Sync),
    ) -> Result<(), Stop> {
        self.member(name);
        self.buffer.push(b'[');
        let statement = transaction.prepare_cached(sql).await?;
        let portal = transaction.bind(&statement, &[key]).await?;
        let page = i32::try_from(EXPORT_PAGE_ROWS).unwrap_or(i32::MAX);
        let mut first = true;
        loop {
            let rows = transaction.query_portal(&portal, page).await?;
            for row in &rows {
                if !first {
                    self.buffer.push(b',');
                }
                first = false;
                serde_json::to_writer(&mut self.buffer, &T::from_row(row)?).map_err(Error::from)?;
                if self.buffer.len() >= EXPORT_CHUNK_BYTES {
                    self.flush().await?;
                }
            }
            if rows.len() < EXPORT_PAGE_ROWS {
                break;
            }
        }
        self.buffer.push(b']');
        Ok(())
    }

    /// Hands what is written so far to the stream, waiting while the
    /// previous chunk is unread.
    async fn flush(&mut self) -> Result<(), Stop> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(EXPORT_CHUNK_BYTES));
        send(self.sender, Produced::Bytes(chunk)).await
    }

    /// Closes the document and hands on the rest.
    async fn finish(mut self) -> Result<(), Stop> {
        if self.members == 0 {
            self.buffer.push(b'{');
        }
        self.buffer.push(b'}');
        self.flush().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// The reading side gets as far as the reader has read, plus one chunk
    /// waiting in the channel and one being written, however long the
    /// document: what bounds an export's memory.
    #[tokio::test]
    async fn the_reading_side_never_runs_ahead_of_the_reader() {
        let written = Arc::new(AtomicUsize::new(0));
        let (sender, receiver) = mpsc::channel(1);
        let counter = Arc::clone(&written);
        let producer: Producer = Box::pin(async move {
            for chunk in 0..1_000u32 {
                counter.fetch_add(1, Ordering::SeqCst);
                let bytes = chunk.to_be_bytes().to_vec();
                if sender.send(Ok(Produced::Bytes(bytes))).await.is_err() {
                    return;
                }
            }
        });
        let mut chunks = Chunks {
            producer: Some(producer),
            receiver,
        };
        for read in 1..=10u32 {
            match chunks.next().await {
                Some(Ok(Produced::Bytes(bytes))) => assert_eq!(bytes, (read - 1).to_be_bytes()),
                _ => panic!("chunk {read} in order"),
            }
            let ahead = written.load(Ordering::SeqCst);
            assert!(
                ahead <= read as usize + 2,
                "{ahead} written after {read} read"
            );
        }
        drop(chunks);
        assert!(
            written.load(Ordering::SeqCst) <= 12,
            "dropped with the stream"
        );
    }

    /// Values and the end of the document make one JSON object.
    #[tokio::test]
    async fn the_document_is_one_json_object() {
        let (sender, mut receiver) = mpsc::channel(8);
        let mut document = Document::new(&sender);
        assert!(document.value("format", EXPORT_FORMAT).is_ok());
        assert!(document.value("list", &[1, 2]).is_ok());
        assert!(document.finish().await.is_ok());
        drop(sender);
        let mut text = Vec::new();
        while let Some(Ok(Produced::Bytes(bytes))) = receiver.recv().await {
            text.extend(bytes);
        }
        let parsed: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
        assert_eq!(
            parsed,
            serde_json::json!({"format": EXPORT_FORMAT, "list": [1, 2]})
        );
        let (sender, mut receiver) = mpsc::channel(1);
        assert!(Document::new(&sender).finish().await.is_ok());
        assert!(
            matches!(receiver.recv().await, Some(Ok(Produced::Bytes(bytes))) if bytes == b"{}")
        );
    }
}
