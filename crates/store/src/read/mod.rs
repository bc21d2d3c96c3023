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
//! - [`consent`]: the profile's consent statements, and whether a
//!   follow-up may use a channel.
//! - [`traits`]: the profile's traits, typed.
//! - [`changes`]: the change log behind live updates: the notification
//!   listener, a subscriber's start and resume, pruning.
//! - [`export`]: everything held about a customer, as one JSON document
//!   streamed from one snapshot (the privacy export).

mod changes;
mod consent;
mod export;
mod identity;
mod profile;
mod timeline;
mod traits;
mod view;

pub use changes::{ChangeListener, CustomerChange};
pub use consent::ConsentView;
pub use export::{
    CustomerExport, EXPORT_CHUNK_BYTES, EXPORT_FORMAT, EXPORT_PAGE_ROWS, ExportAlias,
    ExportAttribute, ExportCase, ExportChange, ExportChannel, ExportConflict, ExportConsent,
    ExportCustomer, ExportDailyContacts, ExportDeadLetter, ExportEvent, ExportFeedback,
    ExportHistory, ExportIdentifier, ExportSeparation, ExportStream, ExportTask,
};
pub use identity::{
    ConflictCursor, ConflictQuery, ConflictView, CustomerIdentity, HistoryEntry,
    IdentityIdentifier, IdentityProfile,
};
pub use profile::{ChannelSummary, CustomerProfile, IdentifierView};
pub use timeline::{CarriedIdentifier, TimelineCursor, TimelineEntry, TimelineQuery, TimelineRows};
pub use traits::TraitView;
pub use view::{
    CaseQuery, CaseView, ContactWindows, FeedbackSummary, Insights, InsightsQuery, MetricSummary,
    Signals, TaskQuery, TaskView,
};
