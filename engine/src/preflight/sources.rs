//! The source address rows: every configured local address outbound connections leave from
//! (`[mx] source_addresses` direct to MX, `[relay] source_address` through a relay) must be
//! an address of this host. Each is bound once (to any port), as `volley send` does at
//! start; one that cannot be fails, naming the address and its key.

use super::{Check, Status};
use crate::config::CampaignSettings;
use crate::delivery::probe_source;

/// One row per configured source address (none when none is configured).
pub(super) fn checks(settings: &CampaignSettings) -> Vec<Check> {
    let sources: Vec<(String, std::net::IpAddr, Option<&str>)> = match &settings.relay {
        Some(relay) => relay
            .source_address
            .map(|ip| ("[relay] source_address".to_owned(), ip, None))
            .into_iter()
            .collect(),
        None => settings
            .mx
            .source_addresses
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let key = format!("[mx] source_addresses[{i}]");
                (key, s.address, Some(s.helo.as_str()))
            })
            .collect(),
    };
    sources
        .into_iter()
        .map(|(key, address, helo)| {
            let name = format!("source address {address}");
            match probe_source(address, &key) {
                Ok(()) => {
                    let helo = helo.map(|h| format!(", EHLO {h}")).unwrap_or_default();
                    let detail = format!("an address of this host ({key}{helo})");
                    Check::new(name, Status::Pass, detail)
                }
                Err(error) => Check::new(name, Status::Fail, error.to_string()),
            }
        })
        .collect()
}
