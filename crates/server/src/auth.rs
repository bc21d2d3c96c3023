//! Bearer-token access control.
//!
//! The [`authenticate`] middleware reads `Authorization: Bearer <token>` once
//! per request, checks it against the API tokens in the store (through a
//! short-lived cache), and leaves the outcome in the request's extensions.
//! The role a route needs is part of its entry in the route table
//! (`endpoints.rs`), which puts [`require_role`] in front of the handler:
//!
//! ```ignore
//! endpoint::<identity::__path_merge>(Api, |r| r.to(identity::merge)).needs(Admin),
//! ```
//!
//! The check runs before the handler's extractors, so its 401 or 403 comes
//! before any 400; a caller without the role learns nothing from validation
//! errors. A handler that needs to know who calls (to name the agent on an
//! event, say) takes [`Caller`] as an argument.
//!
//! **Cache.** A successful authentication is reused for [`AUTH_CACHE_TTL`]
//! (5 s) per process without asking the database again, so steady traffic
//! from one token costs one lookup per 5 s instead of one per request, and
//! no pool connection on the hot read path. The price: a revoked token keeps
//! working for up to 5 s on a process that saw it just before. A token the
//! database accepted in the last [`AUTH_STALE_TTL`] is accepted without it
//! while it cannot be reached, so ingest keeps working through a database
//! outage. A refusal is remembered for a minute, so the same made-up token
//! costs one lookup (see `token_cache`).
//!
//! **Floods.** Failed checks are counted per client address; past
//! `limits.failed_auth_per_minute`, a token that address presents is only
//! checked when this process has seen it lately, anything else is answered
//! 429 without a lookup. A flood of made-up tokens therefore costs the
//! database a bounded number of lookups per address, and callers with live
//! tokens keep working. Configured channel tokens are never looked up.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{AUTHORIZATION, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, web};
use panorama_core::Role;
use panorama_store::{Principal, Store};

use crate::error::ApiError;
use crate::limits::failed_auth::{FailedAuth, matching_secret};
use crate::limits::limit::Limit;
use crate::limits::refusal::count_refusal;
use crate::token_cache::{Known, TokenCache};
use crate::{AppState, metrics};

pub use crate::token_cache::{AUTH_CACHE_TTL, AUTH_STALE_TTL};

/// How long token checks skip the database after it could not be reached:
/// requests in an outage do not each wait for a connection that fails.
const UNREACHABLE_BACKOFF: Duration = Duration::from_secs(1);

/// The authenticated caller of a request: the live API token it presented.
#[derive(Debug, Clone)]
pub struct Caller {
    principal: Principal,
}

impl Caller {
    /// The token behind the request.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The caller's role.
    pub fn role(&self) -> Role {
        self.principal.role
    }

    /// `Ok` when the caller holds `needed` (or is admin), else 403.
    pub fn require(&self, needed: Role) -> Result<(), ApiError> {
        if self.principal.role.grants(needed) {
            Ok(())
        } else {
            metrics::AUTH.with_label_values(&["forbidden"]).inc();
            tracing::info!(
                token = %self.principal.name,
                role = %self.principal.role,
                needed = %needed,
                "request refused: role"
            );
            Err(ApiError::Forbidden { needed })
        }
    }

    /// The caller of `request`, as the [`authenticate`] middleware found it.
    pub(crate) fn of(request: &HttpRequest) -> Result<Caller, ApiError> {
        let outcome = request.extensions().get::<Outcome>().cloned();
        match outcome {
            Some(Outcome::Valid(principal)) => Ok(Caller { principal }),
            Some(Outcome::Missing) => Err(ApiError::Unauthorized(
                "a bearer token is required (Authorization: Bearer <token>)".into(),
            )),
            Some(Outcome::Invalid) => Err(ApiError::Unauthorized(
                "the bearer token is unknown or revoked".into(),
            )),
            Some(Outcome::Unavailable) => Err(ApiError::DatabaseUnavailable),
            Some(Outcome::Throttled(wait)) => Err(ApiError::TooManyRequests {
                limit: Limit::FailedAuth,
                retry_after: wait,
            }),
            None => {
                tracing::error!("the authentication middleware is not installed");
                Err(ApiError::Internal)
            }
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Caller, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Caller::of(request))
    }
}

/// What the middleware found out about a request's credentials.
#[derive(Debug, Clone)]
enum Outcome {
    /// No bearer token.
    Missing,
    /// A bearer token that is no live API token.
    Invalid,
    /// A live token.
    Valid(Principal),
    /// The token could not be checked.
    Unavailable,
    /// The client address failed too many checks: retry after this many
    /// seconds.
    Throttled(u64),
}

