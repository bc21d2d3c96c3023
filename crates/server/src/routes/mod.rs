//! Agent-facing routes, and what they share: [`body`] reads JSON bodies
//! field by field, [`params`] path and query parameters. The handler
//! modules depend on those two, never on each other.

pub(crate) mod actions;
pub(crate) mod audit;
pub(crate) mod body;
pub(crate) mod customers;
pub(crate) mod erasure;
pub(crate) mod identity;
pub(crate) mod insights;
pub(crate) mod params;
pub(crate) mod privacy;
pub(crate) mod webhooks;
