//! The DMARC rows: `_dmarc.<From domain>` (or, best effort, of its organizational domain: the
//! last two labels) publishes a `v=DMARC1` policy, preferably stronger than `p=none`, and some
//! DKIM signing domain aligns with the From domain (relaxed: the same, a parent or a child).

use super::{tags, Check, Dns, Status, TxtAnswer};
use crate::config::CampaignSettings;

/// A parsed `v=DMARC1` record, as far as the checks care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Policy {
    /// `p=`: `none`, `quarantine` or `reject`, lower-cased.
    pub(super) policy: String,
}

/// Parses a DMARC record: `v=DMARC1` first, then a `p=` tag. `None` when it is not one.
pub(super) fn parse(text: &str) -> Option<Policy> {
    let tags = tags(text);
    let (tag, version) = tags.first()?;
    if tag != "v" || !version.eq_ignore_ascii_case("DMARC1") {
        return None;
    }
    let policy = tags.iter().find(|(t, _)| t == "p")?.1.to_ascii_lowercase();
    matches!(policy.as_str(), "none" | "quarantine" | "reject").then_some(Policy { policy })
}

/// The organizational domain, best effort: the last two labels.
pub(super) fn organizational(domain: &str) -> &str {
    let mut dots = domain.rmatch_indices('.');
    match (dots.next(), dots.next()) {
        (Some(_), Some((i, _))) => &domain[i + 1..],
        _ => domain,
    }
}

/// Relaxed alignment: the same domain, or one under the other.
pub(super) fn aligned(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
}

/// The DMARC policy row for the From domain.
pub(super) async fn check(dns: &impl Dns, domain: &str) -> Check {
    let row = |status, detail: String| Check::new(format!("dmarc {domain}"), status, detail);
    let org = organizational(domain);
    let mut names = vec![format!("_dmarc.{domain}")];
    if org != domain {
        names.push(format!("_dmarc.{org}"));
    }
    for name in &names {
        let records = match dns.txt(name).await {
            TxtAnswer::Records(records) => records,
            TxtAnswer::None => continue,
            TxtAnswer::Failed(reason) => {
                return row(Status::Fail, format!("cannot look up {name}: {reason}"))
            }
        };
        let Some(policy) = records.iter().find_map(|r| parse(r)) else {
            continue;
        };
        return if policy.policy == "none" {
            row(
                Status::Warn,
                format!("{name} has p=none: receivers are asked to do nothing with failing mail; move to p=quarantine once the reports look clean"),
            )
        } else {
            row(Status::Pass, format!("{name} has p={}", policy.policy))
        };
    }
    row(
        Status::Fail,
        format!(
            "no DMARC record (Gmail and Yahoo require one from bulk senders): publish _dmarc.{domain} TXT \"{}\"",
            suggested(domain)
        ),
    )
}

/// The DMARC record `volley init` and the checks suggest.
pub fn suggested(domain: &str) -> String {
    format!("v=DMARC1; p=quarantine; adkim=r; aspf=r; rua=mailto:dmarc-reports@{domain}")
}

/// The alignment row: some `[[dkim]]` domain aligns with the From domain.
pub(super) fn alignment(settings: &CampaignSettings) -> Check {
    let from = &settings.from.domain;
    let name = "dmarc alignment";
    match settings.dkim.iter().find(|d| aligned(&d.domain, from)) {
        Some(entry) => Check::new(
            name,
            Status::Pass,
            format!("DKIM d={} aligns with the From domain {from}", entry.domain),
        ),
        None => Check::new(
            name,
            Status::Fail,
            format!("no [[dkim]] domain aligns with the From domain {from}: add a [[dkim]] entry with domain = \"{from}\""),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preflight::fake::FakeDns;

    #[test]
    fn records_parse() {
        assert_eq!(
            parse("v=DMARC1; p=reject; rua=mailto:x@example.com")
                .unwrap()
                .policy,
            "reject"
        );
        assert_eq!(parse("v=dmarc1;p=None").unwrap().policy, "none");
        assert!(parse("p=reject; v=DMARC1").is_none(), "v= must come first");
        assert!(
            parse("v=DMARC1; rua=mailto:x@example.com").is_none(),
            "p= is required"
        );
        assert!(parse("v=DMARC1; p=maybe").is_none());
        assert!(parse("v=spf1 -all").is_none());
    }

    #[test]
    fn organizational_domains_and_alignment() {
        assert_eq!(organizational("news.acme.example"), "acme.example");
        assert_eq!(organizational("acme.example"), "acme.example");
        assert_eq!(organizational("localhost"), "localhost");
        assert!(aligned("acme.example", "news.acme.example"));
        assert!(aligned("News.Acme.example", "acme.example"));
        assert!(!aligned("acme.example", "notacme.example"));
        assert!(!aligned("other.example", "acme.example"));
    }

    #[tokio::test]
    async fn the_policy_row_fails_warns_and_passes() {
        let dns = FakeDns::default()
            .txt("_dmarc.weak.example", "v=DMARC1; p=none")
            .txt("_dmarc.acme.example", "v=DMARC1; p=reject");
        let row = check(&dns, "nothing.example").await;
        assert_eq!(row.status, Status::Fail);
        assert!(
            row.detail
                .contains("publish _dmarc.nothing.example TXT \"v=DMARC1;"),
            "{}",
            row.detail
        );
        let row = check(&dns, "weak.example").await;
        assert_eq!(row.status, Status::Warn);
        assert!(row.detail.contains("p=none"));
        // A subdomain falls back to its organizational domain's policy.
        let row = check(&dns, "news.acme.example").await;
        assert_eq!(row.status, Status::Pass, "{row:?}");
        assert!(row.detail.contains("_dmarc.acme.example"));
    }
}
