//! The agent console: a static page (HTML, CSS, JavaScript modules) built
//! into the binary and served by processes with the api role at `/` and
//! `/console/<file>`.
//!
//! The files are public: they hold no data. The page asks the agent for an
//! API token and sends it as a bearer token on every API call it makes.
//! Every answer carries a strict `Content-Security-Policy`: scripts, styles,
//! images and connections from this origin only, no inline script, so
//! nothing outside Panorama can load into the page. No page may frame the
//! console unless [`ConsoleSettings::frame_ancestors`] names it: an agent
//! desktop (Salesforce Open CTI, Amazon Connect, Genesys Cloud, Twilio Flex,
//! Zendesk) that shows it in an iframe and sends it screen pops by
//! `postMessage` (docs/console-embedding.md). The page learns that list from
//! a `<meta>` tag filled in here, and hears messages from those origins
//! only. Assets are revalidated on every load (`Cache-Control: no-cache`)
//! against a strong `ETag` of their content, so a new release is picked up
//! at once and an unchanged file costs a 304.

mod ancestors;

use std::sync::LazyLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

pub use ancestors::FrameAncestors;

use crate::error::ApiError;
use crate::problem;

/// The console's settings.
#[derive(Debug, Clone, Default)]
pub struct ConsoleSettings {
    /// The pages that may show the console in a frame, and whose screen
    /// pops it takes; none by default.
    pub frame_ancestors: FrameAncestors,
}

/// What the console's page may load: itself, nothing else. The
/// `frame-ancestors` directive follows, from the settings.
macro_rules! base_policy {
    () => {
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'"
    };
}

/// The policy with the default settings: no page may frame the console.
pub(crate) const CONTENT_SECURITY_POLICY: &str =
    concat!(base_policy!(), "; frame-ancestors 'none'");

/// The tag of `index.html` that tells the page's scripts who may frame it
/// (and so send it screen pops), as the file holds it: the default.
const ANCESTORS_TAG: &str = r#"<meta name="panorama-frame-ancestors" content="'none'">"#;

/// The console as this process serves it: the page with its frame
/// ancestors filled in, and the framing headers of every file.
#[derive(Debug)]
pub(crate) struct Console {
    /// `index.html`, rendered.
    page: web::Bytes,
    /// The strong `ETag` of `page`.
    page_etag: HeaderValue,
    /// The `Content-Security-Policy`.
    policy: HeaderValue,
    /// `X-Frame-Options`, for browsers that predate `frame-ancestors`; left
    /// out when other origins may frame the console (it cannot name them,
    /// and must not contradict the policy).
    frame_options: Option<HeaderValue>,
}

/// The console with the default settings, for apps built without any.
static DEFAULT_CONSOLE: LazyLock<Console> =
    LazyLock::new(|| Console::new(&ConsoleSettings::default()));

impl Console {
    /// The console for `settings`.
    pub(crate) fn new(settings: &ConsoleSettings) -> Self {
        let ancestors = &settings.frame_ancestors;
        let template = String::from_utf8_lossy(ASSETS[0].body);
        // Sources are checked origins and keywords; escaping keeps the
        // attribute whole whatever they hold.
        let listed = ancestors
            .to_string()
            .replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        let page = template
            .replacen(
                ANCESTORS_TAG,
                &format!(r#"<meta name="panorama-frame-ancestors" content="{listed}">"#),
                1,
            )
            .into_bytes();
        let page_etag = etag_of(&page);
        let page = web::Bytes::from(page);
        let policy =
            HeaderValue::from_str(&format!("{}; frame-ancestors {ancestors}", base_policy!()))
                .unwrap_or_else(|_| HeaderValue::from_static(CONTENT_SECURITY_POLICY));
        let frame_options = if ancestors.is_none() {
            Some(HeaderValue::from_static("DENY"))
        } else if ancestors.is_self_only() {
            Some(HeaderValue::from_static("SAMEORIGIN"))
        } else {
            None
        };
        Console {
            page,
            page_etag,
            policy,
            frame_options,
        }
    }
}

/// The console the app was built with; the default one when it was built
/// without settings (route tests).
fn console_of(request: &HttpRequest) -> &Console {
    request
        .app_data::<web::Data<Console>>()
        .map_or(&DEFAULT_CONSOLE, |console| console.get_ref())
}

/// One file of the console.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../console/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file, by the name it is served under.
static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("sse.js", JS),
    asset!("dom.js", JS),
    asset!("card.js", JS),
    asset!("actions.js", JS),
    asset!("timeline.js", JS),
    asset!("ops.js", JS),
    asset!("embed.js", JS),
];

