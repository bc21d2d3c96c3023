//! Agent-facing routes.

pub(crate) mod actions;
pub(crate) mod audit;
pub(crate) mod body;
pub(crate) mod customers;
pub(crate) mod identity;
pub(crate) mod insights;
