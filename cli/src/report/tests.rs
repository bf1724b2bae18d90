//! Unit tests of the renderers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::csv::*;
use super::html::*;
use super::text::*;
use super::words::*;
use volley::report::{Bucket, CategoryRow, DomainRow, Timeline};

fn variant(id: &str, delivered: u64, opened: u64, clicked: u64) -> VariantRow {
    let open_rate = ratio(opened, delivered);
    let click_rate = ratio(clicked, delivered);
    VariantRow {
        id: id.into(),
        share: 0.5,
        recipients: delivered + 25,
        counts: Counts {
            total: delivered + 25,
            delivered,
            bounced: 20,
            deferred: 5,
            ..Counts::default()
        },
        engagement: TrackCounts {
            opened,
            clicked,
            unsubscribed: 6,
            opens: opened * 3 / 2,
            clicks: clicked * 5 / 4,
            ..TrackCounts::default()
        },
        complaints: 1,
        open_rate,
        open_ci: (open_rate - 0.012, open_rate + 0.012),
        click_rate,
        click_ci: (click_rate - 0.005, click_rate + 0.005),
    }
}

fn stats(id: &str, rate: f64, prob_best: f64) -> VariantStats {
    VariantStats {
        id: id.into(),
        delivered: 4975,
        opens: 1100,
        clicks: (rate * 4975.0) as u64,
        trials: 4975,
        successes: (rate * 4975.0) as u64,
        rate,
        ci_low: rate - 0.005,
        ci_high: rate + 0.005,
        prob_best,
        bounce_rate: 0.004,
        unsubscribe_rate: 0.001,
        complaint_rate: 0.0002,
        exceeded: Vec::new(),
        guardrails: Vec::new(),
    }
}

fn sample() -> Report {
    let a = variant("A", 4975, 1100, 139);
    let b = variant("B, \"bold\"", 4975, 1180, 170);
    Report {
        campaign: "spring-sale".into(),
        generated_at: 1_796_180_645_000,
        counts: Counts {
            total: 10_000,
            delivered: 9950,
            bounced: 40,
            deferred: 10,
            ..Counts::default()
        },
        engagement: TrackCounts {
            opened: 2280,
            clicked: 309,
            unsubscribed: 12,
            opens: 3420,
            clicks: 386,
            machine_opens: 1204,
            machine_clicks: 41,
        },
        complaints: 2,
        variants: vec![a, b],
        holdout: None,
        ab: Some(AbSummary {
            mode: "split".into(),
            verdict: Verdict {
                verdict: VerdictKind::Winner,
                winner: Some("B, \"bold\"".into()),
                metric: Metric::Clicks,
                confidence: 0.95,
                p_value: Some(0.04417),
                z: Some(2.01),
                needed_per_variant: None,
                method: volley::ab::Method::Fixed,
                stop: Some(volley::ab::Stop::Winner),
                comparisons: Vec::new(),
                reason: volley::ab::Reason::Recorded {
                    text: "B has the higher click rate at 95 % confidence.".into(),
                },
                variants: vec![
                    stats("A", 0.0279, 0.021),
                    stats("B, \"bold\"", 0.0342, 0.979),
                ],
            },
            held: 0,
            decide_after: None,
            decision: None,
        }),
        money: None,
        domains: vec![DomainRow {
            domain: "gmail.com".into(),
            recipients: 1200,
            delivered: 1190,
            bounced: 10,
            ..DomainRow::default()
        }],
        other_domains: None,
        blocks: Vec::new(),
        bounces: vec![CategoryRow {
            category: "user_unknown".into(),
            hard: 40,
            soft: 3,
        }],
        relays: Vec::new(),
        timeline: Timeline {
            start: 1_796_180_400_000,
            bucket_ms: HOUR_MS,
            variants: vec!["A".into(), "B, \"bold\"".into()],
            buckets: (0..3)
                .map(|i| Bucket {
                    at: 1_796_180_400_000 + i * HOUR_MS,
                    delivered: 3000,
                    bounced: 10,
                    opens: vec![100 / (i + 1), 120 / (i + 1)],
                    clicks: vec![10, 17],
                    machine: 4,
                })
                .collect(),
        },
    }
}

