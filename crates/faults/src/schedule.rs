//! The fault schedule: which faults a run injects, in which order, and at
//! which point of the client's progress, drawn from the seed. Pure, so a
//! seed always gives the same schedule.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// The first fault comes after this share of the events was sent, so the
/// stack has traffic and history before anything breaks.
const FIRST_AT: f64 = 0.05;

/// The last fault comes before this share, so traffic goes on while the
/// stack recovers from it.
const LAST_AT: f64 = 0.90;

/// A `panorama serve` process of the stack, by its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// `serve --role all`: gateway, projector and API in one process.
    All,
    /// `serve --role gateway`.
    Gateway,
    /// `serve --role projector`.
    Projector,
    /// `serve --role api`.
    Api,
}

impl Service {
    /// Every service, in start order.
    pub const EVERY: [Service; 4] = [
        Service::All,
        Service::Gateway,
        Service::Projector,
        Service::Api,
    ];

    /// The `--role` value.
    pub fn role(self) -> &'static str {
        match self {
            Service::All => "all",
            Service::Gateway => "gateway",
            Service::Projector => "projector",
            Service::Api => "api",
        }
    }

    /// Whether it takes `POST /v1/events`.
    pub fn is_gateway(self) -> bool {
        matches!(self, Service::All | Service::Gateway)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.role())
    }
}

/// What a service kill hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KillTarget {
    /// One service.
    One(Service),
    /// Every service at the same moment.
    Every,
}

impl KillTarget {
    /// The order service kills go through: the all-in-one process, then
    /// each role on its own, then all four at once.
    pub const CYCLE: [KillTarget; 5] = [
        KillTarget::One(Service::All),
        KillTarget::One(Service::Projector),
        KillTarget::One(Service::Gateway),
        KillTarget::One(Service::Api),
        KillTarget::Every,
    ];

    /// The services it kills.
    pub fn services(self) -> Vec<Service> {
        match self {
            KillTarget::One(service) => vec![service],
            KillTarget::Every => Service::EVERY.to_vec(),
        }
    }
}

impl fmt::Display for KillTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KillTarget::One(service) => service.fmt(f),
            KillTarget::Every => f.write_str("every"),
        }
    }
}

/// A crash point of the product (`PANORAMA_CRASH_POINTS`) and the service
/// it is armed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashPoint {
    /// The projector wrote a batch and has not committed it.
    ProjectorBeforeCommit,
    /// The projector committed a batch and has not told the broker.
    ProjectorAfterCommit,
    /// The broker acknowledged an ingest request that was not answered yet.
    GatewayAfterPublish,
}

impl CrashPoint {
    /// The order crash-point faults go through.
    pub const CYCLE: [CrashPoint; 3] = [
        CrashPoint::ProjectorAfterCommit,
        CrashPoint::GatewayAfterPublish,
        CrashPoint::ProjectorBeforeCommit,
    ];

    /// Its name in `PANORAMA_CRASH_POINTS`.
    pub fn name(self) -> &'static str {
        match self {
            CrashPoint::ProjectorBeforeCommit => "projector.before_commit",
            CrashPoint::ProjectorAfterCommit => "projector.after_commit",
            CrashPoint::GatewayAfterPublish => "gateway.after_publish",
        }
    }

    /// The service it is armed in.
    pub fn service(self) -> Service {
        match self {
            CrashPoint::ProjectorBeforeCommit | CrashPoint::ProjectorAfterCommit => {
                Service::Projector
            }
            CrashPoint::GatewayAfterPublish => Service::Gateway,
        }
    }
}

/// One fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "target", rename_all = "snake_case")]
pub enum Fault {
    /// `kill -9` of serve processes, then a restart.
    ServiceKill(KillTarget),
    /// A restart with a crash point armed, which aborts the process there;
    /// then a restart without it.
    CrashPoint(CrashPoint),
    /// `pg_ctl stop -m immediate`, then a start (crash recovery).
    PgRestart,
    /// `kill -9` of the broker, then a restart on the same SQLite file.
    BrokerKill,
    /// `pg_terminate_backend` of the projector's connections.
    BackendKill,
    /// A transaction holding `LOCK TABLE events IN ACCESS EXCLUSIVE MODE`
    /// for a few seconds: PostgreSQL turns slow for every writer.
    PgLock,
    /// SIGSTOP of the projector past its group session timeout, then
    /// SIGCONT: it comes back as a zombie that must not commit stale work.
    ProjectorStop,
}

