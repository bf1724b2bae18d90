//! Segments through the binary: `[campaign] where` loads only the rows it matches. The
//! expected set is worked out independently by Python's `csv` module and a Python
//! expression over the same file; the loopback sink must receive exactly that set, and
//! `volley status --json` must count the rest as `excluded`. A bad expression (an unknown
//! column, a type error, a syntax error) is refused by `volley check` and `volley send` with
//! the file, the key and the character position, and nothing is loaded.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::{arrivals, output_of, text, Fixture};
use volley_testkit::campaign::CampaignToml;
use volley_testkit::nameserver::{NameServer, Zone};

/// Debian's Python (its `csv` module is the independent reader of the list).
const PYTHON: &str = "/usr/bin/python3";

/// The segment under test: every operator kind the CLI test needs, case-insensitive texts,
/// numbers, dates, and cells that are not numbers or dates.
const WHERE: &str = "(country == 'DE' or country in ['AT', 'ch']) and plan != 'free' \
     and (age >= 30 or signup < 2026-01-01) and not tags contains 'noads'";

/// The same rule in Python, over a `csv.DictReader` row `r`.
const PYTHON_RULE: &str = r#"
import csv, datetime, re, sys

def num(s):
    return float(s) if re.fullmatch(r'[+-]?(\d+\.?\d*|\.\d+)', s) else None

def date(s):
    if len(s) < 10 or s[10:11] not in ('', 'T', ' '):
        return None
    try:
        return datetime.date.fromisoformat(s[:10])
    except ValueError:
        return None

def keep(r):
    age, signup = num(r['age'].strip()), date(r['signup'].strip())
    return (r['country'].strip().lower() in ('de', 'at', 'ch')
            and r['plan'].strip().lower() != 'free'
            and ((age is not None and age >= 30)
                 or (signup is not None and signup < datetime.date(2026, 1, 1)))
            and 'noads' not in r['tags'].strip().lower())

kept, excluded = [], 0
with open(sys.argv[1], newline='') as f:
    for r in csv.DictReader(f):
        if keep(r):
            kept.append(r['email'].strip().lower())
        else:
            excluded += 1
print(excluded)
for address in kept:
    print(address)
"#;

/// A list of `n` rows with mixed-case countries, plans, ages (some empty or not numbers),
/// signup dates (some empty or not dates) and tags.
fn list(n: usize) -> String {
    let countries = ["DE", "de", "De", "AT", "ch", "CH", "FR", "US", "at"];
    let plans = ["free", "pro", "Team", "FREE", "pro"];
    let mut csv = String::from("email,name,country,plan,age,signup,tags\n");
    for i in 0..n {
        let age = match i % 11 {
            0 => String::new(),
            1 => "n/a".to_owned(),
            x => (18 + x * 4 + i % 5).to_string(),
        };
        let signup = match i % 13 {
            0 => String::new(),
            1 => "soon".to_owned(),
            x => format!("{}-{:02}-{:02}", 2024 + x % 3, 1 + i % 12, 1 + i % 28),
        };
        let tags = match i % 7 {
            0 => "\"news,NoAds\"",
            1 => "sport",
            _ => "\"news,sport\"",
        };
        writeln!(
            csv,
            "user{i}@d{}.example,Name{i},{},{},{age},{signup},{tags}",
            i % 5,
            countries[i % countries.len()],
            plans[(i / 3) % plans.len()],
        )
        .unwrap();
    }
    csv
}

