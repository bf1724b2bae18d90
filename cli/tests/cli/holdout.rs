//! Holdout groups through the binary: `[ab] holdout` keeps a share of the list out of the
//! send. The receiving server never sees those recipients — not on the first `volley send`,
//! not on the next — and `volley status --json`, `volley report` and `volley ab decide --json`
//! show the holdout as its own entry. Once against the loopback sink with two variants, once
//! against Python's aiosmtpd (a receiver nobody here wrote) with one version and no variants.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::support::{arrivals, output_of, text, Fixture};
use volley_testkit::campaign::{copy_dkim_keys, CampaignToml, Relay, QUICK_RETRY};
use volley_testkit::script_server::ScriptServer;

/// `n` recipients over `domains` domains (`user{i}@d{i % domains}.example`).
pub(crate) fn spread_list(n: usize, domains: usize) -> (String, Vec<(String, String)>) {
    let mut csv = String::from("email,name\n");
    let mut people = Vec::new();
    for i in 0..n {
        let domain = format!("d{}.example", i % domains);
        let address = format!("user{i}@{domain}");
        writeln!(csv, "{address},Name{i}").unwrap();
        people.push((domain, address));
    }
    (csv, people)
}

/// The addresses the engine's assigner holds out of `people` for campaign `id`.
pub(crate) fn held_out(
    id: &str,
    variants: usize,
    holdout: f64,
    people: &[(String, String)],
) -> BTreeSet<String> {
    let weights = vec![1.0; variants.max(1)];
    let mut assigner = volley::ab::Assigner::new(id, &weights, None).with_holdout(holdout);
    for (domain, address) in people {
        assigner.observe(domain, address);
    }
    people
        .iter()
        .filter(|(domain, address)| {
            assigner.assign(domain, address) == volley::model::Assignment::Holdout
        })
        .map(|(_, address)| address.clone())
        .collect()
}

/// Runs `volley ARGS…` (two minutes at most) and parses what it printed as JSON.
pub(crate) async fn json_of(args: &[&str]) -> serde_json::Value {
    let out = tokio::time::timeout(Duration::from_secs(120), output_of(args, &[]))
        .await
        .expect("volley answered within two minutes");
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out.stdout)))
}

