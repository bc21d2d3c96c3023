//! The agent's view in the projection: the customers' aggregates, cases,
//! feedback, recent contacts, customer attributes, follow-up tasks, and the
//! daily roll-ups behind the insights. Folded in the batch transaction, for
//! inserted events only:
//!
//! - [`cases`]: the events' cases, decided before the events are inserted
//!   (each event row names its case).
//! - [`aggregates`]: per-customer aggregates and the daily roll-ups.
//! - [`tasks`]: follow-up tasks from `task.*` events.
//! - [`consent`]: each customer's latest consent statement per channel and
//!   purpose.
//! - [`traits`]: each customer's latest value per `customer.*` attribute,
//!   with where it came from, bounded in count.
//! - [`merge`]: what a merge or an unmerge does to these rows.
//!
//! They are read in `read/view.rs` and `read/profile.rs`.

mod aggregates;
mod cases;
mod consent;
mod merge;
mod tasks;
mod traits;

pub(crate) use aggregates::{fold_aggregates, fold_view};
pub(crate) use cases::project_cases;
pub(crate) use consent::fold_consent;
pub(crate) use merge::{fold_into, recount, split_cases};
pub(crate) use tasks::project_tasks;
pub use tasks::{TASK_ASSIGNEE, TASK_CHANNEL, TASK_DUE_AT, TASK_ID};
pub(crate) use traits::fold_traits;

/// How the agent's view is derived: case grouping, when an open case counts
/// as unresolved after contact, and the priority rule.
#[derive(Debug, Clone)]
pub struct ViewRules {
    /// Case grouping.
    pub cases: panorama_core::cases::CaseRules,
    /// An open case whose last contact is older than this raises
    /// `unresolved_after_contact`.
    pub unresolved_after: chrono::Duration,
    /// The priority tiers.
    pub priority: panorama_core::priority::PriorityRules,
}

impl Default for ViewRules {
    fn default() -> Self {
        ViewRules {
            cases: panorama_core::cases::CaseRules::default(),
            unresolved_after: chrono::Duration::days(3),
            priority: panorama_core::priority::PriorityRules::default(),
        }
    }
}

/// Attribute keys with this prefix describe the customer (e.g.
/// `customer.tier`): their latest values are the customer's traits, shown
/// on the profile and read by the priority rule.
pub const CUSTOMER_ATTRIBUTE_PREFIX: &str = panorama_core::traits::PREFIX;
