//! The report as aligned plain text for the terminal.

use super::words::*;

// ---------------------------------------------------------------------------------------------
// Terminal table
// ---------------------------------------------------------------------------------------------

/// How a column of a plain-text table is aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Align {
    Left,
    Right,
}

/// An aligned plain-text table, indented by two spaces; no header line when `headers` is empty.
pub(super) fn text_table(headers: &[&str], aligns: &[Align], rows: &[Vec<String>]) -> String {
    let mut widths = vec![0usize; aligns.len()];
    for (width, header) in widths.iter_mut().zip(headers) {
        *width = (*width).max(header.chars().count());
    }
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    if !headers.is_empty() {
        let header_cells: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
        out.push_str(&text_row(&header_cells, &widths, aligns));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(&text_row(&rule, &widths, aligns));
    }
    for row in rows {
        out.push_str(&text_row(row, &widths, aligns));
    }
    out
}

/// One line of [`text_table`].
pub(super) fn text_row(cells: &[String], widths: &[usize], aligns: &[Align]) -> String {
    let mut line = String::from(" ");
    for ((cell, width), align) in cells.iter().zip(widths).zip(aligns) {
        line.push(' ');
        let pad = width.saturating_sub(cell.chars().count());
        if *align == Align::Right {
            line.push_str(&" ".repeat(pad));
            line.push_str(cell);
        } else {
            line.push_str(cell);
            line.push_str(&" ".repeat(pad));
        }
        line.push(' ');
    }
    let mut line = line.trim_end().to_string();
    line.push('\n');
    line
}

/// A sparkline of block characters, at most `width` wide (neighbouring values are summed).
pub(super) fn sparkline(values: &[u64], width: usize) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let group = values.len().div_ceil(width.max(1)).max(1);
    let sums: Vec<u64> = values.chunks(group).map(|c| c.iter().sum()).collect();
    let max = sums.iter().copied().max().unwrap_or(0);
    sums.iter()
        .map(|&v| {
            if v == 0 || max == 0 {
                ' '
            } else {
                let level = ((v as f64 / max as f64) * 7.0).round() as usize;
                BLOCKS[level.min(7)]
            }
        })
        .collect()
}

/// Renders the report as aligned plain text for a terminal.
pub(crate) fn table(report: &Report) -> String {
    let mut out = String::new();
    put!(
        out,
        "Campaign {}\nReport generated {}\n",
        report.campaign,
        format_millis(report.generated_at)
    );
    table_summary(&mut out, report);
    table_variants(&mut out, report);
    table_ab(&mut out, report);
    super::money::table_money(&mut out, report);
    table_domains(&mut out, report);
    table_bounces(&mut out, report);
    table_relays(&mut out, report);
    table_blocks(&mut out, report);
    table_timeline(&mut out, report);
    out
}

/// What each relay did (`[[relay]]`); nothing when the campaign went direct to MX.
pub(super) fn table_relays(out: &mut String, report: &Report) {
    if report.relays.is_empty() {
        return;
    }
    out.push_str("\nRELAYS\n");
    let rows: Vec<Vec<String>> = report
        .relays
        .iter()
        .map(|r| {
            vec![
                r.relay.clone(),
                format_count(r.delivered),
                format_count(r.deferred),
                format_count(r.bounced),
                format_count(r.cooldowns),
            ]
        })
        .collect();
    out.push_str(&text_table(
        &["Relay", "Delivered", "Deferred", "Bounced", "Taken out"],
        &[
            Align::Left,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
        ],
        &rows,
    ));
}