/// A request whose bearer token is one of the configured channel tokens
/// (`PANORAMA_CHANNEL_TOKENS`), by position: set by [`authenticate`] for
/// the limits, which count its requests against it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConfiguredToken(pub(crate) usize);

/// Checks API tokens against the store, through the token cache, with
/// failed checks counted per client address.
#[derive(Debug)]
pub(crate) struct Authenticator {
    store: Option<Store>,
    cache: TokenCache,
    failures: FailedAuth,
    /// Until when checks skip the unreachable database.
    unreachable_until: Mutex<Option<Instant>>,
}

impl Authenticator {
    /// Checks against `store`, blocking addresses past
    /// `failed_auth_per_minute` failed checks (0: never).
    pub(crate) fn new(store: Option<Store>, failed_auth_per_minute: u32) -> Self {
        Authenticator {
            store,
            cache: TokenCache::default(),
            failures: FailedAuth::new(failed_auth_per_minute),
            unreachable_until: Mutex::new(None),
        }
    }

    fn unreachable(&self) -> bool {
        let until = self
            .unreachable_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        until.is_some_and(|until| Instant::now() < until)
    }

    fn mark_unreachable(&self) {
        *self
            .unreachable_until
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + UNREACHABLE_BACKOFF);
    }

    /// A failed check from `client` (none for checks of the server's own).
    fn failed(&self, client: Option<IpAddr>) -> Outcome {
        if let Some(client) = client {
            self.failures.failed(client);
        }
        Outcome::Invalid
    }

    /// Checks `token`, presented from `client`.
    async fn check(&self, token: &str, client: Option<IpAddr>) -> Outcome {
        let hash = panorama_store::token_hash(token);
        let seen = match self.cache.lookup(&hash) {
            Known::Fresh(principal) => {
                metrics::AUTH.with_label_values(&["cached"]).inc();
                return Outcome::Valid(principal);
            }
            Known::Stale(principal) => Some(principal),
            Known::Rejected => {
                metrics::AUTH.with_label_values(&["invalid"]).inc();
                return self.failed(client);
            }
            Known::Unknown => None,
        };
        // The client whose allowance of failed checks paid for the lookup
        // of a token this process has not seen lately.
        let mut paid = None;
        if seen.is_none() {
            if let Some(wait) = client.and_then(|client| self.failures.blocked(client)) {
                return self.throttled(wait);
            }
            if !panorama_store::looks_like_secret(token) {
                metrics::AUTH.with_label_values(&["invalid"]).inc();
                return self.failed(client);
            }
            if let Some(client) = client {
                if let Err(wait) = self.failures.pay(client) {
                    return self.throttled(wait);
                }
                paid = Some(client);
            }
        }
        let refund = || {
            if let Some(client) = paid {
                self.failures.refund(client);
            }
        };
        let Some(store) = self.store.as_ref().filter(|_| !self.unreachable()) else {
            refund();
            return self.without_database(seen);
        };
        metrics::AUTH_LOOKUPS.inc();
        match store.authenticate(token).await {
            Ok(Some(principal)) => {
                refund();
                metrics::AUTH.with_label_values(&["accepted"]).inc();
                self.cache.accept(hash, &principal);
                Outcome::Valid(principal)
            }
            Ok(None) => {
                metrics::AUTH.with_label_values(&["invalid"]).inc();
                self.cache.reject(hash);
                if paid.is_some() {
                    Outcome::Invalid
                } else {
                    self.failed(client)
                }
            }
            Err(error) => {
                refund();
                tracing::warn!(%error, "cannot check an api token");
                self.mark_unreachable();
                self.without_database(seen)
            }
        }
    }

    /// The answer to a client over its failed checks: not looked up.
    fn throttled(&self, wait: Duration) -> Outcome {
        metrics::AUTH.with_label_values(&["throttled"]).inc();
        Outcome::Throttled(count_refusal(Limit::FailedAuth, wait))
    }

    /// The outcome when the database cannot answer: a token seen lately is
    /// accepted, anything else cannot be checked.
    fn without_database(&self, seen: Option<Principal>) -> Outcome {
        if self.store.is_none() {
            tracing::error!("no database to check api tokens against");
        }
        match seen {
            Some(principal) => {
                metrics::AUTH.with_label_values(&["stale"]).inc();
                Outcome::Valid(principal)
            }
            None => {
                metrics::AUTH.with_label_values(&["unavailable"]).inc();
                Outcome::Unavailable
            }
        }
    }

    /// Whether `token` has been revoked (or was never live): what an open
    /// stream asks every second. Answered from the cache while its success
    /// is fresh, then by the database; `false` while that cannot answer.
    pub(crate) async fn revoked(&self, token: &str) -> bool {
        let hash = panorama_store::token_hash(token);
        if let Known::Fresh(_) = self.cache.lookup(&hash) {
            return false;
        }
        matches!(self.check(token, None).await, Outcome::Invalid)
    }
}

