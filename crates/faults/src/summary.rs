//! The one JSON summary a run prints, and the verdict: a run passes only
//! when nothing was lost, doubled or made up, every aggregate equals its
//! recount, and the stack settled.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::verify::Checked;

/// Milliseconds figures of several measurements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Millis {
    /// How many were measured.
    pub count: usize,
    /// The median (the lower middle value of an even count).
    pub median: u64,
    /// The largest.
    pub max: u64,
}

impl Millis {
    /// The figures of `values`; zeros when there are none.
    pub fn of(values: &[u64]) -> Millis {
        if values.is_empty() {
            return Millis::default();
        }
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        Millis {
            count: sorted.len(),
            median: sorted[(sorted.len() - 1) / 2],
            max: sorted[sorted.len() - 1],
        }
    }
}

/// What a run did and found; printed as one JSON object on stdout.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Whether the run passed: no loss, duplicate, unexpected event,
    /// aggregate mismatch or failure to settle.
    pub ok: bool,
    /// Why it did not pass, in words; empty when it did.
    pub failures: Vec<String>,
    /// The seed of the schedule and the traffic.
    pub seed: u64,
    /// Where the logs, id lists and fault timeline are.
    pub run_dir: String,
    /// Events the client sent at least once.
    pub events_attempted: u64,
    /// Events the client got a 202 for.
    pub events_acknowledged: u64,
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Requests that needed more than one attempt.
    pub requests_retried: u64,
    /// Answers by status code (`202`, `503`, ...) or error (`connect`,
    /// `timeout`, `io`).
    pub answers: BTreeMap<String, u64>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u32>,
    /// Faults injected, by kind and target.
    pub fault_targets: BTreeMap<String, u32>,
    /// Crash points armed that the process never reached in time (a build
    /// without crash points, or no traffic through that point): the
    /// process was killed instead.
    pub crash_points_not_reached: u32,
    /// Serve processes that exited without being killed or crashed on
    /// purpose (restarted by the harness).
    pub unplanned_exits: u32,
    /// What the checks of the database found.
    #[serde(flatten)]
    pub checked: Checked,
    /// Records of the topic the consumer group's stored offsets are
    /// behind its log end, at the end.
    pub offsets_behind: i64,
    /// Time from each restart (of a service, PostgreSQL or the broker) to
    /// every affected service answering `/readyz` with 200.
    pub restart_to_ready_ms: Millis,
    /// Time from the end of the traffic and faults until the stack settled.
    pub settle_ms: u64,
    /// The whole run, setup and checks included, in seconds.
    pub duration_s: f64,
    /// Acknowledged events per second of traffic.
    pub events_per_s: f64,
}

/// What the checks found, to be judged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    /// Acknowledged events neither in the history nor dead-lettered.
    pub lost: u64,
    /// Doubled events.
    pub duplicated: u64,
    /// Events nobody sent.
    pub unexpected: u64,
    /// Aggregate rows that differ from the recount.
    pub mismatched_aggregates: u64,
    /// Records not projected at the end.
    pub offsets_behind: i64,
    /// Whether the stack settled in time.
    pub settled: bool,
    /// Events sent but never acknowledged before the run's deadline.
    pub unacknowledged: u64,
    /// Requests refused as invalid (a harness bug, never retried).
    pub rejected_requests: u64,
    /// 202 answers whose ids were not the ids sent.
    pub wrong_answers: u64,
}

impl Findings {
    /// Why the run fails, in words; empty when it passes.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        let counts = [
            (self.lost, "acknowledged events lost"),
            (self.duplicated, "events duplicated"),
            (self.unexpected, "events nobody sent"),
            (
                self.mismatched_aggregates,
                "aggregate rows differ from a recount",
            ),
            (self.unacknowledged, "events never acknowledged"),
            (self.rejected_requests, "requests refused as invalid"),
            (self.wrong_answers, "202 answers naming other ids"),
        ];
        for (count, what) in counts {
            if count > 0 {
                failures.push(format!("{count} {what}"));
            }
        }
        if self.offsets_behind != 0 {
            failures.push(format!(
                "stored offsets are {} records from the log end",
                self.offsets_behind
            ));
        }
        if !self.settled {
            failures.push("the stack did not settle in time".to_owned());
        }
        failures
    }
}

