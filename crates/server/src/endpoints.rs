//! Every route the server serves, one entry each: which processes serve it,
//! the role a caller's token needs, and its handler. The method and path
//! come from the handler's `#[utoipa::path]` annotation (the
//! `__path_<handler>` type the annotation generates), so the router and the
//! OpenAPI document ([`crate::openapi`]) are built from this one list and
//! cannot disagree. The role is stated here only: mounting checks it before
//! the handler runs, and the document's `bearer` security requirement and
//! its "Needs the ... role" sentence come from it, so a handler can neither
//! forget the check nor document another role. The fallback for requests
//! no entry matches ([`not_found`]) tells the routes of this list apart
//! from unknown ones.
//!
//! Adding a route: annotate the handler with `#[utoipa::path(...)]` (without
//! `security` when the entry names a role), add an entry here, and add its
//! new schemas to the document's components (the `openapi` tests fail on a
//! `$ref` that does not resolve). Order matters where paths overlap: actix
//! tries routes in this order, so `/v1/customers/lookup` comes before
//! `/v1/customers/{id}`.

use std::sync::LazyLock;

use actix_web::dev::ResourceDef;
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::from_fn;
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, Route, guard, web};
use panorama_core::Role;
use utoipa::openapi::path::{HttpMethod, Operation};

use crate::channels::segment;
use crate::error::{ApiError, PROBLEM_JSON};
use crate::routes::{actions, audit, customers, erasure, identity, insights, privacy, webhooks};
use crate::{auth, channels, console, health, ingest, limits, live, metrics, openapi};

/// Which processes serve a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Served {
    /// Every process: health, metrics, the OpenAPI document.
    Always,
    /// Processes with a producer (the gateway role): ingest and webhooks.
    Gateway,
    /// Processes with the database (the api role): the agent API and the
    /// agent console.
    Api,
}

impl Served {
    /// Whether a process that is (or is not) a gateway and an API node
    /// serves it.
    pub(crate) fn by(self, gateway: bool, api: bool) -> bool {
        match self {
            Served::Always => true,
            Served::Gateway => gateway,
            Served::Api => api,
        }
    }
}

/// One route: where it is, who serves it, who may call it, what it does,
/// its documentation.
pub(crate) struct Endpoint {
    /// The method, as documented.
    pub(crate) method: HttpMethod,
    /// The path template, as documented and as actix matches it
    /// (`/v1/customers/{id}`).
    pub(crate) path: String,
    /// Which processes serve it.
    pub(crate) served: Served,
    /// The role a caller's bearer token needs (`admin` has every role),
    /// checked before the handler runs. `None` for routes open to anyone
    /// and for those that authenticate callers their own way (provider
    /// signatures, channel tokens), which their handlers check.
    pub(crate) role: Option<Role>,
    /// Its OpenAPI operation, as annotated: [`crate::openapi`] adds what
    /// this entry says.
    pub(crate) operation: Operation,
    /// Puts the handler on an actix route.
    handler: fn(Route) -> Route,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("method", &method_name(&self.method))
            .field("path", &self.path)
            .field("served", &self.served)
            .field("role", &self.role)
            .finish()
    }
}

/// The wire name of a documented method: `GET`, `POST`, ...
pub(crate) fn method_name(method: &HttpMethod) -> &'static str {
    match method {
        HttpMethod::Get => "GET",
        HttpMethod::Post => "POST",
        HttpMethod::Put => "PUT",
        HttpMethod::Delete => "DELETE",
        HttpMethod::Options => "OPTIONS",
        HttpMethod::Head => "HEAD",
        HttpMethod::Patch => "PATCH",
        HttpMethod::Trace => "TRACE",
    }
}

impl Endpoint {
    /// The actix route: the documented method, this handler, behind the
    /// check of the role when there is one, then the limits of the caller's
    /// credential on routes that take one (every route with a role, and the
    /// gateway's but its preflight), and the process's budget of body bytes
    /// on the ingest routes.
    pub(crate) fn route(&self) -> Route {
        let method = Method::from_bytes(method_name(&self.method).as_bytes())
            .expect("standard methods parse");
        let mut route = (self.handler)(web::method(method));
        let gateway = self.served == Served::Gateway;
        if gateway && self.method == HttpMethod::Post {
            route = route.wrap(from_fn(limits::hold_ingest_bytes));
        }
        if self.role.is_some() || (gateway && self.method != HttpMethod::Options) {
            route = route.wrap(from_fn(limits::admit));
        }
        match self.role {
            Some(role) => route.wrap(from_fn(move |request, next| {
                auth::require_role(role, request, next)
            })),
            None => route,
        }
    }

