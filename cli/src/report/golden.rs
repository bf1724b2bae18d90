//! Every verdict case rendered in every format, written to `$VOLLEY_GOLDEN_DIR` when set:
//! run before and after a change to the words and `diff -r` the two directories.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::words::*;
use volley::ab::{decide, Rules, VariantInput};
use volley::report::{Decision, Timeline};

fn input(id: &str, delivered: u64, clicks: u64) -> VariantInput {
    VariantInput {
        id: id.to_owned(),
        delivered,
        opens: delivered / 2,
        clicks,
        ..VariantInput::default()
    }
}

fn rules() -> Rules {
    Rules {
        max_complaint_rate: 0.001,
        ..Rules::default()
    }
}

/// (name, inputs, rules)
fn cases() -> Vec<(&'static str, Vec<VariantInput>, Rules)> {
    let mut cases = vec![
        (
            "winner",
            vec![input("A", 1000, 300), input("B", 1000, 400)],
            rules(),
        ),
        (
            "three-winner",
            vec![
                input("A", 1000, 300),
                input("B", 1000, 310),
                input("C", 1000, 400),
            ],
            rules(),
        ),
        (
            "bonferroni",
            vec![
                input("A", 1000, 300),
                input("B", 1000, 342),
                input("C", 1000, 300),
            ],
            rules(),
        ),
        (
            "too-few",
            vec![input("A", 20, 9), input("B", 20, 3)],
            rules(),
        ),
        (
            "too-few-needed",
            vec![input("A", 90, 30), input("B", 500, 171)],
            rules(),
        ),
        (
            "close",
            vec![input("A", 1000, 300), input("B", 1000, 310)],
            rules(),
        ),
        (
            "small-rates",
            vec![input("A", 90_000, 41), input("B", 91_234, 77)],
            rules(),
        ),
        (
            "tie",
            vec![
                input("A", 1000, 300),
                input("B", 1000, 400),
                input("C", 1000, 400),
            ],
            rules(),
        ),
        (
            "bad-confidence",
            vec![input("A", 1000, 300), input("B", 1000, 400)],
            Rules {
                confidence: 1.5,
                ..rules()
            },
        ),
        (
            "confidence-975",
            vec![input("A", 1000, 300), input("B", 1000, 345)],
            Rules {
                confidence: 0.975,
                ..rules()
            },
        ),
    ];
    let mut b = input("B", 1000, 400);
    b.unsubscribes = 50;
    let mut a = input("A", 1000, 300);
    a.unsubscribes = 5;
    cases.push(("sole-survivor", vec![a, b], rules()));
    let mut c = input("C", 1000, 500);
    c.unsubscribes = 50;
    cases.push((
        "veto-and-test",
        vec![input("A", 1000, 300), input("B", 1000, 400), c],
        rules(),
    ));
    let mut c = input("C", 1000, 500);
    c.unsubscribes = 50;
    cases.push((
        "veto-and-inconclusive",
        vec![input("A", 1000, 300), input("B", 1000, 310), c],
        rules(),
    ));
    let mut a = input("A", 1000, 300);
    a.bounced = 100;
    let mut b = input("B", 1000, 400);
    b.complaints = 2;
    b.unsubscribes = 20;
    cases.push(("all-vetoed", vec![a, b], rules()));
    let mut a = input("A", 10_000, 300);
    a.complaints = 31;
    let b = input("B", 10_000, 400);
    cases.push((
        "close-limit",
        vec![a, b],
        Rules {
            max_complaint_rate: 0.003,
            ..rules()
        },
    ));
    let a = VariantInput {
        id: "A".into(),
        delivered: 2000,
        opens: 400,
        clicks: 120,
        ..VariantInput::default()
    };
    let b = VariantInput {
        id: "B".into(),
        delivered: 2000,
        opens: 500,
        clicks: 200,
        ..VariantInput::default()
    };
    cases.push((
        "clicks-per-open",
        vec![a.clone(), b.clone()],
        Rules {
            metric: volley::ab::Metric::ClicksPerOpen,
            ..rules()
        },
    ));
    cases.push((
        "clicks-per-open-few",
        vec![a, b],
        Rules {
            metric: volley::ab::Metric::ClicksPerOpen,
            min_per_variant: 450,
            ..rules()
        },
    ));
    let mut a = input("A", 1000, 0);
    a.opens = 200;
    let mut b = input("B", 1000, 0);
    b.opens = 260;
    cases.push((
        "opens",
        vec![a, b],
        Rules {
            metric: volley::ab::Metric::Opens,
            ..rules()
        },
    ));
    cases
}

