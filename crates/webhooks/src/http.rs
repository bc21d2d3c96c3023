//! Posting one delivery: HTTP/1.1 over TCP, or TLS for `https` (rustls
//! with the ring provider and the system's roots), one connection per
//! attempt. Redirects are not followed (a 3xx is a failure: it could lead
//! anywhere), and unless private addresses are allowed, a name that
//! resolves only to loopback, private or link-local addresses is refused
//! before connecting, so DNS cannot point a webhook inside the network.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use panorama_core::webhook::is_private_address;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

/// Most bytes of a receiver's answer kept for the attempt's error.
const ANSWER_EXCERPT: usize = 200;

/// What a receiver answered.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The status code.
    pub(crate) status: u16,
    /// The start of the body, for the error of a failed attempt.
    pub(crate) excerpt: String,
}

/// The client: how to reach receivers.
#[derive(Clone)]
pub(crate) struct Client {
    tls: TlsConnector,
    allow_private: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("allow_private", &self.allow_private)
            .finish()
    }
}

impl Client {
    /// A client trusting the system's roots.
    pub(crate) fn new(allow_private: bool) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            tracing::warn!("no trusted root certificates on this system: https webhooks will fail");
        }
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Client {
            tls: TlsConnector::from(Arc::new(config)),
            allow_private,
        })
    }

    /// Posts `body` with `headers` to `url`, within `timeout` all told.
    pub(crate) async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<Answer, String> {
        tokio::time::timeout(timeout, self.exchange(url, headers, body))
            .await
            .unwrap_or_else(|_| Err(format!("timed out after {} ms", timeout.as_millis())))
    }

    async fn exchange(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Answer, String> {
        let url = url::Url::parse(url).map_err(|error| format!("invalid url: {error}"))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => return Err(format!("scheme {other} is not supported")),
        };
        let host = url.host().ok_or("the url has no host")?;
        let port = url.port_or_known_default().ok_or("the url has no port")?;
        let (name, addresses) = match host {
            url::Host::Domain(domain) => {
                let found: Vec<SocketAddr> = tokio::net::lookup_host((domain, port))
                    .await
                    .map_err(|error| format!("cannot resolve {domain}: {error}"))?
                    .collect();
                (domain.to_owned(), found)
            }
            url::Host::Ipv4(ip) => (ip.to_string(), vec![SocketAddr::from((ip, port))]),
            url::Host::Ipv6(ip) => (ip.to_string(), vec![SocketAddr::from((ip, port))]),
        };
        let addresses: Vec<SocketAddr> = addresses
            .into_iter()
            .filter(|address| self.allow_private || !is_private_address(address.ip()))
            .collect();
        if addresses.is_empty() {
            return Err(format!(
                "{name} resolves to private addresses only, which webhooks may not reach"
            ));
        }
        let stream = connect(&addresses).await?;
        let mut target = url.path().to_owned();
        if let Some(query) = url.query() {
            target.push('?');
            target.push_str(query);
        }
        let authority = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let mut request = Request::post(target)
            .header(hyper::header::HOST, authority)
            .header(
                hyper::header::USER_AGENT,
                concat!("panorama-webhooks/", env!("CARGO_PKG_VERSION")),
            )
            .header(hyper::header::CONNECTION, "close");
        for (header, value) in headers {
            request = request.header(*header, value);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|error| format!("cannot build the request: {error}"))?;
        if https {
            let server_name = rustls::pki_types::ServerName::try_from(name.clone())
                .map_err(|_| format!("{name} is not a name TLS can check"))?;
            let stream = self
                .tls
                .connect(server_name, stream)
                .await
                .map_err(|error| format!("TLS handshake failed: {error}"))?;
            send(stream, request).await
        } else {
            send(stream, request).await
        }
    }
}

/// Connects to the first of `addresses` that answers.
async fn connect(addresses: &[SocketAddr]) -> Result<TcpStream, String> {
    let mut last = String::new();
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last = format!("cannot connect to {address}: {error}"),
        }
    }
    Err(last)
}

/// Sends `request` over `stream` and reads the status and the start of
/// the answer.
async fn send<S>(stream: S, request: Request<Full<Bytes>>) -> Result<Answer, String>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| format!("HTTP handshake failed: {error}"))?;
    let driver = tokio::spawn(connection);
    let answered = sender.send_request(request).await;
    let response = match answered {
        Ok(response) => response,
        Err(error) => {
            driver.abort();
            return Err(format!("request failed: {error}"));
        }
    };
    let status = response.status().as_u16();
    let mut excerpt = Vec::new();
    if !response.status().is_success() {
        let mut body = response.into_body();
        // One frame is enough to say why; the rest is not read.
        if let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                excerpt.extend_from_slice(&data[..data.len().min(ANSWER_EXCERPT)]);
            }
        }
    }
    driver.abort();
    Ok(Answer {
        status,
        excerpt: String::from_utf8_lossy(&excerpt).trim().to_owned(),
    })
}
