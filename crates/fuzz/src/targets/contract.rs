//! `EventDraft::validate`: whatever it accepts is projectable.

use panorama_core::arbitrary::draft_in_context;
use panorama_core::{EventDraft, ValidationContext};

use super::{Target, check_event, received_at, run_bytes};
use crate::driver::{Failure, Session};
use crate::generate::json_with_text;

/// The target on generated drafts.
pub(super) const TARGET: Target = Target {
    name: "contract",
    about: "event drafts with arbitrary Unicode at and near every limit -> EventDraft::validate; what validates holds to crates/core/src/limits.rs and decodes(encodes) to itself",
    run,
};

/// The target on JSON bodies, as the events API reads them.
pub(super) const JSON_TARGET: Target = Target {
    name: "contract_json",
    about: "JSON event drafts (seeds with Unicode in every string field, mutations, bytes) -> serde_json -> EventDraft::validate; same checks as contract",
    run: run_json,
};

fn run(session: &mut Session) -> Result<(), Failure> {
    session.check(draft_in_context(), |(context, draft)| {
        property(draft, &context)
    })
}

fn run_json(session: &mut Session) -> Result<(), Failure> {
    run_bytes(session, json_with_text, |input| {
        let Ok(draft) = serde_json::from_slice::<EventDraft>(input) else {
            return Ok(());
        };
        let context = ValidationContext {
            received_at: received_at(),
            default_region: "NL".parse().ok(),
        };
        property(draft, &context)
    })
}

fn property(draft: EventDraft, context: &ValidationContext) -> Result<(), String> {
    match draft.validate(context) {
        Ok(event) => check_event(&event),
        Err(_) => Ok(()),
    }
}
