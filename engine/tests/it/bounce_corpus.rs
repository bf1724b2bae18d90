//! The bounce parser and classifier against `fixtures/dsn/wild/`: 228 notices written by real
//! MTAs (the independent part of this test) and a manifest read by hand. Prints every miss by
//! file name, the figures and the reasons-per-MTA table that the book quotes
//! (`docs/src/development/bounce-corpus.md`), then asserts the targets: failed address found
//! in ≥ 97 % of the notices that name one, the RFC 3464 status read in every report that
//! carries one, no auto-reply taken for a bounce, complaints as complaints, and hard versus
//! soft agreeing with the manifest in ≥ 95 %.
//!
//! `cargo test -p volley-engine --test it bounce_corpus -- --nocapture` shows the report.

// Printing the misses and the figures is this test's purpose.
#![allow(clippy::print_stdout)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use volley::bounce::classify::Classifier;
use volley::bounce::dsn::{parse_message, BounceReport, ReportKind};

#[derive(Deserialize)]
struct Manifest {
    message: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    file: String,
    mta: String,
    kind: String,
    rfc3464: bool,
    recipients: Vec<String>,
    status: Option<String>,
    hard: Option<bool>,
    #[serde(default)]
    reason: String,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/dsn/wild")
}

fn manifest() -> Manifest {
    let text = std::fs::read_to_string(corpus_dir().join("manifest.toml")).unwrap();
    toml::from_str(&text).unwrap_or_else(|e| panic!("manifest.toml: {}", e.message()))
}

/// Every address the report names (final and original), lowercased.
fn named(report: &BounceReport) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for r in &report.recipients {
        out.insert(r.address.to_lowercase());
        if let Some(original) = &r.original_recipient {
            out.insert(original.to_lowercase());
        }
    }
    out
}

/// The recipient the manifest's `status`/`hard`/`reason` describe: the one named first in
/// the manifest when the report has it, else the report's first.
fn first<'a>(
    report: &'a BounceReport,
    entry: &Entry,
) -> Option<&'a volley::bounce::BouncedRecipient> {
    let want = entry.recipients.first().map(|a| a.to_lowercase());
    report
        .recipients
        .iter()
        .find(|r| {
            want.as_deref().is_some_and(|w| {
                r.address.eq_ignore_ascii_case(w)
                    || r.original_recipient
                        .as_deref()
                        .is_some_and(|o| o.eq_ignore_ascii_case(w))
            })
        })
        .or_else(|| report.recipients.first())
}

/// A tally with the names of the misses.
#[derive(Default)]
struct Tally {
    total: usize,
    hits: usize,
    misses: Vec<String>,
}

impl Tally {
    fn count(&mut self, hit: bool, what: String) {
        self.total += 1;
        if hit {
            self.hits += 1;
        } else {
            self.misses.push(what);
        }
    }

    fn percent(&self) -> f64 {
        if self.total == 0 {
            return 100.0;
        }
        100.0 * self.hits as f64 / self.total as f64
    }

    fn print(&self, label: &str) {
        println!(
            "{label}: {}/{} ({:.1} %)",
            self.hits,
            self.total,
            self.percent()
        );
        for miss in &self.misses {
            println!("  miss: {miss}");
        }
    }
}

/// The figures of one corpus run.
#[derive(Default)]
struct Run {
    addresses: Tally,
    status: Tally,
    kinds: Tally,
    not_bounces: Tally,
    complaints: Tally,
    hard: Tally,
    reasons: Tally,
    /// mta → reason → count, for bounces and delays.
    per_mta: BTreeMap<String, BTreeMap<String, usize>>,
}

