//! Which mailbox provider a recipient domain belongs to.

use crate::config::{WarmupSettings, OTHERS};

/// The providers of a `[warmup]` section, ready for lookups.
#[derive(Debug, Clone)]
pub struct ProviderTable {
    /// (name, MX patterns, domains), in the order they are tried.
    groups: Vec<(String, Vec<String>, Vec<String>)>,
}

impl ProviderTable {
    /// The table of `settings`.
    pub fn new(settings: &WarmupSettings) -> ProviderTable {
        ProviderTable {
            groups: settings
                .providers
                .iter()
                .filter(|p| p.name != OTHERS)
                .map(|p| (p.name.clone(), p.mx.clone(), p.domains.clone()))
                .collect(),
        }
    }

    /// The provider of recipient `domain` whose mail goes to `mx_hosts` (empty through a
    /// relay): the first provider one of whose MX patterns matches one of the hosts; else
    /// the first that lists the domain; else `others`.
    pub fn classify(&self, domain: &str, mx_hosts: &[String]) -> &str {
        let by_mx = self.groups.iter().find(|(_, patterns, _)| {
            mx_hosts
                .iter()
                .any(|host| patterns.iter().any(|p| matches(p, host)))
        });
        let domain = domain.trim_end_matches('.');
        by_mx
            .or_else(|| {
                self.groups
                    .iter()
                    .find(|(_, _, domains)| domains.iter().any(|d| d.eq_ignore_ascii_case(domain)))
            })
            .map_or(OTHERS, |(name, _, _)| name.as_str())
    }
}

/// Whether MX `host` matches `pattern`: `*.suffix` is any name under `suffix` (not `suffix`
/// itself), anything else the exact name; case and a final dot do not matter.
fn matches(pattern: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.');
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            host.len() > suffix.len() + 1
                && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        }
        None => host.eq_ignore_ascii_case(pattern),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WarmupProvider;

    fn settings(extra: Vec<WarmupProvider>) -> WarmupSettings {
        let p = |name: &str, mx: &[&str], domains: &[&str]| WarmupProvider {
            name: name.to_owned(),
            mx: mx.iter().map(|s| (*s).to_owned()).collect(),
            domains: domains.iter().map(|s| (*s).to_owned()).collect(),
            start: 50,
            max: None,
        };
        let mut providers = extra;
        providers.extend([
            p(
                "gmail",
                &["*.google.com", "*.googlemail.com"],
                &["gmail.com"],
            ),
            p(
                "microsoft",
                &["*.protection.outlook.com", "*.outlook.com"],
                &["outlook.com", "hotmail.com"],
            ),
            p("yahoo", &["*.yahoodns.net"], &["yahoo.com", "aol.com"]),
            p("others", &[], &[]),
        ]);
        WarmupSettings {
            key: "example.com".into(),
            growth: 1.5,
            min: 10,
            max_bounce_rate: 0.05,
            max_complaint_rate: 0.001,
            timezone: chrono_tz::Tz::UTC,
            providers,
        }
    }

    #[test]
    fn providers_are_grouped_by_mx_then_by_domain() {
        let table = ProviderTable::new(&settings(Vec::new()));
        let hosts = |h: &[&str]| h.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let cases = [
            // A Google Workspace domain: its MX says gmail.
            ("acme.example", hosts(&["ASPMX.L.GOOGLE.COM."]), "gmail"),
            ("gmail.com", hosts(&["gmail-smtp-in.l.google.com"]), "gmail"),
            (
                "contoso.example",
                hosts(&["contoso-example.mail.protection.outlook.com"]),
                "microsoft",
            ),
            ("aol.com", hosts(&["mx-aol.mail.gm0.yahoodns.net"]), "yahoo"),
            // `*.google.com` is not google.com itself, nor notgoogle.com.
            ("x.example", hosts(&["google.com"]), "others"),
            ("x.example", hosts(&["mx.notgoogle.com"]), "others"),
            // Through a relay there are no hosts: the domain decides.
            ("hotmail.com", hosts(&[]), "microsoft"),
            ("Yahoo.com.", hosts(&[]), "yahoo"),
            ("example.org", hosts(&[]), "others"),
            // An MX match wins over the domain list.
            ("gmail.com", hosts(&["mx.yahoodns.net"]), "yahoo"),
        ];
        for (domain, mx, want) in cases {
            assert_eq!(table.classify(domain, &mx), want, "{domain} via {mx:?}");
        }
    }

    #[test]
    fn a_provider_from_the_file_is_tried_first() {
        let own = WarmupProvider {
            name: "corp".into(),
            mx: vec!["*.example.net".into(), "mx.exact.example".into()],
            domains: vec![],
            start: 5,
            max: None,
        };
        let table = ProviderTable::new(&settings(vec![own]));
        let hosts = |h: &str| vec![h.to_owned()];
        assert_eq!(
            table.classify("a.example", &hosts("in1.example.net")),
            "corp"
        );
        assert_eq!(
            table.classify("a.example", &hosts("mx.exact.example")),
            "corp"
        );
        assert_eq!(
            table.classify("a.example", &hosts("other.exact.example")),
            "others"
        );
    }
}
