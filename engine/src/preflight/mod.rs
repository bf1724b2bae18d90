//! Preflight: what lands a new bulk sender in spam, checked before the first send. Given a
//! campaign's settings, it asks DNS (through `[dns]`, like delivery) about the DKIM keys, SPF
//! and DMARC of the sending domains, and looks for one-click unsubscribe, for secret files
//! that group or others may read, for a relay password that would travel in clear text, and
//! for a message with an HTML body only (its text part is then generated).
//! Each finding is a [`Check`] row: pass, warn or fail, with a detail saying what to fix.
//! The `volley check` command (`runtime::check`) loads the campaign and composes its first
//! message, then adds these rows; this module never prints and never sends.

mod content;
mod dkim;
mod dmarc;
mod permissions;
mod relay_auth;
mod sources;
mod spf;
mod unsubscribe;

pub use dmarc::suggested as suggested_dmarc;
pub use spf::SUGGESTED_UNKNOWN_SENDERS as SUGGESTED_SPF;

use std::net::IpAddr;
use std::path::PathBuf;

use crate::config::CampaignSettings;
use crate::delivery::{MxAnswer, MxResolver, TxtAnswer};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Nothing to fix.
    Pass,
    /// Works, but receivers may like it less; worth fixing.
    Warn,
    /// Fix it before sending.
    Fail,
}

impl Status {
    /// `pass`, `warn` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One row of the preflight table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`dkim volley._domainkey.example.com`, `spf example.com`…).
    pub name: String,
    /// The verdict.
    pub status: Status,
    /// What was found and, unless it passed, exactly what to fix. Never contains a secret.
    pub detail: String,
}

impl Check {
    /// A row.
    pub(crate) fn new(name: impl Into<String>, status: Status, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status,
            detail: detail.into(),
        }
    }
}

/// What `volley check` may be told besides the campaign file.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The store folder (the CLI's `--store`); only used to load the campaign.
    pub store: Option<PathBuf>,
    /// The address mail leaves from in direct-to-MX mode, so SPF coverage can be checked;
    /// default none (coverage is then only a warning).
    pub sending_ip: Option<IpAddr>,
}

/// The rows a campaign's validated settings decide: secret file permissions, clear-text
/// relay authentication, source addresses, then DKIM, SPF, DMARC and unsubscribe (asking DNS through `[dns]`).
pub async fn settings_checks(settings: &CampaignSettings, options: &Options) -> Vec<Check> {
    let mut checks = vec![permissions::check(settings), relay_auth::check(settings)];
    checks.extend(sources::checks(settings));
    dns_checks(settings, options, &mut checks).await;
    checks.extend(content::check(settings));
    checks
}

/// The DKIM, SPF, DMARC and unsubscribe rows.
async fn dns_checks(settings: &CampaignSettings, options: &Options, checks: &mut Vec<Check>) {
    let dns = match MxResolver::new(&settings.dns) {
        Ok(dns) => dns,
        Err(error) => {
            checks.push(Check::new("dns", Status::Fail, error.to_string()));
            return;
        }
    };
    checks.extend(dkim::algorithms(&settings.dkim));
    for entry in &settings.dkim {
        checks.push(dkim::check(&dns, entry).await);
    }
    checks.extend(spf::checks(&dns, settings, options.sending_ip).await);
    checks.push(dmarc::check(&dns, &settings.from.domain).await);
    checks.push(dmarc::alignment(settings));
    checks.push(unsubscribe::check(settings));
}

/// The DNS questions the checks ask; [`MxResolver`] answers them for real, tests answer
/// from a table.
pub(crate) trait Dns {
    /// The TXT records of `name`.
    async fn txt(&self, name: &str) -> TxtAnswer;
    /// The addresses of `host` (an IP address stands for itself).
    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, String>;
    /// The MX host names of `domain` (empty when it has none).
    async fn mx_hosts(&self, domain: &str) -> Result<Vec<String>, String>;
}

impl Dns for MxResolver {
    async fn txt(&self, name: &str) -> TxtAnswer {
        MxResolver::txt(self, name).await
    }

    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        MxResolver::addresses(self, host).await
    }

    async fn mx_hosts(&self, domain: &str) -> Result<Vec<String>, String> {
        match self.mx(domain).await.answer {
            MxAnswer::Hosts { hosts, implicit } => Ok(if implicit {
                Vec::new()
            } else {
                hosts.into_iter().map(|h| h.name).collect()
            }),
            MxAnswer::NullMx | MxAnswer::NoSuchDomain => Ok(Vec::new()),
            MxAnswer::Failed(reason) => Err(reason),
        }
    }
}

/// A `tag=value; tag=value` list (DKIM records), tags lower-cased, values trimmed.
fn tags(text: &str) -> Vec<(String, String)> {
    text.split(';')
        .filter_map(|part| {
            let (tag, value) = part.split_once('=')?;
            Some((tag.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect()
}

/// A stand-in DNS answering from a table, for the checks' unit tests.
#[cfg(test)]
pub(crate) mod fake {
    use super::{Dns, TxtAnswer};
    use std::collections::HashMap;
    use std::net::IpAddr;

    /// TXT, address and MX answers by name.
    #[derive(Default)]
    pub(crate) struct FakeDns {
        pub(crate) txt: HashMap<String, Vec<String>>,
        pub(crate) ips: HashMap<String, Vec<IpAddr>>,
        pub(crate) mx: HashMap<String, Vec<String>>,
    }

    impl FakeDns {
        pub(crate) fn txt(mut self, name: &str, text: &str) -> FakeDns {
            self.txt
                .entry(name.to_owned())
                .or_default()
                .push(text.to_owned());
            self
        }

        pub(crate) fn ip(mut self, name: &str, ip: &str) -> FakeDns {
            self.ips
                .entry(name.to_owned())
                .or_default()
                .push(ip.parse().unwrap());
            self
        }

        pub(crate) fn mx(mut self, name: &str, host: &str) -> FakeDns {
            self.mx
                .entry(name.to_owned())
                .or_default()
                .push(host.to_owned());
            self
        }
    }

    impl Dns for FakeDns {
        async fn txt(&self, name: &str) -> TxtAnswer {
            match self.txt.get(name) {
                Some(records) => TxtAnswer::Records(records.clone()),
                None => TxtAnswer::None,
            }
        }

        async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, String> {
            if let Ok(ip) = host.parse() {
                return Ok(vec![ip]);
            }
            self.ips
                .get(host)
                .cloned()
                .ok_or_else(|| format!("{host} has no address"))
        }

        async fn mx_hosts(&self, domain: &str) -> Result<Vec<String>, String> {
            Ok(self.mx.get(domain).cloned().unwrap_or_default())
        }
    }
}
