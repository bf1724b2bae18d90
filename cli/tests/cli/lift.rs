//! Lift against the holdout through the binary: an A/B campaign keeps a holdout, a shop's
//! orders are imported, and `volley ab decide --json` gives each variant its lift over the
//! holdout (conversion rate and revenue per recipient, with intervals) and the holdout its
//! own entry — checked independently with scipy (`scripts/check-revenue.py`). The text and
//! HTML reports show the same table; after `volley gc` collected the campaign the figures are
//! unchanged and a late order is still attributed.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::holdout::{held_out, json_of, spread_list};
use crate::support::{output_of, text, Fixture};

/// Orders: `buyers` of each arm buy once, their amounts spread (a few large).
fn orders_for(csv: &mut String, arm: &str, people: &[String], buyers: usize, base: u64) {
    for (i, email) in people.iter().take(buyers).enumerate() {
        let i = i as u64;
        let value = base + (i * 37 % 23) * (i % 4 + 1) + if i.is_multiple_of(11) { 140 } else { 0 };
        writeln!(csv, "{email},{arm}-{i},{value}.{:02},EUR", i * 7 % 100).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variants_show_their_lift_over_the_holdout_and_scipy_agrees() {
    let (csv, people) = spread_list(500, 10);
    let mut fixture = Fixture::new(&csv, crate::support::PASSWORD).await;
    fixture.add_to_campaign(
        "\n[[variant]]\nid = \"A\"\nsubject = \"Version A\"\n\n\
         [[variant]]\nid = \"B\"\nsubject = \"Version B\"\n\n[ab]\nholdout = 0.2\n\n\
         [conversions]\nwindow = \"2d\"\ncurrency = \"EUR\"\n",
    );
    let campaign = fixture.campaign();
    let holdout = held_out("cli-test", 2, 0.2, &people);
    let send = output_of(&["send", &campaign, "--no-progress"], &[]).await;
    assert_eq!(send.status.code(), Some(0), "{}", text(&send.stderr));

    // Who got which version, from what the receiving server saw.
    let mut arms: Vec<(String, String)> = Vec::new();
    for message in fixture.sink.received() {
        let data = String::from_utf8_lossy(&message.data);
        let variant = if data.contains("Subject: Version A") {
            "A"
        } else {
            "B"
        };
        arms.push((message.rcpt_to[0].clone(), variant.to_owned()));
    }
    arms.sort();
    let mailed: BTreeSet<&String> = arms.iter().map(|(email, _)| email).collect();
    assert!(holdout.iter().all(|email| !mailed.contains(email)));
    let of = |variant: &str| -> Vec<String> {
        arms.iter()
            .filter(|(_, v)| v == variant)
            .map(|(e, _)| e.clone())
            .collect()
    };
    let held: Vec<String> = holdout.iter().cloned().collect();
    // Enough buyers in every arm for Welch's interval (30 or more).
    let mut orders = String::from("email,order_id,value,currency\n");
    orders_for(&mut orders, "H", &held, 32, 8);
    orders_for(&mut orders, "A", &of("A"), 60, 10);
    orders_for(&mut orders, "B", &of("B"), 75, 12);
    std::fs::write(fixture.path("orders.csv"), &orders).unwrap();
    let orders_csv = fixture.path("orders.csv").display().to_string();
    let import = output_of(&["conversions", "import", &campaign, &orders_csv], &[]).await;
    assert_eq!(import.status.code(), Some(0), "{}", text(&import.stderr));

    let decide = json_of(&["ab", "decide", &campaign, "--json"]).await;
    let h = &decide["holdout"];
    assert_eq!(h["recipients"], holdout.len(), "{decide}");
    assert_eq!(h["conversions"]["recipients"], 32, "{decide}");
    assert!(h["lift"].is_null(), "{decide}");
    for variant in decide["variants"].as_array().unwrap() {
        let lift = &variant["lift"];
        assert_eq!(lift["conversion_rate"]["method"], "newcombe", "{variant}");
        assert_eq!(
            lift["revenue_per_recipient"]["method"], "welch",
            "{variant}"
        );
        let rate = &lift["conversion_rate"];
        assert!(rate["low"].as_f64() < rate["value"].as_f64(), "{rate}");
        assert!(rate["value"].as_f64() < rate["high"].as_f64(), "{rate}");
    }

    // The same orders through scipy.
    let mut arms_csv = String::from("email,variant\n");
    for (email, variant) in &arms {
        writeln!(arms_csv, "{email},{variant}").unwrap();
    }
    for email in &holdout {
        writeln!(arms_csv, "{email},holdout").unwrap();
    }
    std::fs::write(fixture.path("arms.csv"), arms_csv).unwrap();
    std::fs::write(fixture.path("decide.json"), decide.to_string()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/check-revenue.py");
    let check = std::process::Command::new("/usr/bin/python3")
        .arg(script)
        .arg(fixture.path("orders.csv"))
        .arg(fixture.path("arms.csv"))
        .arg(fixture.path("decide.json"))
        .output()
        .unwrap_or_else(|e| panic!("python3 with scipy is needed (python3-scipy): {e}"));
    let said = format!("{}{}", text(&check.stdout), text(&check.stderr));
    assert!(check.status.success(), "scipy disagrees:\n{said}");
    assert!(
        said.contains("ok  A lift in revenue per recipient low"),
        "{said}"
    );

    // The text and HTML reports show the conversions table with the lift.
    let table = output_of(&["report", &campaign], &[]).await;
    let table = text(&table.stdout);
    assert!(table.contains("CONVERSIONS (EUR)"), "{table}");
    assert!(table.contains("Lift: conv. rate"), "{table}");
    let (_, conversions) = table.split_once("CONVERSIONS (EUR)").unwrap();
    let holdout_row = conversions
        .lines()
        .find(|line| line.trim_start().starts_with("holdout"))
        .unwrap_or_else(|| panic!("no holdout row in\n{table}"));
    assert!(holdout_row.contains(" 32 "), "{holdout_row}");
    let csv = output_of(&["report", &campaign, "--format", "csv"], &[]).await;
    let csv = text(&csv.stdout);
    assert!(csv.contains("conversions,holdout,buyers,32\r\n"), "{csv}");
    assert!(
        csv.contains("conversions,A,lift_revenue_per_recipient_method,welch\r\n"),
        "{csv}"
    );
    let html_path = fixture.path("report.html");
    let html = output_of(
        &[
            "report",
            &campaign,
            "--format",
            "html",
            "--out",
            html_path.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(html.status.code(), Some(0), "{}", text(&html.stderr));
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(
        html.contains("id=\"table-conversions\""),
        "no conversions table"
    );
    assert!(html.contains("id=\"row-money-holdout\""), "no holdout row");

    // Collected by gc, the campaign keeps its orders and so its figures.
    let exported = fixture.path("events.jsonl");
    let export = output_of(
        &["events", &campaign, "--out", exported.to_str().unwrap()],
        &[],
    )
    .await;
    assert_eq!(export.status.code(), Some(0), "{}", text(&export.stderr));
    let gc = json_of(&["gc", &campaign, "--json"]).await;
    assert_eq!(gc["campaigns"][0]["outcome"], "collected", "{gc}");
    let after = json_of(&["ab", "decide", &campaign, "--json"]).await;
    for key in ["holdout", "variants", "currency", "unattributed"] {
        assert_eq!(after[key], decide[key], "{key} changed by gc");
    }
    let late = fixture.path("late.csv");
    let buyer = of("A").last().unwrap().clone();
    std::fs::write(&late, format!("email,order_id,value\n{buyer},late-1,10\n")).unwrap();
    let import = output_of(
        &["conversions", "import", &campaign, late.to_str().unwrap()],
        &[],
    )
    .await;
    let out = text(&import.stdout);
    assert!(
        out.contains("(1 attributed, 0 unattributed)"),
        "{out}{}",
        text(&import.stderr)
    );
}
