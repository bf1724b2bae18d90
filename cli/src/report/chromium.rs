//! Renders the HTML report in real headless Chromium and checks the screenshot: the charts
//! are drawn in each variant's colour, the page is not blank, and empty data renders cleanly.
//!
//! Needs Chromium (`apt-get install chromium`); `VOLLEY_CHROMIUM` may name another binary.
//! With `VOLLEY_REPORT_SCREENSHOTS=DIR` the screenshots are also copied into DIR.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use volley::ab::{Metric, VariantStats, Verdict, VerdictKind};
use volley::model::{Counts, TrackCounts};
use volley::report::{AbSummary, Bucket, CategoryRow, DomainRow, Report, Timeline, VariantRow};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HOUR_MS: u64 = 3_600_000;
/// 2026-12-02T03:00:00Z.
const START_MS: u64 = 1_796_180_400_000;
/// The colours the renderer gives the first two variants.
const COLOUR_A: [u8; 3] = [0x25, 0x63, 0xeb];
const COLOUR_B: [u8; 3] = [0xea, 0x58, 0x0c];
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Sample reports
// ---------------------------------------------------------------------------------------------

/// Wilson score interval at 95 %.
fn wilson(successes: u64, trials: u64) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 0.0);
    }
    let z = 1.959_964_f64;
    let n = trials as f64;
    let p = successes as f64 / n;
    let denominator = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denominator;
    let half = z * ((p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt()) / denominator;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// A decaying engagement curve: a short ramp while the campaign goes out, then a long tail,
/// with a daily bump and a little deterministic wobble.
fn curve(hour: usize, peak: f64) -> u64 {
    let h = hour as f64;
    let ramp = (h + 1.0).min(3.0) / 3.0;
    let decay = (-h / 7.5).exp();
    let daily = 1.0
        + 0.35 * ((h - 6.0) / 24.0 * std::f64::consts::TAU).cos().max(0.0) * (h / 24.0).min(1.0);
    let wobble = 1.0 + 0.08 * (h * 1.7).sin();
    (peak * ramp * (decay + 0.02) * daily * wobble).round() as u64
}

fn variant_row(
    id: &str,
    recipients: u64,
    delivered: u64,
    bounced: u64,
    opened: u64,
    clicked: u64,
) -> VariantRow {
    VariantRow {
        id: id.into(),
        share: 0.5,
        recipients,
        counts: Counts {
            total: recipients,
            pending: 0,
            deferred: 31,
            delivered,
            bounced,
            expired: 4,
            suppressed: recipients - delivered - bounced - 35,
            held: 0,
            cancelled: 0,
            invalid: 0,
            duplicate: 0,
            holdout: 0,
            excluded: 0,
            waiting: 0,
        },
        engagement: TrackCounts {
            opened,
            clicked,
            unsubscribed: clicked / 19,
            opens: opened * 14 / 10,
            clicks: clicked * 13 / 10,
            machine_opens: opened / 4,
            machine_clicks: clicked / 12,
        },
        complaints: 3,
        open_rate: opened as f64 / delivered as f64,
        open_ci: wilson(opened, delivered),
        click_rate: clicked as f64 / delivered as f64,
        click_ci: wilson(clicked, delivered),
    }
}

fn verdict_stats(v: &VariantRow, prob_best: f64) -> VariantStats {
    let (ci_low, ci_high) = v.click_ci;
    VariantStats {
        id: v.id.clone(),
        delivered: v.counts.delivered,
        opens: v.engagement.opened,
        clicks: v.engagement.clicked,
        trials: v.counts.delivered,
        successes: v.engagement.clicked,
        rate: v.click_rate,
        ci_low,
        ci_high,
        prob_best,
        bounce_rate: v.counts.bounced as f64 / (v.counts.delivered + v.counts.bounced) as f64,
        unsubscribe_rate: v.engagement.unsubscribed as f64 / v.counts.delivered as f64,
        complaint_rate: v.complaints as f64 / v.counts.delivered as f64,
        exceeded: Vec::new(),
        guardrails: Vec::new(),
    }
}

fn domain(name: &str, recipients: u64) -> DomainRow {
    let delivered = recipients * 985 / 1000;
    let bounced = recipients * 9 / 1000;
    DomainRow {
        domain: name.into(),
        recipients,
        delivered,
        bounced,
        deferred: recipients - delivered - bounced,
        opened: delivered * 24 / 100,
        clicked: delivered * 31 / 1000,
    }
}

/// A realistic two-variant campaign two days in, with B the winner on clicks.
pub(super) fn sample_report() -> Report {
    let a = variant_row("A", 24_000, 23_642, 214, 5_390, 662);
    let b = variant_row("B", 24_000, 23_655, 207, 5_723, 828);
    let buckets: Vec<Bucket> = (0..48)
        .map(|h| Bucket {
            at: START_MS + h as u64 * HOUR_MS,
            delivered: if h < 3 { [21_000, 19_500, 6_797][h] } else { 0 },
            bounced: if h < 3 { [180, 160, 81][h] } else { 0 },
            opens: vec![curve(h, 1_150.0), curve(h, 1_260.0)],
            clicks: vec![curve(h, 128.0), curve(h, 162.0)],
            machine: curve(h, 380.0),
        })
        .collect();
    let mut engagement = a.engagement;
    let eb = b.engagement;
    engagement.opened += eb.opened;
    engagement.clicked += eb.clicked;
    engagement.unsubscribed += eb.unsubscribed;
    engagement.opens += eb.opens;
    engagement.clicks += eb.clicks;
    engagement.machine_opens += eb.machine_opens;
    engagement.machine_clicks += eb.machine_clicks;
    let verdict = Verdict {
        verdict: VerdictKind::Winner,
        winner: Some("B".into()),
        metric: Metric::Clicks,
        confidence: 0.95,
        p_value: Some(0.000_026_4),
        z: Some(4.2),
        needed_per_variant: None,
        method: volley::ab::Method::Fixed,
        stop: Some(volley::ab::Stop::Winner),
        comparisons: Vec::new(),
        reason: volley::ab::Reason::Recorded {
            text: "B's click rate is higher than A's at 95 % confidence, and no limit is exceeded."
                .into(),
        },
        variants: vec![verdict_stats(&a, 0.000_013), verdict_stats(&b, 0.999_987)],
    };
    Report {
        campaign: "winter-sale-2026 <edition 12>".into(),
        generated_at: START_MS + 48 * HOUR_MS + 245_000,
        counts: Counts {
            total: 48_000,
            pending: 0,
            deferred: 62,
            delivered: 47_297,
            bounced: 421,
            expired: 8,
            suppressed: 212,
            held: 0,
            cancelled: 0,
            invalid: 17,
            duplicate: 41,
            holdout: 0,
            excluded: 0,
            waiting: 0,
        },
        engagement,
        complaints: 6,
        variants: vec![a, b],
        holdout: None,
        ab: Some(AbSummary {
            mode: "split".into(),
            verdict,
            held: 0,
            decide_after: None,
            decision: None,
        }),
        money: Some(sample_money()),
        domains: vec![
            domain("gmail.com", 14_210),
            domain("outlook.com", 7_930),
            domain("yahoo.com", 4_120),
            domain("icloud.com", 3_290),
            domain("gmx.de", 2_080),
        ],
        other_domains: Some(domain("other", 16_370)),
        blocks: Vec::new(),
        bounces: vec![
            CategoryRow {
                category: "user_unknown".into(),
                hard: 318,
                soft: 0,
            },
            CategoryRow {
                category: "mailbox_full".into(),
                hard: 41,
                soft: 96,
            },
            CategoryRow {
                category: "policy".into(),
                hard: 62,
                soft: 133,
            },
        ],
        relays: Vec::new(),
        timeline: Timeline {
            start: START_MS,
            bucket_ms: HOUR_MS,
            variants: vec!["A".into(), "B".into()],
            buckets,
        },
    }
}

/// Orders for the sample: two variants and a holdout, skewed amounts.
fn sample_money() -> volley::report::money::MoneySummary {
    use volley::ab::revenue::{figures, Arm};
    use volley::report::money::{MoneyRow, MoneySummary};
    let arm = |recipients: u64, buyers: u64, base: f64| Arm {
        recipients,
        converters: (0..buyers)
            .map(|i| base + (i * 37 % 23) as f64 * 1.5 + if i % 11 == 0 { 140.0 } else { 0.0 })
            .collect(),
        orders: buyers + buyers / 10,
    };
    let holdout = arm(2_400, 61, 38.0);
    let rows = [("A", arm(23_010, 690, 41.0)), ("B", arm(22_840, 812, 44.5))];
    MoneySummary {
        currency: "EUR".into(),
        variants: rows
            .iter()
            .map(|(id, a)| MoneyRow {
                id: (*id).into(),
                figures: figures(a, Some(&holdout), 0.95),
            })
            .collect(),
        holdout: Some(figures(&holdout, None, 0.95)),
        unattributed_orders: 14,
        unattributed_revenue: 873.4,
    }
}

/// A campaign that has just been loaded: one variant, no A/B, no events, no buckets.
pub(super) fn empty_report() -> Report {
    Report {
        campaign: "newsletter".into(),
        generated_at: START_MS,
        counts: Counts {
            total: 1_200,
            pending: 1_200,
            ..Counts::default()
        },
        engagement: TrackCounts::default(),
        complaints: 0,
        variants: vec![VariantRow {
            id: "main".into(),
            share: 1.0,
            recipients: 1_200,
            counts: Counts {
                total: 1_200,
                pending: 1_200,
                ..Counts::default()
            },
            engagement: TrackCounts::default(),
            complaints: 0,
            open_rate: 0.0,
            open_ci: (0.0, 0.0),
            click_rate: 0.0,
            click_ci: (0.0, 0.0),
        }],
        holdout: None,
        ab: None,
        money: None,
        domains: Vec::new(),
        other_domains: None,
        blocks: Vec::new(),
        bounces: Vec::new(),
        relays: Vec::new(),
        timeline: Timeline {
            start: START_MS,
            bucket_ms: HOUR_MS,
            variants: vec!["main".into()],
            buckets: Vec::new(),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Chromium and the screenshot
// ---------------------------------------------------------------------------------------------

/// The Chromium binary: `VOLLEY_CHROMIUM`, else the usual names on PATH; fails loudly if none.
fn chromium_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("VOLLEY_CHROMIUM") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "VOLLEY_CHROMIUM={} is not a file; point it at a Chromium binary or unset it",
            path.display()
        );
        return path;
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path_var) {
        for name in [
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "this test renders the HTML report in headless Chromium, but no Chromium binary was found \
         on PATH. Install it with `apt-get install chromium` (Debian/Ubuntu), or set \
         VOLLEY_CHROMIUM=/path/to/chromium"
    );
}

/// Writes `html` into `dir`, screenshots it with headless Chromium (1280 × 2600, killed after
/// 60 s) and returns the PNG's path.
fn screenshot(html: &str, dir: &Path, name: &str) -> PathBuf {
    let html_path = dir.join("report.html");
    fs::write(&html_path, html).unwrap();
    let png_path = dir.join("screenshot.png");
    let profile = tempfile::tempdir_in(dir).unwrap();
    let log_path = dir.join("chromium.log");
    let log = fs::File::create(&log_path).unwrap();
    let binary = chromium_binary();
    let mut child = Command::new(&binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--window-size=1280,2600",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png_path.display()))
        .arg(format!("file://{}", html_path.display()))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let deadline = Instant::now() + CHROMIUM_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "Chromium did not finish within {:?}; its log:\n{}",
                CHROMIUM_TIMEOUT,
                fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success() && png_path.is_file(),
        "Chromium failed ({status}) or wrote no screenshot; its log:\n{}",
        fs::read_to_string(&log_path).unwrap_or_default()
    );
    if let Some(keep) = std::env::var_os("VOLLEY_REPORT_SCREENSHOTS") {
        let keep = PathBuf::from(keep);
        fs::create_dir_all(&keep).unwrap();
        fs::copy(&png_path, keep.join(format!("{name}.png"))).unwrap();
    }
    png_path
}

/// A decoded screenshot: width, height and RGB pixels.
struct Image {
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
}

fn decode_png(path: &Path) -> Image {
    let file = std::io::BufReader::new(fs::File::open(path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(
        info.bit_depth,
        png::BitDepth::Eight,
        "unexpected PNG bit depth"
    );
    let samples = info.color_type.samples();
    assert!(
        samples >= 3,
        "unexpected PNG colour type {:?}",
        info.color_type
    );
    let rgb = buf[..info.buffer_size()]
        .chunks_exact(samples)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    Image {
        width: info.width as usize,
        height: info.height as usize,
        rgb,
    }
}

fn close_to(pixel: [u8; 3], colour: [u8; 3], tolerance: u8) -> bool {
    pixel
        .iter()
        .zip(colour)
        .all(|(&p, c)| p.abs_diff(c) <= tolerance)
}

/// How many pixels have about `colour`, and in how many distinct columns.
fn colour_coverage(image: &Image, colour: [u8; 3]) -> (usize, usize) {
    let mut columns = vec![false; image.width];
    let mut pixels = 0;
    for (i, &p) in image.rgb.iter().enumerate() {
        if close_to(p, colour, 12) {
            pixels += 1;
            columns[i % image.width] = true;
        }
    }
    (pixels, columns.iter().filter(|&&c| c).count())
}

/// Share of pixels that differ from the most common (background) colour, and distinct colours.
fn ink_and_palette(image: &Image) -> (f64, usize) {
    let mut counts = std::collections::HashMap::new();
    for &p in &image.rgb {
        *counts.entry(p).or_insert(0usize) += 1;
    }
    let background = counts.values().copied().max().unwrap_or(0);
    let ink = 1.0 - background as f64 / image.rgb.len().max(1) as f64;
    (ink, counts.len())
}

/// Whether `token` occurs as a word of its own (not inside a longer word such as "info").
fn contains_token(haystack: &str, token: &str) -> bool {
    haystack.match_indices(token).any(|(i, _)| {
        let before = haystack[..i].chars().next_back();
        let after = haystack[i + token.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric()) && !after.is_some_and(|c| c.is_alphanumeric())
    })
}

fn assert_no_nan_or_inf(what: &str, text: &str) {
    for bad in ["NaN", "nan", "inf", "Infinity", "-inf"] {
        assert!(!contains_token(text, bad), "{what} contains {bad:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn sample_report_renders_charts_in_chromium() {
    let report = sample_report();
    let page = super::html::html(&report).unwrap();
    for id in [
        "chart-timeline-opens",
        "chart-timeline-clicks",
        "chart-rates",
    ] {
        assert!(
            page.contains(&format!("id=\"{id}\"")),
            "no #{id} in the page"
        );
    }
    assert_eq!(page.matches("data-chart=\"timeline\"").count(), 2);
    assert!(
        page.contains("id=\"row-money-holdout\""),
        "no conversions table"
    );
    assert_eq!(page.matches("data-chart=\"rates\"").count(), 1);
    assert!(page.contains("winter-sale-2026 &lt;edition 12&gt;"));
    assert!(!page.contains("<edition"));
    for needle in ["<script", "http://", "https://", "@import", "url("] {
        let allowed = needle == "http://"
            && page.matches(needle).count()
                == page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
        assert!(
            allowed || !page.contains(needle),
            "the page refers to {needle:?}"
        );
    }
    assert_no_nan_or_inf("the HTML", &page);

    let dir = tempfile::tempdir().unwrap();
    let image = decode_png(&screenshot(&page, dir.path(), "sample"));
    assert_eq!(image.width, 1280);
    assert!(
        image.height >= 2000,
        "screenshot only {} px high",
        image.height
    );

    let (ink, palette) = ink_and_palette(&image);
    assert!(
        ink > 0.05,
        "the page looks blank: only {:.1} % ink",
        ink * 100.0
    );
    assert!(palette > 100, "the page has only {palette} colours");

    for (name, colour) in [("A", COLOUR_A), ("B", COLOUR_B)] {
        let (pixels, columns) = colour_coverage(&image, colour);
        assert!(
            pixels >= 2_000,
            "variant {name}'s colour is on only {pixels} pixels: its lines were not drawn"
        );
        assert!(
            columns >= 500,
            "variant {name}'s colour spans only {columns} columns: no line across the charts"
        );
    }
}

#[test]
fn empty_report_says_no_opens_or_clicks_yet() {
    let report = empty_report();
    let page = super::html::html(&report).unwrap();
    assert!(
        page.to_lowercase().contains("no opens or clicks yet"),
        "the empty page does not say so"
    );
    assert!(!page.contains("data-chart=\"timeline\""));
    assert_no_nan_or_inf("the HTML", &page);
    let table = super::text::table(&report);
    assert!(table
        .to_lowercase()
        .contains("no deliveries, opens or clicks yet"));
    assert_no_nan_or_inf("the table", &table);
    let csv = super::csv::csv(&report);
    assert_no_nan_or_inf("the CSV", &csv);
    assert!(csv.starts_with("section,item,metric,value\r\n"));

    let dir = tempfile::tempdir().unwrap();
    let image = decode_png(&screenshot(&page, dir.path(), "empty"));
    let (ink, _) = ink_and_palette(&image);
    assert!(ink > 0.01, "the empty report's page looks blank");
}
