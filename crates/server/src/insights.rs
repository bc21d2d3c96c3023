//! Keeps the business gauges (`panorama_insights_*`) current: a background
//! task recomputes them from the store every refresh interval, so a scrape
//! never runs the queries.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use panorama_core::Channel;
use panorama_store::{Insights, InsightsQuery, Store};

use crate::metrics;

/// How often and over what window the insights gauges are computed.
#[derive(Debug, Clone, Copy)]
pub struct InsightsSettings {
    /// Time between two computations.
    pub refresh: Duration,
    /// How far back (by the day events happened) the figures look.
    pub window: Duration,
}

/// Starts the task that refreshes the insights gauges, first at once.
pub fn spawn_insights_refresher(
    store: Store,
    settings: InsightsSettings,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(settings.refresh);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let window = chrono::Duration::from_std(settings.window).unwrap_or(chrono::Duration::MAX);
        loop {
            ticker.tick().await;
            let since = chrono::Utc::now()
                .checked_sub_signed(window)
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
            let query = InsightsQuery {
                since: Some(since),
                ..InsightsQuery::default()
            };
            match store.insights(&query).await {
                Ok(insights) => publish(&insights),
                Err(error) => tracing::warn!(%error, "cannot compute the insights figures"),
            }
        }
    })
}

/// Sets the gauges from the same figures `GET /v1/insights` answers.
fn publish(insights: &Insights) {
    for channel in Channel::ALL {
        let contacts = insights
            .contacts_per_channel
            .get(channel.as_str())
            .copied()
            .unwrap_or(0);
        metrics::INSIGHTS_CONTACTS
            .with_label_values(&[channel.as_str()])
            .set(contacts);
    }
    metrics::INSIGHTS_REPEAT_RATE.set(insights.repeat_contact_rate.unwrap_or(0.0));
    for (metric, score) in [
        ("nps", insights.nps),
        ("csat", insights.csat),
        ("ces", insights.ces),
    ] {
        metrics::INSIGHTS_SCORE
            .with_label_values(&[metric])
            .set(score.unwrap_or(f64::NAN));
        metrics::INSIGHTS_RESPONSES
            .with_label_values(&[metric])
            .set(insights.responses.get(metric).copied().unwrap_or(0));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64());
    metrics::INSIGHTS_REFRESHED.set(now);
}
