//! Reading the projection in tests and benchmarks.

use panorama_core::{Identifier, IdentifierKind};
use panorama_store::Store;
use uuid::Uuid;

/// The customer that owns the email address `email`.
///
/// # Panics
///
/// When `email` is not a valid address, the lookup fails, or no customer
/// owns it: each is a broken test, not a result.
pub async fn customer_with_email(store: &Store, email: &str) -> Uuid {
    let email = Identifier::parse(IdentifierKind::Email, email, None)
        .unwrap_or_else(|error| panic!("{email:?} is not an email: {error}"));
    store
        .lookup(&email)
        .await
        .expect("lookup")
        .unwrap_or_else(|| panic!("no customer owns {email:?}"))
}
