//! Where the PostgreSQL store is and how to log in: the URL (`postgresql://user@host/db`,
//! `sslmode` and the other libpq parameters in its query), the password from a file, a
//! variable or the usual `PG*` environment (`PGPASSWORD`, `~/.pgpass`), and the pool's size.

use super::error::PgStoreError;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// How to reach the PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// `postgresql://user@host:port/database?sslmode=verify-full` (libpq's URL form). What it
    /// leaves out comes from the `PG*` environment (`PGHOST`, `PGUSER`, `PGSSLMODE`…).
    pub url: String,
    /// A file holding the password (first line); wins over `password_env`.
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the password.
    pub password_env: Option<String>,
    /// Connections in the pool. Default 8.
    pub max_connections: u32,
    /// How long connecting may take before giving up. Default 10 s.
    pub connect_timeout: Duration,
    /// TLS to the database; `None` keeps what the URL's `sslmode` or `PGSSLMODE` says
    /// (libpq's default: `prefer`).
    pub tls: Option<PgTls>,
    /// The CA certificates (PEM) the server's certificate is checked against (`verify-full`);
    /// `None` keeps the URL's `sslrootcert` or `PGSSLROOTCERT`.
    pub ca_file: Option<PathBuf>,
}

/// TLS to the database (libpq's `sslmode`, the four useful ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgTls {
    /// Never: plain TCP.
    Disable,
    /// TLS when the server offers it, plain otherwise, certificate not checked.
    Prefer,
    /// TLS or no connection; the certificate is not checked.
    Require,
    /// TLS, the certificate checked against the CA and the host name.
    VerifyFull,
}

impl PgTls {
    /// The names as written in settings: `disable`, `prefer`, `require`, `verify-full`.
    pub const NAMES: &'static str = "disable, prefer, require or verify-full";

    /// Parses one of [`PgTls::NAMES`].
    pub fn parse(text: &str) -> Option<PgTls> {
        match text {
            "disable" => Some(PgTls::Disable),
            "prefer" => Some(PgTls::Prefer),
            "require" => Some(PgTls::Require),
            "verify-full" => Some(PgTls::VerifyFull),
            _ => None,
        }
    }

    fn ssl_mode(self) -> PgSslMode {
        match self {
            PgTls::Disable => PgSslMode::Disable,
            PgTls::Prefer => PgSslMode::Prefer,
            PgTls::Require => PgSslMode::Require,
            PgTls::VerifyFull => PgSslMode::VerifyFull,
        }
    }
}

impl PgSettings {
    /// Settings for `url` with the defaults: password from the URL or the `PG*` environment,
    /// 8 connections, 10 s to connect.
    pub fn new(url: impl Into<String>) -> PgSettings {
        PgSettings {
            url: url.into(),
            password_file: None,
            password_env: None,
            max_connections: 8,
            connect_timeout: Duration::from_secs(10),
            tls: None,
            ca_file: None,
        }
    }

    /// The URL with any password removed, for messages and logs.
    pub fn shown_url(&self) -> String {
        redact(&self.url)
    }

    /// Whether the URL parses as a PostgreSQL address; the reason (password removed) when
    /// it does not. Reads no password.
    pub fn check_url(&self) -> Result<(), String> {
        PgConnectOptions::from_str(&self.url)
            .map(drop)
            .map_err(|e| redact(&e.to_string()))
    }

    /// Whether the URL itself holds a password (`user:secret@` or `password=`).
    pub fn url_has_password(&self) -> bool {
        redact(&self.url) != self.url
    }

    /// The connection options: the URL's, with the password from `password_file` or
    /// `password_env` when one is set and the URL has none (an address given on the command
    /// line with its password is the most specific: it wins over the file's keys).
    pub(crate) fn options(&self) -> Result<PgConnectOptions, PgStoreError> {
        let settings_error = |reason: String| PgStoreError::Settings {
            url: self.shown_url(),
            reason,
        };
        let mut options = PgConnectOptions::from_str(&self.url).map_err(|e| {
            settings_error(format!("not a PostgreSQL URL: {}", redact(&e.to_string())))
        })?;
        if !self.url_has_password() {
            if let Some(password) = self.password()? {
                options = options.password(password.expose_secret());
            }
        }
        if let Some(tls) = self.tls {
            options = options.ssl_mode(tls.ssl_mode());
        }
        if let Some(ca_file) = &self.ca_file {
            if !ca_file.is_file() {
                return Err(settings_error(format!(
                    "ca_file {}: no such file",
                    ca_file.display()
                )));
            }
            options = options.ssl_root_cert(ca_file);
        }
        Ok(options.application_name("volley"))
    }

