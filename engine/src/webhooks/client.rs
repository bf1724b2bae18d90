//! One webhook request: a fresh HTTP/1.1 connection (TLS through rustls for `https`), one
//! POST, its status, all within the webhook's `timeout`. The response body is not read: only
//! the status says whether the batch was taken.

use std::sync::Arc;
use std::time::Duration;

use hyper::header::{HeaderValue, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Why a request did not get a 2xx.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// Connecting (or the TLS handshake) failed.
    #[error("could not connect to {host}:{port}: {source}")]
    Connect {
        host: String,
        port: u16,
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("the request failed: {0}")]
    Http(#[from] hyper::Error),
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The receiver answered something other than 2xx.
    #[error("the receiver answered {0}")]
    Status(StatusCode),
    /// The request could not be built (a header value).
    #[error("the request could not be built: {0}")]
    Build(String),
}

/// Where and how to POST.
#[derive(Clone)]
pub(crate) struct Target {
    /// The webhook's URL.
    pub(crate) url: Uri,
    /// The TLS client configuration for `https` (public roots plus `ca_file`).
    pub(crate) tls: Arc<rustls::ClientConfig>,
    /// The longest one request may take.
    pub(crate) timeout: Duration,
}

/// POSTs `body` (JSON) with `headers` to the target; `Ok` on a 2xx.
pub(crate) async fn post(
    target: &Target,
    headers: &[(&'static str, String)],
    body: String,
) -> Result<StatusCode, SendError> {
    match tokio::time::timeout(target.timeout, exchange(target, headers, body)).await {
        Ok(result) => result,
        Err(_) => Err(SendError::Timeout(target.timeout)),
    }
}

async fn exchange(
    target: &Target,
    headers: &[(&'static str, String)],
    body: String,
) -> Result<StatusCode, SendError> {
    let url = &target.url;
    let https = url.scheme_str() == Some("https");
    let host = url.host().unwrap_or_default();
    let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
    // An IPv6 literal comes bracketed in a URL.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let connect_error = |source| SendError::Connect {
        host: host.to_owned(),
        port,
        source,
    };
    let tcp = TcpStream::connect((bare, port))
        .await
        .map_err(connect_error)?;
    tcp.set_nodelay(true).map_err(connect_error)?;
    let request = build(url, headers, body)?;
    if https {
        let name = ServerName::try_from(bare.to_owned())
            .map_err(|e| connect_error(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
        let tls = tokio_rustls::TlsConnector::from(target.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(connect_error)?;
        send(tls, request).await
    } else {
        send(tcp, request).await
    }
}

/// The POST request.
fn build(
    url: &Uri,
    headers: &[(&'static str, String)],
    body: String,
) -> Result<Request<String>, SendError> {
    let authority = url.authority().map(|a| a.as_str()).unwrap_or_default();
    let path = url.path_and_query().map_or("/", |p| p.as_str());
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(HOST, authority)
        .header(CONTENT_TYPE, "application/json")
        .header(
            USER_AGENT,
            concat!("volley/", env!("CARGO_PKG_VERSION"), " (webhooks)"),
        );
    for (name, value) in headers {
        let value =
            HeaderValue::from_str(value).map_err(|_| SendError::Build(format!("header {name}")))?;
        request = request.header(*name, value);
    }
    request
        .body(body)
        .map_err(|e| SendError::Build(e.to_string()))
}

/// Runs the HTTP/1.1 exchange over `io`; the connection is dropped after the answer's head.
async fn send<S>(io: S, request: Request<String>) -> Result<StatusCode, SendError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    let driver = tokio::spawn(connection);
    let answer = sender.send_request(request).await;
    driver.abort();
    let status = answer?.status();
    if status.is_success() {
        Ok(status)
    } else {
        Err(SendError::Status(status))
    }
}