impl Summary {
    /// Records `findings` and any `other` failures (faults that did not
    /// recover, setup problems), and the verdict.
    pub fn judge(&mut self, findings: &Findings, other: &[String]) {
        self.offsets_behind = findings.offsets_behind;
        self.failures = findings.failures();
        self.failures.extend(other.iter().cloned());
        self.ok = self.failures.is_empty();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_give_count_median_and_max() {
        assert_eq!(Millis::of(&[]), Millis::default());
        assert_eq!(
            Millis::of(&[7]),
            Millis {
                count: 1,
                median: 7,
                max: 7
            }
        );
        assert_eq!(
            Millis::of(&[900, 100, 300]),
            Millis {
                count: 3,
                median: 300,
                max: 900
            }
        );
        assert_eq!(Millis::of(&[4, 1, 3, 2]).median, 2);
    }

    #[test]
    fn a_clean_run_passes() {
        let mut summary = Summary::default();
        summary.judge(
            &Findings {
                settled: true,
                ..Findings::default()
            },
            &[],
        );
        assert!(summary.ok);
        assert!(summary.failures.is_empty());
    }

    #[test]
    fn any_loss_duplicate_stranger_mismatch_or_stall_fails_the_run() {
        let settled = Findings {
            settled: true,
            ..Findings::default()
        };
        let broken = [
            Findings {
                lost: 1,
                ..settled.clone()
            },
            Findings {
                duplicated: 2,
                ..settled.clone()
            },
            Findings {
                unexpected: 1,
                ..settled.clone()
            },
            Findings {
                mismatched_aggregates: 3,
                ..settled.clone()
            },
            Findings {
                offsets_behind: 5,
                ..settled.clone()
            },
            Findings {
                unacknowledged: 1,
                ..settled.clone()
            },
            Findings {
                rejected_requests: 1,
                ..settled.clone()
            },
            Findings {
                wrong_answers: 1,
                ..settled.clone()
            },
            Findings {
                settled: false,
                ..settled.clone()
            },
        ];
        for findings in broken {
            let mut summary = Summary::default();
            summary.judge(&findings, &[]);
            assert!(!summary.ok, "{findings:?}");
            assert_eq!(summary.failures.len(), 1, "{:?}", summary.failures);
        }
        let mut summary = Summary::default();
        summary.judge(
            &settled,
            &["projector not ready 120 s after pg_restart".to_owned()],
        );
        assert!(!summary.ok);
    }

    #[test]
    fn the_summary_is_one_json_object_with_the_agreed_fields() {
        let mut summary = Summary {
            events_attempted: 10,
            events_acknowledged: 10,
            restart_to_ready_ms: Millis::of(&[10, 30]),
            checked: Checked {
                lost: 2,
                ..Checked::default()
            },
            ..Summary::default()
        };
        summary.faults.insert("pg_restart".to_owned(), 1);
        summary.judge(
            &Findings {
                lost: 2,
                settled: true,
                ..Findings::default()
            },
            &[],
        );
        let json = serde_json::to_value(&summary).expect("JSON");
        for field in [
            "ok",
            "events_attempted",
            "events_acknowledged",
            "requests",
            "faults",
            "lost",
            "duplicated",
            "unexpected",
            "mismatched_aggregates",
            "offsets_behind",
            "restart_to_ready_ms",
            "max_visible_wait_ms",
            "duration_s",
            "events_per_s",
        ] {
            assert!(json.get(field).is_some(), "{field} missing from {json}");
        }
        assert_eq!(json["lost"], 2);
        assert_eq!(json["ok"], false);
        assert_eq!(json["faults"]["pg_restart"], 1);
        assert_eq!(json["restart_to_ready_ms"]["max"], 30);
        assert!(
            !serde_json::to_string(&summary)
                .expect("text")
                .contains('\n')
        );
    }
}
