//! Checked campaign settings: what `validate()` hands to the rest of the engine. Every value
//! here has passed its checks, relative paths are resolved against the campaign file's folder,
//! templates and the relay password have been read.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// A validated campaign, ready for the loader and the sender.
#[derive(Debug)]
pub struct CampaignSettings {
    /// The campaign file it came from.
    pub file: PathBuf,
    /// Campaign id (`[A-Za-z0-9._-]{1,64}`), the key of its state in the store.
    pub id: String,
    /// The From address; its domain is one of the `[[dkim]]` domains.
    pub from: Address,
    /// Optional Reply-To address.
    pub reply_to: Option<Address>,
    /// The subject template (inline MiniJinja source).
    pub subject: String,
    /// The plain-text body template, if any (at least one of `text` and `html` is set).
    pub text: Option<TemplateFile>,
    /// The HTML body template, if any.
    pub html: Option<TemplateFile>,
    /// The recipients CSV (resolved path; checked to exist at load time).
    pub recipients: PathBuf,
    /// Priority lane, 1 (most urgent) to 5; default 3.
    pub priority: u8,
    /// The relay to send through; `None` means direct to MX.
    pub relay: Option<RelaySettings>,
    /// DKIM signing entries; their domains are the authorised From domains.
    pub dkim: Vec<DkimSettings>,
    /// Retry schedule and expiry for deferred messages.
    pub retry: RetrySettings,
    /// The store directory (default `<campaign file stem>.volley` beside the campaign file).
    pub store: PathBuf,
    /// Bounce handling: VERP return paths and suppression thresholds.
    pub bounces: BounceSettings,
}

/// `[bounces]`: where bounces go and when failures suppress an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceSettings {
    /// The bounce domain: when set, each message's return path is
    /// `bounces+TOKEN@domain` (VERP); otherwise the From address.
    pub domain: Option<String>,
    /// Soft bounces within `soft_window` that suppress an address (default 3).
    pub soft_limit: u32,
    /// The window soft bounces are counted in (default 30 days).
    pub soft_window: Duration,
    /// Extra classification rules that extend or override the shipped ones.
    pub rules_file: Option<PathBuf>,
}

impl Default for BounceSettings {
    fn default() -> Self {
        BounceSettings {
            domain: None,
            soft_limit: 3,
            soft_window: Duration::from_secs(30 * 86_400),
            rules_file: None,
        }
    }
}

/// A parsed mailbox: optional display name and a normalised address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Display name (`Acme News`), without quotes; never contains CR or LF.
    pub name: Option<String>,
    /// Normalised address (local part as written, domain lowercased ASCII).
    pub address: String,
    /// The address's domain (lowercase ASCII, punycode for IDNs).
    pub domain: String,
}

/// A template read from disk at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFile {
    /// The resolved path of the template file.
    pub path: PathBuf,
    /// The template's source text.
    pub source: String,
}

/// How to reach the relay and log in to it.
#[derive(Debug)]
pub struct RelaySettings {
    /// Relay host name or IP address.
    pub host: String,
    /// Relay port; default 587.
    pub port: u16,
    /// TLS mode; default `Tls` on port 465, `StartTls` otherwise.
    pub tls: TlsMode,
    /// Login name for SMTP AUTH, if any.
    pub username: Option<String>,
    /// Password for SMTP AUTH (set whenever `username` is); `Debug` prints it redacted.
    pub password: Option<SecretString>,
    /// An extra PEM trust root for the relay's certificate (resolved path).
    pub ca_file: Option<PathBuf>,
    /// Name sent in EHLO; default the From address's domain.
    pub helo: String,
    /// Parallel connections to the relay, 1 to 100; default 4.
    pub connections: usize,
}

/// How TLS is used on an SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TlsMode {
    /// Plain text, no TLS at all (`"none"`).
    None,
    /// Plain connect, then STARTTLS, which is required (`"starttls"`).
    StartTls,
    /// Implicit TLS from the first byte (`"tls"`, port 465).
    Tls,
}

/// One DKIM signing identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimSettings {
    /// Signing domain (`d=`), lowercase ASCII.
    pub domain: String,
    /// Selector (`s=`).
    pub selector: String,
    /// Where the private key comes from; it is read and parsed by `dkim`, not here.
    pub key: KeySource,
}

/// Where a private key is to be read from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySource {
    /// A PEM file (resolved path).
    File(PathBuf),
    /// An environment variable holding the PEM text (the variable's name).
    Env(String),
}

/// When to retry a deferred message and when to give up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySettings {
    /// Waits before retry 1, 2, …; the last one repeats. Default 5m, 30m, 2h, 6h.
    pub schedule: Vec<Duration>,
    /// Time after the first attempt at which a still-deferred message expires. Default 3 days.
    pub expire_after: Duration,
}

impl RetrySettings {
    /// The wait before retry number `attempt` (1 = the first retry). The last interval of
    /// the schedule repeats for later attempts; attempt 0 is treated as 1. An empty schedule
    /// (only possible when built by hand) gives zero.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        self.schedule
            .get(index)
            .or_else(|| self.schedule.last())
            .copied()
            .unwrap_or_default()
    }
}

impl Default for RetrySettings {
    /// 5m, 30m, 2h, 6h, expiring after 3 days.
    fn default() -> Self {
        let min = |m: u64| Duration::from_secs(m * 60);
        RetrySettings {
            schedule: vec![min(5), min(30), min(120), min(360)],
            expire_after: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_after_walks_the_schedule_then_repeats_the_last() {
        let retry = RetrySettings::default();
        let min = |m: u64| Duration::from_secs(m * 60);
        let cases = [
            (0, min(5)),
            (1, min(5)),
            (2, min(30)),
            (3, min(120)),
            (4, min(360)),
            (5, min(360)),
            (u32::MAX, min(360)),
        ];
        for (attempt, want) in cases {
            assert_eq!(retry.delay_after(attempt), want, "attempt {attempt}");
        }
    }

    #[test]
    fn empty_schedule_gives_zero() {
        let retry = RetrySettings {
            schedule: vec![],
            expire_after: Duration::from_secs(1),
        };
        assert_eq!(retry.delay_after(1), Duration::ZERO);
    }
}
