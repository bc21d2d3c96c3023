//! Keeps the business gauges (`panorama_insights_*`) current: a background
//! task recomputes them from the store every refresh interval, so a scrape
//! never runs the queries.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use panorama_core::Channel;
use panorama_store::{Insights, Store};

use crate::metrics;

/// How often and over what window the insights gauges are computed.
#[derive(Debug, Clone, Copy)]
pub struct InsightsSettings {
    /// Time between two computations.
    pub refresh: Duration,
    /// How far back (by gateway receipt time) the figures look.
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
            match store.insights(since).await {
                Ok(insights) => publish(&insights),
                Err(error) => tracing::warn!(%error, "cannot compute the insights figures"),
            }
        }
    })
}

fn publish(insights: &Insights) {
    for channel in Channel::ALL {
        let contacts = insights
            .contacts
            .iter()
            .find(|(name, _)| name == channel.as_str())
            .map_or(0, |(_, count)| *count);
        metrics::INSIGHTS_CONTACTS
            .with_label_values(&[channel.as_str()])
            .set(contacts);
    }
    let rate = if insights.contacting_customers == 0 {
        0.0
    } else {
        insights.repeat_customers as f64 / insights.contacting_customers as f64
    };
    metrics::INSIGHTS_REPEAT_RATE.set(rate);
    for metric in ["nps", "csat", "ces"] {
        let figures = insights.feedback.iter().find(|f| f.metric == metric);
        metrics::INSIGHTS_SCORE
            .with_label_values(&[metric])
            .set(figures.map_or(f64::NAN, |f| f.score()));
        metrics::INSIGHTS_RESPONSES
            .with_label_values(&[metric])
            .set(figures.map_or(0, |f| f.responses));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64());
    metrics::INSIGHTS_REFRESHED.set(now);
}
