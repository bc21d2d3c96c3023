//! Identity resolution: which customer an event belongs to, decided from the
//! owners of its identifiers. Pure functions over one batch, so the
//! projector can look up every owner in one query, decide in memory, and
//! write the outcome in set-based statements.
//!
//! [`resolve`] merges the customers an event links into the oldest, guarded
//! by per-kind [`IdentityRules`] (strength and limit) and do-not-merge pairs,
//! and records every refused merge as a [`Conflict`]. [`check_merge`]
//! applies the same limits to a manual merge.

mod resolve;
mod rules;

pub use resolve::{Conflict, ConflictReason, Decisions, Merge, Snapshot, check_merge, resolve};
pub use rules::{IdentityRules, Strength};

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod resolve_tests;
