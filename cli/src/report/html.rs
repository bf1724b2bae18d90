//! The report as one self-contained HTML page with inline SVG charts (no scripts, fonts or
//! network).

use super::words::*;

// ---------------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------------

pub(super) const CSS: &str = r#"
:root{--ink:#111827;--muted:#6b7280;--faint:#9ca3af;--line:#e5e7eb;--bg:#f5f6f8;--card:#fff}
*{box-sizing:border-box}
html{background:var(--bg)}
body{margin:0;color:var(--ink);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans","Liberation Sans",sans-serif;-webkit-font-smoothing:antialiased}
main{max-width:1120px;margin:0 auto;padding:28px 24px 40px}
header.top{display:flex;justify-content:space-between;align-items:flex-end;gap:24px;padding-bottom:18px;margin-bottom:22px;border-bottom:1px solid var(--line)}
.eyebrow{font-size:12px;font-weight:600;letter-spacing:.08em;text-transform:uppercase;color:var(--muted)}
h1{font-size:26px;line-height:1.2;margin:4px 0 0;word-break:break-all}
.generated{color:var(--muted);font-size:13px;text-align:right;white-space:nowrap}
h2{font-size:16px;margin:0 0 14px}
h3{font-size:13px;font-weight:600;color:var(--muted);margin:18px 0 6px;text-transform:uppercase;letter-spacing:.05em}
section.panel{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:20px 24px;margin-bottom:18px}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:12px;margin-bottom:10px}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:14px 16px}
.card .label{font-size:12px;font-weight:600;letter-spacing:.05em;text-transform:uppercase;color:var(--muted)}
.card .value{font-size:26px;font-weight:650;line-height:1.3;font-variant-numeric:tabular-nums}
.card .note{font-size:12.5px;color:var(--muted);font-variant-numeric:tabular-nums}
.footnote{font-size:12.5px;color:var(--muted);margin:0 0 18px}
.verdict{border-left:6px solid #16a34a}
.verdict.inconclusive{border-left-color:#d97706}
.verdict.none{border-left-color:var(--faint)}
.verdict .head{display:flex;align-items:center;gap:12px;margin-bottom:8px}
.verdict .head h2{margin:0}
.badge{display:inline-block;font-size:12px;font-weight:600;padding:2px 10px;border-radius:999px;background:#dcfce7;color:#166534}
.inconclusive .badge{background:#fef3c7;color:#92400e}
.none .badge{background:#f3f4f6;color:#374151}
.headline{font-size:16.5px;font-weight:500;margin:0 0 6px}
.verdict p{margin:4px 0}
.why{color:var(--muted)}
.veto{color:#b91c1c}
.probs{display:grid;grid-template-columns:max-content 320px max-content;gap:6px 12px;align-items:center;margin:12px 0 6px;font-variant-numeric:tabular-nums}
.track{height:10px;background:#f3f4f6;border-radius:5px;overflow:hidden}
.fill{height:10px;border-radius:5px}
.muted{color:var(--muted)}
.empty{color:var(--muted);font-style:italic;margin:6px 0}
.chart{display:block;max-width:100%;height:auto}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:7px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap;vertical-align:top}
th:first-child,td:first-child{text-align:left;padding-left:0}
th:last-child,td:last-child{padding-right:0}
th{font-size:11.5px;font-weight:600;letter-spacing:.05em;text-transform:uppercase;color:var(--muted)}
tr:last-child td{border-bottom:none}
tr.other td{color:var(--muted)}
td .ci{display:block;font-size:12px;color:var(--muted)}
.swatch{display:inline-block;width:10px;height:10px;border-radius:3px;margin-right:8px}
.bar{display:inline-block;height:8px;border-radius:4px;vertical-align:middle}
.stack{display:flex;width:160px;height:8px;border-radius:4px;overflow:hidden;background:#f3f4f6;margin-left:auto;margin-top:6px}
.legend{display:flex;gap:18px;font-size:12.5px;color:var(--muted);margin-top:8px}
.legend span{display:inline-flex;align-items:center;gap:6px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:12.5px}
footer{color:var(--faint);font-size:12px;text-align:center;margin-top:8px}
@media (max-width:800px){.cards{grid-template-columns:repeat(2,1fr)}}
"#;

/// Renders the report as one self-contained HTML page (inline CSS and SVG, no scripts).
pub(crate) fn html(report: &Report) -> String {
    let ids = variant_ids(report);
    let mut out = String::with_capacity(64 * 1024);
    put!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Volley report · {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        escape(&report.campaign)
    );
    html_header(&mut out, report);
    html_cards(&mut out, report);
    html_verdict(&mut out, report, &ids);
    html_timeline(&mut out, report, &ids);
    html_rates(&mut out, report, &ids);
    html_variants_table(&mut out, report, &ids);
    html_domains_table(&mut out, report);
    html_bounces_table(&mut out, report);
    out.push_str(
        "<footer>Generated by Volley · all times UTC</footer>\n</main>\n</body>\n</html>\n",
    );
    out
}

/// The page header: campaign and generation time.
pub(super) fn html_header(out: &mut String, report: &Report) {
    put!(
        out,
        "<header class=\"top\"><div><div class=\"eyebrow\">Volley · campaign report</div>\
         <h1>{}</h1></div><div class=\"generated\">Generated<br><strong>{} UTC</strong></div></header>\n",
        escape(&report.campaign),
        escape(&format_short_time(report.generated_at))
    );
}

/// One summary card.
pub(super) fn html_card(label: &str, value: &str, note: &str) -> String {
    format!(
        "<div class=\"card\"><div class=\"label\">{}</div><div class=\"value\">{}</div>\
         <div class=\"note\">{}</div></div>",
        escape(label),
        escape(value),
        escape(note)
    )
}

/// The summary cards: recipients by state and engagement.
pub(super) fn html_cards(out: &mut String, report: &Report) {
    let c = &report.counts;
    let e = &report.engagement;
    let of_delivered = |n: u64| format!("{} of delivered", format_percent(ratio(n, c.delivered)));
    let cards = [
        html_card(
            "Recipients",
            &format_count(c.total),
            &if c.held > 0 {
                format!(
                    "{} pending · {} held for the winner",
                    format_count(c.pending),
                    format_count(c.held)
                )
            } else {
                format!("{} pending", format_count(c.pending))
            },
        ),
        html_card(
            "Delivered",
            &format_count(c.delivered),
            &format!(
                "{} of recipients",
                format_percent(ratio(c.delivered, c.total))
            ),
        ),
        html_card(
            "Bounced",
            &format_count(c.bounced),
            &format!(
                "{} · {} deferred · {} expired",
                format_percent(ratio(c.bounced, c.total)),
                format_count(c.deferred),
                format_count(c.expired)
            ),
        ),
        html_card(
            "Suppressed",
            &format_count(c.suppressed),
            &format!(
                "{} invalid · {} duplicate rows skipped",
                format_count(c.invalid),
                format_count(c.duplicate)
            ),
        ),
        html_card(
            "Opened",
            &format_count(e.opened),
            &format!(
                "{} · {} opens",
                of_delivered(e.opened),
                format_count(e.opens)
            ),
        ),
        html_card(
            "Clicked",
            &format_count(e.clicked),
            &format!(
                "{} · {} clicks",
                of_delivered(e.clicked),
                format_count(e.clicks)
            ),
        ),
        html_card(
            "Unsubscribed",
            &format_count(e.unsubscribed),
            &of_delivered(e.unsubscribed),
        ),
        html_card(
            "Complaints",
            &format_count(report.complaints),
            &of_delivered(report.complaints),
        ),
    ];
    put!(out, "<div class=\"cards\">{}</div>\n", cards.concat());
    put!(
        out,
        "<p class=\"footnote\">Opened and clicked count unique people, human events only; \
         {} machine-made opens and {} machine-made clicks (scanners, prefetching) are left out.</p>\n",
        format_count(e.machine_opens),
        format_count(e.machine_clicks)
    );
}

/// The A/B verdict box in plain words, with each variant's chance of being best.
pub(super) fn html_verdict(out: &mut String, report: &Report, ids: &[String]) {
    let Some(ab) = &report.ab else {
        out.push_str(
            "<section class=\"panel verdict none\" id=\"verdict\"><div class=\"head\"><h2>A/B test</h2>\
             <span class=\"badge\">None</span></div>\
             <p class=\"muted\">This campaign has a single variant, so there is nothing to compare.</p></section>\n",
        );
        return;
    };
    let v = &ab.verdict;
    let (class, badge) = match (v.verdict, &v.winner) {
        (VerdictKind::Winner, Some(w)) => ("", format!("Winner: {w}")),
        (VerdictKind::Winner, None) => ("", "Winner".to_string()),
        (VerdictKind::Inconclusive, _) => (" inconclusive", "Inconclusive".to_string()),
    };
    put!(
        out,
        "<section class=\"panel verdict{class}\" id=\"verdict\"><div class=\"head\"><h2>A/B test</h2>\
         <span class=\"badge\">{}</span><span class=\"muted\">{} · {} · {} confidence</span></div>\n",
        escape(&badge),
        escape(&ab_mode_name(&ab.mode)),
        escape(metric_name(v.metric)),
        escape(&format_confidence(v.confidence))
    );
    put!(
        out,
        "<p class=\"headline\">{}</p>\n",
        escape(&verdict_headline(v))
    );
    let why = reason_sentence(&v.reason);
    if !why.is_empty() {
        put!(out, "<p class=\"why\">{}</p>\n", escape(&why));
    }
    for s in veto_sentences(v) {
        put!(out, "<p class=\"veto\">{}</p>\n", escape(&s));
    }
    if v.variants.len() >= 2 {
        out.push_str("<div class=\"probs\">");
        for s in &v.variants {
            let pct = (finite(s.prob_best) * 100.0).clamp(0.0, 100.0);
            put!(
                out,
                "<span><span class=\"swatch\" style=\"background:{colour}\"></span>{id}</span>\
                 <div class=\"track\"><div class=\"fill\" style=\"width:{pct:.1}%;background:{colour}\"></div></div>\
                 <span class=\"muted\">{} chance of being best</span>",
                escape(&format_probability(s.prob_best)),
                colour = variant_colour(ids, &s.id),
                id = escape(&s.id),
            );
        }
        out.push_str("</div>\n");
    }
    if let Some(s) = ab_progress_sentence(ab) {
        put!(out, "<p>{}</p>\n", escape(&s));
    }
    out.push_str("</section>\n");
}

/// One line of a line chart.
pub(super) struct Series<'a> {
    /// The legend label.
    label: &'a str,
    /// The stroke colour.
    colour: &'static str,
    /// One value per bucket.
    values: Vec<u64>,
}

/// The section with the opens and clicks line charts.
pub(super) fn html_timeline(out: &mut String, report: &Report, ids: &[String]) {
    let timeline = &report.timeline;
    out.push_str("<section class=\"panel\" id=\"timeline\"><h2>Opens and clicks over time</h2>\n");
    if !has_engagement_over_time(report) {
        out.push_str("<p class=\"empty\">No opens or clicks yet.</p></section>\n");
        return;
    }
    let starts: Vec<Millis> = timeline.buckets.iter().map(|b| b.at).collect();
    let width = timeline.bucket_ms.max(1);
    for (title, unit, id, clicks) in [
        ("Opens", "opens", "chart-timeline-opens", false),
        ("Clicks", "clicks", "chart-timeline-clicks", true),
    ] {
        let series: Vec<Series> = timeline
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| Series {
                label: v,
                colour: variant_colour(ids, v),
                values: variant_series(report, i, clicks),
            })
            .collect();
        put!(
            out,
            "<h3>{title} per {}</h3>\n{}\n",
            escape(&format_period(width)),
            svg_line_chart(
                id,
                &format!("Human {unit} per variant over time"),
                &series,
                &starts,
                width
            )
        );
    }
    out.push_str("</section>\n");
}

/// A round axis for counts: (top, step), with at most about five steps.
pub(super) fn nice_count_axis(max: u64) -> (u64, u64) {
    if max == 0 {
        return (4, 1);
    }
    let raw = max as f64 / 4.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let normalised = raw / magnitude;
    let nice = if normalised <= 1.0 {
        1.0
    } else if normalised <= 2.0 {
        2.0
    } else if normalised <= 5.0 {
        5.0
    } else {
        10.0
    };
    let step = ((nice * magnitude).round() as u64).max(1);
    let top = max.div_ceil(step).saturating_mul(step);
    (top.max(step), step)
}

/// Round tick times between `t0` and `t1` (UTC-aligned), at most about eight.
pub(super) fn time_ticks(t0: Millis, t1: Millis) -> (Vec<Millis>, u64) {
    const STEPS: [u64; 17] = [
        MINUTE_MS,
        2 * MINUTE_MS,
        5 * MINUTE_MS,
        10 * MINUTE_MS,
        15 * MINUTE_MS,
        30 * MINUTE_MS,
        HOUR_MS,
        2 * HOUR_MS,
        3 * HOUR_MS,
        6 * HOUR_MS,
        12 * HOUR_MS,
        DAY_MS,
        2 * DAY_MS,
        7 * DAY_MS,
        14 * DAY_MS,
        28 * DAY_MS,
        91 * DAY_MS,
    ];
    let span = t1.saturating_sub(t0);
    let step = STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 8)
        .unwrap_or_else(|| span.div_ceil(8).max(1));
    let mut ticks = Vec::new();
    let mut t = t0.div_ceil(step).saturating_mul(step);
    while t <= t1 && ticks.len() < 64 {
        ticks.push(t);
        t = t.saturating_add(step);
    }
    if ticks.is_empty() {
        ticks.push(t0);
    }
    (ticks, step)
}

/// A line chart of per-bucket counts, one line per series, with axes, grid and legend.
pub(super) fn svg_line_chart(
    id: &str,
    title: &str,
    series: &[Series],
    starts: &[Millis],
    bucket_ms: u64,
) -> String {
    const W: f64 = 1000.0;
    const H: f64 = 250.0;
    const LEFT: f64 = 58.0;
    const RIGHT: f64 = 26.0;
    const TOP: f64 = 34.0;
    const BOTTOM: f64 = 46.0;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let baseline = TOP + plot_h;

    let t0 = starts.iter().copied().min().unwrap_or(0);
    let t1 = starts
        .iter()
        .copied()
        .max()
        .unwrap_or(t0)
        .saturating_add(bucket_ms);
    let span = t1.saturating_sub(t0).max(1) as f64;
    let x_of = |t: Millis| LEFT + (t.saturating_sub(t0) as f64 / span) * plot_w;
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0);
    let (y_top, y_step) = nice_count_axis(max);
    let y_of = |v: u64| baseline - (v as f64 / y_top as f64) * plot_h;

    let mut svg = String::with_capacity(16 * 1024);
    put!(
        svg,
        "<svg class=\"chart\" data-chart=\"timeline\" id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"{id}-title\" \
         font-size=\"12\" font-family=\"system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif\">\
         <title id=\"{id}-title\">{}</title>",
        escape(title)
    );

    // Horizontal grid and count labels.
    let mut v = 0u64;
    while v <= y_top {
        let y = y_of(v);
        let stroke = if v == 0 { "#9ca3af" } else { "#eceef1" };
        put!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{stroke}\" stroke-width=\"1\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#6b7280\">{}</text>",
            LEFT + plot_w,
            LEFT - 8.0,
            y + 4.0,
            format_count(v)
        );
        v = v.saturating_add(y_step);
        if y_step == 0 {
            break;
        }
    }

    // Time ticks and labels (a date line under the clock when the day changes).
    let (ticks, step) = time_ticks(t0, t1);
    let mut last_day = String::new();
    for t in ticks {
        let x = x_of(t);
        put!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{baseline:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#9ca3af\"/>",
            baseline + 5.0
        );
        let day = format_day(t);
        if step >= DAY_MS {
            put!(
                svg,
                "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#374151\">{}</text>",
                baseline + 19.0,
                escape(&day)
            );
        } else {
            put!(
                svg,
                "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#374151\">{}</text>",
                baseline + 19.0,
                format_clock(t)
            );
            if day != last_day {
                put!(
                    svg,
                    "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#6b7280\" font-weight=\"600\">{}</text>",
                    baseline + 35.0,
                    escape(&day)
                );
            }
        }
        last_day = day;
    }

    // The lines (over a faint area when there is only one); markers when there are few points.
    let half = bucket_ms / 2;
    for s in series {
        let points: Vec<(f64, f64)> = starts
            .iter()
            .zip(&s.values)
            .map(|(&t, &v)| (x_of(t.saturating_add(half)), y_of(v)))
            .collect();
        let (Some(first), Some(last)) = (points.first(), points.last()) else {
            continue;
        };
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let path = path.join(" ");
        if series.len() == 1 {
            put!(
                svg,
                "<polygon points=\"{:.1},{baseline:.1} {path} {:.1},{baseline:.1}\" fill=\"{}\" fill-opacity=\"0.08\"/>",
                first.0,
                last.0,
                s.colour
            );
        }
        put!(
            svg,
            "<polyline points=\"{path}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2.5\" \
             stroke-linejoin=\"round\" stroke-linecap=\"round\"><title>{}</title></polyline>",
            s.colour,
            escape(s.label)
        );
        if points.len() <= 40 {
            for (x, y) in &points {
                put!(
                    svg,
                    "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{}\" stroke=\"#fff\" stroke-width=\"1\"/>",
                    s.colour
                );
            }
        }
    }

    // The legend, right-aligned above the plot.
    let entries: Vec<(String, &str, f64)> = series
        .iter()
        .map(|s| {
            let label = truncate_label(s.label, 18);
            let width = 28.0 + label.chars().count() as f64 * 7.2 + 18.0;
            (label, s.colour, width)
        })
        .collect();
    let mut x = LEFT + plot_w - entries.iter().map(|e| e.2).sum::<f64>();
    for (label, colour, width) in entries {
        put!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"14\" x2=\"{:.1}\" y2=\"14\" stroke=\"{colour}\" stroke-width=\"3\" stroke-linecap=\"round\"/>\
             <text x=\"{:.1}\" y=\"18\" fill=\"#374151\" font-weight=\"600\">{}</text>",
            x + 20.0,
            x + 28.0,
            escape(&label)
        );
        x += width;
    }
    svg.push_str("</svg>");
    svg
}

/// The section with the rates-and-intervals chart.
pub(super) fn html_rates(out: &mut String, report: &Report, ids: &[String]) {
    let confidence = format_confidence(report_confidence(report));
    put!(
        out,
        "<section class=\"panel\" id=\"rates\"><h2>Rates with {} intervals</h2>\n",
        escape(&confidence)
    );
    let delivered: Vec<VariantRow> = report
        .variants
        .iter()
        .filter(|v| v.counts.delivered > 0)
        .cloned()
        .collect();
    if delivered.is_empty() {
        out.push_str("<p class=\"empty\">No deliveries yet, so no rates.</p></section>\n");
        return;
    }
    out.push_str(&svg_rates_chart(&delivered, ids));
    put!(
        out,
        "\n<p class=\"footnote\" style=\"margin:8px 0 0\">Dot: observed rate per delivered message. \
         Whiskers: {} Wilson interval.</p></section>\n",
        escape(&confidence)
    );
}

/// A round axis for rates: (top, step) in rate units, at most about five steps.
pub(super) fn nice_rate_axis(max: f64) -> (f64, f64) {
    let max = finite(max).clamp(0.0, 1.0);
    if max <= 0.0 {
        return (0.01, 0.0025);
    }
    let raw = max / 4.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let normalised = raw / magnitude;
    let nice = if normalised <= 1.0 {
        1.0
    } else if normalised <= 2.0 {
        2.0
    } else if normalised <= 2.5 {
        2.5
    } else if normalised <= 5.0 {
        5.0
    } else {
        10.0
    };
    let step = nice * magnitude;
    let top = ((max / step).ceil() * step).max(step);
    (top, step)
}

/// Dot-and-whisker chart: open rate and click rate per variant, each with its interval.
pub(super) fn svg_rates_chart(variants: &[VariantRow], ids: &[String]) -> String {
    const W: f64 = 1000.0;
    const ROW: f64 = 40.0;
    const TOP: f64 = 34.0;
    const BOTTOM: f64 = 30.0;
    const PANEL_W: f64 = 490.0;
    const LABEL_W: f64 = 70.0;
    const VALUE_W: f64 = 150.0;
    let rows_h = ROW * variants.len() as f64;
    let h = TOP + rows_h + BOTTOM;

    let mut svg = String::with_capacity(8 * 1024);
    put!(
        svg,
        "<svg class=\"chart\" data-chart=\"rates\" id=\"chart-rates\" xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{W}\" height=\"{h}\" viewBox=\"0 0 {W} {h}\" role=\"img\" aria-labelledby=\"chart-rates-title\" \
         font-size=\"12\" font-family=\"system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif\">\
         <title id=\"chart-rates-title\">Open and click rates per variant with intervals</title>"
    );
    type Pick = fn(&VariantRow) -> (f64, (f64, f64));
    let panels: [(&str, f64, Pick); 2] = [
        ("Open rate", 0.0, |v| (v.open_rate, v.open_ci)),
        ("Click rate", W - PANEL_W, |v| (v.click_rate, v.click_ci)),
    ];
    for (title, px, pick) in panels {
        let x0 = px + LABEL_W;
        let plot_w = PANEL_W - LABEL_W - VALUE_W;
        let max = variants
            .iter()
            .map(|v| {
                let (rate, ci) = pick(v);
                finite(rate).max(finite(ci.1))
            })
            .fold(0.0, f64::max);
        let (top, step) = nice_rate_axis(max);
        let x_of = |r: f64| x0 + (finite(r).clamp(0.0, top) / top) * plot_w;
        put!(
            svg,
            "<text x=\"{x0:.1}\" y=\"16\" fill=\"#111827\" font-size=\"13\" font-weight=\"600\">{title}</text>"
        );
        // Vertical grid with percent labels under the rows.
        let mut i = 0u32;
        loop {
            let r = step * f64::from(i);
            if r > top + step * 1e-6 || i > 20 {
                break;
            }
            let x = x_of(r);
            let label = format_percent_tick(r);
            put!(
                svg,
                "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{}\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#6b7280\">{label}</text>",
                TOP + rows_h,
                if i == 0 { "#9ca3af" } else { "#eceef1" },
                TOP + rows_h + 18.0
            );
            i += 1;
        }
        for (row, v) in variants.iter().enumerate() {
            let (rate, ci) = pick(v);
            let colour = variant_colour(ids, &v.id);
            let y = TOP + ROW * row as f64 + ROW / 2.0;
            let (lo, hi) = (x_of(ci.0.min(ci.1)), x_of(ci.1.max(ci.0)));
            let x = x_of(rate);
            put!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#374151\" font-weight=\"600\">{}</text>\
                 <line x1=\"{lo:.1}\" y1=\"{y:.1}\" x2=\"{hi:.1}\" y2=\"{y:.1}\" stroke=\"{colour}\" stroke-width=\"2.5\"/>\
                 <line x1=\"{lo:.1}\" y1=\"{:.1}\" x2=\"{lo:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"2.5\"/>\
                 <line x1=\"{hi:.1}\" y1=\"{:.1}\" x2=\"{hi:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"2.5\"/>\
                 <circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"6.5\" fill=\"{colour}\" stroke=\"#fff\" stroke-width=\"2\">\
                 <title>{} {}: {} ({})</title></circle>\
                 <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#111827\" font-weight=\"600\">{}\
                 <tspan fill=\"#6b7280\" font-weight=\"400\" dx=\"6\">{}</tspan></text>",
                x0 - 14.0,
                y + 4.0,
                escape(&truncate_label(&v.id, 8)),
                y - 7.0,
                y + 7.0,
                y - 7.0,
                y + 7.0,
                escape(&v.id),
                title.to_lowercase(),
                escape(&format_percent(rate)),
                escape(&format_interval(rate, ci)),
                x0 + plot_w + 14.0,
                y + 4.0,
                escape(&format_percent(rate)),
                escape(&format_interval(rate, ci)),
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// A table cell with a variant's colour swatch and id.
pub(super) fn variant_cell(ids: &[String], id: &str) -> String {
    format!(
        "<td><span class=\"swatch\" style=\"background:{}\"></span><strong>{}</strong></td>",
        variant_colour(ids, id),
        escape(id)
    )
}

/// The variants table.
pub(super) fn html_variants_table(out: &mut String, report: &Report, ids: &[String]) {
    out.push_str("<section class=\"panel\" id=\"variants\"><h2>Variants</h2>\n");
    if report.variants.is_empty() {
        out.push_str("<p class=\"empty\">No variants yet.</p></section>\n");
        return;
    }
    out.push_str(
        "<table id=\"table-variants\"><thead><tr><th>Variant</th><th>Share</th><th>Recipients</th>\
         <th>Delivered</th><th>Bounced</th><th>Opened</th><th>Open rate</th><th>Clicked</th>\
         <th>Click rate</th><th>Unsubscribed</th><th>Complaints</th></tr></thead><tbody>\n",
    );
    for v in &report.variants {
        let rate_cell = |rate: f64, ci: (f64, f64)| {
            if v.counts.delivered == 0 {
                "–".to_string()
            } else {
                format!(
                    "{}<span class=\"ci\">{}</span>",
                    escape(&format_percent(rate)),
                    escape(&format_interval(rate, ci))
                )
            }
        };
        put!(
            out,
            "<tr>{}<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            variant_cell(ids, &v.id),
            escape(&format_percent(v.share)),
            format_count(v.recipients),
            format_count(v.counts.delivered),
            format_count(v.counts.bounced),
            format_count(v.engagement.opened),
            rate_cell(v.open_rate, v.open_ci),
            format_count(v.engagement.clicked),
            rate_cell(v.click_rate, v.click_ci),
            format_count(v.engagement.unsubscribed),
            format_count(v.complaints),
        );
    }
    out.push_str("</tbody></table></section>\n");
}

/// The top-domains table, with the other domains together in a last row.
pub(super) fn html_domains_table(out: &mut String, report: &Report) {
    out.push_str("<section class=\"panel\" id=\"domains\"><h2>Top domains</h2>\n");
    if report.domains.is_empty() && report.other_domains.is_none() {
        out.push_str("<p class=\"empty\">No recipients yet.</p></section>\n");
        return;
    }
    let largest = report
        .domains
        .iter()
        .chain(&report.other_domains)
        .map(|d| d.recipients)
        .max()
        .unwrap_or(0);
    out.push_str(
        "<table id=\"table-domains\"><thead><tr><th>Domain</th><th>Recipients</th><th></th>\
         <th>Delivered</th><th>Bounced</th><th>Deferred</th><th>Opened</th><th>Open rate</th>\
         <th>Clicked</th><th>Click rate</th></tr></thead><tbody>\n",
    );
    let rows = report
        .domains
        .iter()
        .map(|d| (false, d))
        .chain(report.other_domains.iter().map(|d| (true, d)));
    for (other, d) in rows {
        let name = if other {
            "All other domains".to_string()
        } else {
            format!("<code>{}</code>", escape(&d.domain))
        };
        let bar = (ratio(d.recipients, largest) * 120.0).clamp(0.0, 120.0);
        put!(
            out,
            "<tr{}><td>{name}</td><td>{}</td>\
             <td style=\"text-align:left;width:130px\"><span class=\"bar\" style=\"width:{bar:.0}px;background:#cbd5e1\"></span></td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            if other { " class=\"other\"" } else { "" },
            format_count(d.recipients),
            format_count(d.delivered),
            format_count(d.bounced),
            format_count(d.deferred),
            format_count(d.opened),
            escape(&format_percent(ratio(d.opened, d.delivered))),
            format_count(d.clicked),
            escape(&format_percent(ratio(d.clicked, d.delivered))),
        );
    }
    out.push_str("</tbody></table></section>\n");
}

/// The bounce-categories table, with a hard/soft bar per row.
pub(super) fn html_bounces_table(out: &mut String, report: &Report) {
    const HARD: &str = "#b91c1c";
    const SOFT: &str = "#f59e0b";
    out.push_str("<section class=\"panel\" id=\"bounces\"><h2>Bounce categories</h2>\n");
    if report.bounces.is_empty() {
        out.push_str("<p class=\"empty\">No bounces.</p></section>\n");
        return;
    }
    let largest = report
        .bounces
        .iter()
        .map(|b| b.hard.saturating_add(b.soft))
        .max()
        .unwrap_or(0);
    put!(
        out,
        "<table id=\"table-bounces\"><thead><tr><th>Reason</th><th>Hard</th><th>Soft</th>\
         <th>Total</th><th style=\"width:190px\"><span class=\"legend\" style=\"justify-content:flex-end;margin:0\">\
         <span><span class=\"swatch\" style=\"background:{HARD};margin:0\"></span>hard</span>\
         <span><span class=\"swatch\" style=\"background:{SOFT};margin:0\"></span>soft</span></span></th>\
         </tr></thead><tbody>\n"
    );
    for b in &report.bounces {
        let total = b.hard.saturating_add(b.soft);
        let scale = ratio(total, largest) * 100.0;
        let hard = ratio(b.hard, total) * scale;
        let soft = ratio(b.soft, total) * scale;
        put!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td><strong>{}</strong></td>\
             <td><div class=\"stack\"><div style=\"width:{hard:.1}%;background:{HARD}\"></div>\
             <div style=\"width:{soft:.1}%;background:{SOFT}\"></div></div></td></tr>\n",
            escape(&b.category),
            format_count(b.hard),
            format_count(b.soft),
            format_count(total),
        );
    }
    out.push_str("</tbody></table></section>\n");
}
