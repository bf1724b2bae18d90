//! The report as one tidy CSV table: `section,item,metric,value`.

use super::words::*;

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

/// Quotes a CSV field when it holds a comma, a quote or a line break (RFC 4180).
pub(super) fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Rows of the tidy CSV: `section,item,metric,value`, CRLF line ends.
pub(super) struct CsvRows {
    text: String,
}

impl CsvRows {
    /// The header row.
    fn new() -> Self {
        Self {
            text: "section,item,metric,value\r\n".to_string(),
        }
    }

    /// A row with a text value.
    fn text(&mut self, section: &str, item: &str, metric: &str, value: &str) {
        put!(
            self.text,
            "{},{},{},{}\r\n",
            csv_field(section),
            csv_field(item),
            csv_field(metric),
            csv_field(value)
        );
    }

    /// A row with a count.
    fn count(&mut self, section: &str, item: &str, metric: &str, value: u64) {
        self.text(section, item, metric, &value.to_string());
    }

    /// A row with a number; NaN and infinities are left empty.
    fn number(&mut self, section: &str, item: &str, metric: &str, value: f64) {
        let text = if value.is_finite() {
            value.to_string()
        } else {
            String::new()
        };
        self.text(section, item, metric, &text);
    }

    /// A conversions estimate: its value, interval ends (`_low`, `_high`) and method.
    fn estimate(&mut self, item: &str, metric: &str, e: &volley::ab::revenue::Estimate) {
        self.number("conversions", item, metric, e.value);
        self.number("conversions", item, &format!("{metric}_low"), e.low);
        self.number("conversions", item, &format!("{metric}_high"), e.high);
        let method = serde_json::to_value(e.method).unwrap_or_default();
        self.text(
            "conversions",
            item,
            &format!("{metric}_method"),
            method.as_str().unwrap_or_default(),
        );
    }

    /// The recipients-by-state counters.
    fn counts(&mut self, section: &str, item: &str, c: &Counts) {
        for (metric, value) in [
            ("total", c.total),
            ("pending", c.pending),
            ("deferred", c.deferred),
            ("delivered", c.delivered),
            ("bounced", c.bounced),
            ("expired", c.expired),
            ("suppressed", c.suppressed),
            ("held", c.held),
            ("cancelled", c.cancelled),
            ("invalid", c.invalid),
            ("duplicate", c.duplicate),
            ("excluded", c.excluded),
            ("waiting", c.waiting),
        ] {
            self.count(section, item, metric, value);
        }
    }

    /// The engagement counters.
    fn engagement(&mut self, section: &str, item: &str, e: &TrackCounts) {
        for (metric, value) in [
            ("opened", e.opened),
            ("clicked", e.clicked),
            ("unsubscribed", e.unsubscribed),
            ("opens", e.opens),
            ("clicks", e.clicks),
            ("machine_opens", e.machine_opens),
            ("machine_clicks", e.machine_clicks),
        ] {
            self.count(section, item, metric, value);
        }
    }
}

/// Renders the report as one tidy CSV table with the columns `section,item,metric,value`.
pub(crate) fn csv(report: &Report) -> String {
    let mut rows = CsvRows::new();
    rows.text("campaign", "", "id", &report.campaign);
    rows.text(
        "campaign",
        "",
        "generated_at",
        &format_millis(report.generated_at),
    );

    rows.counts("totals", "", &report.counts);
    rows.engagement("totals", "", &report.engagement);
    rows.count("totals", "", "complaints", report.complaints);
    let delivered = report.counts.delivered;
    rows.number(
        "totals",
        "",
        "open_rate",
        ratio(report.engagement.opened, delivered),
    );
    rows.number(
        "totals",
        "",
        "click_rate",
        ratio(report.engagement.clicked, delivered),
    );

    for v in &report.variants {
        csv_variant(&mut rows, v);
    }
    if let Some(h) = &report.holdout {
        rows.number("holdout", &h.id, "share", h.share);
        rows.count("holdout", &h.id, "recipients", h.recipients);
    }
    if let Some(ab) = &report.ab {
        csv_ab(&mut rows, ab);
    }
    if let Some(money) = &report.money {
        csv_money(&mut rows, money);
    }
    for d in report.domains.iter().chain(&report.other_domains) {
        for (metric, value) in [
            ("recipients", d.recipients),
            ("delivered", d.delivered),
            ("bounced", d.bounced),
            ("deferred", d.deferred),
            ("opened", d.opened),
            ("clicked", d.clicked),
        ] {
            rows.count("domain", &d.domain, metric, value);
        }
    }
    for b in &report.bounces {
        rows.count("bounce", &b.category, "hard", b.hard);
        rows.count("bounce", &b.category, "soft", b.soft);
    }
    for r in &report.relays {
        rows.count("relay", &r.relay, "delivered", r.delivered);
        rows.count("relay", &r.relay, "deferred", r.deferred);
        rows.count("relay", &r.relay, "bounced", r.bounced);
        rows.count("relay", &r.relay, "cooldowns", r.cooldowns);
    }

    let timeline = &report.timeline;
    rows.text("timeline", "", "start", &format_millis(timeline.start));
    rows.count("timeline", "", "bucket_ms", timeline.bucket_ms);
    for b in &timeline.buckets {
        let at = format_millis(b.at);
        rows.count("timeline", &at, "delivered", b.delivered);
        rows.count("timeline", &at, "bounced", b.bounced);
        for (i, id) in timeline.variants.iter().enumerate() {
            rows.count(
                "timeline",
                &at,
                &format!("opens:{id}"),
                b.opens.get(i).copied().unwrap_or(0),
            );
        }
        for (i, id) in timeline.variants.iter().enumerate() {
            rows.count(
                "timeline",
                &at,
                &format!("clicks:{id}"),
                b.clicks.get(i).copied().unwrap_or(0),
            );
        }
        rows.count("timeline", &at, "machine", b.machine);
    }
    rows.text
}

