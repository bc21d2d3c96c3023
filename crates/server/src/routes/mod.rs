//! Agent-facing routes.

pub(crate) mod customers;
