//! `GET /openapi.json`: the OpenAPI 3.1 document of the HTTP API, generated
//! from the code.
//!
//! Each handler carries a `#[utoipa::path]` annotation (method, path,
//! parameters, bodies, answers, who may call it). The route table in
//! [`crate::endpoints`] mounts every handler at the method and path of its
//! annotation and is also the list of operations this document is built
//! from, so a route cannot be served undocumented, or documented under
//! another path. Schemas come from `utoipa::ToSchema` derives on the
//! response types (`panorama-store`, `panorama-core`) and on the
//! documentation-only request types beside the handlers; problem answers
//! are the reusable responses of [`crate::problem`].

use std::sync::LazyLock;

use actix_web::HttpResponse;
use panorama_core::Role;
use utoipa::openapi::RefOr;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::{Modify, OpenApi};

use crate::endpoints::{ENDPOINTS, Served};
use crate::problem;

/// The document, rendered once per process.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    document()
        .to_json()
        .expect("the OpenAPI document serialises")
});

/// `GET /openapi.json`: the OpenAPI document. Public.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    summary = "This API's OpenAPI 3.1 document",
    description = "Generated from the code: every route, schema, problem answer and \
        security scheme. No token needed.",
    responses((status = 200, description = "The document", content_type = "application/json", body = Object)),
)]
pub(crate) async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.as_str())
}

/// The whole document: the parts declared below plus one operation per
/// entry of the route table, with what the entry says: the role a caller's
/// token needs (as the `bearer` security requirement and a sentence of the
/// description) and which processes serve it.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    for endpoint in ENDPOINTS.iter() {
        let mut operation = endpoint.operation.clone();
        let description = operation.description.get_or_insert_with(String::new);
        if let Some(role) = endpoint.role {
            let needs = match role {
                Role::Admin => "Needs the `admin` role.".to_owned(),
                role => format!("Needs the `{role}` role (or `admin`)."),
            };
            paragraph(description, &needs);
            operation.security = Some(vec![SecurityRequirement::new("bearer", [role.as_str()])]);
        }
        let served = match endpoint.served {
            Served::Always => "every process, whatever its roles",
            Served::Gateway => "processes running the `gateway` role",
            Served::Api => "processes running the `api` role",
        };
        paragraph(description, &format!("Served by {served}."));
        spell_links(&mut operation);
        document
            .paths
            .add_path_operation(&endpoint.path, vec![endpoint.method.clone()], operation);
    }
    document
}

/// Writes the links of `operation`'s answers (what the API fuzzer's
/// stateful phase and client generators follow) with the keys OpenAPI
/// names: utoipa 5 serialises a link's `operationId`, `operationRef` and
/// `requestBody` in snake case, which no tool reads. They move to the
/// link's map of extra keys, which is written as is.
fn spell_links(operation: &mut Operation) {
    for response in operation.responses.responses.values_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        for link in response.links.values_mut() {
            let RefOr::T(link) = link else {
                continue;
            };
            let extra = link.extensions.get_or_insert_with(Default::default);
            let names = [
                ("operationId", std::mem::take(&mut link.operation_id)),
                ("operationRef", std::mem::take(&mut link.operation_ref)),
            ];
            for (key, name) in names {
                if !name.is_empty() {
                    extra.insert(key.to_owned(), serde_json::Value::String(name));
                }
            }
            if let Some(body) = link.request_body.take() {
                extra.insert("requestBody".to_owned(), body);
            }
        }
    }
}

