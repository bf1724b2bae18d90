//! A minimal HTTP/1.1 client for the tracking server and the API: one request per
//! connection (or several on a kept-alive one), the status, headers and body back. Enough
//! for tests; no redirects are followed. Every call is bounded by [`LIMIT`], and, as a test
//! helper, panics when the server does not answer or answers something that is not HTTP.

// A failed request is a failed test: these helpers panic like `assert!`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::LIMIT;

/// What the server answered.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: HashMap<String, String>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl Answer {
    /// The header `name` (any case), if the answer has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `method path` (with `user_agent`, and `body` as a form) and reads the whole answer.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    user_agent: &str,
    body: &str,
) -> Answer {
    request_with(addr, method, path, &[("User-Agent", user_agent)], body).await
}

/// Sends `method path` with `headers` (and `body` as a form) and reads the whole answer.
pub async fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    tokio::time::timeout(LIMIT, async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() {
            request.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        parse(&raw)
    })
    .await
    .expect("the tracking server answered in time")
}

/// One kept-alive HTTP/1.1 connection: requests one after another, each answer read by its
/// `Content-Length`.
pub struct KeepAlive {
    stream: TcpStream,
    addr: SocketAddr,
    buffer: Vec<u8>,
}

impl KeepAlive {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> KeepAlive {
        let stream = tokio::time::timeout(LIMIT, TcpStream::connect(addr))
            .await
            .expect("connected in time")
            .unwrap();
        KeepAlive {
            stream,
            addr,
            buffer: Vec::new(),
        }
    }

    /// Sends `GET path` without waiting for the answer.
    pub async fn send(&mut self, path: &str) {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {BROWSER}\r\n\r\n",
            self.addr
        );
        tokio::time::timeout(LIMIT, self.stream.write_all(request.as_bytes()))
            .await
            .expect("sent in time")
            .unwrap();
    }

    /// Reads the next answer; `None` when the server closed the connection first.
    pub async fn answer(&mut self) -> Option<Answer> {
        tokio::time::timeout(LIMIT, self.read_answer())
            .await
            .expect("the tracking server answered in time")
    }

    async fn read_answer(&mut self) -> Option<Answer> {
        loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buffer[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if self.buffer.len() >= end + 4 + length {
                    let rest = self.buffer.split_off(end + 4 + length);
                    let answer = parse(&self.buffer);
                    self.buffer = rest;
                    return Some(answer);
                }
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// `GET path` and its answer.
    pub async fn get(&mut self, path: &str) -> Answer {
        self.send(path).await;
        self.answer()
            .await
            .expect("an answer before the connection closed")
    }
}

/// A browser's user agent.
pub const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36";

/// `GET path` as a browser, on its own connection.
pub async fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, BROWSER, "").await
}

fn parse(raw: &[u8]) -> Answer {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete header");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect::<HashMap<_, _>>();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        body = unchunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn unchunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
}
