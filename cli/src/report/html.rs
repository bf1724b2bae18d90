//! The report as one self-contained HTML page with inline SVG charts (no scripts, fonts or
//! network), rendered from the minijinja template `report.html` with HTML autoescaping. This
//! file gathers what the page shows, every number already formatted for people; the charts
//! come from [`super::charts`].

use super::charts::{svg_line_chart, svg_rates_chart, Series};
use super::words::*;
use anyhow::Context;
use minijinja::{AutoEscape, Environment, Value};
use serde::Serialize;

/// The page template, compiled into the binary.
const TEMPLATE: &str = include_str!("report.html");

/// Everything the page shows.
#[derive(Serialize)]
struct Page<'a> {
    campaign: &'a str,
    generated: String,
    cards: Vec<Card>,
    machine_opens: String,
    machine_clicks: String,
    ab: Option<AbView>,
    /// The line charts; empty when there are no opens or clicks yet.
    timeline: Vec<Chart>,
    confidence: String,
    /// The rates chart; `None` before the first delivery.
    rates_chart: Option<Value>,
    variants: Vec<VariantView>,
    /// The holdout's row, below the variants.
    holdout: Option<HoldoutView>,
    /// Conversions and revenue per arm, when orders were imported or the metric needs them.
    money: Option<super::money::MoneyView>,
    domains: Vec<DomainView>,
    bounces: Vec<BounceView>,
    /// Policy blocks that held the campaign back, one sentence each; empty without any.
    blocks: Vec<String>,
    /// What each relay did (`[[relay]]`); empty when the campaign went direct to MX.
    relays: Vec<RelayView>,
}

/// One row of the relays table.
#[derive(Serialize)]
struct RelayView {
    relay: String,
    delivered: String,
    deferred: String,
    bounced: String,
    cooldowns: String,
}

/// One summary card.
#[derive(Serialize)]
struct Card {
    label: &'static str,
    value: String,
    note: String,
}

/// The A/B verdict box.
#[derive(Serialize)]
struct AbView {
    /// Extra CSS class: empty for a winner, ` inconclusive` otherwise.
    class: &'static str,
    badge: String,
    mode: String,
    metric: &'static str,
    confidence: String,
    headline: String,
    why: String,
    vetoes: Vec<String>,
    chances: Vec<Chance>,
    progress: Option<String>,
}

/// One variant's chance of being best, with its bar.
#[derive(Serialize)]
struct Chance {
    id: String,
    colour: &'static str,
    /// The bar's width in percent (CSS).
    width: String,
    text: String,
}

/// A titled chart.
#[derive(Serialize)]
struct Chart {
    title: String,
    /// The SVG markup (safe: built from escaped text).
    svg: Value,
}

/// One row of the variants table.
#[derive(Serialize)]
struct VariantView {
    id: String,
    colour: &'static str,
    share: String,
    recipients: String,
    delivered: String,
    bounced: String,
    opened: String,
    open: Option<RateCell>,
    clicked: String,
    click: Option<RateCell>,
    unsubscribed: String,
    complaints: String,
}

/// The holdout's row of the variants table.
#[derive(Serialize)]
struct HoldoutView {
    id: String,
    share: String,
    recipients: String,
}

/// A rate and its interval; `None` in a view before the first delivery.
#[derive(Serialize)]
struct RateCell {
    rate: String,
    ci: String,
}

/// One row of the domains table.
#[derive(Serialize)]
struct DomainView {
    other: bool,
    name: String,
    recipients: String,
    /// The recipients bar's width in pixels (CSS).
    bar: String,
    delivered: String,
    bounced: String,
    deferred: String,
    opened: String,
    open_rate: String,
    clicked: String,
    click_rate: String,
}

/// One row of the bounces table.
#[derive(Serialize)]
struct BounceView {
    category: String,
    hard: String,
    soft: String,
    total: String,
    /// The hard and soft bars' widths in percent (CSS).
    hard_width: String,
    soft_width: String,
}