#[test]
fn numbers_are_formatted_for_people() {
    assert_eq!(format_count(0), "0");
    assert_eq!(format_count(999), "999");
    assert_eq!(format_count(9950), "9,950");
    assert_eq!(format_count(1_234_567), "1,234,567");
    assert_eq!(format_percent(0.0342), "3.42 %");
    assert_eq!(format_percent(0.2357), "23.6 %");
    assert_eq!(format_percent(f64::NAN), "0.0 %");
    assert_eq!(format_p_value(0.04417), "0.0442");
    assert_eq!(format_p_value(0.31), "0.310");
    assert_eq!(format_p_value(0.000_012_34), "1.23e-5");
    assert_eq!(format_confidence(0.95), "95 %");
    assert_eq!(format_confidence(0.999), "99.9 %");
    assert_eq!(format_alpha(0.95), "0.05");
    assert_eq!(format_duration(HOUR_MS), "1 h");
    assert_eq!(format_duration(15 * MINUTE_MS), "15 min");
    assert_eq!(
        escape("<a href=\"x\">&'"),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
    );
}

#[test]
fn csv_parses_back_with_four_fields() {
    let text = csv(&sample());
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        ["section", "item", "metric", "value"]
    );
    let records: Vec<::csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert!(records.len() > 50);
    for r in &records {
        assert_eq!(r.len(), 4, "{r:?}");
    }
    let find = |s: &str, i: &str, m: &str| {
        records
            .iter()
            .find(|r| &r[0] == s && &r[1] == i && &r[2] == m)
            .map(|r| r[3].to_string())
    };
    assert_eq!(find("totals", "", "delivered").as_deref(), Some("9950"));
    assert_eq!(find("ab", "", "p_value").as_deref(), Some("0.04417"));
    assert_eq!(
        find("variant", "B, \"bold\"", "click_rate").as_deref(),
        Some(&*(170.0f64 / 4975.0).to_string())
    );
    assert_eq!(
        find("domain", "gmail.com", "recipients").as_deref(),
        Some("1200")
    );
    assert_eq!(
        find("bounce", "user_unknown", "hard").as_deref(),
        Some("40")
    );
    assert_eq!(
        find("timeline", "2026-12-02T03:00:00Z", "opens:B, \"bold\"").as_deref(),
        Some("120")
    );
    assert!(text.ends_with("\r\n"));
}

#[test]
fn table_has_verdict_and_separators() {
    let text = table(&sample());
    assert!(text.contains("9,950"), "{text}");
    assert!(text.contains("10,000"));
    assert!(text.contains(
        "Variant B, \"bold\" wins on click rate: 3.42 % against 2.79 % for A (p = 0.0442, at 95 % confidence)."
    ), "{text}");
    assert!(text.contains("Chance of being best: A 2.10 %, B, \"bold\" 97.9 %."));
    assert!(text.contains("gmail.com"));
    assert!(text.contains("user_unknown"));
    assert!(!text.contains("NaN"));
}

#[test]
fn inconclusive_verdict_says_what_is_needed() {
    let mut report = sample();
    let ab = report.ab.as_mut().unwrap();
    ab.verdict.verdict = VerdictKind::Inconclusive;
    ab.verdict.winner = None;
    ab.verdict.p_value = Some(0.31);
    ab.verdict.needed_per_variant = Some(12_400);
    ab.mode = "test_then_winner".into();
    ab.held = 8000;
    ab.decide_after = Some(1_796_194_800_000);
    let text = table(&report);
    assert!(text.contains("No winner yet on click rate: B, \"bold\" leads A, 3.42 % against 2.79 %, and p = 0.310 is not below 0.05."), "{text}");
    assert!(text.contains("About 12,400 delivered messages per variant"));
    assert!(text.contains("8,000 recipients are held back for the winner; the decision is due after 2026-12-02 07:00 UTC."), "{text}");
}

#[test]
fn html_escapes_report_strings() {
    let mut report = sample();
    report.campaign = "<script>alert(1)</script>".into();
    let page = html(&report).unwrap();
    assert!(!page.contains("<script>"));
    assert!(page.contains("&lt;script&gt;"));
    assert!(page.contains("B, &quot;bold&quot;"));
    assert!(page.contains("data-chart=\"timeline\""));
    assert!(page.contains("data-chart=\"rates\""));
}

