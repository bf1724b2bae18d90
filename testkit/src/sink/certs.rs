//! Throw-away TLS material for the sink: a generated CA and a server certificate for
//! `localhost`, `sink.test`, `*.sink.test` and `127.0.0.1`, so tests, the demo and benches can run STARTTLS
//! and implicit TLS against the sink while the client verifies certificates for real.

use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::server::ServerSessionMemoryCache;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::SinkError;

/// Names the generated server certificate is valid for.
/// `*.sink.test` covers the MX host names of direct-delivery tests (`mx0.sink.test`…).
const SERVER_NAMES: [&str; 4] = ["localhost", "sink.test", "*.sink.test", "127.0.0.1"];
/// TLS sessions the server remembers for resumption (the oldest are forgotten first).
const SESSION_CACHE: usize = 4096;

/// A generated test CA and a server certificate it signed (for `localhost`, `sink.test` and
/// IP 127.0.0.1). Only for tests, demos and benches: the key lives in memory and dies with it.
pub struct TestCa {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_der: CertificateDer<'static>,
    server_key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("names", &SERVER_NAMES)
            .field("server_key", &"<redacted>")
            .finish()
    }
}

impl Clone for TestCa {
    fn clone(&self) -> Self {
        TestCa {
            ca_pem: self.ca_pem.clone(),
            ca_der: self.ca_der.clone(),
            server_der: self.server_der.clone(),
            server_key: self.server_key.clone_key(),
        }
    }
}

impl TestCa {
    /// Generates a fresh CA (ECDSA P-256) and a server certificate signed by it.
    pub fn generate() -> Result<TestCa, SinkError> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Volley sink test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key)?;

        let server_key = KeyPair::generate()?;
        let names: Vec<String> = SERVER_NAMES.iter().map(|n| (*n).to_owned()).collect();
        let mut server_params = CertificateParams::new(names)?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, "sink.test");
        let server_cert = server_params.signed_by(&server_key, &ca_cert, &ca_key)?;

        Ok(TestCa {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            server_der: server_cert.der().clone(),
            server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        })
    }

    /// Uses a certificate and key made elsewhere (e.g. by `openssl req -x509`), read from
    /// PEM files: the certificate is presented by the server and is also what clients must
    /// trust ([`TestCa::ca_pem`] returns it), as for a self-signed relay certificate.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TestCa, SinkError> {
        let load_error = |path: &Path, reason: String| SinkError::LoadPem {
            path: path.to_path_buf(),
            reason,
        };
        let cert_pem = std::fs::read(cert).map_err(|e| load_error(cert, e.to_string()))?;
        let server_der = CertificateDer::from_pem_slice(&cert_pem)
            .map_err(|e| load_error(cert, format!("no PEM certificate ({e})")))?;
        let key_pem = std::fs::read(key).map_err(|e| load_error(key, e.to_string()))?;
        let server_key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|_| load_error(key, "no PEM private key".to_owned()))?;
        Ok(TestCa {
            ca_pem: String::from_utf8_lossy(&cert_pem).into_owned(),
            ca_der: server_der.clone(),
            server_der,
            server_key,
        })
    }

    /// The CA certificate in PEM form, for a client's trust store.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate in DER form.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// A rustls server configuration presenting the server certificate (aws-lc provider,
    /// safe default protocol versions, no client authentication) that lets clients resume
    /// sessions: an in-memory cache of 4,096 sessions serves TLS 1.2 session IDs
    /// and TLS 1.3 tickets (two single-use tickets after each full handshake). Resumption
    /// only works among connections accepted with the same configuration.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, SinkError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = self.server_key.clone_key();
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![self.server_der.clone()], key)?;
        // Spelled out rather than left to rustls's defaults: resumption is part of what the
        // sink is for.
        config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
        config.send_tls13_tickets = 2;
        Ok(Arc::new(config))
    }

    /// A rustls client configuration that trusts only this CA: handy for tests and the demo.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, SinkError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone())?;
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    /// Writes the CA certificate (never the key) in PEM form to `path`.
    pub fn write_ca(&self, path: &Path) -> Result<(), SinkError> {
        std::fs::write(path, self.ca_pem.as_bytes()).map_err(|source| SinkError::WriteCa {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ca_builds_server_and_client_configs_and_hides_its_key() {
        let ca = TestCa::generate().unwrap();
        assert!(ca.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        ca.server_config().unwrap();
        ca.client_config().unwrap();
        let debug = format!("{ca:?}");
        assert!(debug.contains("<redacted>"));
        assert!(!debug.contains("PRIVATE"));
    }

    #[test]
    fn write_ca_writes_the_pem_and_names_the_path_on_failure() {
        let ca = TestCa::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        ca.write_ca(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), ca.ca_pem());
        let bad = dir.path().join("missing").join("ca.pem");
        let err = ca.write_ca(&bad).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
    }
}
