//! Agent actions: cases opened, resolved and reopened, notes, follow-up
//! tasks, feedback taken down by an agent, identifiers an agent confirmed,
//! and contact preferences an agent recorded. Each is published as an event
//! to the contact-event topic and projected like any contact, so the
//! history is complete and a replay of the topic rebuilds it. The answer is
//! 202 once the broker has the event; the projection follows within
//! moments (watch the live stream, or read again).
//!
//! One module per kind of action; what they share (the action as an event,
//! publishing it, the 202 answer) is in `action`.

mod action;
mod cases;
mod consent;
pub(crate) mod doc;
mod feedback;
mod identifiers;
mod notes;
mod tasks;

pub(crate) use cases::*;
pub(crate) use consent::*;
pub(crate) use feedback::*;
pub(crate) use identifiers::*;
pub(crate) use notes::*;
pub(crate) use tasks::*;
