//! Conversions and revenue through the binary: `volley send` delivers an A/B test share,
//! `volley conversions import` records a shop's orders (bad rows named, idempotent by
//! `order_id`), and `volley ab decide --json` shows conversions, revenue per recipient and
//! Welch's verdict, checked independently with scipy (`scripts/check-revenue.py`).

use crate::support::{list, output_of, text, Fixture};
use std::fmt::Write as _;
use std::path::PathBuf;

/// The Python with scipy: `VOLLEY_TEST_PYTHON`, else Debian's `/usr/bin/python3`
/// (python3-scipy), else `python3`.
fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("VOLLEY_TEST_PYTHON") {
        return python.into();
    }
    let debian = PathBuf::from("/usr/bin/python3");
    if debian.exists() {
        debian
    } else {
        "python3".into()
    }
}

/// A revenue A/B campaign whose test share (100 of 200) has been delivered; returns each
/// delivered address with its variant.
async fn delivered_test_share(fixture: &mut Fixture) -> Vec<(String, char)> {
    fixture.add_to_campaign(
        "[[variant]]\nid = \"A\"\nsubject = \"Sale A\"\n\n\
         [[variant]]\nid = \"B\"\nsubject = \"Sale B\"\n\n\
         [ab]\ntest_share = 0.5\nwait = \"1h\"\nmin_per_variant = 20\nmetric = \"revenue\"\n\n\
         [conversions]\nwindow = \"2d\"\ncurrency = \"EUR\"\n",
    );
    let send = output_of(&["send", &fixture.campaign(), "--no-progress"], &[]).await;
    assert_eq!(send.status.code(), Some(0), "{}", text(&send.stderr));
    let mut arms: Vec<(String, char)> = fixture
        .sink
        .received()
        .iter()
        .map(|m| {
            let data = String::from_utf8_lossy(&m.data);
            let variant = if data.contains("Subject: Sale A") {
                'A'
            } else {
                'B'
            };
            (m.rcpt_to[0].clone(), variant)
        })
        .collect();
    arms.sort();
    assert_eq!(arms.len(), 100);
    arms
}

/// Skewed orders: 35 of A's 50 buy (one of them twice), small amounts; 12 of B's 50 buy,
/// one of them big. Plus a stranger's order, which is unattributed.
fn orders(arms: &[(String, char)]) -> String {
    let mut csv = String::from("email,order_id,value,currency\n");
    let (mut a, mut b) = (0u64, 0u64);
    for (email, variant) in arms {
        match variant {
            'A' if a < 35 => {
                a += 1;
                let value = 5 + (a * 37 % 23) * (a % 4 + 1);
                writeln!(csv, "{email},A-{a},{value}.{:02},EUR", a * 7 % 100).unwrap();
            }
            'B' if b < 12 => {
                b += 1;
                let value = if b == 3 { 900 } else { 10 + b * b * 3 };
                writeln!(csv, "{email},B-{b},{value}.5,").unwrap();
            }
            _ => {}
        }
    }
    let first_a = &arms.iter().find(|(_, v)| *v == 'A').unwrap().0;
    writeln!(csv, "{first_a},A-again,42.00,EUR").unwrap();
    csv.push_str("stranger@elsewhere.example,S-1,99.99,EUR\n");
    csv
}

