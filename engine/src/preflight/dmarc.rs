//! The DMARC rows: `_dmarc.<From domain>` (or that of its organizational domain) publishes a
//! `v=DMARC1` policy, preferably stronger than `p=none`, and some DKIM signing domain aligns
//! with the From domain (relaxed: the same organizational domain).
//!
//! mail-auth parses the record ([`Dmarc`]); Volley asks DNS itself, through the campaign's
//! `[dns]` resolvers like every other check (mail-auth's verifier would use its own resolver
//! and needs a received message), and finds the organizational domain in the Public Suffix
//! List compiled into the `psl` crate (no download at run time): `news.shop.co.uk` falls back
//! to `_dmarc.shop.co.uk`, not to `_dmarc.co.uk`.

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::dmarc::{self, Dmarc};

use super::{Check, Dns, Status, TxtAnswer};
use crate::config::CampaignSettings;

/// A parsed `v=DMARC1` record, as far as the checks care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Policy {
    /// `p=`: `none`, `quarantine` or `reject`, lower-cased.
    pub(super) policy: String,
}

/// Parses a TXT record with mail-auth: `None` when it is not a DMARC record (it must start
/// with `v=DMARC1`), an error saying what is wrong when it is one but broken (a bad tag
/// value, or no `p=` tag).
pub(super) fn parse(text: &str) -> Option<Result<Policy, String>> {
    let record = match Dmarc::parse(text.as_bytes()) {
        Ok(record) => record,
        Err(mail_auth::Error::Dns(_)) => return None,
        Err(_) => return Some(Err(rejected(text))),
    };
    let policy = match record.p {
        dmarc::Policy::None => "none",
        dmarc::Policy::Quarantine => "quarantine",
        dmarc::Policy::Reject => "reject",
        dmarc::Policy::Unspecified => return Some(Err("no p= tag".to_owned())),
    };
    Some(Ok(Policy {
        policy: policy.to_owned(),
    }))
}

/// Why mail-auth rejects a `v=DMARC1` record: the first tag it rejects on its own.
fn rejected(text: &str) -> String {
    text.split(';')
        .skip(1)
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .find(|tag| Dmarc::parse(format!("v=DMARC1; {tag}").as_bytes()).is_err())
        .map_or_else(
            || "malformed (mail-auth rejects it)".to_owned(),
            |tag| format!("bad tag {tag:?}"),
        )
}

/// The organizational domain (RFC 7489 §3.2): the public suffix of `domain` in the Public
/// Suffix List plus one label, in lower-case ASCII (an IDN in its `xn--` form). A name that
/// is itself a public suffix, or a single label, stands for itself.
pub(super) fn organizational(domain: &str) -> String {
    let ascii = ascii(domain);
    match psl::domain_str(&ascii) {
        Some(org) => org.to_owned(),
        None => ascii,
    }
}

/// `domain` in lower-case ASCII without a final dot (as typed when it is not a valid IDN).
fn ascii(domain: &str) -> String {
    let domain = domain.trim_end_matches('.');
    idna::domain_to_ascii(domain).unwrap_or_else(|_| domain.to_ascii_lowercase())
}

/// Relaxed alignment (RFC 7489 §3.1): the same organizational domain.
pub(super) fn aligned(a: &str, b: &str) -> bool {
    organizational(a) == organizational(b)
}

/// The DMARC policy row for the From domain.
pub(super) async fn check(dns: &impl Dns, domain: &str) -> Check {
    let row = |status, detail: String| Check::new(format!("dmarc {domain}"), status, detail);
    let org = organizational(domain);
    let mut names = vec![format!("_dmarc.{domain}")];
    if org != ascii(domain) {
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
        let policy = match records.iter().find_map(|r| parse(r)) {
            Some(Ok(policy)) => policy,
            Some(Err(problem)) => {
                return row(
                    Status::Fail,
                    format!("broken DMARC record at {name} ({problem}): receivers ignore it; publish {name} TXT \"{}\"", suggested(name.strip_prefix("_dmarc.").unwrap_or(domain))),
                )
            }
            None => continue,
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
        let policy = |text: &str| parse(text).map(|p| p.map(|p| p.policy));
        assert_eq!(
            policy("v=DMARC1; p=reject; rua=mailto:x@example.com"),
            Some(Ok("reject".to_owned()))
        );
        assert_eq!(policy("v=DMARC1;p=None"), Some(Ok("none".to_owned())));
        assert_eq!(policy("p=reject; v=DMARC1"), None, "v= must come first");
        assert_eq!(policy("v=spf1 -all"), None);
        assert_eq!(
            policy("v=DMARC1; rua=mailto:x@example.com"),
            Some(Err("no p= tag".to_owned()))
        );
        assert_eq!(
            policy("v=DMARC1; p=maybe"),
            Some(Err("bad tag \"p=maybe\"".to_owned()))
        );
    }

    #[test]
    fn organizational_domains_come_from_the_public_suffix_list() {
        for (domain, org) in [
            ("news.shop.co.uk", "shop.co.uk"),
            ("shop.co.uk", "shop.co.uk"),
            ("a.b.example.com", "example.com"),
            ("example.com", "example.com"),
            ("Example.COM.", "example.com"),
            ("sub.example.co.jp", "example.co.jp"),
            ("news.acme.example", "acme.example"),
            // An IDN, under an IDN public suffix (公司.cn), in its ASCII form.
            ("news.shop.公司.cn", "shop.xn--55qx5d.cn"),
            ("news.bücher.de", "xn--bcher-kva.de"),
            // A public suffix or a single label stands for itself.
            ("co.uk", "co.uk"),
            ("localhost", "localhost"),
        ] {
            assert_eq!(organizational(domain), org, "{domain}");
        }
    }

    #[test]
    fn alignment_is_by_organizational_domain() {
        assert!(aligned("acme.example", "news.acme.example"));
        assert!(aligned("News.Acme.example", "acme.example"));
        assert!(aligned("mail.shop.co.uk", "news.shop.co.uk"));
        assert!(!aligned("acme.example", "notacme.example"));
        assert!(!aligned("other.example", "acme.example"));
        assert!(
            !aligned("co.uk", "shop.co.uk"),
            "a public suffix aligns with nothing"
        );
        assert!(!aligned("a.shop.co.uk", "b.other.co.uk"));
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

    #[tokio::test]
    async fn a_subdomain_under_a_two_label_suffix_falls_back_to_its_organizational_domain() {
        let dns = FakeDns::default()
            .txt("_dmarc.shop.co.uk", "v=DMARC1; p=quarantine")
            .txt("_dmarc.co.uk", "v=DMARC1; p=none");
        let row = check(&dns, "news.shop.co.uk").await;
        assert_eq!(row.status, Status::Pass, "{row:?}");
        assert_eq!(row.detail, "_dmarc.shop.co.uk has p=quarantine");
    }

    #[tokio::test]
    async fn a_broken_record_is_a_failure_naming_the_problem() {
        let dns = FakeDns::default().txt("_dmarc.acme.example", "v=DMARC1; p=reject; adkim=x");
        let row = check(&dns, "acme.example").await;
        assert_eq!(row.status, Status::Fail);
        assert!(
            row.detail
                .starts_with("broken DMARC record at _dmarc.acme.example (bad tag \"adkim=x\")"),
            "{}",
            row.detail
        );
    }
}
