//! Every error the HTTP API answers, mapped to status and an RFC 9457
//! `application/problem+json` body in this one place.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use panorama_core::{FieldError, Role};
use serde::Serialize;

use crate::limits::limit::Limit;

/// Media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error as the API reports it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON.
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    /// A field is missing, of the wrong type, or out of range.
    #[error("{0}")]
    Validation(FieldError),
    /// A query or path parameter is wrong.
    #[error("{message}")]
    InvalidParameter {
        /// The parameter.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A provider payload that is not what the provider sends.
    #[error("{message}")]
    MalformedPayload {
        /// The field at fault, when there is one.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// Missing or wrong credentials or signature.
    #[error("{0}")]
    Unauthorized(String),
    /// A valid token whose role may not do this.
    #[error("this needs a token with the {needed} role (or admin)")]
    Forbidden {
        /// The role the route needs.
        needed: Role,
    },
    /// The body is larger than allowed.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The body is not JSON by its content type.
    #[error("expected Content-Type application/json")]
    UnsupportedMediaType,
    /// Nothing here by that name.
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the current state; nothing was changed.
    #[error("{message}")]
    Conflict {
        /// Which contradiction.
        clash: Clash,
        /// The field at fault, when there is one.
        field: Option<&'static str>,
        /// What is wrong.
        message: String,
    },
    /// An idempotency key (an `event_id`, an `Idempotency-Key`) used
    /// before with a different payload; nothing was published.
    #[error("{}", .0.message)]
    IdempotencyConflict(FieldError),
    /// The broker did not acknowledge in time; nothing was accepted.
    #[error("the event bus is unavailable; nothing was accepted, retry later")]
    BrokerUnavailable,
    /// The database is unreachable.
    #[error("the database is unavailable, retry later")]
    DatabaseUnavailable,
    /// A read could not be recorded in the audit trail, so it is not
    /// answered.
    #[error(
        "the read could not be recorded in the audit trail, so it is not answered; retry later"
    )]
    AuditUnavailable,
    /// A limit on the caller was reached (its token's or write key's rate,
    /// requests in progress or streams, or its address's failed token
    /// checks); nothing was done.
    #[error("{}; retry after {retry_after} s", .limit.refusal())]
    TooManyRequests {
        /// The limit.
        limit: Limit,
        /// Seconds to wait.
        retry_after: u64,
    },
    /// A limit of the whole process was reached (ingest bytes in flight,
    /// live-update streams); nothing was done.
    #[error("{}; retry after {retry_after} s", .limit.refusal())]
    ServerBusy {
        /// The limit.
        limit: Limit,
        /// Seconds to wait.
        retry_after: u64,
    },
    /// A bug or an unexpected failure; details are in the log only.
    #[error("internal error")]
    Internal,
}

/// The kinds of 409 answers, each with its own problem type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clash {
    /// The identity rules forbid merging these customers.
    MergeRefused,
    /// The customers are one customer already.
    AlreadyMerged,
    /// The customer to split off is not part of this customer.
    NotMerged,
    /// The conflict was settled before.
    AlreadyResolved,
    /// The conflict's customers are one customer already, or it concerns
    /// only one.
    NothingToMerge,
    /// The case has that status already.
    CaseState,
}

impl Clash {
    fn kind(self) -> (&'static str, &'static str) {
        match self {
            Clash::MergeRefused => ("/problems/merge-refused", "Merge refused"),
            Clash::AlreadyMerged => ("/problems/already-merged", "Already one customer"),
            Clash::NotMerged => ("/problems/not-merged", "Not merged"),
            Clash::AlreadyResolved => ("/problems/already-resolved", "Already resolved"),
            Clash::NothingToMerge => ("/problems/nothing-to-merge", "Nothing to merge"),
            Clash::CaseState => ("/problems/case-state", "Case already in that state"),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        ApiError::Validation(error)
    }
}

impl From<panorama_store::Error> for ApiError {
    fn from(error: panorama_store::Error) -> Self {
        tracing::error!(%error, "database call failed");
        if error.is_transient() {
            ApiError::DatabaseUnavailable
        } else {
            ApiError::Internal
        }
    }
}

impl From<panorama_bus::Error> for ApiError {
    fn from(error: panorama_bus::Error) -> Self {
        tracing::warn!(%error, "publish failed");
        ApiError::BrokerUnavailable
    }
}

/// An RFC 9457 problem: every error answer's body.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Problem<'a> {
    /// Stable problem type, a URI reference such as
    /// `/problems/validation-failed`: what a client branches on.
    #[serde(rename = "type")]
    #[schema(example = "/problems/validation-failed")]
    problem_type: &'a str,
    /// A short summary of the type.
    #[schema(example = "Validation failed")]
    title: &'a str,
    /// The HTTP status.
    #[schema(example = 422)]
    status: u16,
    /// What is wrong with this request.
    #[schema(example = "phone: not a valid phone number")]
    detail: String,
    /// The field, parameter or JSON path at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "identifiers[0].value")]
    field: Option<&'a str>,
    /// The limit that refused the request (429, and 503
    /// `/problems/server-busy`): its setting's key under `[limits]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "token_rate")]
    limit: Option<&'a str>,
}

