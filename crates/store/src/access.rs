//! API tokens: create, revoke, list, and authenticate a presented secret.
//!
//! A secret is `pan_` followed by 32 random bytes in unpadded base64url. Only
//! its SHA-256 is stored, so a copy of the database does not hold a usable
//! token; a secret is shown once, when it is created.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use panorama_core::Role;
use sha2::{Digest as _, Sha256};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::{Error, Result, Store};

/// Every secret starts with this, so a leaked one is recognisable.
pub const SECRET_PREFIX: &str = "pan_";

/// Random bytes in a secret.
const SECRET_BYTES: usize = 32;

/// Characters of a whole secret: the prefix and 32 bytes in base64url.
const SECRET_LEN: usize = SECRET_PREFIX.len() + (SECRET_BYTES * 4).div_ceil(3);

/// Longest token name.
const MAX_NAME_LEN: usize = 100;

/// The unique index that allows one live token per name.
const ACTIVE_NAME_INDEX: &str = "api_tokens_active_name";

/// A token secret. Its `Debug` form hides it, so it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, to show once or send as `Authorization: Bearer`.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A token as operators see it: never the secret or its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Token id.
    pub id: Uuid,
    /// The name it was created under (one live token per name).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last presented, to the minute; `None` if never.
    pub last_used_at: Option<DateTime<Utc>>,
    /// The source a channel token posts under; `None` for other roles.
    pub source: Option<String>,
}

/// Who is calling: the live token a request presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token id.
    pub token_id: Uuid,
    /// Token name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The source a channel token posts under (events it posts carry this
    /// source or one under it, `crm.billing`); `None` for other roles.
    pub source: Option<String>,
}

/// SHA-256 of a presented secret: what the database stores and looks up.
pub fn token_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A fresh secret from the operating system's CSPRNG (through `rand`'s
/// thread generator, which is seeded and reseeded from it).
fn new_secret() -> Secret {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    Secret(format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// Whether `secret` could be one of ours; anything else is refused without a
/// database round trip.
pub fn looks_like_secret(secret: &str) -> bool {
    secret.len() == SECRET_LEN
        && secret.starts_with(SECRET_PREFIX)
        && secret[SECRET_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(Error::InvalidTokenName(format!(
            "a name has 1 to {MAX_NAME_LEN} bytes"
        )));
    }
    if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::InvalidTokenName(
            "a name has no spaces or control characters".into(),
        ));
    }
    Ok(())
}

/// The source a new token posts under: a channel token's given one or its
/// name; none for other roles.
fn bound_source(name: &str, role: Role, source: Option<&str>) -> Result<Option<String>> {
    if role != Role::Channel {
        return match source {
            None => Ok(None),
            Some(_) => Err(Error::InvalidTokenSource(format!(
                "only channel tokens post under a source, not {role} tokens"
            ))),
        };
    }
    let (raw, what) = match source {
        Some(source) => (source, "source"),
        None => (
            name,
            "name, which a channel token posts under unless given a source,",
        ),
    };
    panorama_core::parse_source(raw)
        .map(Some)
        .map_err(|error| Error::InvalidTokenSource(format!("the {what} {}", error.message)))
}

fn role_of(row: &Row, column: usize) -> Result<Role> {
    let raw: String = row.get(column);
    raw.parse()
        .map_err(|error: panorama_core::UnknownRole| Error::Migration(error.to_string()))
}

fn token_info(row: &Row) -> Result<TokenInfo> {
    Ok(TokenInfo {
        id: row.get(0),
        name: row.get(1),
        role: role_of(row, 2)?,
        created_at: row.get(3),
        last_used_at: row.get(4),
        source: row.get(5),
    })
}

impl Store {
    /// Creates a token named `name` with `role`, and returns it with its
    /// secret, which is not stored and cannot be shown again. A channel
    /// token posts under its name as source (see [`Store::create_token_with_source`]).
    pub async fn create_token(&self, name: &str, role: Role) -> Result<(TokenInfo, Secret)> {
        self.create_token_with_source(name, role, None).await
    }

