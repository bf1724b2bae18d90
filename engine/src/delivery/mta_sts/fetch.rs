//! Fetching a policy file: `GET https://mta-sts.<domain>/.well-known/mta-sts.txt` over a
//! fresh HTTP/1.1 connection, the certificate verified for `mta-sts.<domain>`, within one
//! time limit, a body of at most 64 KiB, no redirects followed (RFC 8461 §3.3).

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Body;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

/// The largest policy body accepted.
pub(crate) const MAX_BODY: usize = 64 * 1024;
/// The path of the policy file on the policy host.
const PATH: &str = "/.well-known/mta-sts.txt";

/// Why a policy could not be fetched.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// The policy host has no address (or its lookup failed).
    #[error("{0}")]
    Address(String),
    /// Connecting or the TLS handshake (certificate check included) failed.
    #[error("could not connect to {host} ({ip}): {source}")]
    Connect {
        host: String,
        ip: IpAddr,
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("the HTTP exchange with {host} failed: {source}")]
    Http { host: String, source: hyper::Error },
    /// Not within the time limit.
    #[error("{host} did not answer within {limit:?}")]
    Timeout { host: String, limit: Duration },
    /// A status other than 200 (a redirect included: they are not followed).
    #[error("{host} answered {status}{}", if status.is_redirection() { " (redirects are not followed)" } else { "" })]
    Status { host: String, status: StatusCode },
    /// Not `text/plain`.
    #[error("{host} sent the policy as {content_type:?}, not text/plain")]
    ContentType { host: String, content_type: String },
    /// Longer than [`MAX_BODY`].
    #[error("{host} sent a policy larger than {MAX_BODY} bytes")]
    TooLarge { host: String },
    /// Not UTF-8.
    #[error("{host} sent a policy that is not UTF-8 text")]
    NotText { host: String },
}

/// Where and how to fetch.
pub(crate) struct Target<'a> {
    /// `mta-sts.<domain>`.
    pub(crate) host: &'a str,
    /// Its addresses (the first two are tried).
    pub(crate) addresses: Vec<IpAddr>,
    /// The HTTPS port (443; tests use a loopback port).
    pub(crate) port: u16,
    /// TLS that verifies certificates.
    pub(crate) tls: Arc<rustls::ClientConfig>,
}

/// Fetches the policy text from `target` within `limit`.
pub(crate) async fn fetch(target: &Target<'_>, limit: Duration) -> Result<String, FetchError> {
    match tokio::time::timeout(limit, fetch_unbounded(target)).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Timeout {
            host: target.host.to_owned(),
            limit,
        }),
    }
}

async fn fetch_unbounded(target: &Target<'_>) -> Result<String, FetchError> {
    let host = target.host;
    let mut last = FetchError::Address(format!("{host} has no address"));
    for &ip in target.addresses.iter().take(2) {
        match connect(target, ip).await {
            Ok(stream) => return exchange(host, stream).await,
            Err(error) => last = error,
        }
    }
    Err(last)
}

async fn connect(
    target: &Target<'_>,
    ip: IpAddr,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, FetchError> {
    let error = |source| FetchError::Connect {
        host: target.host.to_owned(),
        ip,
        source,
    };
    let tcp = TcpStream::connect((ip, target.port)).await.map_err(error)?;
    tcp.set_nodelay(true).map_err(error)?;
    let name = ServerName::try_from(target.host.to_owned())
        .map_err(|e| error(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    tokio_rustls::TlsConnector::from(target.tls.clone())
        .connect(name, tcp)
        .await
        .map_err(error)
}

/// One GET over `stream`; the body read up to [`MAX_BODY`].
async fn exchange(
    host: &str,
    stream: tokio_rustls::client::TlsStream<TcpStream>,
) -> Result<String, FetchError> {
    let http = |source| FetchError::Http {
        host: host.to_owned(),
        source,
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http)?;
    let driver = tokio::spawn(connection);
    let result = async {
        let request = Request::builder()
            .method(Method::GET)
            .uri(PATH)
            .header(HOST, host)
            .header(
                USER_AGENT,
                concat!("volley/", env!("CARGO_PKG_VERSION"), " (MTA-STS)"),
            )
            .body(String::new());
        // invariant: a constant path and a host name rustls accepted make a valid request.
        let Ok(request) = request else {
            return Err(FetchError::Address(format!(
                "{host} is not a valid HTTP host"
            )));
        };
        let response = sender.send_request(request).await.map_err(http)?;
        check_head(host, &response)?;
        read_body(host, response.into_body()).await
    }
    .await;
    driver.abort();
    result
}

/// Refuses anything but a `200` with a `text/plain` body no larger than [`MAX_BODY`].
fn check_head<B>(host: &str, response: &hyper::Response<B>) -> Result<(), FetchError> {
    let status = response.status();
    if status != StatusCode::OK {
        return Err(FetchError::Status {
            host: host.to_owned(),
            status,
        });
    }
    let headers = response.headers();
    let content_type = headers
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("text/plain") {
        return Err(FetchError::ContentType {
            host: host.to_owned(),
            content_type,
        });
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(FetchError::TooLarge {
            host: host.to_owned(),
        });
    }
    Ok(())
}

async fn read_body(host: &str, mut body: hyper::body::Incoming) -> Result<String, FetchError> {
    let mut bytes = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|source| FetchError::Http {
            host: host.to_owned(),
            source,
        })?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > MAX_BODY {
                return Err(FetchError::TooLarge {
                    host: host.to_owned(),
                });
            }
            bytes.extend_from_slice(&data);
        }
    }
    String::from_utf8(bytes).map_err(|_| FetchError::NotText {
        host: host.to_owned(),
    })
}