    /// This entry, for callers whose bearer token has `role` (or admin).
    fn needs(mut self, role: Role) -> Self {
        self.role = Some(role);
        self
    }
}

/// Mounts every route a process with these roles serves, in table order,
/// each as a resource of its own (as `ServiceConfig::route` mounts one:
/// the method is the resource's guard, so another method goes on to the
/// next resource) that carries its template ([`Template`]).
pub(crate) fn mount(config: &mut web::ServiceConfig, gateway: bool, api: bool) {
    for endpoint in ENDPOINTS.iter() {
        if endpoint.served.by(gateway, api) {
            let method = Method::from_bytes(method_name(&endpoint.method).as_bytes())
                .expect("standard methods parse");
            config.service(
                web::resource(endpoint.path.as_str())
                    .guard(guard::Method(method))
                    .app_data(Template(endpoint.path.as_str()))
                    .route(endpoint.route()),
            );
        }
    }
}

/// The path template of the entry that serves a request, in its
/// resource's app data: the middlewares name the route (metrics labels,
/// the log, the audit entry) by it, where actix's
/// `HttpRequest::match_pattern` would match the path against the routes
/// again, once per call.
#[derive(Debug, Clone, Copy)]
struct Template(&'static str);

/// A request no entry served, with the template its path matches anyway
/// (a route of the table asked with another method), in its extensions:
/// found once per request.
#[derive(Debug, Clone, Copy)]
struct Unserved(Option<&'static str>);

/// The path template of the route that served `request`
/// (`/v1/customers/{id}`); for a request the fallback answered, the
/// template of the first entry its path matches, as actix names it; `None`
/// when it matches none.
pub(crate) fn template_of(request: &HttpRequest) -> Option<&'static str> {
    if let Some(Template(template)) = request.app_data::<Template>() {
        return Some(template);
    }
    if let Some(Unserved(template)) = request.extensions().get::<Unserved>() {
        return *template;
    }
    let template = request.match_pattern().and_then(|pattern| {
        ENDPOINTS
            .iter()
            .map(|endpoint| endpoint.path.as_str())
            .find(|template| *template == pattern)
    });
    request.extensions_mut().insert(Unserved(template));
    template
}

/// The entry of the handler whose `#[utoipa::path]` generated `P`.
fn endpoint<P: utoipa::Path>(served: Served, handler: fn(Route) -> Route) -> Endpoint {
    let mut methods = P::methods();
    assert_eq!(
        methods.len(),
        1,
        "{}: one method per annotated handler",
        P::path()
    );
    Endpoint {
        method: methods.remove(0),
        path: P::path(),
        served,
        role: None,
        operation: P::operation(),
        handler,
    }
}

/// Every route, in the order actix tries them.
pub(crate) static ENDPOINTS: LazyLock<Vec<Endpoint>> = LazyLock::new(|| {
    use Role::{Admin, Agent, Channel};
    use Served::{Always, Api, Gateway};
    vec![
        endpoint::<health::__path_healthz>(Always, |r| r.to(health::healthz)),
        endpoint::<health::__path_readyz>(Always, |r| r.to(health::readyz)),
        endpoint::<metrics::__path_render>(Always, |r| r.to(metrics::render)),
        endpoint::<openapi::__path_openapi_json>(Always, |r| r.to(openapi::openapi_json)),
        endpoint::<ingest::__path_post_events>(Gateway, |r| r.to(ingest::post_events))
            .needs(Channel),
        endpoint::<channels::__path_twilio_voice>(Gateway, |r| r.to(channels::twilio_voice)),
        endpoint::<channels::__path_cti_events>(Gateway, |r| r.to(channels::cti_events)),
        endpoint::<channels::__path_sendgrid_inbound>(Gateway, |r| {
            r.to(channels::sendgrid_inbound)
        }),
        endpoint::<channels::__path_mailgun_inbound>(Gateway, |r| r.to(channels::mailgun_inbound)),
        endpoint::<channels::__path_email_mime>(Gateway, |r| r.to(channels::email_mime)),
        endpoint::<channels::__path_meta_handshake>(Gateway, |r| r.to(channels::meta_handshake)),
        endpoint::<channels::__path_meta_webhook>(Gateway, |r| r.to(channels::meta_webhook)),
        endpoint::<channels::__path_web_events>(Gateway, |r| r.to(channels::web_events)),
        endpoint::<channels::__path_web_preflight>(Gateway, |r| r.to(channels::web_preflight)),
        endpoint::<segment::__path_segment_call>(Gateway, |r| r.to(segment::segment_call)),
        endpoint::<segment::__path_segment_batch>(Gateway, |r| r.to(segment::segment_batch)),
        endpoint::<segment::__path_segment_sdk_batch>(Gateway, |r| {
            r.to(segment::segment_sdk_batch)
        }),
        endpoint::<customers::__path_lookup>(Api, |r| r.to(customers::lookup)).needs(Agent),
        endpoint::<customers::__path_profile>(Api, |r| r.to(customers::profile)).needs(Agent),
        endpoint::<customers::__path_timeline>(Api, |r| r.to(customers::timeline)).needs(Agent),
        endpoint::<identity::__path_identity>(Api, |r| r.to(identity::identity)).needs(Agent),
        endpoint::<privacy::__path_export>(Api, |r| r.to(privacy::export)).needs(Admin),
        endpoint::<erasure::__path_request_erasure>(Api, |r| r.to(erasure::request_erasure))
            .needs(Admin),
        endpoint::<erasure::__path_erasure_status>(Api, |r| r.to(erasure::erasure_status))
            .needs(Admin),
        endpoint::<erasure::__path_lift_suppression>(Api, |r| r.to(erasure::lift_suppression))
            .needs(Admin),
        endpoint::<identity::__path_merge>(Api, |r| r.to(identity::merge)).needs(Admin),
        endpoint::<identity::__path_unmerge>(Api, |r| r.to(identity::unmerge)).needs(Admin),
        endpoint::<actions::__path_add_note>(Api, |r| r.to(actions::add_note)).needs(Agent),
        endpoint::<actions::__path_add_identifier_note>(Api, |r| {
            r.to(actions::add_identifier_note)
        })
        .needs(Agent),
        endpoint::<actions::__path_add_feedback>(Api, |r| r.to(actions::add_feedback)).needs(Agent),
        endpoint::<actions::__path_record_consent>(Api, |r| r.to(actions::record_consent))
            .needs(Agent),
        endpoint::<actions::__path_confirm_identifier>(Api, |r| r.to(actions::confirm_identifier))
            .needs(Agent),
        endpoint::<actions::__path_list_cases>(Api, |r| r.to(actions::list_cases)).needs(Agent),
        endpoint::<actions::__path_open_case>(Api, |r| r.to(actions::open_case)).needs(Agent),
        endpoint::<actions::__path_resolve_case>(Api, |r| r.to(actions::resolve_case)).needs(Agent),
        endpoint::<actions::__path_reopen_case>(Api, |r| r.to(actions::reopen_case)).needs(Agent),
        endpoint::<actions::__path_create_task>(Api, |r| r.to(actions::create_task)).needs(Agent),
        endpoint::<actions::__path_list_tasks>(Api, |r| r.to(actions::list_tasks)).needs(Agent),
        endpoint::<actions::__path_update_task>(Api, |r| r.to(actions::update_task)).needs(Agent),
        endpoint::<insights::__path_insights>(Api, |r| r.to(insights::insights)).needs(Agent),
        endpoint::<identity::__path_conflicts>(Api, |r| r.to(identity::conflicts)).needs(Admin),
        endpoint::<identity::__path_resolve_conflict>(Api, |r| r.to(identity::resolve_conflict))
            .needs(Admin),
        endpoint::<live::__path_stream>(Api, |r| r.to(live::stream)).needs(Agent),
        endpoint::<audit::__path_audit>(Api, |r| r.to(audit::audit)).needs(Admin),
        endpoint::<webhooks::__path_create_webhook>(Api, |r| r.to(webhooks::create_webhook))
            .needs(Admin),
        endpoint::<webhooks::__path_list_webhooks>(Api, |r| r.to(webhooks::list_webhooks))
            .needs(Admin),
        endpoint::<webhooks::__path_get_webhook>(Api, |r| r.to(webhooks::get_webhook)).needs(Admin),
        endpoint::<webhooks::__path_delete_webhook>(Api, |r| r.to(webhooks::delete_webhook))
            .needs(Admin),
        endpoint::<webhooks::__path_enable_webhook>(Api, |r| r.to(webhooks::enable_webhook))
            .needs(Admin),
        endpoint::<webhooks::__path_list_deliveries>(Api, |r| r.to(webhooks::list_deliveries))
            .needs(Admin),
        endpoint::<webhooks::__path_get_delivery>(Api, |r| r.to(webhooks::get_delivery))
            .needs(Admin),
        endpoint::<console::__path_index>(Api, |r| r.to(console::index)),
        endpoint::<console::__path_asset>(Api, |r| r.to(console::asset)),
    ]
});

/// The path template of every entry, to tell a route of the table (that
/// this process does not serve, or not with this method) from no route at
/// all.
static TEMPLATES: LazyLock<Vec<ResourceDef>> = LazyLock::new(|| {
    ENDPOINTS
        .iter()
        .map(|endpoint| ResourceDef::new(endpoint.path.as_str()))
        .collect()
});

/// The methods of the table's entries whose template matches `path`, for
/// a 405's `Allow` (RFC 9110 requires one; empty for a path of no entry).
fn allowed_methods(path: &str) -> String {
    let mut methods: Vec<&str> = Vec::new();
    for (endpoint, template) in ENDPOINTS.iter().zip(TEMPLATES.iter()) {
        let method = method_name(&endpoint.method);
        if template.is_match(path) && !methods.contains(&method) {
            methods.push(method);
        }
    }
    methods.join(", ")
}

/// The answer to a request no mounted route matches: 405 for a method no
/// entry has (with `Allow`), else 404, whose detail says whether the path
/// is one of the table's.
pub(crate) async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    let method = request.method().as_str();
    if !ENDPOINTS
        .iter()
        .any(|endpoint| method_name(&endpoint.method) == method)
    {
        let response = HttpResponse::build(StatusCode::METHOD_NOT_ALLOWED)
            .insert_header((
                actix_web::http::header::ALLOW,
                allowed_methods(request.path()),
            ))
            .content_type(PROBLEM_JSON)
            .body(
                serde_json::json!({
                    "type": "/problems/method-not-allowed",
                    "title": "Method not allowed",
                    "status": 405,
                    "detail": format!("{} is not served here", request.method()),
                })
                .to_string(),
            );
        return Ok(response);
    }
    let path = request.path();
    let hint = if TEMPLATES.iter().any(|template| template.is_match(path)) {
        "this route is not served by this process's roles, or the method is wrong"
    } else {
        "no such route"
    };
    Err(ApiError::NotFound(hint.to_owned()))
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;
    use actix_web::dev::{ServiceRequest, ServiceResponse};
    use actix_web::middleware::Next;
    use actix_web::{App, test as actix_test};
    use serde_json::Value;

    use super::*;

    /// The header that says, in these tests, which role the caller's token
    /// has; no header, no token.
    const ROLE_HEADER: &str = "x-test-role";

    /// Stands in for the authentication middleware: the caller has a token
    /// of the role in [`ROLE_HEADER`].
    async fn token_from_header(
        request: ServiceRequest,
        next: Next<impl MessageBody>,
    ) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
        let role = request
            .headers()
            .get(ROLE_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(|role| role.parse::<Role>().expect("a role"));
        auth::authenticated_as(&request, role);
        next.call(request).await
    }

    /// The path with every `{param}` filled in.
    fn concrete(path: &str) -> String {
        path.split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "0190f5a2-7c1e-7000-8000-000000000001"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Every entry with a role, tried by every kind of caller. Without the
    /// check the handler would answer (here 500: there is no application
    /// state), so a route mounted without it fails this test.
    #[actix_web::test]
    async fn every_route_with_a_role_refuses_other_callers_before_its_handler() {
        let app = actix_test::init_service(
            App::new()
                .wrap(from_fn(token_from_header))
                .configure(|config| mount(config, true, true)),
        )
        .await;
        let mut checked = 0;
        for endpoint in ENDPOINTS.iter() {
            let Some(needed) = endpoint.role else {
                continue;
            };
            let method = method_name(&endpoint.method);
            for caller in [
                None,
                Some(Role::Agent),
                Some(Role::Channel),
                Some(Role::Admin),
            ] {
                let mut request = actix_test::TestRequest::default()
                    .method(Method::from_bytes(method.as_bytes()).expect("method"))
                    .uri(&concrete(&endpoint.path));
                if let Some(role) = caller {
                    request = request.insert_header((ROLE_HEADER, role.as_str()));
                }
                let status = actix_test::call_service(&app, request.to_request())
                    .await
                    .status();
                let what = format!("{method} {} as {caller:?}", endpoint.path);
                match caller {
                    None => assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}"),
                    Some(role) if !role.grants(needed) => {
                        assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
                    }
                    Some(_) => assert!(
                        status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                        "{what}: {status}"
                    ),
                }
            }
            checked += 1;
        }
        assert!(checked > 20, "only {checked} routes with a role");
    }

    #[actix_web::test]
    async fn the_fallback_tells_routes_of_the_table_from_unknown_ones() {
        let app = actix_test::init_service(
            App::new()
                .configure(|config| mount(config, false, false))
                .default_service(web::to(not_found)),
        )
        .await;
        let elsewhere = "this route is not served by this process's roles, or the method is wrong";
        for (method, path, status, detail) in [
            (Method::GET, "/v1/customers/x/timeline", 404, elsewhere),
            (Method::POST, "/v1/channels/twilio/voice", 404, elsewhere),
            (Method::POST, "/healthz", 404, elsewhere),
            (Method::GET, "/v1/customers/x/nothing", 404, "no such route"),
            (Method::GET, "/nothing", 404, "no such route"),
            (Method::DELETE, "/healthz", 404, elsewhere),
            (Method::PUT, "/healthz", 405, "PUT is not served here"),
        ] {
            let request = actix_test::TestRequest::default()
                .method(method.clone())
                .uri(path)
                .to_request();
            let response = actix_test::call_service(&app, request).await;
            assert_eq!(response.status().as_u16(), status, "{method} {path}");
            let body: Value = actix_test::read_body_json(response).await;
            assert_eq!(body["detail"], detail, "{method} {path}");
        }
    }

    #[actix_web::test]
    async fn only_processes_with_the_api_role_serve_the_console() {
        for (gateway, api) in [(true, false), (false, true), (true, true), (false, false)] {
            let app = actix_test::init_service(
                App::new()
                    .configure(|config| mount(config, gateway, api))
                    .default_service(web::to(HttpResponse::NotFound)),
            )
            .await;
            for path in ["/", "/console/app.js"] {
                let request = actix_test::TestRequest::get().uri(path).to_request();
                let status = actix_test::call_service(&app, request).await.status();
                let expected = if api {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                };
                assert_eq!(status, expected, "{path} with gateway={gateway} api={api}");
            }
        }
    }

    /// RFC 9110: a 405 names the methods the resource has.
    #[actix_web::test]
    async fn a_405_names_the_methods_the_path_has() {
        let app = actix_test::init_service(
            App::new()
                .configure(|config| mount(config, true, true))
                .default_service(web::to(not_found)),
        )
        .await;
        for (path, allowed) in [
            ("/healthz", "GET"),
            ("/v1/channels/web/events", "POST, OPTIONS"),
            ("/nothing", ""),
        ] {
            let request = actix_test::TestRequest::default()
                .method(Method::TRACE)
                .uri(path)
                .to_request();
            let response = actix_test::call_service(&app, request).await;
            assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
            let allow = response
                .headers()
                .get(actix_web::http::header::ALLOW)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            assert_eq!(allow.as_deref(), Some(allowed), "{path}");
        }
    }
}
