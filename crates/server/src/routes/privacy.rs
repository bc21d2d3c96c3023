//! Privacy requests about a person: the export of everything held about
//! them, for a subject access or portability request.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use futures::StreamExt as _;

use super::params::parse_customer_id;
use crate::error::ApiError;
use crate::{AppState, problem, store};

/// `GET /v1/customers/{id}/export` — everything held about the customer,
/// as one JSON document streamed from one snapshot.
#[utoipa::path(
    get,
    path = "/v1/customers/{id}/export",
    tag = "privacy",
    summary = "Export everything held about a customer",
    description = "Everything the database holds about the person, machine-readable: the \
        customer and every profile merged into it, identifiers with their sources and first \
        and last sightings, per-channel and daily figures, attributes, survey figures, cases, \
        tasks, merges, refused merges and unmerges, conflicts and separations naming them, the \
        change log, dead letters naming their events, the whole event history with every \
        stored field (notes are `note.added` events, survey answers `feedback.submitted` \
        events), and the audit trail of who read or changed the record (the `CustomerExport` \
        schema; each list holds its table's rows, one field per column, `null` where a column \
        holds nothing).\n\n\
        Any id that leads to the customer works: a merged one, or one from before a replay; \
        `customer_id` is the customer exported, `requested_id` the id asked for. The document \
        is one consistent snapshot taken when the request is answered, streamed while it is \
        read (chunked, without `Content-Length`), so a long history costs the server one page \
        of rows at a time. A transfer that ends before the closing `}` is incomplete: the \
        server hit an error or the client stopped reading for longer than the database's \
        idle-transaction timeout; ask again.\n\n\
        The export is audited like every read (its entry is written before the document \
        leaves, and appears in the next export's `audit`, not in its own).",
    params(("id" = Uuid, Path, description = "Customer id (a merged one works too)")),
    responses(
        (status = 200, description = "The export, streamed", content_type = "application/json",
            body = panorama_store::CustomerExport,
            headers(
                ("Content-Disposition" = String, description = "`attachment; filename=\"customer-<id>.json\"`, with the id of the customer exported"),
                ("Cache-Control" = String, description = "`no-store`"),
            )),
        problem::Read,
    ),
)]
pub(crate) async fn export(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let requested = parse_customer_id(&path)?;
    let Some(export) = store(&state)?.export(requested).await? else {
        return Err(ApiError::NotFound(format!("no customer {requested}")));
    };
    let customer = export.customer_id();
    tracing::info!(%customer, %requested, "customer export started");
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"customer-{customer}.json\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(export.map(|chunk| chunk.map(web::Bytes::from))))
}