    fn password(&self) -> Result<Option<SecretString>, PgStoreError> {
        let settings_error = |reason: String| PgStoreError::Settings {
            url: self.shown_url(),
            reason,
        };
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| settings_error(format!("password_file {}: {e}", path.display())))?;
            let first = text.lines().next().unwrap_or_default();
            return Ok(Some(SecretString::from(first.to_owned())));
        }
        if let Some(name) = &self.password_env {
            let value = std::env::var(name).map_err(|_| {
                settings_error(format!("password_env: the variable {name} is not set"))
            })?;
            return Ok(Some(SecretString::from(value)));
        }
        Ok(None)
    }
}

/// `text` with the password of any URL in it removed (`user:secret@` → `user@`) and any
/// `password=` parameter blanked.
pub(crate) fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme_end) = rest.find("://") {
        let (head, tail) = rest.split_at(scheme_end + 3);
        out.push_str(head);
        let authority_end = tail.find(['/', '?', '#', ' ']).unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                out.push_str(userinfo.split(':').next().unwrap_or_default());
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    blank_password_parameter(&out)
}

fn blank_password_parameter(text: &str) -> String {
    let Some(start) = text.find("password=") else {
        return text.to_owned();
    };
    let value = start + "password=".len();
    let end = text[value..]
        .find(['&', ' ', '#'])
        .map_or(text.len(), |i| value + i);
    format!("{}<redacted>{}", &text[..value], &text[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let cases = [
            (
                "postgresql://u:s3cret@h:5432/db",
                "postgresql://u@h:5432/db",
            ),
            (
                "postgresql://u@h/db?sslmode=require",
                "postgresql://u@h/db?sslmode=require",
            ),
            ("postgres://:s3cret@h/db", "postgres://@h/db"),
            (
                "postgresql://h/db?password=s3cret&x=1",
                "postgresql://h/db?password=<redacted>&x=1",
            ),
            ("postgresql:///db", "postgresql:///db"),
            (
                "error at postgresql://a:s3cret@h/db: refused",
                "error at postgresql://a@h/db: refused",
            ),
        ];
        for (url, shown) in cases {
            assert_eq!(redact(url), shown, "{url}");
            assert!(!redact(url).contains("s3cret"));
        }
    }

    #[test]
    fn the_password_comes_from_the_file_first_then_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let mut settings = PgSettings::new("postgresql://u@127.0.0.1/db");
        settings.password_file = Some(file);
        settings.password_env = Some("VOLLEY_TEST_SURELY_UNSET_PW".into());
        assert_eq!(
            settings.password().unwrap().unwrap().expose_secret(),
            "from-file"
        );
        settings.password_file = None;
        let error = settings.password().unwrap_err().to_string();
        assert_eq!(
            error,
            "store postgresql://u@127.0.0.1/db: password_env: the variable \
             VOLLEY_TEST_SURELY_UNSET_PW is not set"
        );
        settings.password_file = Some(dir.path().join("missing"));
        let error = settings.options().unwrap_err().to_string();
        assert!(error.contains("password_file"), "{error}");
        assert!(error.contains("missing"), "{error}");
    }

    #[test]
    fn a_password_in_the_address_wins_over_the_files_keys() {
        // `--store postgresql://u:secret@…` over a campaign file naming a password file.
        let mut settings = PgSettings::new("postgresql://u:secret@127.0.0.1/db");
        settings.password_file = Some("/nonexistent/volley-pw".into());
        let options = settings.options().unwrap();
        assert_eq!(options.get_username(), "u");
    }

    #[test]
    fn a_malformed_url_is_named_without_its_password() {
        let settings = PgSettings::new("postgresql://u:s3cret@h:notaport/db");
        let error = settings.options().unwrap_err().to_string();
        assert!(
            error.starts_with("store postgresql://u@h:notaport/db: "),
            "{error}"
        );
        assert!(!error.contains("s3cret"), "{error}");
    }
}