/// Adds `text` to `description` as a paragraph of its own.
fn paragraph(description: &mut String, text: &str) {
    if !description.is_empty() {
        description.push_str("\n\n");
    }
    description.push_str(text);
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Panorama",
        description = "One history per customer across every channel: contact events in \
            (`POST /v1/events` and the providers' webhooks under `/v1/channels/`), customer \
            profiles, timelines, identity, cases, tasks, insights, live updates, the audit \
            trail and privacy exports out.\n\nEvery error is an RFC 9457 `application/problem+json` body (the \
            `Problem` schema). Callers authenticate with `Authorization: Bearer <token>`; a \
            token has one role, `agent`, `channel` or `admin` (admin may do everything), and \
            each operation's `bearer` security requirement names the role it needs. Provider \
            webhooks are authenticated by the provider's own signature or secret instead.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(
        schemas(
            crate::error::Problem,
            panorama_core::EventDraft,
            panorama_core::IdentifierDraft,
            panorama_core::FeedbackDraft,
            panorama_core::ConsentDraft,
            panorama_core::Consent,
            panorama_core::ConsentChannel,
            panorama_core::ConsentPurpose,
            panorama_core::ConsentStatus,
            panorama_core::Identifier,
            panorama_core::IdentifierKind,
            panorama_core::Trust,
            panorama_core::Channel,
            panorama_core::Direction,
            panorama_core::EventType,
            panorama_core::FeedbackMetric,
            panorama_store::CustomerProfile,
            panorama_store::IdentifierView,
            panorama_store::ChannelSummary,
            panorama_store::ContactWindows,
            panorama_store::FeedbackSummary,
            panorama_store::MetricSummary,
            panorama_store::Signals,
            panorama_store::TimelineEntry,
            panorama_store::CarriedIdentifier,
            panorama_store::CustomerIdentity,
            panorama_store::IdentityIdentifier,
            panorama_store::IdentityProfile,
            panorama_store::HistoryEntry,
            panorama_store::MergeRecord,
            panorama_store::ConflictView,
            panorama_store::CaseView,
            panorama_store::TaskView,
            panorama_store::ConsentView,
            panorama_store::TraitView,
            panorama_core::traits::TraitType,
            panorama_store::Insights,
            panorama_store::AuditRecord,
            panorama_store::CustomerExport,
            panorama_store::ExportCustomer,
            panorama_store::ExportAlias,
            panorama_store::ExportIdentifier,
            panorama_store::ExportChannel,
            panorama_store::ExportDailyContacts,
            panorama_store::ExportAttribute,
            panorama_store::ExportFeedback,
            panorama_store::ExportConsent,
            panorama_store::ExportCase,
            panorama_store::ExportTask,
            panorama_store::ExportHistory,
            panorama_store::ExportConflict,
            panorama_store::ExportSeparation,
            panorama_store::ExportChange,
            panorama_store::ExportDeadLetter,
            panorama_store::ExportEvent,
            panorama_store::ErasureStatus,
            panorama_store::ErasureState,
            crate::health::Health,
            crate::health::Readiness,
            crate::health::CheckResult,
            crate::ingest::Accepted,
            crate::ingest::doc::EventsBody,
            crate::ingest::doc::EventBatch,
            crate::channels::Answer,
            crate::channels::doc::TwilioVoiceCallback,
            crate::channels::doc::CtiBody,
            crate::channels::doc::CtiCallEvent,
            crate::channels::doc::CtiBatch,
            crate::channels::doc::SendGridInbound,
            crate::channels::doc::MailgunInbound,
            crate::channels::doc::MetaNotification,
            crate::channels::doc::WebBody,
            crate::channels::doc::WebEvent,
            crate::channels::doc::WebBatch,
            crate::channels::doc::WebCustomer,
            crate::channels::doc::WebForm,
            crate::channels::doc::WebChat,
            crate::channels::doc::WebChatLine,
            crate::channels::segment::SegmentAnswer,
            crate::channels::segment::doc::SegmentBody,
            crate::channels::segment::doc::SegmentBatch,
            crate::channels::segment::doc::SegmentCall,
            crate::routes::customers::TimelinePage,
            crate::routes::identity::Merged,
            crate::routes::identity::ConflictPage,
            crate::routes::identity::doc::MergeRequest,
            crate::routes::identity::doc::UnmergeRequest,
            crate::routes::identity::doc::IdentityAnswer,
            crate::routes::identity::doc::ResolveConflictRequest,
            crate::routes::identity::doc::ConflictAction,
            crate::routes::identity::doc::ConflictResolution,
            crate::routes::actions::doc::NoteRequest,
            crate::routes::actions::doc::IdentifierNoteRequest,
            crate::routes::actions::doc::FeedbackRequest,
            crate::routes::actions::doc::ConsentRequest,
            crate::routes::actions::doc::ConfirmIdentifierRequest,
            crate::routes::actions::doc::OpenCaseRequest,
            crate::routes::actions::doc::ResolveCaseRequest,
            crate::routes::actions::doc::ReopenCaseRequest,
            crate::routes::actions::doc::TaskRequest,
            crate::routes::actions::doc::TaskUpdate,
            crate::routes::actions::doc::ActionAccepted,
            crate::routes::actions::doc::CasePage,
            crate::routes::actions::doc::TaskPage,
            crate::routes::audit::AuditPage,
            crate::routes::erasure::ErasureAccepted,
            crate::routes::erasure::LiftSuppression,
            crate::routes::webhooks::WebhookRequest,
            crate::routes::webhooks::WebhookCreated,
            crate::routes::webhooks::WebhookList,
            crate::routes::webhooks::DeliveryPage,
            panorama_store::WebhookSubscription,
            panorama_store::WebhookDelivery,
            panorama_store::WebhookAttempt,
            crate::live::doc::StreamData,
            crate::live::doc::StreamEvent,
        ),
        responses(
            problem::BadRequest,
            problem::Unauthorized,
            problem::Forbidden,
            problem::NotFound,
            problem::Conflict,
            problem::PayloadTooLarge,
            problem::UnsupportedMediaType,
            problem::ValidationFailed,
            problem::TooManyRequests,
            problem::Unavailable,
        ),
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "operations", description = "Health, readiness and metrics: no token."),
        (name = "meta", description = "This document."),
        (name = "ingest", description = "Contact events in the JSON event contract (`channel` role)."),
        (name = "channels", description = "Providers' own webhooks, each authenticated its provider's way; an adapter without its secret answers 404."),
        (name = "customers", description = "Customer reads for agent desktops (`agent` role)."),
        (name = "identity", description = "A customer's identity; merges, unmerges and conflicts (`admin` role)."),
        (name = "actions", description = "Cases, notes, tasks, feedback and contact preferences by agents (`agent` role): each is published as an event and answered 202 once the broker has it; the projection follows within moments."),
        (name = "insights", description = "Figures for ops dashboards (`agent` role)."),
        (name = "stream", description = "Live updates of a customer as server-sent events (`agent` role)."),
        (name = "audit", description = "Who read or changed which customer (`admin` role)."),
        (name = "privacy", description = "Requests about a person's data: the export of everything held about them, erasure, and lifting the suppression of an erased identifier (`admin` role)."),
        (name = "webhooks", description = "Outbound webhooks: the change feed delivered, signed the Standard Webhooks way, to the URLs admins register, with their deliveries and attempts (`admin` role)."),
        (name = "console", description = "The agent console's page and files: no token (the page asks for one)."),
    ),
)]
struct ApiDoc;