impl ApiError {
    /// Stable problem type (a URI reference) and a short title.
    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::MalformedJson(_) => ("/problems/malformed-json", "Malformed JSON"),
            ApiError::Validation(_) => ("/problems/validation-failed", "Validation failed"),
            ApiError::InvalidParameter { .. } => {
                ("/problems/invalid-parameter", "Invalid parameter")
            }
            ApiError::PayloadTooLarge { .. } => {
                ("/problems/payload-too-large", "Payload too large")
            }
            ApiError::UnsupportedMediaType => {
                ("/problems/unsupported-media-type", "Unsupported media type")
            }
            ApiError::NotFound(_) => ("/problems/not-found", "Not found"),
            ApiError::MalformedPayload { .. } => {
                ("/problems/malformed-payload", "Malformed payload")
            }
            ApiError::Unauthorized(_) => ("/problems/unauthorized", "Unauthorized"),
            ApiError::Forbidden { .. } => ("/problems/forbidden", "Forbidden"),
            ApiError::BrokerUnavailable => {
                ("/problems/broker-unavailable", "Event bus unavailable")
            }
            ApiError::DatabaseUnavailable => {
                ("/problems/database-unavailable", "Database unavailable")
            }
            ApiError::AuditUnavailable => {
                ("/problems/audit-unavailable", "Audit trail unavailable")
            }
            ApiError::Conflict { clash, .. } => clash.kind(),
            ApiError::IdempotencyConflict(_) => {
                ("/problems/idempotency-conflict", "Idempotency key reused")
            }
            ApiError::TooManyRequests { .. } => {
                ("/problems/too-many-requests", "Too many requests")
            }
            ApiError::ServerBusy { .. } => ("/problems/server-busy", "Server busy"),
            ApiError::Internal => ("/problems/internal", "Internal error"),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            ApiError::Validation(error) | ApiError::IdempotencyConflict(error) => {
                Some(&error.field)
            }
            ApiError::InvalidParameter { field, .. } => Some(field),
            ApiError::MalformedPayload { field, .. } => field.as_deref(),
            ApiError::Conflict { field, .. } => *field,
            _ => None,
        }
    }

    /// The limit that refused the request, and the seconds to wait.
    fn limit(&self) -> Option<(Limit, u64)> {
        match self {
            ApiError::TooManyRequests { limit, retry_after }
            | ApiError::ServerBusy { limit, retry_after } => Some((*limit, *retry_after)),
            _ => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_)
            | ApiError::InvalidParameter { .. }
            | ApiError::MalformedPayload { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } | ApiError::IdempotencyConflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::ServerBusy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BrokerUnavailable
            | ApiError::DatabaseUnavailable
            | ApiError::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let (problem_type, title) = self.kind();
        let body = Problem {
            problem_type,
            title,
            status: status.as_u16(),
            detail: self.to_string(),
            field: self.field(),
            limit: self.limit().map(|(limit, _)| limit.as_str()),
        };
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if let Some((_, seconds)) = self.limit() {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(seconds)));
        } else if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
        }
        response.body(serde_json::to_string(&body).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_of(error: ApiError) -> (StatusCode, serde_json::Value, Option<String>) {
        let response = error.error_response();
        let status = response.status();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.into_body().try_into_bytes().unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or_default(),
            retry,
        )
    }

    #[test]
    fn validation_problems_name_the_field() {
        let (status, body, _) = body_of(ApiError::Validation(FieldError {
            field: "identifiers[0].value".into(),
            message: "phone: not a valid phone number".into(),
        }));
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["type"], "/problems/validation-failed");
        assert_eq!(body["field"], "identifiers[0].value");
        assert_eq!(body["status"], 422);
    }

    #[test]
    fn unauthorized_challenges_and_forbidden_names_the_role() {
        let response = ApiError::Unauthorized("no token".into()).error_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers().get(header::WWW_AUTHENTICATE),
            Some(&HeaderValue::from_static("Bearer"))
        );
        let (status, body, _) = body_of(ApiError::Unauthorized("no token".into()));
        assert_eq!(body["type"], "/problems/unauthorized");
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        let forbidden = ApiError::Forbidden {
            needed: Role::Agent,
        };
        assert!(
            forbidden
                .error_response()
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .is_none()
        );
        let (status, body, _) = body_of(forbidden);
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["type"], "/problems/forbidden");
        assert_eq!(body["status"], 403);
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("agent"),
            "{body}"
        );
    }

    #[test]
    fn unavailable_says_when_to_retry_and_hides_internals() {
        let (status, body, retry) = body_of(ApiError::BrokerUnavailable);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry.as_deref(), Some("5"));
        assert!(body.get("field").is_none());
        let (_, body, _) = body_of(ApiError::Internal);
        assert_eq!(body["detail"], "internal error");
        assert!(body.get("limit").is_none());
        let (status, body, retry) = body_of(ApiError::AuditUnavailable);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry.as_deref(), Some("5"));
        assert_eq!(body["type"], "/problems/audit-unavailable");
    }

    #[test]
    fn limits_say_which_and_when_to_retry() {
        let (status, body, retry) = body_of(ApiError::TooManyRequests {
            limit: Limit::TokenRate,
            retry_after: 2,
        });
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry.as_deref(), Some("2"));
        assert_eq!(body["type"], "/problems/too-many-requests");
        assert_eq!(body["limit"], "token_rate");
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or_default()
                .ends_with("retry after 2 s"),
            "{body}"
        );
        let (status, body, retry) = body_of(ApiError::ServerBusy {
            limit: Limit::IngestBytes,
            retry_after: 1,
        });
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry.as_deref(), Some("1"));
        assert_eq!(body["type"], "/problems/server-busy");
        assert_eq!(body["limit"], "ingest_inflight_bytes");
    }
}