/// The recipients by state and the whole campaign's engagement.
pub(super) fn table_summary(out: &mut String, report: &Report) {
    let c: &Counts = &report.counts;
    let of_total = |n: u64| format!("{} of recipients", format_percent(ratio(n, c.total)));
    let mut rows = vec![
        vec!["Recipients".into(), format_count(c.total), String::new()],
        vec![
            "Delivered".into(),
            format_count(c.delivered),
            of_total(c.delivered),
        ],
        vec![
            "Bounced".into(),
            format_count(c.bounced),
            of_total(c.bounced),
        ],
        vec![
            "Deferred".into(),
            format_count(c.deferred),
            "waiting for a retry".into(),
        ],
        vec!["Expired".into(), format_count(c.expired), String::new()],
        vec![
            "Pending".into(),
            format_count(c.pending),
            "not attempted yet".into(),
        ],
        vec![
            "Suppressed".into(),
            format_count(c.suppressed),
            String::new(),
        ],
        vec![
            "Held".into(),
            format_count(c.held),
            "held back for the A/B winner".into(),
        ],
        vec![
            "Invalid rows".into(),
            format_count(c.invalid),
            "skipped".into(),
        ],
        vec![
            "Duplicate rows".into(),
            format_count(c.duplicate),
            "skipped".into(),
        ],
    ];
    if c.excluded > 0 {
        rows.push(vec![
            "Excluded rows".into(),
            format_count(c.excluded),
            "left out by [campaign] where".into(),
        ]);
    }
    if c.holdout > 0 {
        let row = vec![
            "Holdout".into(),
            format_count(c.holdout),
            "kept out of the send to measure lift".into(),
        ];
        rows.insert(8, row);
    }
    if c.waiting > 0 {
        let row = vec![
            "Waiting".into(),
            format_count(c.waiting),
            "for their local sending window".into(),
        ];
        // After Pending (the holdout, if any, went in below it).
        rows.insert(6, row);
    }
    out.push_str("\nSUMMARY\n");
    out.push_str(&text_table(
        &[],
        &[Align::Left, Align::Right, Align::Left],
        &rows,
    ));

    let e: &TrackCounts = &report.engagement;
    let per_delivered = |n: u64| format_percent(ratio(n, c.delivered));
    let rows = vec![
        vec![
            "Opened".into(),
            format_count(e.opened),
            per_delivered(e.opened),
            format_count(e.opens),
        ],
        vec![
            "Clicked".into(),
            format_count(e.clicked),
            per_delivered(e.clicked),
            format_count(e.clicks),
        ],
        vec![
            "Unsubscribed".into(),
            format_count(e.unsubscribed),
            per_delivered(e.unsubscribed),
            String::new(),
        ],
        vec![
            "Complaints".into(),
            format_count(report.complaints),
            per_delivered(report.complaints),
            String::new(),
        ],
        vec![
            "Machine opens".into(),
            String::new(),
            String::new(),
            format_count(e.machine_opens),
        ],
        vec![
            "Machine clicks".into(),
            String::new(),
            String::new(),
            format_count(e.machine_clicks),
        ],
    ];
    out.push_str("\nENGAGEMENT\n");
    out.push_str(&text_table(
        &["", "Unique", "Rate", "Events"],
        &[Align::Left, Align::Right, Align::Right, Align::Right],
        &rows,
    ));
    out.push_str("  Rates are per delivered message; machine-made events are left out of them.\n");
}

/// One row per variant with rates and intervals.
pub(super) fn table_variants(out: &mut String, report: &Report) {
    out.push_str("\nVARIANTS\n");
    if report.variants.is_empty() {
        out.push_str("  No variants yet.\n");
        return;
    }
    let ci = format!("{} CI", format_confidence(report_confidence(report)));
    let mut rows: Vec<Vec<String>> = report
        .variants
        .iter()
        .map(|v| {
            vec![
                v.id.clone(),
                format_percent(v.share),
                format_count(v.recipients),
                format_count(v.counts.delivered),
                format_percent(v.open_rate),
                format_interval(v.open_rate, v.open_ci),
                format_percent(v.click_rate),
                format_interval(v.click_rate, v.click_ci),
                format_count(v.engagement.unsubscribed),
                format_count(v.counts.bounced),
            ]
        })
        .collect();
    if let Some(h) = &report.holdout {
        let mut row = vec![
            h.id.clone(),
            format_percent(h.share),
            format_count(h.recipients),
        ];
        row.push("not sent".to_owned());
        row.extend(std::iter::repeat_n(String::new(), 6));
        rows.push(row);
    }
    out.push_str(&text_table(
        &[
            "Variant",
            "Share",
            "Recipients",
            "Delivered",
            "Open rate",
            &ci,
            "Click rate",
            &ci,
            "Unsub.",
            "Bounced",
        ],
        &[
            Align::Left,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
        ],
        &rows,
    ));
}