/// The conversions section: one item per variant and the holdout, with `currency` and the
/// unattributed orders as items of their own.
fn csv_money(rows: &mut CsvRows, money: &volley::report::money::MoneySummary) {
    rows.text("conversions", "", "currency", &money.currency);
    rows.count(
        "conversions",
        "unattributed",
        "orders",
        money.unattributed_orders,
    );
    rows.number(
        "conversions",
        "unattributed",
        "revenue",
        money.unattributed_revenue,
    );
    let arms = money
        .variants
        .iter()
        .map(|row| (row.id.as_str(), &row.figures))
        .chain(money.holdout.iter().map(|h| ("holdout", h)));
    for (id, f) in arms {
        rows.count("conversions", id, "recipients", f.recipients);
        rows.count("conversions", id, "orders", f.conversions.count);
        rows.count("conversions", id, "buyers", f.conversions.recipients);
        rows.estimate(id, "conversion_rate", &f.conversions.rate);
        rows.number("conversions", id, "revenue", f.revenue.total);
        rows.estimate(id, "revenue_per_recipient", &f.revenue.per_recipient);
        if let Some(lift) = &f.lift {
            rows.estimate(id, "lift_conversion_rate", &lift.conversion_rate);
            rows.estimate(
                id,
                "lift_revenue_per_recipient",
                &lift.revenue_per_recipient,
            );
        }
    }
}

/// The rows of one variant.
pub(super) fn csv_variant(rows: &mut CsvRows, v: &VariantRow) {
    let id = v.id.as_str();
    rows.number("variant", id, "share", v.share);
    rows.count("variant", id, "recipients", v.recipients);
    rows.counts("variant", id, &v.counts);
    rows.engagement("variant", id, &v.engagement);
    rows.count("variant", id, "complaints", v.complaints);
    rows.number("variant", id, "open_rate", v.open_rate);
    rows.number("variant", id, "open_ci_low", v.open_ci.0);
    rows.number("variant", id, "open_ci_high", v.open_ci.1);
    rows.number("variant", id, "click_rate", v.click_rate);
    rows.number("variant", id, "click_ci_low", v.click_ci.0);
    rows.number("variant", id, "click_ci_high", v.click_ci.1);
}

/// The rows of the A/B part; absent values have no row.
pub(super) fn csv_ab(rows: &mut CsvRows, ab: &AbSummary) {
    let v = &ab.verdict;
    rows.text("ab", "", "mode", &ab.mode);
    let kind = match v.verdict {
        VerdictKind::Winner => "winner",
        VerdictKind::Inconclusive => "inconclusive",
    };
    rows.text("ab", "", "verdict", kind);
    if let Some(winner) = &v.winner {
        rows.text("ab", "", "winner", winner);
    }
    let metric = match v.metric {
        Metric::Opens => "opens",
        Metric::Clicks => "clicks",
        Metric::ClicksPerOpen => "clicks_per_open",
        Metric::Conversions => "conversions",
        Metric::Revenue => "revenue",
    };
    rows.text("ab", "", "metric", metric);
    rows.number("ab", "", "confidence", v.confidence);
    if let Some(p) = v.p_value {
        rows.number("ab", "", "p_value", p);
    }
    if let Some(z) = v.z {
        rows.number("ab", "", "z", z);
    }
    if let Some(n) = v.needed_per_variant {
        rows.count("ab", "", "needed_per_variant", n);
    }
    rows.text("ab", "", "reason", &reason_sentence(&v.reason));
    rows.count("ab", "", "held", ab.held);
    if let Some(at) = ab.decide_after {
        rows.text("ab", "", "decide_after", &format_millis(at));
    }
    if let Some(d) = &ab.decision {
        rows.text("ab", "", "decided_at", &format_millis(d.at));
        rows.text("ab", "", "decision", &d.how);
        if let Some(variant) = &d.variant {
            rows.text("ab", "", "decision_variant", variant);
        }
        rows.text("ab", "", "decision_reason", &reason_sentence(&d.reason));
    }
    for s in &v.variants {
        let id = s.id.as_str();
        rows.count("ab", id, "trials", s.trials);
        rows.count("ab", id, "successes", s.successes);
        rows.number("ab", id, "rate", s.rate);
        rows.number("ab", id, "ci_low", s.ci_low);
        rows.number("ab", id, "ci_high", s.ci_high);
        rows.number("ab", id, "prob_best", s.prob_best);
        rows.number("ab", id, "bounce_rate", s.bounce_rate);
        rows.number("ab", id, "unsubscribe_rate", s.unsubscribe_rate);
        rows.number("ab", id, "complaint_rate", s.complaint_rate);
        if !s.exceeded.is_empty() {
            rows.text("ab", id, "vetoed", &exceeded_phrase(&s.exceeded));
        }
    }
}