fn report(inputs: &[VariantInput], verdict: Verdict, decided: bool) -> Report {
    let variants: Vec<VariantRow> = inputs
        .iter()
        .map(|i| VariantRow {
            id: i.id.clone(),
            share: 1.0 / inputs.len() as f64,
            recipients: i.delivered + i.bounced,
            counts: Counts {
                total: i.delivered + i.bounced,
                delivered: i.delivered,
                bounced: i.bounced,
                ..Counts::default()
            },
            engagement: TrackCounts {
                opened: i.opens,
                clicked: i.clicks,
                unsubscribed: i.unsubscribes,
                ..TrackCounts::default()
            },
            complaints: i.complaints,
            open_rate: ratio(i.opens, i.delivered),
            open_ci: volley::ab::wilson(i.opens, i.delivered, 0.95),
            click_rate: ratio(i.clicks, i.delivered),
            click_ci: volley::ab::wilson(i.clicks, i.delivered, 0.95),
        })
        .collect();
    let decision = decided.then(|| Decision {
        at: 1_796_194_800_000,
        how: "split".into(),
        variant: None,
        reason: verdict.reason.clone(),
        released: 1234,
    });
    Report {
        campaign: "golden".into(),
        generated_at: 1_796_180_645_000,
        counts: Counts {
            total: 12_345,
            delivered: 10_000,
            held: 2_345,
            ..Counts::default()
        },
        engagement: TrackCounts::default(),
        complaints: 0,
        variants,
        holdout: None,
        ab: Some(AbSummary {
            mode: "test_then_winner".into(),
            verdict,
            held: if decided { 0 } else { 2_345 },
            decide_after: (!decided).then_some(1_796_194_800_000),
            decision,
        }),
        money: None,
        domains: Vec::new(),
        other_domains: None,
        blocks: Vec::new(),
        bounces: Vec::new(),
        relays: Vec::new(),
        timeline: Timeline::default(),
    }
}

#[test]
fn golden_outputs() {
    let Some(dir) = std::env::var_os("VOLLEY_GOLDEN_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, report) in [
        ("full", super::chromium::sample_report()),
        ("empty", super::chromium::empty_report()),
    ] {
        std::fs::write(dir.join(format!("{name}.txt")), super::text::table(&report)).unwrap();
        std::fs::write(dir.join(format!("{name}.csv")), super::csv::csv(&report)).unwrap();
        std::fs::write(
            dir.join(format!("{name}.html")),
            super::html::html(&report).unwrap(),
        )
        .unwrap();
        let json = super::render(&report, crate::args::ReportFormat::Json).unwrap();
        std::fs::write(dir.join(format!("{name}.json")), json).unwrap();
    }
    for (name, inputs, rules) in cases() {
        let verdict = decide(&inputs, &rules);
        for decided in [false, true] {
            let report = report(&inputs, verdict.clone(), decided);
            let stem = format!("{name}-{}", if decided { "decided" } else { "held" });
            let write = |ext: &str, text: String| {
                std::fs::write(dir.join(format!("{stem}.{ext}")), text).unwrap();
            };
            write("txt", super::text::table(&report));
            write(
                "json",
                super::render(&report, crate::args::ReportFormat::Json).unwrap(),
            );
            write("csv", super::csv::csv(&report));
            write("html", super::html::html(&report).unwrap());
            let ab = report.ab.as_ref().unwrap();
            write(
                "ab.json",
                crate::ab::decide_json(&report.campaign, ab, None, None).unwrap(),
            );
            write("ab.txt", super::text::ab_table(&report));
            let progress = volley::runtime::AbProgress {
                held: ab.held,
                decide_after: ab.decide_after,
                decision: ab
                    .decision
                    .as_ref()
                    .map(|d| (d.how.clone(), d.variant.clone(), d.reason.clone())),
                decided_now: decided,
                holding: (!decided).then(|| verdict.reason.clone()),
            };
            write(
                "send.txt",
                crate::send::ab_line(&progress).unwrap_or_default(),
            );
        }
    }
}