/// The A/B verdict in sentences.
pub(super) fn table_ab(out: &mut String, report: &Report) {
    let Some(ab) = &report.ab else {
        out.push_str("\nA/B TEST\n  None: the campaign has a single variant.\n");
        return;
    };
    put!(
        out,
        "\nA/B TEST ({}, {})\n",
        ab_mode_name(&ab.mode),
        metric_name(ab.verdict.metric)
    );
    put!(out, "  {}\n", verdict_headline(&ab.verdict));
    if let Some(s) = prob_best_sentence(&ab.verdict) {
        put!(out, "  {s}\n");
    }
    for s in veto_sentences(&ab.verdict) {
        put!(out, "  {s}\n");
    }
    for s in sequential_sentences(&ab.verdict) {
        put!(out, "  {s}\n");
    }
    let why = reason_sentence(&ab.verdict.reason);
    if !why.is_empty() {
        put!(out, "  Why: {why}\n");
    }
    if let Some(s) = ab_progress_sentence(ab) {
        put!(out, "  {s}\n");
    }
}

/// The largest domains and the rest.
pub(super) fn table_domains(out: &mut String, report: &Report) {
    out.push_str("\nTOP DOMAINS\n");
    if report.domains.is_empty() && report.other_domains.is_none() {
        out.push_str("  No recipients yet.\n");
        return;
    }
    let rows: Vec<Vec<String>> = report
        .domains
        .iter()
        .map(|d| (d.domain.clone(), d))
        .chain(
            report
                .other_domains
                .iter()
                .map(|d| ("(all other domains)".to_string(), d)),
        )
        .map(|(name, d)| {
            vec![
                name,
                format_count(d.recipients),
                format_count(d.delivered),
                format_count(d.bounced),
                format_count(d.deferred),
                format_count(d.opened),
                format_percent(ratio(d.opened, d.delivered)),
                format_count(d.clicked),
                format_percent(ratio(d.clicked, d.delivered)),
            ]
        })
        .collect();
    out.push_str(&text_table(
        &[
            "Domain",
            "Recipients",
            "Delivered",
            "Bounced",
            "Deferred",
            "Opened",
            "Open rate",
            "Clicked",
            "Click rate",
        ],
        &[
            Align::Left,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
        ],
        &rows,
    ));
}

/// Bounces by reason (the category vocabulary), hard and soft.
pub(super) fn table_bounces(out: &mut String, report: &Report) {
    out.push_str("\nBOUNCES\n");
    if report.bounces.is_empty() {
        out.push_str("  No bounces.\n");
        return;
    }
    let rows: Vec<Vec<String>> = report
        .bounces
        .iter()
        .map(|b| {
            vec![
                b.category.clone(),
                format_count(b.hard),
                format_count(b.soft),
                format_count(b.hard.saturating_add(b.soft)),
            ]
        })
        .collect();
    out.push_str(&text_table(
        &["Reason", "Hard", "Soft", "Total"],
        &[Align::Left, Align::Right, Align::Right, Align::Right],
        &rows,
    ));
}

/// Policy blocks that held the campaign back (only when there were any): each destination
/// whose circuit breaker tripped, until when, and the replies that tripped it.
pub(super) fn table_blocks(out: &mut String, report: &Report) {
    if report.blocks.is_empty() {
        return;
    }
    out.push_str("\nPOLICY BLOCKS\n");
    for line in crate::words::blocks::block_lines(&report.blocks) {
        put!(out, "  {line}\n");
    }
}