fn check(entry: &Entry, report: &BounceReport, run: &mut Run) {
    let file = &entry.file;
    let is_notice = matches!(entry.kind.as_str(), "bounce" | "delay");
    let kind_ok = match entry.kind.as_str() {
        "bounce" | "delay" => matches!(report.kind, ReportKind::Dsn | ReportKind::NonStandard),
        "complaint" => report.kind == ReportKind::Complaint,
        _ => report.kind == ReportKind::NotABounce,
    };
    run.kinds.count(
        kind_ok,
        format!("{file}: {} read as {:?}", entry.kind, report.kind),
    );
    if matches!(entry.kind.as_str(), "auto_reply" | "not_a_bounce") {
        run.not_bounces
            .count(kind_ok, format!("{file}: read as {:?}", report.kind));
    }
    if entry.kind == "complaint" {
        run.complaints
            .count(kind_ok, format!("{file}: read as {:?}", report.kind));
    }
    if !entry.recipients.is_empty() {
        let found = named(report);
        let all = entry
            .recipients
            .iter()
            .all(|r| found.contains(&r.to_lowercase()));
        run.addresses.count(
            all,
            format!("{file}: want {:?}, got {found:?}", entry.recipients),
        );
    }
    let recipient = first(report, entry);
    if let (true, Some(want)) = (entry.rfc3464, &entry.status) {
        let got = recipient.and_then(|r| r.status.clone());
        run.status.count(
            got.as_deref() == Some(want.as_str()),
            format!("{file}: want {want}, got {got:?}"),
        );
    }
    if !is_notice {
        return;
    }
    if let Some(want) = entry.hard {
        let got = recipient.is_some_and(|r| r.hard);
        let category = recipient.map(|r| r.category.as_str());
        let diagnostic: String = recipient
            .and_then(|r| r.diagnostic.as_deref())
            .unwrap_or_default()
            .chars()
            .take(120)
            .collect();
        run.hard.count(
            got == want,
            format!(
                "{file}: want hard={want} ({}), got hard={got} ({category:?}) {diagnostic}",
                entry.reason
            ),
        );
    }
    let got = recipient.map_or("none", |r| r.category.as_str());
    run.reasons.count(
        got == entry.reason || (entry.reason == "rate_limited" && got == "throttled"),
        format!("{file} [{}]: want {}, got {got}", entry.mta, entry.reason),
    );
    *run.per_mta
        .entry(entry.mta.clone())
        .or_default()
        .entry(got.to_owned())
        .or_default() += 1;
}

/// The reasons-per-MTA table (Markdown) for the book's `docs/src/development/bounce-corpus.md`:
/// MTAs with at least two notices.
fn print_per_mta(per_mta: &BTreeMap<String, BTreeMap<String, usize>>) {
    println!("\n| MTA | notices | reasons (Volley's reading) |\n|---|---|---|");
    let mut rows: Vec<_> = per_mta.iter().collect();
    rows.sort_by_key(|(mta, reasons)| (std::cmp::Reverse(reasons.values().sum::<usize>()), *mta));
    let mut others = BTreeMap::new();
    for (mta, reasons) in rows {
        let total: usize = reasons.values().sum();
        if total < 2 {
            for (reason, n) in reasons {
                *others.entry(reason.clone()).or_insert(0) += n;
            }
            continue;
        }
        println!("| {mta} | {total} | {} |", cell(reasons));
    }
    let total: usize = others.values().sum();
    println!("| others (one each) | {total} | {} |", cell(&others));
}

fn cell(reasons: &BTreeMap<String, usize>) -> String {
    let mut sorted: Vec<_> = reasons.iter().collect();
    sorted.sort_by_key(|(reason, n)| (std::cmp::Reverse(**n), *reason));
    let parts: Vec<String> = sorted.iter().map(|(r, n)| format!("{r} {n}")).collect();
    parts.join(", ")
}

#[test]
fn corpus_meets_the_manifest() {
    let classifier = Classifier::builtin();
    let manifest = manifest();
    assert_eq!(manifest.message.len(), 228, "the corpus has 228 messages");
    let mut run = Run::default();
    for entry in &manifest.message {
        let bytes = std::fs::read(corpus_dir().join(&entry.file)).unwrap();
        let report = parse_message(&bytes, &classifier);
        check(entry, &report, &mut run);
    }
    run.kinds.print("kind (bounce / complaint / not a bounce)");
    run.addresses
        .print("failed address found (notices naming one)");
    run.status.print("RFC 3464 status read");
    run.not_bounces
        .print("auto-replies and non-notices not taken for bounces");
    run.complaints.print("complaints read as complaints");
    run.hard.print("hard versus soft agrees with the manifest");
    run.reasons
        .print("reason agrees with the manifest (not asserted)");
    print_per_mta(&run.per_mta);

    assert!(run.addresses.percent() >= 97.0, "addresses found");
    assert_eq!(run.status.hits, run.status.total, "RFC 3464 status read");
    assert_eq!(
        run.not_bounces.hits, run.not_bounces.total,
        "auto-replies taken for bounces"
    );
    assert_eq!(run.complaints.hits, run.complaints.total, "complaints");
    assert!(run.hard.percent() >= 95.0, "hard versus soft agreement");
}