/// The strong `ETag` of every asset, in [`ASSETS`] order: a hash of its
/// content, so it changes exactly when the file does.
static ETAGS: LazyLock<Vec<HeaderValue>> =
    LazyLock::new(|| ASSETS.iter().map(|asset| etag_of(asset.body)).collect());

/// The strong `ETag` of `body`.
fn etag_of(body: &[u8]) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{:016x}\"", fnv1a(body)))
        .expect("hex is a valid header value")
}

/// FNV-1a, 64 bits: enough to tell versions of a file apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `GET /`: the console's page.
#[utoipa::path(
    get,
    path = "/",
    tag = "console",
    summary = "The agent console",
    description = "The agent console's page (HTML). No token needed to load it; the page asks \
        for an agent token and sends it with every API call. Open \
        `/?phone=%2B31612345678` (or `email=`, `account=`, `whatsapp=`, `messenger=`, \
        `instagram=`, `x=`) to go straight to that customer's card: a screen pop for \
        softphones and CTI.",
    responses((status = 200, description = "The page", content_type = "text/html", body = String)),
)]
pub(crate) async fn index(request: HttpRequest) -> HttpResponse {
    serve(&request, 0)
}

/// `GET /console/{asset}`: a file of the console.
#[utoipa::path(
    get,
    path = "/console/{asset}",
    tag = "console",
    summary = "A file of the agent console",
    description = "Stylesheets, JavaScript modules and icons of the console. No token needed. \
        Revalidate with `If-None-Match`: the `ETag` changes with the file.",
    params(("asset" = String, Path, description = "The file name", example = "app.js")),
    responses(
        (status = 200, description = "The file", content_type = "text/javascript", body = String),
        (status = 304, description = "Unchanged since the `ETag` sent in `If-None-Match`"),
        (status = 404, response = problem::NotFound),
    ),
)]
pub(crate) async fn asset(
    request: HttpRequest,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let position = ASSETS
        .iter()
        .position(|asset| asset.name == name.as_str() && asset.name != "index.html")
        .ok_or_else(|| ApiError::NotFound(format!("the console has no file {name}")))?;
    Ok(serve(&request, position))
}