    /// [`Store::create_token`], with the source a channel token posts
    /// under: `source`, or by default its name, which must then be a
    /// source name. Tokens of other roles take no source.
    #[tracing::instrument(skip(self))]
    pub async fn create_token_with_source(
        &self,
        name: &str,
        role: Role,
        source: Option<&str>,
    ) -> Result<(TokenInfo, Secret)> {
        check_name(name)?;
        let source = bound_source(name, role, source)?;
        let secret = new_secret();
        let hash = token_hash(secret.expose());
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(include_str!("../sql/token_create.sql"))
            .await?;
        let row = client
            .query_one(
                &statement,
                &[
                    &Uuid::now_v7(),
                    &name,
                    &role.as_str(),
                    &hash.as_slice(),
                    &source,
                ],
            )
            .await
            .map_err(|error| {
                let taken = error
                    .as_db_error()
                    .and_then(|db| db.constraint())
                    .is_some_and(|constraint| constraint == ACTIVE_NAME_INDEX);
                if taken {
                    Error::TokenNameTaken(name.to_owned())
                } else {
                    Error::Db(error)
                }
            })?;
        tracing::info!(name, %role, source, "api token created");
        Ok((token_info(&row)?, secret))
    }

    /// Revokes the live token named `name`; `false` when there is none.
    #[tracing::instrument(skip(self))]
    pub async fn revoke_token(&self, name: &str) -> Result<bool> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(include_str!("../sql/token_revoke.sql"))
            .await?;
        let revoked = client.execute(&statement, &[&name]).await? > 0;
        if revoked {
            tracing::info!(name, "api token revoked");
        }
        Ok(revoked)
    }

    /// Every live token, by name.
    #[tracing::instrument(skip(self))]
    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(include_str!("../sql/token_list.sql"))
            .await?;
        let rows = client.query(&statement, &[]).await?;
        rows.iter().map(token_info).collect()
    }

    /// The caller a presented secret belongs to: `None` unless it is a live
    /// (not revoked) token. One unique-index lookup; `last_used_at` is
    /// written at most once a minute per token.
    #[tracing::instrument(skip_all)]
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Principal>> {
        if !looks_like_secret(secret) {
            return Ok(None);
        }
        let hash = token_hash(secret);
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(include_str!("../sql/token_authenticate.sql"))
            .await?;
        let Some(row) = client.query_opt(&statement, &[&hash.as_slice()]).await? else {
            return Ok(None);
        };
        Ok(Some(Principal {
            token_id: row.get(0),
            name: row.get(1),
            role: role_of(&row, 2)?,
            source: row.get(3),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_distinct_and_recognised() {
        let first = new_secret();
        let second = new_secret();
        assert_ne!(first, second);
        assert!(first.expose().starts_with(SECRET_PREFIX));
        assert_eq!(first.expose().len(), SECRET_LEN);
        assert!(looks_like_secret(first.expose()));
        assert!(!looks_like_secret("pan_short"));
        assert!(!looks_like_secret(
            &first.expose().replacen("pan_", "xyz_", 1)
        ));
        let non_ascii = format!("{}é", &first.expose()[..SECRET_LEN - 2]);
        assert!(!looks_like_secret(&non_ascii));
    }

    #[test]
    fn debug_hides_the_secret() {
        let secret = new_secret();
        assert!(!format!("{secret:?}").contains(&secret.expose()[4..]));
    }

    #[test]
    fn hashes_are_sha256() {
        assert_eq!(
            hex_of(&token_hash("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn hex_of(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("desk-12").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("two words").is_err());
        assert!(check_name(&"x".repeat(101)).is_err());
    }

    #[test]
    fn channel_tokens_and_only_they_are_bound_to_a_source() {
        let bound =
            |name, role, source| bound_source(name, role, source).map_err(|e| e.to_string());
        assert_eq!(
            bound("crm", Role::Channel, None),
            Ok(Some("crm".to_owned()))
        );
        assert_eq!(
            bound("Desk 7", Role::Channel, Some("crm.billing")),
            Ok(Some("crm.billing".to_owned()))
        );
        assert_eq!(bound("desk-7", Role::Agent, None), Ok(None));
        let refused = bound("CRM", Role::Channel, None).expect_err("not a source name");
        assert!(refused.contains("name"), "{refused}");
        let refused = bound("crm", Role::Channel, Some("Crm!")).expect_err("not a source name");
        assert!(refused.contains("source"), "{refused}");
        assert!(bound("ops", Role::Admin, Some("crm")).is_err());
    }
}
