//! Request bodies as bytes: the JSON content-type check and reading a
//! whole body within a size limit, shared by the ingest routes, the
//! provider webhooks and the agent API's JSON bodies.

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures::StreamExt as _;

use crate::error::ApiError;

/// Refuses a request whose `Content-Type` is neither `application/json`
/// nor a `+json` type (415); no `Content-Type` at all is accepted.
pub(crate) fn require_json(request: &HttpRequest) -> Result<(), ApiError> {
    let Some(content_type) = request.headers().get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = content_type
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

/// Reads the whole body, refusing it as soon as it passes `limit`.
pub(crate) async fn read_body(
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| match error {
            actix_web::error::PayloadError::Overflow => ApiError::PayloadTooLarge { limit },
            other => ApiError::MalformedJson(other.to_string()),
        })?;
        if body.len() + chunk.len() > limit {
            drain(payload).await;
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Most bytes of an oversized body read and thrown away before it is
/// answered 413, and for how long: a client still writing when the answer
/// comes sees a broken connection instead of the problem. Past either
/// bound the connection is closed.
const DRAIN_BYTES: usize = 16 * 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads and discards the rest of `payload`, within [`DRAIN_BYTES`] and
/// [`DRAIN_TIME`].
async fn drain(mut payload: web::Payload) {
    let mut drained = 0usize;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(chunk)) = payload.next().await {
            drained += chunk.len();
            if drained > DRAIN_BYTES {
                break;
            }
        }
    })
    .await;
}
