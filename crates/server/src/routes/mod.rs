//! Agent-facing routes.

pub(crate) mod audit;
pub(crate) mod body;
pub(crate) mod customers;
pub(crate) mod identity;
