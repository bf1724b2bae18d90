//! Which `[shaping.*]` rule applies to a destination.

use crate::config::{ShapingRule, ShapingSettings};

/// The configured rules, ready for lookups.
#[derive(Debug, Clone)]
pub struct ShapingPolicy {
    settings: ShapingSettings,
}

impl ShapingPolicy {
    /// A policy over `settings`.
    pub fn new(settings: ShapingSettings) -> Self {
        ShapingPolicy { settings }
    }

    /// The settings behind this policy.
    pub fn settings(&self) -> &ShapingSettings {
        &self.settings
    }

    /// The rule for a recipient `domain` whose mail goes to `mx_hosts`, with the name of the
    /// entry that supplied it (`"default"` when none matched). An entry named exactly like the
    /// domain wins; otherwise the longest entry that an MX host name equals or ends with
    /// (`google.com` matches `aspmx.l.google.com`).
    pub fn rule_for(&self, domain: &str, mx_hosts: &[String]) -> (&str, &ShapingRule) {
        if let Some((name, rule)) = self.settings.rules.iter().find(|(name, _)| name == domain) {
            return (name, rule);
        }
        self.settings
            .rules
            .iter()
            .filter(|(name, _)| mx_hosts.iter().any(|host| is_within(host, name)))
            .max_by_key(|(name, _)| name.len())
            .map_or(("default", &self.settings.default), |(name, rule)| {
                (name.as_str(), rule)
            })
    }
}

/// True when `host` is `suffix` or a name under it.
fn is_within(host: &str, suffix: &str) -> bool {
    let host = host.trim_end_matches('.');
    host.eq_ignore_ascii_case(suffix)
        || (host.len() > suffix.len()
            && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ShapingPolicy {
        let rule = |n| ShapingRule {
            max_connections: n,
            ..ShapingRule::default()
        };
        ShapingPolicy::new(ShapingSettings {
            rules: vec![
                ("gmail.com".into(), rule(20)),
                ("google.com".into(), rule(15)),
                ("l.google.com".into(), rule(12)),
                ("outlook.com".into(), rule(8)),
            ],
            ..ShapingSettings::default()
        })
    }

    #[test]
    fn domain_then_longest_mx_suffix_then_default() {
        let policy = policy();
        let hosts = |h: &[&str]| h.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases = [
            (
                "gmail.com",
                hosts(&["gmail-smtp-in.l.google.com"]),
                "gmail.com",
                20,
            ),
            (
                "acme.example",
                hosts(&["aspmx.l.google.com"]),
                "l.google.com",
                12,
            ),
            (
                "acme.example",
                hosts(&["alt1.aspmx.google.com."]),
                "google.com",
                15,
            ),
            ("acme.example", hosts(&["mx.notgoogle.com"]), "default", 10),
            (
                "acme.example",
                hosts(&["acme-example.mail.protection.outlook.com"]),
                "outlook.com",
                8,
            ),
            ("outlook.com", hosts(&[]), "outlook.com", 8),
            ("other.example", hosts(&["mx.other.example"]), "default", 10),
        ];
        for (domain, mx, want_name, want_connections) in cases {
            let (name, rule) = policy.rule_for(domain, &mx);
            assert_eq!(
                (name, rule.max_connections),
                (want_name, want_connections),
                "{domain} via {mx:?}"
            );
        }
    }
}