/// Renders the report as one self-contained HTML page (inline CSS and SVG, no scripts).
pub(crate) fn html(report: &Report) -> anyhow::Result<String> {
    let ids = variant_ids(report);
    let page = Page {
        campaign: &report.campaign,
        generated: format_short_time(report.generated_at),
        cards: cards(report),
        machine_opens: format_count(report.engagement.machine_opens),
        machine_clicks: format_count(report.engagement.machine_clicks),
        ab: report.ab.as_ref().map(|ab| ab_view(ab, &ids)),
        timeline: timeline(report, &ids),
        confidence: format_confidence(report_confidence(report)),
        rates_chart: rates_chart(report, &ids),
        variants: report
            .variants
            .iter()
            .map(|v| variant_view(v, &ids))
            .collect(),
        holdout: report.holdout.as_ref().map(|h| HoldoutView {
            id: h.id.clone(),
            share: format_percent(h.share),
            recipients: format_count(h.recipients),
        }),
        money: report.money.as_ref().map(super::money::money_view),
        domains: domains(report),
        bounces: bounces(report),
        relays: report
            .relays
            .iter()
            .map(|r| RelayView {
                relay: r.relay.clone(),
                delivered: format_count(r.delivered),
                deferred: format_count(r.deferred),
                bounced: format_count(r.bounced),
                cooldowns: format_count(r.cooldowns),
            })
            .collect(),
        blocks: crate::words::blocks::block_lines(&report.blocks),
    };
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.add_template("report.html", TEMPLATE)
        .context("compiling the HTML report template")?;
    env.get_template("report.html")
        .and_then(|template| template.render(&page))
        .context("rendering the HTML report")
}

/// The summary cards: recipients by state and engagement.
fn cards(report: &Report) -> Vec<Card> {
    let c = &report.counts;
    let e = &report.engagement;
    let of_delivered = |n: u64| format!("{} of delivered", format_percent(ratio(n, c.delivered)));
    let card = |label, value: u64, note: String| Card {
        label,
        value: format_count(value),
        note,
    };
    let pending = if c.holdout > 0 {
        format!(
            "{} pending · {} held · {} in the holdout",
            format_count(c.pending),
            format_count(c.held),
            format_count(c.holdout)
        )
    } else if c.held > 0 {
        format!(
            "{} pending · {} held for the winner",
            format_count(c.pending),
            format_count(c.held)
        )
    } else {
        format!("{} pending", format_count(c.pending))
    };
    let pending = if c.waiting > 0 {
        format!(
            "{pending} · {} waiting for their window",
            format_count(c.waiting)
        )
    } else {
        pending
    };
    vec![
        card("Recipients", c.total, pending),
        card(
            "Delivered",
            c.delivered,
            format!(
                "{} of recipients",
                format_percent(ratio(c.delivered, c.total))
            ),
        ),
        card(
            "Bounced",
            c.bounced,
            format!(
                "{} · {} deferred · {} expired",
                format_percent(ratio(c.bounced, c.total)),
                format_count(c.deferred),
                format_count(c.expired)
            ),
        ),
        card(
            "Suppressed",
            c.suppressed,
            format!(
                "{} invalid · {} duplicate rows skipped{}",
                format_count(c.invalid),
                format_count(c.duplicate),
                if c.excluded > 0 {
                    format!(" · {} excluded by where", format_count(c.excluded))
                } else {
                    String::new()
                }
            ),
        ),
        card(
            "Opened",
            e.opened,
            format!(
                "{} · {}",
                of_delivered(e.opened),
                counted(e.opens, "open", "opens")
            ),
        ),
        card(
            "Clicked",
            e.clicked,
            format!(
                "{} · {}",
                of_delivered(e.clicked),
                counted(e.clicks, "click", "clicks")
            ),
        ),
        card("Unsubscribed", e.unsubscribed, of_delivered(e.unsubscribed)),
        card(
            "Complaints",
            report.complaints,
            of_delivered(report.complaints),
        ),
    ]
}

/// The A/B verdict box in plain words, with each variant's chance of being best.
fn ab_view(ab: &AbSummary, ids: &[String]) -> AbView {
    let v = &ab.verdict;
    let (class, badge) = match (v.verdict, &v.winner) {
        (VerdictKind::Winner, Some(w)) => ("", format!("Winner: {w}")),
        (VerdictKind::Winner, None) => ("", "Winner".to_string()),
        (VerdictKind::Inconclusive, _) => (" inconclusive", "Inconclusive".to_string()),
    };
    let chances = if v.variants.len() >= 2 {
        v.variants
            .iter()
            .map(|s| Chance {
                id: s.id.clone(),
                colour: variant_colour(ids, &s.id),
                width: format!("{:.1}", (finite(s.prob_best) * 100.0).clamp(0.0, 100.0)),
                text: format_probability(s.prob_best),
            })
            .collect()
    } else {
        Vec::new()
    };
    AbView {
        class,
        badge,
        mode: ab_mode_name(&ab.mode),
        metric: metric_name(v.metric),
        confidence: format_confidence(v.confidence),
        headline: verdict_headline(v),
        why: reason_sentence(&v.reason),
        vetoes: veto_sentences(v),
        chances,
        progress: ab_progress_sentence(ab),
    }
}

