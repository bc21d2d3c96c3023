//! The read side: the queries behind the agent API and live updates, over
//! the tables the projection writes (`projection/`).
//!
//! - [`profile`]: a customer found by identifier, its profile from the
//!   aggregates, the identifier agent actions are filed under.
//! - [`timeline`]: a customer's history, keyset pages over one index.
//! - [`identity`]: the survivor of an id, a customer's identifiers, profiles
//!   and identity history, and the conflicts waiting for review.
//! - [`view`]: the agent's view: cases, tasks, the profile's summaries and
//!   signals, and the insights.
//! - [`changes`]: the change log behind live updates: the notification
//!   listener, a subscriber's start and resume, pruning.

mod changes;
mod identity;
mod profile;
mod timeline;
mod view;

pub use changes::{ChangeListener, CustomerChange};
pub use identity::{
    ConflictCursor, ConflictQuery, ConflictView, CustomerIdentity, HistoryEntry,
    IdentityIdentifier, IdentityProfile,
};
pub use profile::{ChannelSummary, CustomerProfile, IdentifierView};
pub use timeline::{CarriedIdentifier, TimelineCursor, TimelineEntry, TimelineQuery};
pub use view::{
    CaseQuery, CaseView, ContactWindows, FeedbackSummary, Insights, InsightsQuery, MetricSummary,
    Signals, TaskQuery, TaskView,
};
