//! Identifier stripe locks, the first identity step of a batch. Two
//! projectors that see the same new identifier must not both create a
//! customer for it, so a batch takes a transaction-scoped advisory lock on
//! the stripe of each of its identifiers before it reads who they belong
//! to; the locks are released at commit.

use deadpool_postgres::Transaction;
use panorama_core::{ContactEvent, Identifier};

use crate::Result;

/// Advisory lock namespace for identifier stripes ("pano").
const IDENTIFIER_LOCK_SPACE: i32 = 0x7061_6e6f;
/// Identifiers hash onto this many stripes; a batch locks its stripes in
/// ascending order, so concurrent projectors never deadlock and never both
/// claim one new identifier, while a batch holds a bounded number of locks.
const IDENTIFIER_STRIPES: u32 = 1024;

fn stripe(identifier: &Identifier) -> i32 {
    // FNV-1a over kind and value: stable across processes and versions.
    let hash = [
        identifier.kind().as_str().as_bytes(),
        b":",
        identifier.value().as_bytes(),
    ]
    .into_iter()
    .flatten()
    .fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    });
    (hash % IDENTIFIER_STRIPES) as i32
}

/// Locks the stripes of every identifier of `events`, in ascending order.
pub(crate) async fn lock_identifier_stripes(
    transaction: &Transaction<'_>,
    events: &[&ContactEvent],
) -> Result<()> {
    let mut stripes: Vec<i32> = events
        .iter()
        .flat_map(|event| event.plain_identifiers().map(stripe))
        .collect();
    stripes.sort_unstable();
    stripes.dedup();
    let statement = transaction
        .prepare_cached(
            "SELECT pg_advisory_xact_lock($1, stripe)
             FROM unnest($2::int4[]) WITH ORDINALITY AS s (stripe, position)
             ORDER BY position",
        )
        .await?;
    transaction
        .execute(&statement, &[&IDENTIFIER_LOCK_SPACE, &stripes])
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use panorama_core::IdentifierKind;

    use super::*;

    #[test]
    fn stripes_are_stable_and_in_range() {
        let phone = Identifier::parse(IdentifierKind::Phone, "+31612345678", None).expect("valid");
        let email =
            Identifier::parse(IdentifierKind::Email, "anna@example.nl", None).expect("valid");
        assert_eq!(stripe(&phone), stripe(&phone.clone()));
        assert!((0..IDENTIFIER_STRIPES as i32).contains(&stripe(&phone)));
        assert!((0..IDENTIFIER_STRIPES as i32).contains(&stripe(&email)));
    }
}