#[test]
fn odd_data_renders_without_nan() {
    let mut report = sample();
    report.variants[0].open_rate = f64::NAN;
    report.variants[0].click_ci = (f64::NEG_INFINITY, f64::INFINITY);
    report.ab.as_mut().unwrap().verdict.p_value = Some(f64::NAN);
    report.timeline.bucket_ms = 0;
    report.timeline.variants.push("C".into());
    report.timeline.buckets = (0..200)
        .map(|i| Bucket {
            at: 1_796_180_400_000 + i * HOUR_MS,
            opens: vec![i % 7],
            ..Bucket::default()
        })
        .collect();
    for text in [html(&report).unwrap(), table(&report), csv(&report)] {
        assert!(!text.contains("NaN") && !text.contains("inf"), "{text}");
    }
    report.timeline.buckets.truncate(1);
    report.timeline.buckets[0].opens = vec![5, 3];
    assert!(html(&report).unwrap().contains("data-chart=\"timeline\""));
    report.variants.clear();
    report.ab = None;
    let page = html(&report).unwrap();
    assert!(page.contains("No deliveries yet"));
    assert!(table(&report).contains("No variants yet."));
}

#[test]
fn json_keeps_every_field_of_the_report_and_words_the_reasons() {
    fn keys(engine: &serde_json::Value, ours: &serde_json::Value, at: &str) {
        if let (Some(e), Some(o)) = (engine.as_object(), ours.as_object()) {
            for (key, value) in e {
                let theirs = o.get(key);
                assert!(theirs.is_some(), "{at}.{key} is missing");
                if key != "reason" {
                    keys(value, theirs.unwrap(), &format!("{at}.{key}"));
                }
            }
        }
        if let (Some(e), Some(o)) = (engine.as_array(), ours.as_array()) {
            for (i, (a, b)) in e.iter().zip(o).enumerate() {
                keys(a, b, &format!("{at}[{i}]"));
            }
        }
    }
    let mut report = sample();
    report.ab.as_mut().unwrap().decision = Some(volley::report::Decision {
        at: 1_796_194_800_000,
        how: "winner".into(),
        variant: Some("A".into()),
        reason: volley::ab::Reason::TooFewVariants { only: None },
        released: 7,
    });
    let engine = serde_json::to_value(&report).unwrap();
    let text = super::render(&report, crate::args::ReportFormat::Json).unwrap();
    let ours: serde_json::Value = serde_json::from_str(&text).unwrap();
    keys(&engine, &ours, "report");
    assert_eq!(
        ours["ab"]["verdict"]["reason"],
        "B has the higher click rate at 95 % confidence."
    );
    assert_eq!(
        ours["ab"]["decision"]["reason"],
        "An A/B test needs at least two variants; there are none."
    );
    assert_eq!(
        ours["ab"]["decision"]["reason_detail"]["too_few_variants"]["only"],
        serde_json::Value::Null
    );
}

#[test]
fn a_policy_block_is_named_in_the_table_and_the_page() {
    let mut report = sample();
    assert!(
        !table(&report).contains("POLICY BLOCKS"),
        "only when there is one"
    );
    let reply = volley::model::ReplyRecord {
        code: Some(550),
        enhanced: Some("5.7.1".into()),
        text: "Service unavailable, Client host [192.0.2.1] blocked using Spamhaus".into(),
        category: Some(volley::model::Category::Blocked),
        hard: false,
    };
    report.blocks.push(volley::model::DestinationBlock {
        destination: "mx.example.net".into(),
        category: volley::model::Category::Blocked,
        first_reply: reply.clone(),
        last_reply: reply,
        replies: 5,
        trips: 1,
        tripped_at: 1_796_180_400_000,
        paused_until: 1_796_184_000_000,
        campaigns: vec![report.campaign.clone()],
        lifted_at: Some(1_796_184_100_000),
    });
    let text = table(&report);
    assert!(text.contains("POLICY BLOCKS"), "{text}");
    assert!(
        text.contains("policy block (blocked) at mx.example.net: lifted at 2026-12-02T04:01:40Z")
            && text.contains("after 5 block replies (1 trip)")
            && text.contains("last reply: 550 5.7.1 Service unavailable"),
        "{text}"
    );
    let page = html(&report).unwrap();
    assert!(page.contains("id=\"list-blocks\"") && page.contains("blocked using Spamhaus"));
}
