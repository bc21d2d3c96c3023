//! Consent, folded from the statements the inserted events carry: each
//! customer's latest statement per channel and purpose (by `occurred_at`,
//! then event id), whatever order the events arrive in. What a merge and an
//! unmerge do to these rows is in `merge.rs`, with the other per-customer
//! rows.

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use panorama_core::ContactEvent;
use uuid::Uuid;

use crate::Result;

/// Folds the statements of the `inserted` events (event, customer after
/// the batch's merges) into `customer_consent`, in one statement.
pub(crate) async fn fold_consent(
    transaction: &Transaction<'_>,
    inserted: &[(&ContactEvent, Uuid)],
) -> Result<()> {
    let statements = inserted
        .iter()
        .flat_map(|(event, customer)| event.consent.iter().map(move |c| (event, customer, c)));
    let mut customers: Vec<Uuid> = Vec::new();
    let mut channels: Vec<&str> = Vec::new();
    let mut purposes: Vec<&str> = Vec::new();
    let mut granted: Vec<bool> = Vec::new();
    let mut ats: Vec<DateTime<Utc>> = Vec::new();
    let mut events: Vec<Uuid> = Vec::new();
    let mut sources: Vec<&str> = Vec::new();
    for (event, customer, consent) in statements {
        customers.push(*customer);
        channels.push(consent.channel.as_str());
        purposes.push(consent.purpose.as_str());
        granted.push(consent.granted);
        ats.push(event.occurred_at);
        events.push(event.event_id);
        sources.push(event.source.as_str());
    }
    if customers.is_empty() {
        return Ok(());
    }
    let statement = transaction
        .prepare_cached(include_str!("../../../sql/view/fold_consent.sql"))
        .await?;
    transaction
        .execute(
            &statement,
            &[
                &customers, &channels, &purposes, &granted, &ats, &events, &sources,
            ],
        )
        .await?;
    Ok(())
}