/// The token of an `Authorization: Bearer <token>` header: the scheme in
/// any case, any spaces around the token. `None` for no header, another
/// scheme, an empty token, or anything but visible ASCII.
pub(crate) fn bearer_token(header: Option<&HeaderValue>) -> Option<&str> {
    let value = header?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim_matches([' ', '\t']);
    let visible = !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic());
    visible.then_some(token)
}

/// Route middleware of every route whose entry in the route table
/// (`endpoints.rs`) names a role: the caller must hold it. It runs before
/// the handler and its extractors, so a caller without a valid token (401)
/// or without the role (403) learns nothing from the request's validation. The refusal is an answer, not an error, so the audit and
/// metrics middlewares see it like any other.
pub(crate) async fn require_role(
    role: Role,
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Err(refused) = Caller::of(request.request()).and_then(|caller| caller.require(role)) {
        return Ok(request.error_response(refused).map_into_right_body());
    }
    next.call(request)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Middleware: authenticates the request's bearer token, if any, and leaves
/// the outcome for [`Caller`]. Refuses nothing by itself: public routes and
/// provider webhooks ignore it. A configured channel token is no API token
/// and is not looked up (nor counted as a failure); the channel routes
/// accept it by themselves.
pub(crate) async fn authenticate(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let token = bearer_token(request.headers().get(AUTHORIZATION)).map(str::to_owned);
    let client = request.peer_addr().map(|address| address.ip());
    let outcome = match (token, request.app_data::<web::Data<AppState>>()) {
        (None, _) => Outcome::Missing,
        (Some(token), Some(state)) => {
            let configured = &state.settings.channels.channel_tokens;
            match matching_secret(&token, configured) {
                Some(index) => {
                    request.extensions_mut().insert(ConfiguredToken(index));
                    Outcome::Invalid
                }
                None => state.auth.check(&token, client).await,
            }
        }
        (Some(_), None) => Outcome::Unavailable,
    };
    request.extensions_mut().insert(outcome);
    next.call(request).await
}

/// Leaves on `request`, as [`authenticate`] would, a live token of `role`,
/// or no token: for tests of the routes without a database.
#[cfg(test)]
pub(crate) fn authenticated_as(request: &ServiceRequest, role: Option<Role>) {
    let outcome = match role {
        Some(role) => Outcome::Valid(Principal {
            token_id: uuid::Uuid::nil(),
            name: format!("test-{role}"),
            role,
            source: (role == Role::Channel).then(|| "test".to_owned()),
        }),
        None => Outcome::Missing,
    };
    request.extensions_mut().insert(outcome);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_of(raw: &[u8]) -> Option<String> {
        let header = HeaderValue::from_bytes(raw).ok();
        bearer_token(header.as_ref()).map(str::to_owned)
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_spaces_are_forgiven() {
        for raw in [
            "Bearer pan_abc",
            "bearer pan_abc",
            "BEARER pan_abc",
            "Bearer   pan_abc",
            "Bearer\tpan_abc",
            "  Bearer pan_abc  ",
        ] {
            assert_eq!(
                token_of(raw.as_bytes()).as_deref(),
                Some("pan_abc"),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn anything_else_is_no_token() {
        for raw in [
            &b""[..],
            b"Bearer",
            b"Bearer ",
            b"Bearer    ",
            b"Basic dXNlcjpwYXNz",
            b"Bearerpan_abc",
            b"Token pan_abc",
            b"Bearer pan abc",
            "Bearer pän_abc".as_bytes(),
            b"Bearer \xff\xfe",
        ] {
            assert_eq!(token_of(raw), None, "{:?}", String::from_utf8_lossy(raw));
        }
        assert_eq!(bearer_token(None), None);
    }

    #[test]
    fn caller_without_the_middleware_is_an_internal_error_not_a_panic() {
        let request = actix_web::test::TestRequest::default().to_http_request();
        assert!(matches!(Caller::of(&request), Err(ApiError::Internal)));
    }

    #[test]
    fn require_admits_the_role_and_admin_only() {
        let caller = |role| Caller {
            principal: Principal {
                token_id: uuid::Uuid::nil(),
                name: "t".into(),
                role,
                source: None,
            },
        };
        assert!(caller(Role::Agent).require(Role::Agent).is_ok());
        assert!(caller(Role::Admin).require(Role::Agent).is_ok());
        assert!(caller(Role::Admin).require(Role::Channel).is_ok());
        assert!(matches!(
            caller(Role::Channel).require(Role::Agent),
            Err(ApiError::Forbidden {
                needed: Role::Agent
            })
        ));
        assert!(caller(Role::Agent).require(Role::Admin).is_err());
    }
}
