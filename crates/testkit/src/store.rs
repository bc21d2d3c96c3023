//! Reading the projection in tests and benchmarks.

use panorama_core::{Identifier, IdentifierKind};
use panorama_store::Store;
use uuid::Uuid;

use crate::{TestDatabase, postgres};

/// A fresh database on the shared cluster, migrated, with a store of at
/// most `connections` connections on it.
///
/// # Panics
///
/// When the database cannot be created or migrated: a broken test setup.
pub async fn migrated_database(connections: usize) -> (TestDatabase, Store) {
    let database = tokio::task::spawn_blocking(|| postgres().create_database())
        .await
        .expect("database task")
        .expect("database");
    let store = Store::connect(&database.url, connections).expect("store");
    store.migrate().await.expect("migrate");
    (database, store)
}

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
