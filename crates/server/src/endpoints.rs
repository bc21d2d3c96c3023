//! Every route the server serves, one entry each: which processes serve it
//! and its handler. The method and path come from the handler's
//! `#[utoipa::path]` annotation (the `__path_<handler>` type the annotation
//! generates), so the router and the OpenAPI document ([`crate::openapi`])
//! are built from this one list and cannot disagree.
//!
//! Adding a route: annotate the handler with `#[utoipa::path(...)]`, add an
//! entry here, and add its new schemas to the document's components (the
//! `openapi` tests fail on a `$ref` that does not resolve). Order matters
//! where paths overlap: actix tries routes in this order, so
//! `/v1/customers/lookup` comes before `/v1/customers/{id}`.

use std::sync::LazyLock;

use actix_web::http::Method;
use actix_web::{Route, web};
use utoipa::openapi::path::{HttpMethod, Operation};

use crate::routes::{actions, audit, customers, identity, insights};
use crate::{channels, console, health, ingest, live, metrics, openapi};

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

/// One route: where it is, who serves it, what it does, its documentation.
pub(crate) struct Endpoint {
    /// The method, as documented.
    pub(crate) method: HttpMethod,
    /// The path template, as documented and as actix matches it
    /// (`/v1/customers/{id}`).
    pub(crate) path: String,
    /// Which processes serve it.
    pub(crate) served: Served,
    /// Its OpenAPI operation.
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
    /// The actix route: the documented method, this handler.
    pub(crate) fn route(&self) -> Route {
        let method = Method::from_bytes(method_name(&self.method).as_bytes())
            .expect("standard methods parse");
        (self.handler)(web::method(method))
    }
}

/// Mounts every route a process with these roles serves, in table order.
pub(crate) fn mount(config: &mut web::ServiceConfig, gateway: bool, api: bool) {
    for endpoint in ENDPOINTS.iter() {
        if endpoint.served.by(gateway, api) {
            config.route(&endpoint.path, endpoint.route());
        }
    }
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
        operation: P::operation(),
        handler,
    }
}

/// Every route, in the order actix tries them.
pub(crate) static ENDPOINTS: LazyLock<Vec<Endpoint>> = LazyLock::new(|| {
    use Served::{Always, Api, Gateway};
    vec![
        endpoint::<health::__path_healthz>(Always, |r| r.to(health::healthz)),
        endpoint::<health::__path_readyz>(Always, |r| r.to(health::readyz)),
        endpoint::<metrics::__path_render>(Always, |r| r.to(metrics::render)),
        endpoint::<openapi::__path_openapi_json>(Always, |r| r.to(openapi::openapi_json)),
        endpoint::<ingest::__path_post_events>(Gateway, |r| r.to(ingest::post_events)),
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
        endpoint::<customers::__path_lookup>(Api, |r| r.to(customers::lookup)),
        endpoint::<customers::__path_profile>(Api, |r| r.to(customers::profile)),
        endpoint::<customers::__path_timeline>(Api, |r| r.to(customers::timeline)),
        endpoint::<identity::__path_identity>(Api, |r| r.to(identity::identity)),
        endpoint::<identity::__path_merge>(Api, |r| r.to(identity::merge)),
        endpoint::<identity::__path_unmerge>(Api, |r| r.to(identity::unmerge)),
        endpoint::<actions::__path_add_note>(Api, |r| r.to(actions::add_note)),
        endpoint::<actions::__path_add_identifier_note>(Api, |r| {
            r.to(actions::add_identifier_note)
        }),
        endpoint::<actions::__path_add_feedback>(Api, |r| r.to(actions::add_feedback)),
        endpoint::<actions::__path_list_cases>(Api, |r| r.to(actions::list_cases)),
        endpoint::<actions::__path_open_case>(Api, |r| r.to(actions::open_case)),
        endpoint::<actions::__path_resolve_case>(Api, |r| r.to(actions::resolve_case)),
        endpoint::<actions::__path_reopen_case>(Api, |r| r.to(actions::reopen_case)),
        endpoint::<actions::__path_create_task>(Api, |r| r.to(actions::create_task)),
        endpoint::<actions::__path_list_tasks>(Api, |r| r.to(actions::list_tasks)),
        endpoint::<actions::__path_update_task>(Api, |r| r.to(actions::update_task)),
        endpoint::<insights::__path_insights>(Api, |r| r.to(insights::insights)),
        endpoint::<identity::__path_conflicts>(Api, |r| r.to(identity::conflicts)),
        endpoint::<identity::__path_resolve_conflict>(Api, |r| r.to(identity::resolve_conflict)),
        endpoint::<live::__path_stream>(Api, |r| r.to(live::stream)),
        endpoint::<audit::__path_audit>(Api, |r| r.to(audit::audit)),
        endpoint::<console::__path_index>(Api, |r| r.to(console::index)),
        endpoint::<console::__path_asset>(Api, |r| r.to(console::asset)),
    ]
});

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use actix_web::{App, HttpResponse, test as actix_test};

    use super::*;

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
}