/// Rows a shop export may hold by mistake, each with the field it should name.
const BAD_ROWS: &str = "\
not-an-address,X-1,10,EUR
someone@x.example,X-2,-3,EUR
someone@x.example,X-3,10,USD
someone@x.example,X-4,12.5.0,EUR
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_import_once_and_revenue_intervals_match_scipy() {
    let mut fixture = Fixture::new(&list(200), crate::support::PASSWORD).await;
    let arms = delivered_test_share(&mut fixture).await;
    let campaign = fixture.campaign();
    let good = orders(&arms);
    let good_rows = good.lines().count() - 1;
    std::fs::write(fixture.path("orders.csv"), format!("{good}{BAD_ROWS}")).unwrap();
    let orders_csv = fixture.path("orders.csv").display().to_string();

    // Good rows import; each bad one is named by file, line and field; the exit says so.
    let import = output_of(&["conversions", "import", &campaign, &orders_csv], &[]).await;
    let (out, err) = (text(&import.stdout), text(&import.stderr));
    assert_eq!(import.status.code(), Some(1), "{out}{err}");
    let first_bad = good_rows + 2;
    for (offset, field) in ["email", "value", "currency", "value"].iter().enumerate() {
        let wanted = format!("orders.csv line {}, field {field}", first_bad + offset);
        assert!(err.contains(&wanted), "{wanted:?} not in {err}");
    }
    assert!(
        err.contains("USD, but the campaign's orders are in EUR"),
        "{err}"
    );
    let wanted = format!(
        "imported {good_rows} orders in EUR ({} attributed, 1 unattributed)",
        good_rows - 1
    );
    assert!(out.contains(&wanted), "{wanted:?} not in {out}");
    assert!(out.contains("4 rows skipped"), "{out}");

    // Importing the same file again counts nothing twice.
    let again = output_of(&["conversions", "import", &campaign, &orders_csv], &[]).await;
    let out = text(&again.stdout);
    assert!(out.contains(&format!("imported 0 orders in EUR (0 attributed, 0 unattributed), {good_rows} already recorded, 0 changed")), "{out}");

    // A known order id with another value is reported, and the first is kept.
    let changed_csv = fixture.path("changed.csv");
    std::fs::write(
        &changed_csv,
        "email,order_id,value\nstranger@elsewhere.example,S-1,5\n",
    )
    .unwrap();
    let changed = output_of(
        &[
            "conversions",
            "import",
            &campaign,
            &changed_csv.display().to_string(),
        ],
        &[],
    )
    .await;
    let err = text(&changed.stderr);
    assert_eq!(changed.status.code(), Some(1), "{err}");
    assert!(
        err.contains("changed.csv line 2, field order_id: order S-1 was recorded before"),
        "{err}"
    );

    // The verdict and its figures.
    let decide = output_of(&["ab", "decide", &campaign, "--json"], &[]).await;
    assert_eq!(decide.status.code(), Some(0), "{}", text(&decide.stderr));
    let verdict: serde_json::Value = serde_json::from_slice(&decide.stdout).unwrap();
    assert_eq!(verdict["metric"], "revenue", "{verdict}");
    assert_eq!(verdict["currency"], "EUR", "{verdict}");
    assert_eq!(verdict["unattributed"]["orders"], 1, "{verdict}");
    let a = &verdict["variants"][0];
    assert_eq!(a["conversions"]["count"], 36, "{a}");
    assert_eq!(a["conversions"]["recipients"], 35, "{a}");
    assert_eq!(a["revenue"]["per_recipient"]["method"], "welch", "{a}");
    let b = &verdict["variants"][1];
    assert_eq!(b["conversions"]["recipients"], 12, "{b}");
    assert_eq!(b["revenue"]["per_recipient"]["method"], "bootstrap", "{b}");
    assert!(verdict["p_value"].as_f64().is_some(), "{verdict}");

    // An independent check with scipy on the same orders.
    let mut arms_csv = String::from("email,variant\n");
    for (email, variant) in &arms {
        writeln!(arms_csv, "{email},{variant}").unwrap();
    }
    std::fs::write(fixture.path("arms.csv"), arms_csv).unwrap();
    std::fs::write(fixture.path("decide.json"), &decide.stdout).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/check-revenue.py");
    let check = std::process::Command::new(python())
        .arg(script)
        .arg(fixture.path("orders.csv"))
        .arg(fixture.path("arms.csv"))
        .arg(fixture.path("decide.json"))
        .output()
        .unwrap_or_else(|e| panic!("python3 with scipy is needed (python3-scipy): {e}"));
    assert!(
        check.status.success(),
        "scipy disagrees (or is missing: install python3-scipy):\n{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
}

const TRACKING_KEY: &str = "cli-conversions-tracking-key-0123";
const POSTBACK_SECRET: &str = "cli-postback-secret-0123456789abcdef";

/// The lowercase hex HMAC-SHA256 of `body` under `secret`, made by the openssl CLI.
fn openssl_hmac(body: &[u8], secret: &str) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", secret, "-r"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl is needed by this test: apt-get install -y openssl");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let output = child.wait_with_output().unwrap();
    text(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// POSTs `body` with curl to `url`, with `signature` in `X-Volley-Signature` when given;
/// the status and the answer.
fn curl_post(
    url: &str,
    body: &[u8],
    signature: Option<&str>,
    dir: &std::path::Path,
) -> (u16, String) {
    let file = dir.join("postback.json");
    std::fs::write(&file, body).unwrap();
    let mut command = std::process::Command::new("curl");
    command
        .args(["--silent", "--show-error", "--max-time", "30", "-X", "POST"])
        .args([
            "-H",
            "Content-Type: application/json",
            "-w",
            "\n%{http_code}",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", file.display()));
    if let Some(signature) = signature {
        command.args(["-H", &format!("X-Volley-Signature: {signature}")]);
    }
    let output = command
        .arg(url)
        .output()
        .expect("curl is needed by this test: apt-get install -y curl");
    let out = text(&output.stdout);
    let (answer, status) = out.rsplit_once('\n').unwrap();
    (status.trim().parse().unwrap(), answer.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_postbacks_count_once_and_the_rest_are_refused() {
    let mut fixture = Fixture::new(&list(5), crate::support::PASSWORD).await;
    fixture.add_to_campaign(
        "[conversions]\ncurrency = \"EUR\"\npostback_secret_env = \"VOLLEY_POSTBACK_SECRET\"\n",
    );
    let campaign = fixture.campaign();
    let env = [("VOLLEY_POSTBACK_SECRET", POSTBACK_SECRET)];
    let send = output_of(&["send", &campaign, "--no-progress"], &env).await;
    assert_eq!(send.status.code(), Some(0), "{}", text(&send.stderr));

    let store = volley_testkit::store::store_arg(&fixture.path("campaign.volley"));
    let (server, banner) = crate::tracking::serve_tracking(
        &store,
        &["--conversions", &campaign, "--seconds", "120"],
        &[
            ("VOLLEY_TRACKING_KEY", TRACKING_KEY),
            ("VOLLEY_POSTBACK_SECRET", POSTBACK_SECRET),
        ],
    );
    let addr = crate::tracking::tracking_path(&banner, "http://", ' ');
    let url = format!("http://{addr}/conversions/cli-test");
    let dir = fixture.path("");
    let sign = |body: &[u8]| format!("sha256={}", openssl_hmac(body, POSTBACK_SECRET));

    // A good signature: counted, attributed to the delivered recipient; again: once.
    let order = br#"{"email":"User1@d1.example","order_id":"P-1","value":"19.90"}"#;
    let (status, answer) = curl_post(&url, order, Some(&sign(order)), &dir);
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer.contains(r#""recorded":"added""#) && answer.contains(r#""attributed":true"#),
        "{answer}"
    );
    let (status, answer) = curl_post(&url, order, Some(&sign(order)), &dir);
    assert_eq!(
        (status, answer.contains(r#""recorded":"duplicate""#)),
        (200, true),
        "{answer}"
    );

    // The same order id with another value: refused, the first kept.
    let changed = br#"{"email":"user1@d1.example","order_id":"P-1","value":25}"#;
    let (status, answer) = curl_post(&url, changed, Some(&sign(changed)), &dir);
    assert_eq!(status, 409, "{answer}");

    // A wrong signature, none at all, another secret, an unknown campaign: 401, nothing kept.
    let other = br#"{"email":"user2@d2.example","order_id":"P-2","value":"5"}"#;
    for signature in [
        Some(sign(order)),
        None,
        Some(format!(
            "sha256={}",
            openssl_hmac(other, "another-secret-0123456789")
        )),
    ] {
        let (status, answer) = curl_post(&url, other, signature.as_deref(), &dir);
        assert_eq!(status, 401, "{answer}");
    }
    let elsewhere = format!("http://{addr}/conversions/no-such-campaign");
    assert_eq!(
        curl_post(&elsewhere, other, Some(&sign(other)), &dir).0,
        401
    );

    // A bad field is named; an oversize body is refused before it is read.
    let negative = br#"{"email":"user2@d2.example","order_id":"P-3","value":"-5"}"#;
    let (status, answer) = curl_post(&url, negative, Some(&sign(negative)), &dir);
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains(r#""field":"value""#), "{answer}");
    let huge = format!(
        r#"{{"email":"user2@d2.example","order_id":"P-4","value":"1","pad":"{}"}}"#,
        "x".repeat(64 * 1024)
    );
    let (status, _) = curl_post(&url, huge.as_bytes(), Some(&sign(huge.as_bytes())), &dir);
    assert_eq!(status, 413);
    drop(server);

    // What was kept: P-1 once, at 19.90 (an import of it finds it recorded).
    std::fs::write(fixture.path("again.csv"), "email,order_id,value,time\n").unwrap();
    let csv = "email,order_id,value\nuser1@d1.example,P-1,19.90\n";
    std::fs::write(fixture.path("again.csv"), csv).unwrap();
    let again = fixture.path("again.csv").display().to_string();
    let import = output_of(&["conversions", "import", &campaign, &again], &env).await;
    let out = text(&import.stdout);
    assert!(
        out.contains("imported 0 orders in EUR") && out.contains("1 already recorded"),
        "{out}{}",
        text(&import.stderr)
    );
}