impl Fault {
    /// The kind's name in the summary.
    pub fn kind(self) -> &'static str {
        match self {
            Fault::ServiceKill(_) => "service_kill",
            Fault::CrashPoint(_) => "crash_point",
            Fault::PgRestart => "pg_restart",
            Fault::BrokerKill => "broker_kill",
            Fault::BackendKill => "backend_kill",
            Fault::PgLock => "pg_lock",
            Fault::ProjectorStop => "projector_stop",
        }
    }

    /// The kind and its target, for logs and the summary
    /// (`service_kill.gateway`, `crash_point.projector.after_commit`).
    pub fn label(self) -> String {
        match self {
            Fault::ServiceKill(target) => format!("service_kill.{target}"),
            Fault::CrashPoint(point) => format!("crash_point.{}", point.name()),
            other => other.kind().to_owned(),
        }
    }
}

/// How many faults of each kind a run injects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FaultCounts {
    /// `kill -9` of serve processes.
    pub service_kills: u32,
    /// Aborts at a crash point.
    pub crash_points: u32,
    /// PostgreSQL immediate restarts.
    pub pg_restarts: u32,
    /// Broker kills.
    pub broker_kills: u32,
    /// Terminations of the projector's database connections.
    pub backend_kills: u32,
    /// Seconds-long table locks.
    pub pg_locks: u32,
    /// SIGSTOPs of the projector past its session timeout.
    pub projector_stops: u32,
}

impl FaultCounts {
    /// Every fault of these counts, kinds in a fixed order (targets and
    /// crash points going round their cycles).
    pub fn faults(&self) -> Vec<Fault> {
        let mut faults = Vec::new();
        faults.extend(
            KillTarget::CYCLE
                .iter()
                .cycle()
                .take(self.service_kills as usize)
                .map(|target| Fault::ServiceKill(*target)),
        );
        faults.extend(
            CrashPoint::CYCLE
                .iter()
                .cycle()
                .take(self.crash_points as usize)
                .map(|point| Fault::CrashPoint(*point)),
        );
        for (count, fault) in [
            (self.pg_restarts, Fault::PgRestart),
            (self.broker_kills, Fault::BrokerKill),
            (self.backend_kills, Fault::BackendKill),
            (self.pg_locks, Fault::PgLock),
            (self.projector_stops, Fault::ProjectorStop),
        ] {
            faults.extend(std::iter::repeat_n(fault, count as usize));
        }
        faults
    }

    /// The total number of faults.
    pub fn total(&self) -> u32 {
        self.service_kills
            + self.crash_points
            + self.pg_restarts
            + self.broker_kills
            + self.backend_kills
            + self.pg_locks
            + self.projector_stops
    }
}

/// How long the run holds a lock and keeps the projector stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultDurations {
    /// How long a [`Fault::PgLock`] holds its lock.
    pub lock: Duration,
    /// How long a [`Fault::ProjectorStop`] keeps the projector stopped.
    pub stop: Duration,
}

impl FaultDurations {
    /// About how long the stack takes to go through `fault` and recover
    /// from it, on a 2-core machine with debug builds: used to spread the
    /// client's events over the schedule.
    pub fn budget(&self, fault: Fault) -> Duration {
        match fault {
            Fault::ServiceKill(_) => Duration::from_secs(6),
            Fault::CrashPoint(_) => Duration::from_secs(10),
            Fault::PgRestart | Fault::BrokerKill => Duration::from_secs(12),
            Fault::BackendKill => Duration::from_secs(4),
            Fault::PgLock => self.lock + Duration::from_secs(4),
            // Stopped, then a rebalance or two before the group settles.
            Fault::ProjectorStop => self.stop + Duration::from_secs(15),
        }
    }
}

/// One fault of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PlannedFault {
    /// Its place in the schedule, from 0.
    pub index: usize,
    /// The share of the run's events the client has sent when it fires.
    pub at: f64,
    /// What it does.
    pub fault: Fault,
    /// How long the broken part stays down (between a kill and the
    /// restart), in milliseconds: a random pause, so restarts do not
    /// always meet the same state.
    pub down_ms: u64,
}

/// The schedule of `counts` for `seed`: faults in a seeded random order,
/// one in each of as many equal slots of the run's progress (from 5 % to
/// 90 % of its events), at a random point of its slot, sorted by that
/// point.
pub fn plan(counts: &FaultCounts, seed: u64) -> Vec<PlannedFault> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut faults = counts.faults();
    faults.shuffle(&mut rng);
    let slots = faults.len().max(1) as f64;
    let width = (LAST_AT - FIRST_AT) / slots;
    faults
        .into_iter()
        .enumerate()
        .map(|(index, fault)| PlannedFault {
            index,
            // The first 80 % of its slot, so two faults never coincide.
            at: FIRST_AT + width * (index as f64 + rng.random_range(0.0..0.8)),
            fault,
            down_ms: rng.random_range(200..2_000),
        })
        .collect()
}