/// The timeline: span, peaks, sparklines, and a per-period table of at most 12 rows.
pub(super) fn table_timeline(out: &mut String, report: &Report) {
    const MAX_ROWS: usize = 12;
    const SPARK_WIDTH: usize = 48;
    let timeline = &report.timeline;
    let buckets = &timeline.buckets;
    out.push_str("\nTIMELINE\n");
    let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
        out.push_str("  No deliveries, opens or clicks yet.\n");
        return;
    };
    let width = timeline.bucket_ms.max(1);
    put!(
        out,
        "  {} of {}, {} to {} UTC\n",
        counted(buckets.len() as u64, "bucket", "buckets"),
        format_duration(width),
        format_short_time(first.at),
        format_short_time(last.at.saturating_add(width))
    );
    if !has_engagement_over_time(report) {
        out.push_str("  No opens or clicks yet.\n");
    } else {
        for (label, clicks) in [("opens", false), ("clicks", true)] {
            let totals: Vec<u64> = buckets
                .iter()
                .map(|b| {
                    let v = if clicks { &b.clicks } else { &b.opens };
                    v.iter().sum()
                })
                .collect();
            if let Some((i, &peak)) = totals
                .iter()
                .enumerate()
                .max_by_key(|(i, &n)| (n, std::cmp::Reverse(*i)))
            {
                if let Some(b) = buckets.get(i) {
                    put!(
                        out,
                        "  Peak {label}: {} in the {} from {} UTC\n",
                        format_count(peak),
                        format_period(width),
                        format_short_time(b.at)
                    );
                }
            }
        }
        let name_width = timeline
            .variants
            .iter()
            .map(|v| v.chars().count())
            .max()
            .unwrap_or(0);
        for (label, clicks) in [("Opens ", false), ("Clicks", true)] {
            for (i, id) in timeline.variants.iter().enumerate() {
                let series = variant_series(report, i, clicks);
                let lead = if i == 0 { label } else { "      " };
                put!(
                    out,
                    "  {lead}  {id:<name_width$}  |{}|\n",
                    sparkline(&series, SPARK_WIDTH)
                );
            }
        }
    }

    let group = buckets.len().div_ceil(MAX_ROWS).max(1);
    let period = width.saturating_mul(group as u64);
    let mut headers: Vec<String> = vec![
        format!("Per {} from", format_period(period)),
        "Delivered".into(),
        "Bounced".into(),
    ];
    for id in &timeline.variants {
        headers.push(format!("Opens {id}"));
    }
    for id in &timeline.variants {
        headers.push(format!("Clicks {id}"));
    }
    headers.push("Machine".into());
    let n = timeline.variants.len();
    let rows: Vec<Vec<String>> = buckets
        .chunks(group)
        .map(|chunk| {
            let at = chunk.first().map(|b| b.at).unwrap_or(first.at);
            let mut row = vec![
                format_short_time(at),
                format_count(chunk.iter().map(|b| b.delivered).sum()),
                format_count(chunk.iter().map(|b| b.bounced).sum()),
            ];
            for i in 0..n {
                row.push(format_count(
                    chunk
                        .iter()
                        .map(|b| b.opens.get(i).copied().unwrap_or(0))
                        .sum(),
                ));
            }
            for i in 0..n {
                row.push(format_count(
                    chunk
                        .iter()
                        .map(|b| b.clicks.get(i).copied().unwrap_or(0))
                        .sum(),
                ));
            }
            row.push(format_count(chunk.iter().map(|b| b.machine).sum()));
            row
        })
        .collect();
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut aligns = vec![Align::Right; headers.len()];
    if let Some(a) = aligns.first_mut() {
        *a = Align::Left;
    }
    out.push('\n');
    out.push_str(&text_table(&header_refs, &aligns, &rows));
}

/// The A/B part alone (`volley ab decide`): the variants and the verdict.
pub(crate) fn ab_table(report: &Report) -> String {
    let mut out = String::new();
    table_variants(&mut out, report);
    table_ab(&mut out, report);
    super::money::table_money(&mut out, report);
    out
}
