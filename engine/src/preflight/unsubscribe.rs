//! The one-click unsubscribe row: with `[tracking]`, every message carries `List-Unsubscribe`
//! and `List-Unsubscribe-Post` (RFC 8058), which Gmail and Yahoo require of bulk senders.

use super::{Check, Status};
use crate::config::CampaignSettings;

/// The unsubscribe row.
pub(super) fn check(settings: &CampaignSettings) -> Check {
    let name = "one-click unsubscribe";
    let Some(tracking) = &settings.tracking else {
        return Check::new(
            name,
            Status::Fail,
            "no [tracking]: messages carry no List-Unsubscribe / List-Unsubscribe-Post, which Gmail and Yahoo require of bulk senders; add [tracking] base_url and key_env, and run `volley track serve`",
        );
    };
    let base = &tracking.base_url;
    if base.starts_with("http://") && !is_loopback(base) {
        return Check::new(
            name,
            Status::Warn,
            format!("base_url {base} is plain http: serve the tracking URLs over https"),
        );
    }
    Check::new(
        name,
        Status::Pass,
        format!(
            "List-Unsubscribe <{base}/u/…> with List-Unsubscribe-Post: List-Unsubscribe=One-Click"
        ),
    )
}

/// True when an `http://` URL points at this machine.
fn is_loopback(url: &str) -> bool {
    let rest = url.trim_start_matches("http://");
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_are_recognised() {
        assert!(is_loopback("http://127.0.0.1:8025"));
        assert!(is_loopback("http://localhost/x"));
        assert!(is_loopback("http://[::1]:80"));
        assert!(!is_loopback("http://t.acme.example"));
        assert!(!is_loopback("http://127.0.0.1.evil.example"));
    }
}
