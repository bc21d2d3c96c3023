//! The agent console: a static page (HTML, CSS, JavaScript modules) built
//! into the binary and served by processes with the api role at `/` and
//! `/console/<file>`.
//!
//! The files are public: they hold no data. The page asks the agent for an
//! API token and sends it as a bearer token on every API call it makes.
//! Every answer carries a strict `Content-Security-Policy`: scripts, styles,
//! images and connections from this origin only, no inline script, no
//! frames, so nothing outside Panorama can load into the page. Assets are
//! revalidated on every load (`Cache-Control: no-cache`) against a strong
//! `ETag` of their content, so a new release is picked up at once and an
//! unchanged file costs a 304.

use std::sync::LazyLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;
use crate::problem;

/// What the console's page may load: itself, nothing else.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

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
];

/// The strong `ETag` of every asset, in [`ASSETS`] order: a hash of its
/// content, so it changes exactly when the file does.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            HeaderValue::from_str(&format!("\"{:016x}\"", fnv1a(asset.body)))
                .expect("hex is a valid header value")
        })
        .collect()
});

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

/// The asset at `position`, or 304 when the caller has this version.
fn serve(request: &HttpRequest, position: usize) -> HttpResponse {
    let asset = &ASSETS[position];
    let etag = &ETAGS[position];
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
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    if unchanged {
        return response.finish();
    }
    response.content_type(asset.content_type).body(asset.body)
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
