//! What a handler notes about the subject of its request for the audit
//! entry. A leaf: handlers note here without depending on the audit
//! middleware, which knows the route table.

use actix_web::{HttpMessage as _, HttpRequest};
use panorama_core::IdentifierKind;
use uuid::Uuid;

/// What a handler learnt about the subject of its request, for the audit
/// entry: the customer a lookup found, the kind of identifier it named.
#[derive(Debug, Clone, Default)]
pub(crate) struct Subject {
    pub(crate) customer: Option<Uuid>,
    pub(crate) identifier_kind: Option<IdentifierKind>,
}

fn note(request: &HttpRequest, change: impl FnOnce(&mut Subject)) {
    let mut extensions = request.extensions_mut();
    if !extensions.contains::<Subject>() {
        extensions.insert(Subject::default());
    }
    if let Some(subject) = extensions.get_mut::<Subject>() {
        change(subject);
    }
}

/// Records, for the audit entry of `request`, that it named an identifier
/// of `kind` (the kind only: the value stays out of the trail).
pub(crate) fn note_identifier_kind(request: &HttpRequest, kind: IdentifierKind) {
    note(request, |subject| subject.identifier_kind = Some(kind));
}

/// Records, for the audit entry of `request`, the customer it found (a
/// lookup's answer), which is then the entry's customer.
pub(crate) fn note_customer(request: &HttpRequest, customer: Uuid) {
    note(request, |subject| subject.customer = Some(customer));
}
