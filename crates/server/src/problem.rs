//! The problem answers operations list, one at a time as
//! `(status = 404, response = problem::NotFound)` or as one of the sets
//! (`problem::Read`, ...): the reusable `application/problem+json`
//! responses among the OpenAPI document's components.

use std::collections::BTreeMap;

use utoipa::openapi::content::Content;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::{Ref, RefOr};

use crate::error::PROBLEM_JSON;

/// A reusable problem answer: `application/problem+json` with the
/// `Problem` schema, optionally with a header.
fn problem(description: &str, header: Option<(&str, &str)>) -> Response {
    let mut response = ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        Content::new(Some(RefOr::Ref(Ref::from_schema_name("Problem")))),
    );
    if let Some((name, description)) = header {
        response = response.header(
            name,
            HeaderBuilder::new()
                .schema(Object::with_type(Type::String))
                .description(Some(description))
                .build(),
        );
    }
    response.build()
}

macro_rules! problem_responses {
    ($($(#[$doc:meta])* $name:ident => $description:literal $(, header $header:literal: $header_doc:literal)?;)+) => {
        $(
            $(#[$doc])*
            pub(crate) struct $name;

            impl<'r> utoipa::ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    let header: Option<(&str, &str)> = None $(.or(Some(($header, $header_doc))))?;
                    (stringify!($name), RefOr::T(problem($description, header)))
                }
            }
        )+
    };
}

/// Sets of problem answers that operations share, each a reference per
/// status to the reusable responses above, listed in an operation's
/// `responses(...)` after its success answers.
macro_rules! problem_sets {
    ($($(#[$doc:meta])* $name:ident => $($status:literal $response:ident),+;)+) => {
        $(
            $(#[$doc])*
            pub(crate) struct $name;

            impl utoipa::IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    BTreeMap::from([$((
                        $status.to_string(),
                        RefOr::Ref(Ref::from_response_name(stringify!($response))),
                    )),+])
                }
            }
        )+
    };
}

problem_responses! {
    /// 400.
    BadRequest => "`/problems/malformed-json`: the body is not JSON; \
        `/problems/invalid-parameter`: a path or query parameter is wrong (`field` names it); \
        `/problems/malformed-payload`: a provider payload that is not what the provider sends.";
    /// 401.
    Unauthorized => "`/problems/unauthorized`: a missing, unknown or revoked token, or a \
        missing or wrong signature, secret or key.",
        header "WWW-Authenticate": "`Bearer`";
    /// 403.
    Forbidden => "`/problems/forbidden`: a valid token without the role this needs; \
        `detail` names the role.";
    /// 404.
    NotFound => "`/problems/not-found`: no such customer, case, task or conflict, or a \
        channel adapter that is not configured.";
    /// 409.
    Conflict => "The request contradicts the current state; nothing was changed: \
        `/problems/merge-refused`, `/problems/already-merged`, `/problems/not-merged`, \
        `/problems/already-resolved`, `/problems/nothing-to-merge`, `/problems/case-state`; \
        `/problems/idempotency-conflict`: an `event_id` or `Idempotency-Key` used before \
        with a different payload, nothing published (`field` names it, such as \
        `events[3].event_id` or `Idempotency-Key`).";
    /// 413.
    PayloadTooLarge => "`/problems/payload-too-large`: the body is larger than allowed.";
    /// 415.
    UnsupportedMediaType => "`/problems/unsupported-media-type`: a `Content-Type` other \
        than `application/json` (or `+json`).";
    /// 429.
    TooManyRequests => "`/problems/too-many-requests`: a limit on the caller was reached: its \
        token's or write key's requests per second or requests in progress, its token's \
        live-update streams, or the failed token checks from its address; `limit` names the \
        setting. Nothing was done.",
        header "Retry-After": "Seconds to wait before retrying";
    /// 422.
    ValidationFailed => "`/problems/validation-failed`: a field is missing, of the wrong \
        type or out of range; `field` is its JSON path, such as `events[3].identifiers[0].value`.";
    /// 503.
    Unavailable => "`/problems/broker-unavailable`: the broker did not acknowledge, nothing \
        was accepted; `/problems/database-unavailable`: the database (or the token check) \
        cannot be reached; `/problems/audit-unavailable`: a read could not be recorded in the \
        audit trail, so it was not answered; `/problems/server-busy`: this server holds as many \
        ingest request bytes or live-update streams as it may (`limit` names the setting), \
        nothing was done. Retry.",
        header "Retry-After": "Seconds to wait: `5`, or what the limit says";
}

problem_sets! {
    /// A read of a list, which cannot name something missing.
    List => 400 BadRequest, 401 Unauthorized, 403 Forbidden, 429 TooManyRequests,
        503 Unavailable;
    /// A read of one customer (or of something of theirs) by id.
    Read => 400 BadRequest, 401 Unauthorized, 403 Forbidden, 404 NotFound,
        429 TooManyRequests, 503 Unavailable;
    /// A JSON body published as events, whose idempotency key may have
    /// been used before with another payload.
    Publish => 400 BadRequest, 401 Unauthorized, 403 Forbidden, 409 Conflict, 413 PayloadTooLarge,
        415 UnsupportedMediaType, 422 ValidationFailed, 429 TooManyRequests,
        503 Unavailable;
    /// A JSON body published about a customer (or case, or task) by id,
    /// whose `Idempotency-Key` may have been used before with another body.
    PublishAbout => 400 BadRequest, 401 Unauthorized, 403 Forbidden, 404 NotFound,
        409 Conflict, 413 PayloadTooLarge, 415 UnsupportedMediaType, 422 ValidationFailed,
        429 TooManyRequests, 503 Unavailable;
    /// A JSON body that changes the state of something by id, which its
    /// current state may forbid.
    Change => 400 BadRequest, 401 Unauthorized, 403 Forbidden, 404 NotFound,
        409 Conflict, 413 PayloadTooLarge, 415 UnsupportedMediaType,
        422 ValidationFailed, 429 TooManyRequests, 503 Unavailable;
    /// A provider's webhook in its own format, behind a bearer token or key.
    KeyedWebhook => 400 BadRequest, 401 Unauthorized, 403 Forbidden,
        413 PayloadTooLarge, 422 ValidationFailed, 429 TooManyRequests,
        503 Unavailable;
    /// A provider's webhook authenticated by its signature or secret; 404
    /// when the adapter is not configured. 429 only for a caller that also
    /// sends a bearer token over its limits.
    SignedWebhook => 400 BadRequest, 401 Unauthorized, 404 NotFound,
        413 PayloadTooLarge, 422 ValidationFailed, 429 TooManyRequests,
        503 Unavailable;
}