/// The opens and clicks line charts; none when nobody opened or clicked yet.
fn timeline(report: &Report, ids: &[String]) -> Vec<Chart> {
    let timeline = &report.timeline;
    if !has_engagement_over_time(report) {
        return Vec::new();
    }
    let starts: Vec<Millis> = timeline.buckets.iter().map(|b| b.at).collect();
    let width = timeline.bucket_ms.max(1);
    [
        ("Opens", "opens", "chart-timeline-opens", false),
        ("Clicks", "clicks", "chart-timeline-clicks", true),
    ]
    .into_iter()
    .map(|(title, unit, id, clicks)| {
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
        let svg = svg_line_chart(
            id,
            &format!("Human {unit} per variant over time"),
            &series,
            &starts,
            width,
        );
        Chart {
            title: format!("{title} per {}", format_period(width)),
            svg: Value::from_safe_string(svg),
        }
    })
    .collect()
}

/// The rates-and-intervals chart of the variants with deliveries, if any.
fn rates_chart(report: &Report, ids: &[String]) -> Option<Value> {
    let delivered: Vec<VariantRow> = report
        .variants
        .iter()
        .filter(|v| v.counts.delivered > 0)
        .cloned()
        .collect();
    (!delivered.is_empty()).then(|| Value::from_safe_string(svg_rates_chart(&delivered, ids)))
}

/// One row of the variants table.
fn variant_view(v: &VariantRow, ids: &[String]) -> VariantView {
    let cell = |rate: f64, ci: (f64, f64)| {
        (v.counts.delivered > 0).then(|| RateCell {
            rate: format_percent(rate),
            ci: format_interval(rate, ci),
        })
    };
    VariantView {
        id: v.id.clone(),
        colour: variant_colour(ids, &v.id),
        share: format_percent(v.share),
        recipients: format_count(v.recipients),
        delivered: format_count(v.counts.delivered),
        bounced: format_count(v.counts.bounced),
        opened: format_count(v.engagement.opened),
        open: cell(v.open_rate, v.open_ci),
        clicked: format_count(v.engagement.clicked),
        click: cell(v.click_rate, v.click_ci),
        unsubscribed: format_count(v.engagement.unsubscribed),
        complaints: format_count(v.complaints),
    }
}

/// The top domains, then the other domains together.
fn domains(report: &Report) -> Vec<DomainView> {
    let largest = report
        .domains
        .iter()
        .chain(&report.other_domains)
        .map(|d| d.recipients)
        .max()
        .unwrap_or(0);
    report
        .domains
        .iter()
        .map(|d| (false, d))
        .chain(report.other_domains.iter().map(|d| (true, d)))
        .map(|(other, d)| DomainView {
            other,
            name: d.domain.clone(),
            recipients: format_count(d.recipients),
            bar: format!(
                "{:.0}",
                (ratio(d.recipients, largest) * 120.0).clamp(0.0, 120.0)
            ),
            delivered: format_count(d.delivered),
            bounced: format_count(d.bounced),
            deferred: format_count(d.deferred),
            opened: format_count(d.opened),
            open_rate: format_percent(ratio(d.opened, d.delivered)),
            clicked: format_count(d.clicked),
            click_rate: format_percent(ratio(d.clicked, d.delivered)),
        })
        .collect()
}

/// The bounce categories, with hard/soft bars scaled to the largest.
fn bounces(report: &Report) -> Vec<BounceView> {
    let largest = report
        .bounces
        .iter()
        .map(|b| b.hard.saturating_add(b.soft))
        .max()
        .unwrap_or(0);
    report
        .bounces
        .iter()
        .map(|b| {
            let total = b.hard.saturating_add(b.soft);
            let scale = ratio(total, largest) * 100.0;
            BounceView {
                category: b.category.clone(),
                hard: format_count(b.hard),
                soft: format_count(b.soft),
                total: format_count(total),
                hard_width: format!("{:.1}", ratio(b.hard, total) * scale),
                soft_width: format!("{:.1}", ratio(b.soft, total) * scale),
            }
        })
        .collect()
}
