//! A loopback HTTPS host serving MTA-STS policy files (`mta-sts.<domain>`), its certificate
//! signed by a test CA that the openssl CLI makes the way guides show (a self-signed CA, a
//! key and CSR for the host, the CSR signed with the host names as subjectAltName). What it
//! answers is scripted per host name, hostile answers included.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::LIMIT;

/// What the host answers for one name.
#[derive(Debug, Clone)]
pub enum Answer {
    /// `200 OK`, `text/plain`, this body.
    Policy(String),
    /// `200 OK` with an endless-looking 100 KiB body and no Content-Length.
    Oversize,
    /// `200 OK` announcing 1,000 bytes, sending 10, then nothing until the client leaves.
    Slow,
    /// `301` to this URL.
    Redirect(String),
}

/// The running host.
pub struct PolicyHost {
    pub port: u16,
    /// The test CA's certificate (PEM), to trust.
    pub ca_pem: String,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PolicyHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs `openssl` with `args` in `dir`; fails loudly when it is missing.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl command is needed by the MTA-STS tests (apt-get install -y openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a certificate for `names` signed by it, in `dir`: `ca.crt`, `host.crt`, `host.key`.
fn make_certificates(dir: &Path, names: &[String]) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=Volley MTA-STS test CA",
    ];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.crt"]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-new", "-subj", "/CN=mta-sts test host"];
    csr.extend(ec);
    csr.extend(["-keyout", "host.key", "-out", "host.csr"]);
    openssl(dir, &csr);
    let san: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
    let ext = format!(
        "subjectAltName={}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        san.join(",")
    );
    std::fs::write(dir.join("host.ext"), ext).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "host.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "host.ext",
            "-out",
            "host.crt",
        ],
    );
}

impl PolicyHost {
    /// Serves `answers` (by host name) on `127.0.0.1:0`, with certificates made in `dir`.
    pub async fn start(dir: &Path, answers: HashMap<String, Answer>) -> PolicyHost {
        let names: Vec<String> = answers.keys().cloned().collect();
        make_certificates(dir, &names);
        let cert = CertificateDer::from_pem_file(dir.join("host.crt")).unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join("host.key")).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (log, answers) = (requests.clone(), Arc::new(answers));
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, log, answers) = (acceptor.clone(), log.clone(), answers.clone());
                tokio::spawn(async move {
                    let serve = async {
                        let tls = acceptor.accept(tcp).await.ok()?;
                        serve(tls, &log, &answers).await
                    };
                    let _ = tokio::time::timeout(LIMIT, serve).await;
                });
            }
        });
        PolicyHost {
            port,
            ca_pem: std::fs::read_to_string(dir.join("ca.crt")).unwrap(),
            requests,
            task,
        }
    }

    /// The host names requested so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// One request: its head (at most 8 KiB), then the scripted answer for its Host.
async fn serve<S>(
    mut io: S,
    log: &Mutex<Vec<String>>,
    answers: &HashMap<String, Answer>,
) -> Option<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = io.read(&mut buf).await.ok()?;
        if n == 0 || head.len() > 8192 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let host = text
        .lines()
        .find_map(|l| l.strip_prefix("host:"))
        .map(|h| h.trim().split(':').next().unwrap_or("").to_owned())?;
    log.lock().unwrap().push(host.clone());
    match answers.get(&host)? {
        Answer::Policy(body) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            io.write_all(head.as_bytes()).await.ok()?;
            io.write_all(body.as_bytes()).await.ok()?;
        }
        Answer::Oversize => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nversion: STSv1\r\n";
            io.write_all(head.as_bytes()).await.ok()?;
            let line = "mx: mx.padding.example\r\n".repeat(64);
            for _ in 0..100 {
                io.write_all(line.as_bytes()).await.ok()?;
            }
        }
        Answer::Slow => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nversion: ";
            io.write_all(head.as_bytes()).await.ok()?;
            io.flush().await.ok()?;
            // Nothing more until the client gives up (or the test's limit).
            while io.read(&mut buf).await.ok()? > 0 {}
            return Some(());
        }
        Answer::Redirect(to) => {
            let head = format!(
                "HTTP/1.1 301 Moved Permanently\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            io.write_all(head.as_bytes()).await.ok()?;
        }
    }
    io.shutdown().await.ok()?;
    Some(())
}