/// `volley send CAMPAIGN`, which must finish with exit 0.
async fn send(campaign: &str) {
    let args = ["send", campaign, "--no-progress"];
    let out = tokio::time::timeout(Duration::from_secs(120), output_of(&args, &[]))
        .await
        .expect("volley send finished within two minutes");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holdout_is_never_mailed_and_shows_as_its_own_entry() {
    let (csv, people) = spread_list(600, 12);
    let mut fixture = Fixture::new(&csv, crate::support::PASSWORD).await;
    fixture.add_to_campaign(
        "\n[[variant]]\nid = \"A\"\nsubject = \"Version A\"\n\n\
         [[variant]]\nid = \"B\"\nsubject = \"Version B\"\n\n[ab]\nholdout = 0.1\n",
    );
    let campaign = fixture.campaign();
    let expected = held_out("cli-test", 2, 0.1, &people);
    // 50 per domain: each domain's tenth, to within one.
    assert!((48..=72).contains(&expected.len()), "{}", expected.len());

    send(&campaign).await;
    let received = arrivals(&fixture.sink);
    assert!(received.values().all(|n| *n == 1), "each recipient once");
    let mailed: BTreeSet<String> = received.into_keys().collect();
    assert!(
        mailed.is_disjoint(&expected),
        "held-out recipients were mailed: {:?}",
        mailed.intersection(&expected).collect::<Vec<_>>()
    );
    assert_eq!(mailed.len() + expected.len(), people.len());

    let status = json_of(&["status", &campaign, "--json"]).await;
    let holdout = expected.len() as u64;
    assert_eq!(status["holdout"].as_u64(), Some(holdout), "{status}");
    assert_eq!(
        status["delivered"].as_u64(),
        Some(600 - holdout),
        "{status}"
    );
    assert_eq!(
        (status["pending"].as_u64(), status["total"].as_u64()),
        (Some(0), Some(600))
    );

    // A second send mails nobody: the holdout stays held out.
    send(&campaign).await;
    assert_eq!(fixture.sink.count(), 600 - expected.len());
    let status = json_of(&["status", &campaign, "--json"]).await;
    assert_eq!(status["holdout"].as_u64(), Some(holdout), "{status}");

    // Its own entry in the verdict and the report, apart from the variants compared.
    let decide = json_of(&["ab", "decide", &campaign, "--json"]).await;
    assert_eq!(decide["holdout"]["id"], "holdout", "{decide}");
    assert_eq!(
        decide["holdout"]["recipients"].as_u64(),
        Some(holdout),
        "{decide}"
    );
    assert_eq!(decide["holdout"]["share"].as_f64(), Some(0.1), "{decide}");
    let ids: Vec<&str> = decide["variants"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["id"].as_str())
        .collect();
    assert_eq!(ids, ["A", "B"], "{decide}");
    let report = json_of(&["report", &campaign, "--format", "json"]).await;
    assert_eq!(
        report["holdout"]["recipients"].as_u64(),
        Some(holdout),
        "{report}"
    );
    assert_eq!(
        report["counts"]["holdout"].as_u64(),
        Some(holdout),
        "{report}"
    );
    let in_variants: u64 = report["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["recipients"].as_u64().unwrap())
        .sum();
    assert_eq!(in_variants, 600 - holdout, "{report}");
    let table = output_of(&["report", &campaign], &[]).await;
    let table = text(&table.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.trim_start().starts_with("holdout") && l.contains("not sent")),
        "{table}"
    );
}

/// `scripts/picky-relay.py` with none of its tricks: a plain aiosmtpd receiver that logs
/// each accepted recipient.
fn plain_aiosmtpd(dir: &Path) -> ScriptServer {
    let args = [
        "--per-connection",
        "1000000",
        "--grey-domain",
        "none.invalid",
    ];
    let no_tricks = ["--close-all-at", "", "--data-451", "0"];
    let args: Vec<&str> = args.into_iter().chain(no_tricks).collect();
    ScriptServer::start("picky-relay.py", &dir.join("receiver.log"), &args, false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_version_campaign_holds_out_its_share_from_aiosmtpd() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = plain_aiosmtpd(dir.path());
    copy_dkim_keys(dir.path());
    std::fs::write(dir.path().join("body.txt"), "Hello {{ name }}!\n").unwrap();
    let (csv, people) = spread_list(300, 7);
    std::fs::write(dir.path().join("list.csv"), csv).unwrap();
    let campaign = CampaignToml::new("lift")
        .relay(Relay::loopback(receiver.port).connections(2))
        .dkim("rsa", "rsa.pem")
        .retry(QUICK_RETRY)
        .section("\n[ab]\nholdout = 0.2\n")
        .write(&dir.path().join("campaign.toml"))
        .display()
        .to_string();
    let expected = held_out("lift", 1, 0.2, &people);
    assert!((50..=70).contains(&expected.len()), "{}", expected.len());

    send(&campaign).await;
    send(&campaign).await;
    let mut accepted: HashMap<String, usize> = HashMap::new();
    for rcpt in receiver.events("accepted") {
        *accepted.entry(rcpt).or_default() += 1;
    }
    assert!(accepted.values().all(|n| *n == 1), "each recipient once");
    let mailed: BTreeSet<String> = accepted.into_keys().collect();
    assert!(
        mailed.is_disjoint(&expected),
        "held-out recipients were mailed"
    );
    assert_eq!(mailed.len() + expected.len(), people.len());
    let status = json_of(&["status", &campaign, "--json"]).await;
    assert_eq!(
        status["holdout"].as_u64(),
        Some(expected.len() as u64),
        "{status}"
    );
    let report = json_of(&["report", &campaign, "--format", "json"]).await;
    assert_eq!(report["holdout"]["share"].as_f64(), Some(0.2), "{report}");
    assert_eq!(
        report["variants"][0]["recipients"].as_u64(),
        Some(mailed.len() as u64)
    );
}
