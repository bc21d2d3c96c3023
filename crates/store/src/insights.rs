//! Business figures over a recent window, for the insights gauges: contacts
//! per channel, the repeat contact rate and the survey scores.

use chrono::{DateTime, Utc};
use panorama_core::EventType;

use crate::{Result, Store};

/// Figures over the events received since a point in time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Insights {
    /// Customer contacts per channel (channels without any are missing).
    pub contacts: Vec<(String, i64)>,
    /// Customers with at least one contact.
    pub contacting_customers: i64,
    /// Of those, customers with two or more.
    pub repeat_customers: i64,
    /// Survey answers per metric (`nps`, `csat`, `ces`).
    pub feedback: Vec<FeedbackFigures>,
}

/// Answers to one survey metric.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackFigures {
    /// `nps`, `csat` or `ces`.
    pub metric: String,
    /// Answers.
    pub responses: i64,
    /// Scores of 9 or 10 (meaningful for NPS).
    pub promoters: i64,
    /// Scores of 0 to 6 (meaningful for NPS).
    pub detractors: i64,
    /// Scores of 4 or more (meaningful for CSAT).
    pub satisfied: i64,
    /// Mean score.
    pub mean: f64,
}

impl FeedbackFigures {
    /// The metric's headline figure: NPS (% promoters minus % detractors),
    /// CSAT (% satisfied), CES (mean effort); NaN without answers.
    pub fn score(&self) -> f64 {
        if self.responses == 0 {
            return f64::NAN;
        }
        let share = |count: i64| 100.0 * count as f64 / self.responses as f64;
        match self.metric.as_str() {
            "nps" => share(self.promoters) - share(self.detractors),
            "csat" => share(self.satisfied),
            _ => self.mean,
        }
    }
}

impl Store {
    /// The insights figures over events received since `since`.
    #[tracing::instrument(skip(self))]
    pub async fn insights(&self, since: DateTime<Utc>) -> Result<Insights> {
        let contact_types: Vec<&str> = EventType::ALL
            .iter()
            .filter(|kind| kind.is_customer_contact())
            .map(|kind| kind.as_str())
            .collect();
        let client = self.pool.get().await?;
        let contacts = client
            .prepare_cached(include_str!("../sql/insights_contacts.sql"))
            .await?;
        let repeat = client
            .prepare_cached(include_str!("../sql/insights_repeat.sql"))
            .await?;
        let feedback = client
            .prepare_cached(include_str!("../sql/insights_feedback.sql"))
            .await?;
        let contacts = client
            .query(&contacts, &[&since, &contact_types])
            .await?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let repeat = client.query_one(&repeat, &[&since, &contact_types]).await?;
        let feedback = client
            .query(&feedback, &[&since])
            .await?
            .iter()
            .map(|row| FeedbackFigures {
                metric: row.get(0),
                responses: row.get(1),
                promoters: row.get(2),
                detractors: row.get(3),
                satisfied: row.get(4),
                mean: row.get::<_, Option<f64>>(5).unwrap_or(f64::NAN),
            })
            .collect();
        Ok(Insights {
            contacts,
            contacting_customers: repeat.get(0),
            repeat_customers: repeat.get(1),
            feedback,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(metric: &str, responses: i64, promoters: i64, detractors: i64) -> FeedbackFigures {
        FeedbackFigures {
            metric: metric.into(),
            responses,
            promoters,
            detractors,
            satisfied: promoters,
            mean: 4.5,
        }
    }

    #[test]
    fn scores_follow_each_metric_definition() {
        assert_eq!(figures("nps", 4, 2, 1).score(), 25.0);
        assert_eq!(figures("csat", 4, 3, 0).score(), 75.0);
        assert_eq!(figures("ces", 4, 0, 0).score(), 4.5);
        assert!(figures("nps", 0, 0, 0).score().is_nan());
    }
}
