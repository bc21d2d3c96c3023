//! The agent console embedded in an agent desktop, in a real browser
//! (headless Chromium through `chromedriver`) against the whole
//! application. A desktop page on another site (`localhost`, while the
//! console is on `127.0.0.1`) frames the console, which is configured to
//! allow it; the agent signs in inside the frame; the desktop sends screen
//! pops by `postMessage` and hears `panorama.customer` answers while the
//! card opens in the frame. A page of an origin that is not allowed can
//! neither frame the console nor be heard by it, and with the default
//! settings no page may frame it at all.

#[path = "support/webdriver.rs"]
mod webdriver;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use chrono::{Duration, Utc};
use panorama_core::Role;
use panorama_e2e::contact_with;
use panorama_server::FrameAncestors;
use panorama_testkit::TestApp;
use serde_json::{Value, json};
use webdriver::Browser;

const ANNA_PHONE: &str = "+31612345678";
const BRAM_PHONE: &str = "+31611112222";
const CHLOE_PHONE: &str = "+31633334444";

/// A port on 127.0.0.1 that serves fixed pages, each from a thread of its
/// own, for as long as the test process runs.
struct Pages {
    listener: TcpListener,
    port: u16,
}

impl Pages {
    fn bind() -> Pages {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("a free port");
        let port = listener.local_addr().expect("bound").port();
        Pages { listener, port }
    }

