//! A small W3C WebDriver client over reqwest, enough to drive a headless
//! Chromium through Debian's `chromedriver`: start the driver on a free
//! port, open a session, navigate, find, click, type, run a script, take a
//! screenshot. The driver (and with the session, the browser) is stopped
//! when the [`Browser`] is dropped, on panic too.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The key W3C WebDriver puts element references under.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long a wait for the page lasts before the test fails.
pub(crate) const PAGE_WAIT: Duration = Duration::from_secs(30);

/// Where chromedriver is: `PANORAMA_CHROMEDRIVER` (what
/// `scripts/ensure-chromium.sh` prints), else Debian's path.
fn chromedriver_path() -> PathBuf {
    let path = std::env::var_os("PANORAMA_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"));
    assert!(
        path.exists(),
        "chromedriver not found at {}: run scripts/ensure-chromium.sh (make test does) \
         or set PANORAMA_CHROMEDRIVER",
        path.display()
    );
    path
}

/// A headless Chromium in a WebDriver session.
#[derive(Debug)]
pub(crate) struct Browser {
    http: reqwest::Client,
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

/// An element of the page.
#[derive(Debug, Clone)]
pub(crate) struct Element(String);

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium of
    /// `width`×`height` with a fresh profile and no background traffic (the
    /// test machine has no outside network).
    pub(crate) async fn start(width: u32, height: u32) -> Browser {
        let port = TcpListener::bind(("127.0.0.1", 0))
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(chromedriver_path())
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().expect("a profile directory");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        // The driver listens within moments; wait on its status, not a sleep.
        let started = Instant::now();
        loop {
            let ready = http
                .get(format!("{base}/status"))
                .send()
                .await
                .ok()
                .filter(|response| response.status().is_success());
            if ready.is_some() {
                break;
            }
            assert!(
                started.elapsed() < PAGE_WAIT,
                "chromedriver did not answer on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let binary =
            std::env::var("PANORAMA_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut browser = Browser {
            http,
            driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        let answer = browser
            .command(
                reqwest::Method::POST,
                "/session",
                Some(json!({
                    "capabilities": {"alwaysMatch": {
                        "browserName": "chrome",
                        "goog:chromeOptions": {"binary": binary, "args": args},
                    }}
                })),
            )
            .await;
        browser.session = answer["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        // --window-size is the window's; make the page itself that size.
        let chrome = browser
            .run(
                "return [outerWidth - innerWidth, outerHeight - innerHeight]",
                json!([]),
            )
            .await;
        let extra = |i: usize| chrome[i].as_u64().unwrap_or(0);
        browser
            .command(
                reqwest::Method::POST,
                &browser.path("/window/rect"),
                Some(json!({"width": u64::from(width) + extra(0), "height": u64::from(height) + extra(1)})),
            )
            .await;
        browser
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("chromedriver answers");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{method} {path}: {status} {body}");
        body["value"].clone()
    }

    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `url`.
    pub(crate) async fn goto(&self, url: &str) {
        self.command(
            reqwest::Method::POST,
            &self.path("/url"),
            Some(json!({ "url": url })),
        )
        .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and gives
    /// its return value.
    pub(crate) async fn run(&self, script: &str, args: Value) -> Value {
        self.command(
            reqwest::Method::POST,
            &self.path("/execute/sync"),
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Waits until `script` returns something truthy and gives it.
    pub(crate) async fn wait_for(&self, what: &str, script: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.run(script, json!([])).await;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::String(text) => !text.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return value;
            }
            if started.elapsed() > PAGE_WAIT {
                let text = self
                    .run("return document.body.innerText.slice(0, 2000)", json!([]))
                    .await;
                panic!("timed out waiting for {what}; the page says:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The first element matching a CSS selector, waiting for it to be
    /// shown.
    pub(crate) async fn find(&self, selector: &str) -> Element {
        let script = "const e = document.querySelector(arguments[0]); \
                      return !!e && e.getClientRects().length > 0";
        let started = Instant::now();
        loop {
            let shown = self.run(script, json!([selector])).await;
            if shown == Value::Bool(true) {
                break;
            }
            assert!(
                started.elapsed() < PAGE_WAIT,
                "timed out waiting for {selector} to be shown"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let found = self
            .command(
                reqwest::Method::POST,
                &self.path("/element"),
                Some(json!({ "using": "css selector", "value": selector })),
            )
            .await;
        Element(
            found[ELEMENT]
                .as_str()
                .unwrap_or_else(|| panic!("{selector}: no element in {found}"))
                .to_owned(),
        )
    }

    /// Clicks the element.
    pub(crate) async fn click(&self, element: &Element) {
        let path = self.path(&format!("/element/{}/click", element.0));
        self.command(reqwest::Method::POST, &path, Some(json!({})))
            .await;
    }

    /// Types `text` into the element, after clearing it.
    pub(crate) async fn type_into(&self, element: &Element, text: &str) {
        let clear = self.path(&format!("/element/{}/clear", element.0));
        self.command(reqwest::Method::POST, &clear, Some(json!({})))
            .await;
        let path = self.path(&format!("/element/{}/value", element.0));
        self.command(reqwest::Method::POST, &path, Some(json!({ "text": text })))
            .await;
    }

    /// Sends the next commands to the page the frame `element` shows.
    #[allow(dead_code)]
    pub(crate) async fn enter_frame(&self, element: &Element) {
        self.command(
            reqwest::Method::POST,
            &self.path("/frame"),
            Some(json!({ "id": { ELEMENT: element.0 } })),
        )
        .await;
    }

    /// Sends the next commands to the top-level page again.
    #[allow(dead_code)]
    pub(crate) async fn leave_frames(&self) {
        self.command(
            reqwest::Method::POST,
            &self.path("/frame"),
            Some(json!({ "id": null })),
        )
        .await;
    }

    /// A PNG of the viewport.
    pub(crate) async fn screenshot(&self) -> Vec<u8> {
        let encoded = self
            .command(reqwest::Method::GET, &self.path("/screenshot"), None)
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("base64"))
            .expect("a PNG")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the session, which quits Chromium; blocking and short, since
        // drop cannot await (and may run while a panic unwinds).
        let stream = (!self.session.is_empty())
            .then(|| TcpStream::connect(("127.0.0.1", self.port)).ok())
            .flatten();
        if let Some(mut stream) = stream {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n",
                self.session, self.port
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                let mut answer = Vec::new();
                let _ = stream.read_to_end(&mut answer);
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