/// The ways callers prove who they are: API tokens, configured channel
/// tokens, and each provider's signature or secret.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let header = |name: &str, description: &str| {
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                name,
                description,
            )))
        };
        let query = |name: &str, description: &str| {
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                name,
                description,
            )))
        };
        let schemes = [
            (
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "An API token (`panorama token create --role agent|channel|admin`). \
                             The requirement's list names the role the operation needs; \
                             `admin` may do everything. A missing, unknown or revoked token \
                             is answered 401 with `WWW-Authenticate: Bearer`, a token without \
                             the role 403.",
                        ))
                        .build(),
                ),
            ),
            (
                "channelToken",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "One of the tokens in `PANORAMA_CHANNEL_TOKENS` (configuration, \
                             not the database), sent as `Authorization: Bearer <token>`. \
                             Accepted on the CTI, raw MIME, web and Segment routes only.",
                        ))
                        .build(),
                ),
            ),
            (
                "twilioSignature",
                header(
                    "X-Twilio-Signature",
                    "Not a static key: Twilio's signature of the request, the base64 \
                     HMAC-SHA1, under the account's auth token (`PANORAMA_TWILIO_AUTH_TOKEN`), \
                     of `PANORAMA_PUBLIC_URL` + the request's path and query followed by every \
                     POST parameter name and value, sorted by name.",
                ),
            ),
            (
                "metaSignature",
                header(
                    "X-Hub-Signature-256",
                    "Not a static key: `sha256=` and the hex HMAC-SHA256 of the raw body \
                     under the Meta app secret (`PANORAMA_META_APP_SECRET`).",
                ),
            ),
            (
                "metaVerifyToken",
                query(
                    "hub.verify_token",
                    "The verify token typed in at Meta (`PANORAMA_META_VERIFY_TOKEN`), sent \
                     on the subscription handshake only.",
                ),
            ),
            (
                "sendgridBasic",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Basic)
                        .description(Some(
                            "Basic auth in the Inbound Parse destination URL: any user name, \
                             `PANORAMA_SENDGRID_SECRET` as the password. Inbound Parse signs \
                             nothing; use https.",
                        ))
                        .build(),
                ),
            ),
            (
                "sendgridToken",
                query(
                    "token",
                    "`PANORAMA_SENDGRID_SECRET` in the destination URL, the alternative to \
                     basic auth.",
                ),
            ),
            (
                "webWriteKey",
                header(
                    "X-Panorama-Write-Key",
                    "A public write key from `PANORAMA_WEB_WRITE_KEYS`, for browsers; only \
                     accepted from an `Origin` in `PANORAMA_WEB_ALLOWED_ORIGINS`. Anyone who \
                     opens the page can read it: treat web events as what a visitor says.",
                ),
            ),
            (
                "segmentWriteKey",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Basic)
                        .description(Some(
                            "A Segment write key from `PANORAMA_SEGMENT_WRITE_KEYS` (identifiers \
                             claimed) or `PANORAMA_SEGMENT_VERIFIED_WRITE_KEYS` (identifiers \
                             verified) as the basic auth user name, with an empty password, as \
                             Segment's SDKs send it; SDKs that send it as `writeKey` in the body \
                             instead are accepted too.",
                        ))
                        .build(),
                ),
            ),
            (
                "webWriteKeyQuery",
                query(
                    "write_key",
                    "The write key as a query parameter, for `navigator.sendBeacon`, which \
                     cannot set headers; same origin check.",
                ),
            ),
        ];
        for (name, scheme) in schemes {
            components.add_security_scheme(name, scheme);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use actix_web::http::{Method, StatusCode};
    use actix_web::test as actix_test;
    use actix_web::{App, HttpResponse, web};
    use serde_json::Value;

    use super::*;
    use crate::endpoints::{self, method_name};
    use crate::error::PROBLEM_JSON;

    /// Operations that answer no problem, ever: probes that report their own
    /// state, and the preflight, whose refusal has no body.
    const NO_PROBLEMS: &[(&str, &str)] = &[
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/"),
        ("OPTIONS", "/v1/channels/web/events"),
    ];

    fn rendered() -> Value {
        serde_json::from_str(&DOCUMENT).expect("the document is JSON")
    }

    /// Every `(method, path template, operation)` of the rendered document.
    fn operations(document: &Value) -> Vec<(String, String, Value)> {
        let mut found = Vec::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                found.push((method.to_ascii_uppercase(), path.clone(), operation.clone()));
            }
        }
        found
    }

    fn table() -> BTreeSet<(String, String)> {
        endpoints::ENDPOINTS
            .iter()
            .map(|e| (method_name(&e.method).to_owned(), e.path.clone()))
            .collect()
    }

    /// The path with every `{param}` filled in.
    fn concrete(path: &str) -> String {
        let mut out = String::new();
        let mut rest = path;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("closed") + start;
            out.push_str("0190f5a2-7c1e-7000-8000-000000000001");
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// The document as published in `docs/openapi.json`. Any change to the
    /// API shows up as a change of that file in review; refresh it with
    /// `make openapi`.
    #[test]
    fn the_document_is_the_one_in_docs() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let pretty = format!(
            "{}\n",
            serde_json::to_string_pretty(&rendered()).expect("the document serialises")
        );
        if std::env::var_os("PANORAMA_WRITE_OPENAPI").is_some() {
            std::fs::write(path, &pretty).expect("docs/openapi.json is writable");
        }
        let published = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            published == pretty,
            "docs/openapi.json differs from the document the code generates; \
             if the change is intended, run `make openapi` and commit the file"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_and_lists_exactly_the_route_table() {
        let document = rendered();
        let version = document["openapi"].as_str().unwrap_or_default();
        assert!(version.starts_with("3.1"), "openapi {version}");
        let documented: BTreeSet<(String, String)> = operations(&document)
            .into_iter()
            .map(|(method, path, _)| (method, path))
            .collect();
        assert_eq!(documented, table());
        assert_eq!(
            endpoints::ENDPOINTS.len(),
            documented.len(),
            "a method and path twice in the route table"
        );
    }

    /// What actix answers a request with: the handler's, or the default
    /// service's teapot when no route matches the method and path.
    async fn served_by(gateway: bool, api: bool) -> BTreeSet<(String, String)> {
        let app = actix_test::init_service(
            App::new()
                .configure(|config| endpoints::mount(config, gateway, api))
                .default_service(web::to(|| async { HttpResponse::ImATeapot().finish() })),
        )
        .await;
        let mut served = BTreeSet::new();
        for (method, path, _) in operations(&rendered()) {
            let request = actix_test::TestRequest::default()
                .method(Method::from_bytes(method.as_bytes()).expect("method"))
                .uri(&concrete(&path))
                .to_request();
            let response = actix_test::call_service(&app, request).await;
            if response.status() == StatusCode::IM_A_TEAPOT {
                continue;
            }
            // Matched the documented template, not an earlier one.
            assert_eq!(
                response.request().match_pattern().as_deref(),
                Some(path.as_str()),
                "{method} {path}"
            );
            served.insert((method, path));
        }
        served
    }

    #[actix_web::test]
    async fn the_router_serves_every_documented_operation_by_role() {
        let table = |wanted: &dyn Fn(Served) -> bool| -> BTreeSet<(String, String)> {
            endpoints::ENDPOINTS
                .iter()
                .filter(|e| wanted(e.served))
                .map(|e| (method_name(&e.method).to_owned(), e.path.clone()))
                .collect()
        };
        assert_eq!(served_by(true, true).await, table(&|_| true));
        assert_eq!(
            served_by(true, false).await,
            table(&|served| served != Served::Api)
        );
        assert_eq!(
            served_by(false, true).await,
            table(&|served| served != Served::Gateway)
        );
        assert_eq!(
            served_by(false, false).await,
            table(&|served| served == Served::Always)
        );
    }

    fn refs(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    found.push(target.clone());
                }
                map.values().for_each(|v| refs(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }

    #[test]
    fn every_ref_resolves_to_a_component() {
        let document = rendered();
        let mut found = Vec::new();
        refs(&document, &mut found);
        assert!(!found.is_empty());
        let dangling: Vec<&String> = found
            .iter()
            .filter(|target| {
                let pointer = target.strip_prefix('#').unwrap_or("not local");
                target.starts_with("#/components/") && document.pointer(pointer).is_none()
                    || !target.starts_with("#/components/")
            })
            .collect();
        assert!(dangling.is_empty(), "unresolved: {dangling:?}");
    }

    /// The response as written, or the component it refers to.
    fn resolve<'a>(document: &'a Value, response: &'a Value) -> &'a Value {
        match response["$ref"].as_str() {
            Some(target) => document
                .pointer(target.trim_start_matches('#'))
                .expect("resolves"),
            None => response,
        }
    }

    #[test]
    fn every_operation_declares_its_problems_and_who_may_call_it() {
        let document = rendered();
        let mut failures = Vec::new();
        for (method, path, operation) in operations(&document) {
            let what = format!("{method} {path}");
            let responses = operation["responses"].as_object().expect("responses");
            let problems: BTreeSet<&str> = responses
                .iter()
                .filter(|(_, response)| {
                    resolve(&document, response)["content"]
                        .get(PROBLEM_JSON)
                        .is_some()
                })
                .map(|(status, _)| status.as_str())
                .collect();
            let exempt = NO_PROBLEMS.contains(&(method.as_str(), path.as_str()));
            if problems.is_empty() != exempt {
                failures.push(format!("{what}: problem answers {problems:?}"));
            }
            let security = operation["security"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let bearer = security.iter().any(|r| r.get("bearer").is_some());
            if bearer && !(problems.contains("401") && problems.contains("403")) {
                failures.push(format!("{what}: a bearer route answers 401 and 403"));
            }
            if !security.is_empty() && !problems.contains("401") {
                failures.push(format!("{what}: credentials can be wrong: 401"));
            }
            for requirement in &security {
                let roles = requirement["bearer"].as_array();
                if roles.is_some_and(|roles| roles.len() != 1) {
                    failures.push(format!("{what}: the bearer requirement names one role"));
                }
            }
            let description = operation["description"].as_str().unwrap_or_default();
            if !description.contains("Served by") {
                failures.push(format!("{what}: says which processes serve it"));
            }
            let declared: BTreeSet<&str> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            let templated: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            if declared != templated {
                failures.push(format!("{what}: path parameters {declared:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// The role is the route table's alone: the document's `bearer`
    /// requirement is the entry's role, and no annotation states one for a
    /// route whose entry has a role, or one a handler would have to check
    /// by itself (a `bearer` requirement with no alternative).
    #[test]
    fn each_bearer_role_is_the_route_tables() {
        let document = rendered();
        for endpoint in ENDPOINTS.iter() {
            let method = method_name(&endpoint.method);
            let what = format!("{method} {}", endpoint.path);
            let operation = &document["paths"][&endpoint.path][method.to_ascii_lowercase()];
            let annotated = endpoint.operation.security.as_deref().unwrap_or_default();
            match endpoint.role {
                Some(role) => {
                    assert_eq!(
                        operation["security"],
                        serde_json::json!([{ "bearer": [role.as_str()] }]),
                        "{what}"
                    );
                    assert!(annotated.is_empty(), "{what}: security is the table's");
                    let prose = endpoint
                        .operation
                        .description
                        .as_deref()
                        .unwrap_or_default();
                    assert!(
                        !prose.contains("Needs the"),
                        "{what}: the role is the table's"
                    );
                }
                None => {
                    let bearer = operation["security"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|requirement| requirement.get("bearer").is_some());
                    assert!(
                        !bearer || annotated.len() > 1,
                        "{what}: a route that needs a bearer token names its role in the table"
                    );
                }
            }
        }
    }

    /// The schema at `pointer` (`/cases/0/id`) inside `schema`, following
    /// `$ref`s, `oneOf` branches and array items; `None` when it names no
    /// property.
    fn schema_at<'a>(document: &'a Value, schema: &'a Value, pointer: &str) -> Option<&'a Value> {
        let mut schema = resolve(document, schema);
        for step in pointer.split('/').skip(1) {
            if let Some(branch) = schema["oneOf"]
                .as_array()
                .and_then(|branches| branches.iter().find(|b| b["type"] != "null"))
            {
                schema = resolve(document, branch);
            }
            schema = if step.parse::<usize>().is_ok() {
                resolve(document, schema.get("items")?)
            } else {
                resolve(document, schema["properties"].get(step)?)
            };
        }
        Some(schema)
    }

    /// Every link leads somewhere real: an operation of the document, its
    /// parameters, and values taken from properties the answer has. The
    /// API fuzzer's stateful phase follows these links.
    #[test]
    fn every_link_names_an_operation_its_parameters_and_answered_properties() {
        let document = rendered();
        let by_id: std::collections::BTreeMap<String, Value> = operations(&document)
            .into_iter()
            .filter_map(|(_, _, operation)| {
                Some((operation["operationId"].as_str()?.to_owned(), operation))
            })
            .collect();
        let mut links = 0;
        for (method, path, operation) in operations(&document) {
            for (status, response) in operation["responses"].as_object().expect("responses") {
                let response = resolve(&document, response);
                for (name, link) in response["links"].as_object().into_iter().flatten() {
                    links += 1;
                    let what = format!("{method} {path} {status} link {name}");
                    let target = link["operationId"].as_str().unwrap_or_default();
                    let target = by_id
                        .get(target)
                        .unwrap_or_else(|| panic!("{what}: {target}"));
                    let declared: BTreeSet<&str> = target["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p["name"].as_str())
                        .collect();
                    let body = &response["content"]["application/json"]["schema"];
                    for (parameter, expression) in
                        link["parameters"].as_object().expect("parameters")
                    {
                        assert!(declared.contains(parameter.as_str()), "{what}: {parameter}");
                        let pointer = expression
                            .as_str()
                            .and_then(|e| e.strip_prefix("$response.body#"))
                            .unwrap_or_else(|| panic!("{what}: {expression}"));
                        assert!(
                            schema_at(&document, body, pointer).is_some(),
                            "{what}: the answer has no {pointer}"
                        );
                    }
                }
            }
        }
        assert!(links >= 10, "only {links} links");
    }

    #[test]
    fn security_requirements_name_declared_schemes() {
        let document = rendered();
        let schemes = document["components"]["securitySchemes"]
            .as_object()
            .expect("security schemes");
        for (method, path, operation) in operations(&document) {
            for requirement in operation["security"].as_array().into_iter().flatten() {
                for name in requirement.as_object().expect("requirement").keys() {
                    assert!(schemes.contains_key(name), "{method} {path}: {name}");
                }
            }
        }
    }
}