/// What Python makes of `list.csv` in `fixture`: the addresses kept and the rows excluded.
fn python_expects(fixture: &Fixture) -> (BTreeSet<String>, u64) {
    let out = Command::new(PYTHON)
        .arg("-c")
        .arg(PYTHON_RULE)
        .arg(fixture.path("list.csv"))
        .output()
        .unwrap_or_else(|e| panic!("{PYTHON} is needed (Debian package python3): {e}"));
    assert!(out.status.success(), "python: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    let excluded = lines.next().unwrap().parse().unwrap();
    (lines.map(str::to_owned).collect(), excluded)
}

/// `volley ARGS…`, two minutes at most.
async fn volley(args: &[&str]) -> Output {
    tokio::time::timeout(Duration::from_secs(120), output_of(args, &[]))
        .await
        .expect("volley finished within two minutes")
}

async fn status_json(campaign: &str) -> serde_json::Value {
    let out = volley(&["status", campaign, "--json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A fixture whose campaign has `[campaign] where = <expression>` and a loopback name
/// server (so `volley check` never asks anyone else).
/// Returns it and its campaign without the `where` line.
async fn fixture(csv: &str, expression: &str, dns: &NameServer) -> (Fixture, CampaignToml) {
    let mut fixture = Fixture::new(csv, crate::support::PASSWORD).await;
    let base = fixture.toml.clone().dns(dns.addr());
    fixture.set_campaign(with_where(&base, expression));
    (fixture, base)
}

/// `toml` with `[campaign] where = <expression>`.
fn with_where(toml: &CampaignToml, expression: &str) -> CampaignToml {
    let line = format!("where = {}", toml_string(expression));
    toml.clone().campaign_line(&line)
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

async fn name_server() -> NameServer {
    let zone = Zone::parse("example.com A 127.0.0.1\n").unwrap();
    tokio::time::timeout(Duration::from_secs(10), NameServer::start(zone))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_rows_the_segment_matches_are_sent_and_the_rest_counted_excluded() {
    let dns = name_server().await;
    let (fixture, _) = fixture(&list(400), WHERE, &dns).await;
    let (expected, excluded) = python_expects(&fixture);
    assert!(
        (40..=300).contains(&expected.len()),
        "a segment worth testing: {} of 400 kept",
        expected.len()
    );
    assert_eq!(expected.len() as u64 + excluded, 400);
    let campaign = fixture.campaign();

    // `volley check` tells how many rows the segment keeps (DNS rows may fail: not asserted).
    let check = volley(&["check", &campaign]).await;
    let said = text(&check.stdout);
    let keeps = format!("keeps {} of 400 valid rows", expected.len());
    assert!(said.contains(&keeps), "{said}{}", text(&check.stderr));

    // `volley audience` counts the segment as the first thing that leaves rows out.
    let out = volley(&["audience", &campaign, "--json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let audience: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(audience["rules"][0]["rule"], "where", "{audience}");
    assert_eq!(audience["rules"][0]["removed"], excluded, "{audience}");
    assert_eq!(audience["remaining"], expected.len(), "{audience}");

    let out = volley(&["send", &campaign, "--no-progress"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains(&format!("{excluded} excluded by where")),
        "{}",
        text(&out.stdout)
    );
    let received = arrivals(&fixture.sink);
    assert!(received.values().all(|n| *n == 1), "each recipient once");
    let mailed: BTreeSet<String> = received.into_keys().collect();
    assert_eq!(
        mailed.symmetric_difference(&expected).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "the sink got exactly the rows Python kept"
    );

    let status = status_json(&campaign).await;
    assert_eq!(status["excluded"].as_u64(), Some(excluded), "{status}");
    assert_eq!(status["total"].as_u64(), Some(expected.len() as u64));
    assert_eq!(status["delivered"].as_u64(), Some(expected.len() as u64));
    let out = volley(&["status", &campaign]).await;
    assert!(
        text(&out.stdout).contains("excluded"),
        "{}",
        text(&out.stdout)
    );
    let report = volley(&["report", &campaign, "--format", "csv"]).await;
    assert!(
        text(&report.stdout).contains(&format!("excluded,{excluded}")),
        "{}",
        text(&report.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loaded_campaign_is_not_reloaded_when_its_where_changes() {
    let dns = name_server().await;
    let (mut fixture, base) = fixture(&list(60), "plan == 'pro'", &dns).await;
    let campaign = fixture.campaign();
    let out = volley(&["send", &campaign, "--no-progress"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let first = fixture.sink.count();
    let status = status_json(&campaign).await;
    assert_eq!(status["total"].as_u64(), Some(first as u64));
    assert_eq!(status["excluded"].as_u64(), Some(60 - first as u64));

    // As with an edited list file: the list stays as it was loaded.
    fixture.set_campaign(with_where(&base, "plan != 'pro'"));
    let out = volley(&["send", &campaign, "--no-progress"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(fixture.sink.count(), first, "nobody more was mailed");
    assert_eq!(status_json(&campaign).await, status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_expression_is_refused_with_its_position_and_nothing_is_loaded() {
    let dns = name_server().await;
    for (expression, says) in [
        (
            "country == 'DE' and contry != 'FR'",
            "at character 21: unknown column \"contry\"",
        ),
        (
            "country == 'DE' and 'x' < 3",
            "at character 25: cannot compare the text \"x\" with the number 3",
        ),
        (
            "signup < 2026-02-30",
            "at character 10: 2026-02-30 is not a date",
        ),
        (
            "country = 'DE'",
            "at character 9: a single = is not an operator",
        ),
    ] {
        let (mut fixture, base) = fixture(&list(20), expression, &dns).await;
        let campaign = fixture.campaign();
        let want = format!("campaign.toml: [campaign] where = {expression:?}: {says}");

        let check = volley(&["check", &campaign]).await;
        assert_ne!(check.status.code(), Some(0), "{expression}");
        let said = format!("{}{}", text(&check.stdout), text(&check.stderr));
        assert!(said.contains(&want), "check, {expression}: {said}");

        let send = volley(&["send", &campaign, "--no-progress"]).await;
        assert_ne!(send.status.code(), Some(0), "{expression}");
        let said = format!("{}{}", text(&send.stdout), text(&send.stderr));
        assert!(said.contains(&want), "send, {expression}: {said}");
        assert_eq!(fixture.sink.count(), 0);

        // The same campaign without `where` reads its store: nothing was loaded there.
        fixture.set_campaign(base);
        let status = volley(&["status", &campaign, "--json"]).await;
        let said = format!("{}{}", text(&status.stdout), text(&status.stderr));
        assert!(
            !status.status.success() && said.contains("not been loaded"),
            "{expression}: nothing is loaded: {said}"
        );
    }
}