    /// Serves `pages` (path, HTML); anything else is a 404.
    fn serve(self, pages: Vec<(&'static str, String)>) {
        let pages = Arc::new(pages);
        std::thread::spawn(move || {
            for stream in self.listener.incoming().flatten() {
                let pages = pages.clone();
                // Browsers open connections they may never use: one thread
                // each, so an idle one holds up nobody.
                std::thread::spawn(move || answer(stream, &pages));
            }
        });
    }
}

/// Reads one request from `stream` and answers it with its page.
fn answer(mut stream: TcpStream, pages: &[(&'static str, String)]) {
    let mut head = Vec::new();
    let mut buffer = [0_u8; 2048];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default();
    let (status, body) = pages
        .iter()
        .find(|(page, _)| *page == path)
        .map_or(("404 Not Found", ""), |(_, body)| ("200 OK", body.as_str()));
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

/// A page that frames `src` as `#panorama`, records what the console
/// sends it in `window.heard`, and sends screen pops with
/// `window.screenpop(message)`: what an agent desktop does.
fn desktop_page(src: &str, console_origin: &str, more: &str) -> String {
    let origin = json!(console_origin);
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Agent desktop</title></head>
<body>
<iframe id="panorama" name="panorama" src="{src}" width="1100" height="600"></iframe>
{more}
<script>
  window.heard = [];
  window.addEventListener('message', (event) => {{
    if (event.origin === {origin}) window.heard.push(event.data);
  }});
  window.screenpop = (message) =>
    document.getElementById('panorama').contentWindow.postMessage(message, {origin});
</script>
</body></html>"#
    )
}

/// A page of an origin the console does not allow, framed next to it by the
/// desktop: it sends screen pops to its sibling, the console.
const FOREIGN_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Another app</title></head>
<body>
<script>
  window.heard = [];
  window.addEventListener('message', (event) => window.heard.push(event.data));
  window.screenpop = (message) => parent.frames[0].postMessage(message, '*');
</script>
</body></html>"#;

/// The id of the customer owning `phone`.
async fn customer_of(app: &TestApp, phone: &str) -> String {
    let profile = app
        .get_json(&format!(
            "/v1/customers/lookup?phone={}",
            phone.replace('+', "%2B")
        ))
        .await;
    profile["id"].as_str().expect("a customer id").to_owned()
}

/// Three customers, one phone number each.
async fn seed(app: &TestApp) {
    let mut events = Vec::new();
    for (index, (name, phone)) in [
        ("Anna de Vries", ANNA_PHONE),
        ("Bram Visser", BRAM_PHONE),
        ("Chloé Martin", CHLOE_PHONE),
    ]
    .into_iter()
    .enumerate()
    {
        let mut event = contact_with(
            &format!("embedded-{index}"),
            Utc::now() - Duration::hours(2),
            "phone",
            &[("phone", phone)],
        );
        event["display_name"] = json!(name);
        events.push(event);
    }
    let response = app.post_events(&json!({ "events": events })).await;
    assert_eq!(response.status(), 202);
    app.wait_for_events(3).await;
}

/// The script that finds the answer to the screen pop `request_id` among
/// what the desktop heard.
fn answer_to(request_id: &str) -> String {
    format!(
        "return window.heard.find(m => m.request_id === {}) ?? null",
        json!(request_id)
    )
}

/// Writes a PNG of the page to `target/test-artifacts/<name>`.
async fn save_screenshot(browser: &Browser, name: &str) {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("create the artifacts directory");
    let path = dir.join(name);
    std::fs::write(&path, browser.screenshot().await).expect("write the screenshot");
    println!("screenshot of the console in a desktop: {}", path.display());
}

/// Whether the frame `#panorama` shows the card of `name`.
fn card_of(name: &str) -> String {
    format!(
        "const c = document.querySelector('[data-testid=customer-card]'); \
         return !!c && c.textContent.includes({})",
        json!(name)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_on_another_site_frames_the_console_and_pops_cards() {
    let desktop = Pages::bind();
    let foreign = Pages::bind();
    // Another site than the console's 127.0.0.1: the frame is third-party.
    let desktop_origin = format!("http://localhost:{}", desktop.port);
    let foreign_origin = format!("http://localhost:{}", foreign.port);
    let allowed = FrameAncestors::parse(&desktop_origin).expect("an origin");
    let app = TestApp::builder()
        .configure(move |options| options.console.frame_ancestors = allowed)
        .spawn()
        .await;
    seed(&app).await;
    let anna = customer_of(&app, ANNA_PHONE).await;
    let bram = customer_of(&app, BRAM_PHONE).await;
    let agent = app.token(Role::Agent).await;
    let console = app.base_url.clone();
    let home = format!("{console}/");
    desktop.serve(vec![(
        "/desktop.html",
        desktop_page(
            &home,
            &console,
            &format!(r#"<iframe id="foreign" src="{foreign_origin}/foreign.html"></iframe>"#),
        ),
    )]);
    foreign.serve(vec![
        ("/foreign.html", FOREIGN_PAGE.to_owned()),
        ("/framer.html", desktop_page(&home, &console, "")),
    ]);

    let browser = Browser::start(1366, 900).await;
    browser
        .goto(&format!("{desktop_origin}/desktop.html"))
        .await;
    browser
        .wait_for(
            "panorama.ready from the signed-out console",
            "return window.heard.some(m => m.type === 'panorama.ready' && m.version === 1 \
             && m.signed_in === false)",
        )
        .await;

    // A call comes in before the agent signed in: the pop waits for it.
    browser
        .run(
            "window.screenpop({type: 'panorama.screenpop', version: 1, request_id: 'call-1', \
             identifier: {kind: 'phone', value: arguments[0]}})",
            json!([BRAM_PHONE]),
        )
        .await;
    let frame = browser.find("#panorama").await;
    browser.enter_frame(&frame).await;
    browser
        .wait_for(
            "the sign-in form asking for the caller's card",
            "const m = document.getElementById('signin-message'); \
             return !m.hidden && m.textContent.includes('caller')",
        )
        .await;
    browser
        .type_into(&browser.find("#token").await, &agent)
        .await;
    browser
        .click(&browser.find("#signin-form button").await)
        .await;
    browser
        .wait_for("Bram's card in the frame", &card_of("Bram Visser"))
        .await;
    // The token stays with the tab, in the frame's own storage.
    assert_eq!(
        browser
            .run("return sessionStorage.getItem('panorama.token')", json!([]))
            .await,
        json!(agent)
    );
    browser.leave_frames().await;
    let answer = browser
        .wait_for("the answer to call-1", &answer_to("call-1"))
        .await;
    assert_eq!(answer["type"], "panorama.customer", "{answer}");
    assert_eq!(answer["version"], 1, "{answer}");
    assert_eq!(answer["status"], "found", "{answer}");
    assert_eq!(answer["customer_id"], json!(bram), "{answer}");
    assert_eq!(
        answer["identifier"],
        json!({"kind": "phone", "value": BRAM_PHONE})
    );
    assert_eq!(answer["url"], json!(format!("{console}/#customer/{bram}")));
    browser
        .wait_for(
            "panorama.ready once the agent signed in",
            "return window.heard.some(m => m.type === 'panorama.ready' && m.signed_in === true)",
        )
        .await;

    // A page of an origin the console does not allow sends a pop: ignored.
    let sibling = browser.find("#foreign").await;
    browser.enter_frame(&sibling).await;
    browser
        .run(
            "window.screenpop({type: 'panorama.screenpop', version: 1, request_id: 'foreign', \
             identifier: {kind: 'phone', value: arguments[0]}})",
            json!([CHLOE_PHONE]),
        )
        .await;
    browser.leave_frames().await;

    // The desktop's next pop, in the short form: Anna's card opens.
    browser
        .run(
            "window.screenpop({type: 'panorama.screenpop', version: 1, request_id: 'call-2', \
             phone: arguments[0]})",
            json!([ANNA_PHONE]),
        )
        .await;
    let answer = browser
        .wait_for("the answer to call-2", &answer_to("call-2"))
        .await;
    assert_eq!(answer["type"], "panorama.customer", "{answer}");
    assert_eq!(answer["customer_id"], json!(anna), "{answer}");
    browser.enter_frame(&frame).await;
    browser
        .wait_for("Anna's card in the frame", &card_of("Anna de Vries"))
        .await;
    browser.leave_frames().await;
    save_screenshot(&browser, "console-embedded.png").await;
    browser.enter_frame(&frame).await;
    // Pops are handled in order: had the foreign one been heard, Chloé
    // would have been looked up before Anna.
    let looked_up = browser
        .run(
            "return performance.getEntriesByType('resource').map(e => e.name)\
             .filter(name => name.includes('/v1/customers/lookup'))",
            json!([]),
        )
        .await;
    let chloe = CHLOE_PHONE.replace('+', "%2B");
    assert!(
        looked_up
            .as_array()
            .expect("a list")
            .iter()
            .all(|name| !name.as_str().unwrap_or_default().contains(&chloe)),
        "the console heard a page it does not allow: {looked_up}"
    );
    browser.leave_frames().await;
    assert_eq!(
        browser.run(&answer_to("foreign"), json!([])).await,
        Value::Null
    );
    browser.enter_frame(&sibling).await;
    assert_eq!(
        browser.run("return window.heard", json!([])).await,
        json!([]),
        "the console answered a page it does not allow"
    );
    browser.leave_frames().await;

    // Nobody has this number yet: the empty card, and a not_found answer;
    // a malformed pop gets an error.
    browser
        .run(
            "window.screenpop({type: 'panorama.screenpop', version: 1, request_id: 'call-3', \
             identifier: {kind: 'phone', value: '+31687654321'}}); \
             window.screenpop({type: 'panorama.screenpop', version: 1, request_id: 'bad', \
             identifier: {kind: 'fax', value: '1'}})",
            json!([]),
        )
        .await;
    let answer = browser
        .wait_for("the answer to call-3", &answer_to("call-3"))
        .await;
    assert_eq!(answer["status"], "not_found", "{answer}");
    assert_eq!(answer["customer_id"], Value::Null, "{answer}");
    let answer = browser
        .wait_for("the answer to bad", &answer_to("bad"))
        .await;
    assert_eq!(answer["type"], "panorama.error", "{answer}");
    assert_eq!(answer["error"], "invalid_message", "{answer}");
    browser.enter_frame(&frame).await;
    browser
        .wait_for(
            "the empty card in the frame",
            "return !!document.querySelector('[data-testid=unknown-card]')",
        )
        .await;
    browser.leave_frames().await;

    // The frame reloads: the agent is still signed in.
    browser
        .run(
            "window.heard = []; document.getElementById('panorama').src = arguments[0]",
            json!([home]),
        )
        .await;
    browser
        .wait_for(
            "panorama.ready, signed in, after a reload of the frame",
            "return window.heard.some(m => m.type === 'panorama.ready' && m.signed_in === true)",
        )
        .await;

    // A page of an origin the console does not allow cannot frame it.
    browser.goto(&format!("{foreign_origin}/framer.html")).await;
    let refused = browser.find("#panorama").await;
    browser.enter_frame(&refused).await;
    browser
        .wait_for(
            "the browser's error page in place of the console",
            "return location.href.startsWith('chrome-error:') && \
             !document.getElementById('signin-form')",
        )
        .await;
    drop(browser);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_no_page_may_frame_the_console() {
    let app = TestApp::spawn().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let policy = header("content-security-policy");
    assert!(policy.ends_with("; frame-ancestors 'none'"), "{policy}");
    assert_eq!(header("x-frame-options"), "DENY");
    let page = response.text().await.expect("the page");
    assert!(
        page.contains(r#"<meta name="panorama-frame-ancestors" content="'none'">"#),
        "{page}"
    );

    let desktop = Pages::bind();
    let desktop_origin = format!("http://localhost:{}", desktop.port);
    let console = app.base_url.clone();
    desktop.serve(vec![(
        "/desktop.html",
        desktop_page(&format!("{console}/"), &console, ""),
    )]);
    let browser = Browser::start(1024, 768).await;
    browser
        .goto(&format!("{desktop_origin}/desktop.html"))
        .await;
    let frame = browser.find("#panorama").await;
    browser.enter_frame(&frame).await;
    browser
        .wait_for(
            "the browser's error page in place of the console",
            "return location.href.startsWith('chrome-error:') && \
             !document.getElementById('signin-form')",
        )
        .await;
    drop(browser);
    app.stop().await;
}