/// The asset at `position` (the page rendered for this process), or 304
/// when the caller has this version.
fn serve(request: &HttpRequest, position: usize) -> HttpResponse {
    let console = console_of(request);
    let asset = &ASSETS[position];
    let (body, etag) = if position == 0 {
        (console.page.clone(), &console.page_etag)
    } else {
        (web::Bytes::from_static(asset.body), &ETAGS[position])
    };
    let unchanged = request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| tag.trim() == etag.to_str().unwrap_or_default() || tag.trim() == "*");
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag.clone()))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, console.policy.clone()))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    if let Some(frame_options) = &console.frame_options {
        response.insert_header((header::X_FRAME_OPTIONS, frame_options.clone()));
    }
    if unchanged {
        return response.finish();
    }
    response.content_type(asset.content_type).body(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::StatusCode;
    use actix_web::{App, test as actix_test};

    #[actix_web::test]
    async fn the_page_and_its_files_come_with_their_type_policy_and_etag() {
        let app = actix_test::init_service(
            App::new()
                .route("/", web::get().to(index))
                .route("/console/{asset}", web::get().to(asset)),
        )
        .await;
        for (path, content_type) in [
            ("/", "text/html"),
            ("/console/console.css", "text/css"),
            ("/console/app.js", "text/javascript"),
            ("/console/favicon.svg", "image/svg+xml"),
        ] {
            let request = actix_test::TestRequest::get().uri(path).to_request();
            let response = actix_test::call_service(&app, request).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let headers = response.headers();
            let value = |name| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            assert!(
                value(header::CONTENT_TYPE).starts_with(content_type),
                "{path}"
            );
            assert!(
                value(header::CONTENT_SECURITY_POLICY).starts_with("default-src 'self'"),
                "{path}"
            );
            let etag = value(header::ETAG);
            assert!(etag.starts_with('"'), "{path}: {etag}");
            let request = actix_test::TestRequest::get()
                .uri(path)
                .insert_header((header::IF_NONE_MATCH, etag))
                .to_request();
            let response = actix_test::call_service(&app, request).await;
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{path}");
        }
        for path in [
            "/console/nope.js",
            "/console/index.html",
            "/console/..%2FCargo.toml",
        ] {
            let request = actix_test::TestRequest::get().uri(path).to_request();
            let response = actix_test::call_service(&app, request).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        }
    }

    /// `/` with the app built for `settings`: the response's headers and
    /// the page.
    async fn page_for(settings: &ConsoleSettings) -> (actix_web::http::header::HeaderMap, String) {
        let app = actix_test::init_service(
            App::new()
                .app_data(web::Data::new(Console::new(settings)))
                .route("/", web::get().to(index)),
        )
        .await;
        let request = actix_test::TestRequest::get().uri("/").to_request();
        let response = actix_test::call_service(&app, request).await;
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers().clone();
        let body = actix_test::read_body(response).await;
        (headers, String::from_utf8_lossy(&body).into_owned())
    }

    fn header_of(
        headers: &actix_web::http::header::HeaderMap,
        name: header::HeaderName,
    ) -> Option<&str> {
        headers.get(name).and_then(|value| value.to_str().ok())
    }

    #[actix_web::test]
    async fn by_default_no_page_may_frame_the_console() {
        let (headers, page) = page_for(&ConsoleSettings::default()).await;
        let policy = header_of(&headers, header::CONTENT_SECURITY_POLICY).unwrap_or_default();
        assert!(policy.ends_with("; frame-ancestors 'none'"), "{policy}");
        assert_eq!(policy, CONTENT_SECURITY_POLICY);
        assert_eq!(header_of(&headers, header::X_FRAME_OPTIONS), Some("DENY"));
        assert!(page.contains(ANCESTORS_TAG), "{page}");
        assert_eq!(page.matches("panorama-frame-ancestors").count(), 1);
    }

    #[actix_web::test]
    async fn configured_desktops_may_frame_the_console_and_the_page_knows_them() {
        let ancestors = "https://*.my.salesforce.com, https://flex.twilio.com";
        let settings = ConsoleSettings {
            frame_ancestors: FrameAncestors::parse(ancestors).expect("valid"),
        };
        let (headers, page) = page_for(&settings).await;
        let policy = header_of(&headers, header::CONTENT_SECURITY_POLICY).unwrap_or_default();
        assert!(
            policy.ends_with(
                "; form-action 'self'; \
                 frame-ancestors https://*.my.salesforce.com https://flex.twilio.com"
            ),
            "{policy}"
        );
        assert!(
            policy.starts_with("default-src 'self'; script-src 'self';"),
            "{policy}"
        );
        // X-Frame-Options cannot name other origins: it would contradict.
        assert_eq!(header_of(&headers, header::X_FRAME_OPTIONS), None);
        assert!(
            page.contains(
                "<meta name=\"panorama-frame-ancestors\" \
                 content=\"https://*.my.salesforce.com https://flex.twilio.com\">"
            ),
            "{page}"
        );
        assert!(!page.contains(ANCESTORS_TAG));
        let default_etag = etag_of(ASSETS[0].body);
        assert_ne!(
            headers.get(header::ETAG),
            Some(&default_etag),
            "another page, another ETag"
        );

        let settings = ConsoleSettings {
            frame_ancestors: FrameAncestors::parse("'self'").expect("valid"),
        };
        let (headers, _) = page_for(&settings).await;
        assert_eq!(
            header_of(&headers, header::X_FRAME_OPTIONS),
            Some("SAMEORIGIN")
        );
        let policy = header_of(&headers, header::CONTENT_SECURITY_POLICY).unwrap_or_default();
        assert!(policy.ends_with("; frame-ancestors 'self'"), "{policy}");
    }

    #[test]
    fn the_policy_lets_nothing_inline_or_foreign_in() {
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert!(!CONTENT_SECURITY_POLICY.contains("http"));
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(CONTENT_SECURITY_POLICY.contains(directive), "{directive}");
        }
    }

    #[test]
    fn pages_load_only_their_own_files() {
        let page = std::str::from_utf8(ASSETS[0].body).expect("UTF-8");
        for (start, _) in page
            .match_indices("src=\"")
            .chain(page.match_indices("href=\""))
        {
            let target = &page[start..].split('"').nth(1).unwrap_or_default();
            if target.starts_with('#') {
                continue;
            }
            let file = target
                .strip_prefix("/console/")
                .unwrap_or_else(|| panic!("index.html refers to {target}, outside /console/"));
            assert!(ASSETS.iter().any(|asset| asset.name == file), "{file}");
        }
        assert!(!page.contains("<script>"), "no inline script");
        // Modules import each other by relative name: each one is served.
        for asset in ASSETS.iter().filter(|asset| asset.name.ends_with(".js")) {
            let code = std::str::from_utf8(asset.body).expect("UTF-8");
            for (start, _) in code.match_indices(" from './") {
                let file = code[start + 9..].split('\'').next().unwrap_or_default();
                assert!(
                    ASSETS.iter().any(|asset| asset.name == file),
                    "{} imports {file}",
                    asset.name
                );
            }
        }
    }
}