/// The time the schedule needs: every fault's budget.
pub fn span(schedule: &[PlannedFault], durations: &FaultDurations) -> Duration {
    schedule
        .iter()
        .map(|planned| durations.budget(planned.fault) + Duration::from_millis(planned.down_ms))
        .sum()
}

/// How many faults of each kind the schedule holds, by
/// [`Fault::kind`].
pub fn count_by_kind<'a>(faults: impl IntoIterator<Item = &'a Fault>) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for fault in faults {
        *counts.entry(fault.kind().to_owned()).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The faults of the CI variant.
    fn short() -> FaultCounts {
        crate::options::Profile::Ci.figures().1
    }

    #[test]
    fn the_plan_holds_every_requested_fault_once() {
        let counts = FaultCounts {
            service_kills: 7,
            crash_points: 4,
            pg_restarts: 5,
            broker_kills: 5,
            backend_kills: 2,
            pg_locks: 3,
            projector_stops: 1,
        };
        let schedule = plan(&counts, 7);
        assert_eq!(schedule.len(), counts.total() as usize);
        let kinds = count_by_kind(schedule.iter().map(|planned| &planned.fault));
        assert_eq!(kinds["service_kill"], 7);
        assert_eq!(kinds["crash_point"], 4);
        assert_eq!(kinds["pg_restart"], 5);
        assert_eq!(kinds["broker_kill"], 5);
        assert_eq!(kinds["backend_kill"], 2);
        assert_eq!(kinds["pg_lock"], 3);
        assert_eq!(kinds["projector_stop"], 1);
    }

    #[test]
    fn service_kills_hit_the_all_in_one_process_and_each_role_before_repeating() {
        let counts = FaultCounts {
            service_kills: 6,
            ..FaultCounts::default()
        };
        let targets: Vec<String> = counts.faults().iter().map(|fault| fault.label()).collect();
        assert_eq!(
            targets,
            [
                "service_kill.all",
                "service_kill.projector",
                "service_kill.gateway",
                "service_kill.api",
                "service_kill.every",
                "service_kill.all"
            ]
        );
        let points = FaultCounts {
            crash_points: 3,
            ..FaultCounts::default()
        };
        let labels: Vec<String> = points.faults().iter().map(|f| f.label()).collect();
        assert_eq!(
            labels,
            [
                "crash_point.projector.after_commit",
                "crash_point.gateway.after_publish",
                "crash_point.projector.before_commit"
            ]
        );
    }

    #[test]
    fn faults_are_spread_over_the_run_in_order_and_never_coincide() {
        for seed in 0..50 {
            let schedule = plan(&short(), seed);
            let points: Vec<f64> = schedule.iter().map(|planned| planned.at).collect();
            assert!(points[0] >= FIRST_AT, "seed {seed}: {points:?}");
            assert!(*points.last().expect("faults") < LAST_AT, "{points:?}");
            let width = (LAST_AT - FIRST_AT) / points.len() as f64;
            for pair in points.windows(2) {
                assert!(
                    pair[1] - pair[0] > width * 0.2 - 1e-9,
                    "seed {seed}: {points:?}"
                );
            }
            for (index, planned) in schedule.iter().enumerate() {
                assert_eq!(planned.index, index);
                assert!((200..2_000).contains(&planned.down_ms));
            }
        }
    }

    #[test]
    fn a_seed_gives_one_schedule_and_another_seed_another() {
        assert_eq!(plan(&short(), 42), plan(&short(), 42));
        let orders: std::collections::BTreeSet<Vec<String>> = (0..20)
            .map(|seed| {
                plan(&short(), seed)
                    .iter()
                    .map(|planned| planned.fault.label())
                    .collect()
            })
            .collect();
        assert!(orders.len() > 10, "{orders:?}");
    }

    #[test]
    fn no_faults_is_an_empty_schedule() {
        assert!(plan(&FaultCounts::default(), 1).is_empty());
        assert_eq!(
            span(
                &[],
                &FaultDurations {
                    lock: Duration::from_secs(5),
                    stop: Duration::from_secs(15)
                }
            ),
            Duration::ZERO
        );
    }

    #[test]
    fn the_span_adds_every_budget_and_pause() {
        let durations = FaultDurations {
            lock: Duration::from_secs(5),
            stop: Duration::from_secs(15),
        };
        let schedule = plan(&short(), 3);
        let pauses: u64 = schedule.iter().map(|planned| planned.down_ms).sum();
        // 3 kills × 6 + crash point 10 + 12 + 12 + 4 + lock 9 + stop 30.
        assert_eq!(
            span(&schedule, &durations),
            Duration::from_secs(95) + Duration::from_millis(pauses)
        );
    }
}
