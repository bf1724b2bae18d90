//! Offline DKIM verification: checks every `DKIM-Signature` of a message against TXT records
//! handed in by the caller, never the network. Used by tests and by `volley check`.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::{
    AuthenticatedMessage, DkimResult, DnsError, Error, MessageAuthenticator, Parameters,
    ResolverCache, Txt,
};

/// The verdict on one `DKIM-Signature` of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyResult {
    /// The signing domain (`d=`), empty when the signature could not be parsed.
    pub domain: String,
    /// The selector (`s=`), empty when the signature could not be parsed.
    pub selector: String,
    /// True when the signature verified.
    pub pass: bool,
    /// "pass", or what went wrong (body hash mismatch, no key record, bad signature...).
    pub detail: String,
}

/// A TXT cache holding exactly the caller's records; any other name answers "not found",
/// so mail-auth never falls through to a real DNS lookup.
struct FixedTxt {
    records: HashMap<Box<str>, Txt>,
}

impl ResolverCache<Box<str>, Txt> for FixedTxt {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        Some(
            self.records
                .get(name)
                .cloned()
                .unwrap_or(Txt::Error(Error::Dns(DnsError::RecordNotFound(
                    ResponseCode::NXDomain,
                )))),
        )
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.records.get(name).cloned()
    }

    fn insert(&self, _key: Box<str>, _value: Txt, _valid_until: std::time::Instant) {}
}

/// Verifies every `DKIM-Signature` of `message` using only `txt_records`, given as
/// (`selector._domainkey.domain`, TXT value) pairs. No network access happens: a signature
/// whose record is not given fails with "no key record".
pub async fn verify(message: &[u8], txt_records: &[(String, String)]) -> Vec<VerifyResult> {
    let Some(parsed) = AuthenticatedMessage::parse(message) else {
        return vec![VerifyResult {
            domain: String::new(),
            selector: String::new(),
            pass: false,
            detail: "message could not be parsed".to_owned(),
        }];
    };
    let cache = FixedTxt {
        records: txt_records
            .iter()
            .map(|(name, value)| (fqdn(name), parse_record(value)))
            .collect(),
    };
    // No name servers: the fixed cache answers every lookup, so this never resolves.
    let authenticator = match MessageAuthenticator::new(
        ResolverConfig::from_name_servers(Vec::new()),
        ResolverOpts::default(),
    ) {
        Ok(authenticator) => authenticator,
        Err(err) => {
            return vec![VerifyResult {
                domain: String::new(),
                selector: String::new(),
                pass: false,
                detail: format!("verifier could not start: {err}"),
            }]
        }
    };
    let outputs = authenticator
        .verify_dkim(Parameters::new(&parsed).with_txt_cache(&cache))
        .await;
    outputs
        .iter()
        .map(|output| {
            let (domain, selector) = output
                .signature()
                .map(|s| (s.d.clone(), s.s.clone()))
                .unwrap_or_default();
            let (pass, detail) = describe(output.result());
            VerifyResult {
                domain,
                selector,
                pass,
                detail,
            }
        })
        .collect()
}

fn describe(result: &DkimResult) -> (bool, String) {
    match result {
        DkimResult::Pass => (true, "pass".to_owned()),
        DkimResult::Neutral(err) => (false, format!("neutral: {}", explain(err))),
        DkimResult::Fail(err) => (false, format!("fail: {}", explain(err))),
        DkimResult::PermError(err) => (false, format!("permerror: {}", explain(err))),
        DkimResult::TempError(err) => (false, format!("temperror: {}", explain(err))),
        DkimResult::None => (false, "none: no signature".to_owned()),
    }
}

fn explain(err: &Error) -> String {
    match err {
        Error::Dns(DnsError::RecordNotFound(_)) => "no key record".to_owned(),
        other => other.to_string(),
    }
}

fn fqdn(name: &str) -> Box<str> {
    let mut name = name.trim().to_ascii_lowercase();
    if !name.ends_with('.') {
        name.push('.');
    }
    name.into_boxed_str()
}

fn parse_record(value: &str) -> Txt {
    match DomainKey::parse(value.as_bytes()) {
        Ok(key) => Txt::DomainKey(Arc::new(key)),
        Err(err) => Txt::Error(err),
    }
}
