//! A customer's consent as the profile shows it: the latest statement per
//! channel and purpose, and whether a follow-up (a service contact) may go
//! through each channel a task can use. The rules are
//! `panorama_core::consent`'s; this file reads the rows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use panorama_core::consent::{self, Statement};
use panorama_core::{ConsentChannel, ConsentPurpose, ConsentStatus};
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::{Result, Store};

/// A customer's latest statement about a channel and purpose.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ConsentView {
    /// The channel, or `any` (every channel without a later statement of
    /// its own).
    pub channel: ConsentChannel,
    /// `service`, `marketing` or `surveys`.
    pub purpose: ConsentPurpose,
    /// `true`: the customer allows it; `false`: refuses it.
    pub granted: bool,
    /// When the customer said so.
    pub at: DateTime<Utc>,
    /// Who passed it on: `agent`, or the system that sent the event.
    pub source: String,
    /// The event that said so.
    pub event_id: Uuid,
}

impl ConsentView {
    /// The statement the rules read.
    fn statement(&self) -> Statement {
        Statement {
            channel: self.channel,
            purpose: self.purpose,
            granted: self.granted,
            at: self.at,
        }
    }
}

/// The consent part of a profile.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ProfileConsent {
    /// The latest statement per channel and purpose.
    pub(crate) statements: Vec<ConsentView>,
    /// Per task channel, whether a follow-up may use it.
    pub(crate) follow_up: BTreeMap<String, ConsentStatus>,
}

/// The query of a customer's statements, in the column order of
/// [`consent_view`].
const CONSENT_OF_CUSTOMER: &str = "SELECT channel, purpose, granted, at, source, event_id
     FROM customer_consent WHERE customer_id = $1 ORDER BY channel, purpose";

/// [`CONSENT_OF_CUSTOMER`] of the customer `survivor`, an SQL expression
/// giving a surviving customer's id.
pub(crate) fn consent_of(survivor: &str) -> String {
    CONSENT_OF_CUSTOMER.replace("$1", survivor)
}

/// A row of [`CONSENT_OF_CUSTOMER`]; `None` for a channel or purpose this
/// build does not know (a newer one wrote it).
fn consent_view(row: &Row) -> Option<ConsentView> {
    Some(ConsentView {
        channel: row.get::<_, &str>(0).parse().ok()?,
        purpose: row.get::<_, &str>(1).parse().ok()?,
        granted: row.get(2),
        at: row.get(3),
        source: row.get(4),
        event_id: row.get(5),
    })
}

/// The profile's consent from the rows of [`CONSENT_OF_CUSTOMER`].
pub(crate) fn profile_consent(rows: &[Row]) -> ProfileConsent {
    let statements: Vec<ConsentView> = rows.iter().filter_map(consent_view).collect();
    let rules: Vec<Statement> = statements.iter().map(ConsentView::statement).collect();
    ProfileConsent {
        follow_up: consent::follow_up_by_channel(&rules),
        statements,
    }
}

/// The lateral join that gives a task row its customer's service
/// statements as three arrays (channels, granted, times; NULL when none),
/// for [`task_consent`]. `p` is the task's profile.
pub(crate) const TASK_CONSENT_JOIN: &str = "LEFT JOIN LATERAL (
         SELECT array_agg(k.channel) AS channels, array_agg(k.granted) AS granted,
                array_agg(k.at) AS ats
         FROM customer_consent AS k
         WHERE k.customer_id = p.survivor_id AND k.purpose = 'service'
     ) AS k ON true";

/// Whether a follow-up through `channel` is allowed, from the three arrays
/// of [`TASK_CONSENT_JOIN`] starting at column `first` of `row`.
pub(crate) fn task_consent(row: &Row, first: usize, channel: &str) -> ConsentStatus {
    let channels: Option<Vec<String>> = row.get(first);
    let granted: Option<Vec<bool>> = row.get(first + 1);
    let ats: Option<Vec<DateTime<Utc>>> = row.get(first + 2);
    let statements: Vec<Statement> = channels
        .unwrap_or_default()
        .iter()
        .zip(granted.unwrap_or_default())
        .zip(ats.unwrap_or_default())
        .filter_map(|((channel, granted), at)| {
            Some(Statement {
                channel: channel.parse().ok()?,
                purpose: ConsentPurpose::Service,
                granted,
                at,
            })
        })
        .collect();
    consent::follow_up_status(&statements, channel)
}

impl Store {
    /// Whether surviving customer `survivor` allows a follow-up through
    /// task channel `channel` now.
    #[tracing::instrument(skip(self))]
    pub async fn follow_up_consent(&self, survivor: Uuid, channel: &str) -> Result<ConsentStatus> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(CONSENT_OF_CUSTOMER).await?;
        let rows = client.query(&statement, &[&survivor]).await?;
        let rules: Vec<Statement> = rows
            .iter()
            .filter_map(consent_view)
            .map(|view| view.statement())
            .collect();
        Ok(consent::follow_up_status(&rules, channel))
    }
}
