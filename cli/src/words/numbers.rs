//! The one number formatter: counts, percentages, probabilities, p-values, confidences,
//! estimates, durations and rates, as every output of the `volley` binary shows them.
//!
//! The rules, in one place:
//! - counts have thousands separators: `1,234,567`;
//! - a percentage has two decimals below 10 % and one from 10 % up (`3.42 %`, `23.6 %`),
//!   a space before the sign, never rounds a non-zero rate to zero (`< 0.01 %`) nor a rate
//!   below one to a hundred (`> 99.9 %`);
//! - p-values have three significant digits (`0.0442`, `0.310`, `1.23e-5`);
//! - a confidence drops useless zeros (`95 %`, `97.5 %`, `99.95 %`);
//! - an estimate (a sample size still needed) is rounded up to three significant digits;
//! - NaN and infinities are never shown: a rate reads as 0, a p-value as `n/a`.

/// `9950` → `9,950`.
pub(crate) fn format_count(n: u64) -> String {
    let digits = n.to_string();
    let len = digits.len();
    let mut out = String::with_capacity(len + len / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (len - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count and its noun, singular for one: `counted(1, "recipient", "recipients")` →
/// `1 recipient`, `counted(1200, …)` → `1,200 recipients`.
pub(crate) fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", format_count(n), if n == 1 { one } else { many })
}

/// The word for one or for many, to agree with a count: `agree(1, "stays", "stay")`.
pub(crate) fn agree<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// An estimate rounded up to three significant digits: `33,275` → `33,300`.
pub(crate) fn format_estimate(n: u64) -> String {
    let mut unit = 1_u64;
    while n / unit >= 1000 {
        unit = unit.saturating_mul(10);
    }
    format_count(n.div_ceil(unit).saturating_mul(unit))
}

/// `x`, or 0 when it is NaN or infinite, so no `NaN` ever reaches a person.
pub(crate) fn finite(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

/// `part / whole`, 0 when `whole` is 0.
pub(crate) fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Decimals of a percentage: two for small percentages (below 10 %), one otherwise.
pub(crate) fn percent_decimals(rate: f64) -> usize {
    let pct = finite(rate).abs() * 100.0;
    if pct > 0.0 && pct < 10.0 {
        2
    } else {
        1
    }
}

/// A rate as a percentage number without the sign: `0.0342` → `3.42`.
pub(crate) fn percent_number(rate: f64, decimals: usize) -> String {
    format!("{:.*}", decimals, finite(rate) * 100.0)
}

/// A rate as a percentage with `decimals` decimals that never rounds to a false zero or a
/// false hundred: `< 0.01 %`, `> 99.9 %`.
fn percent_with(rate: f64, decimals: usize) -> String {
    let rate = finite(rate);
    let text = percent_number(rate, decimals);
    let step = format!("{:.*}", decimals, 10f64.powi(-(decimals as i32)));
    let zero = text
        .trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.');
    if zero && rate > 0.0 {
        format!("< {step} %")
    } else if zero && rate < 0.0 {
        format!("> -{step} %")
    } else if rate < 1.0 && text.parse::<f64>().is_ok_and(|shown| shown >= 100.0) {
        format!(
            "> {} %",
            percent_number(1.0 - 10f64.powi(-(decimals as i32)) / 100.0, decimals)
        )
    } else if zero {
        format!("{} %", text.trim_start_matches('-'))
    } else {
        format!("{text} %")
    }
}

/// A rate as a percentage: `0.0342` → `3.42 %`, `0.236` → `23.6 %`, `0.00004` → `< 0.01 %`.
pub(crate) fn format_percent(rate: f64) -> String {
    percent_with(rate, percent_decimals(rate))
}

/// A rate and its limit as percentages, with enough decimals (up to 4) to tell them apart:
/// `3.04 %` against `3.00 %`.
pub(crate) fn format_percent_pair(value: f64, limit: f64) -> (String, String) {
    let mut decimals = percent_decimals(value).max(percent_decimals(limit));
    while decimals < 4 && percent_with(value, decimals) == percent_with(limit, decimals) {
        decimals += 1;
    }
    (percent_with(value, decimals), percent_with(limit, decimals))
}

/// A probability (clamped to 0..=1) as a percentage: `0.979` → `97.9 %`, `0.99999` →
/// `> 99.9 %`.
pub(crate) fn format_probability(p: f64) -> String {
    format_percent(finite(p).clamp(0.0, 1.0))
}

/// An interval with as many decimals as the rate it belongs to: `20.9–23.3 %`.
pub(crate) fn format_interval(rate: f64, interval: (f64, f64)) -> String {
    let decimals = percent_decimals(rate);
    format!(
        "{}–{} %",
        percent_number(interval.0, decimals),
        percent_number(interval.1, decimals)
    )
}

/// A percentage for an axis tick, without useless zeros: `2.5 %`, `10 %`.
pub(crate) fn format_percent_tick(rate: f64) -> String {
    format!(
        "{} %",
        trim_decimal_zeros(&format!("{:.2}", finite(rate) * 100.0))
    )
}

/// Drops trailing zeros of a decimal number: `2.50` → `2.5`, `5.00` → `5`.
pub(crate) fn trim_decimal_zeros(text: &str) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text.to_string()
    }
}

/// A p-value with three significant digits: `0.0442`, `0.310`, `1.23e-7`.
pub(crate) fn format_p_value(p: f64) -> String {
    if !p.is_finite() {
        return "n/a".to_string();
    }
    if p <= 0.0 {
        return "0".to_string();
    }
    if p < 1e-4 {
        return format!("{p:.2e}");
    }
    let decimals = (2 - p.log10().floor() as i32).max(0) as usize;
    format!("{p:.decimals$}")
}

/// A confidence as a percentage: `0.95` → `95 %`, `0.999` → `99.9 %`.
pub(crate) fn format_confidence(confidence: f64) -> String {
    let text = format!("{:.2}", finite(confidence) * 100.0);
    format!("{} %", trim_decimal_zeros(&text))
}

/// The significance level belonging to a confidence: `0.95` → `0.05`.
pub(crate) fn format_alpha(confidence: f64) -> String {
    trim_decimal_zeros(&format!("{:.4}", (1.0 - finite(confidence)).max(0.0)))
}

/// A setting echoed as it was given (`1.5`), or `n/a` for NaN and infinities.
pub(crate) fn format_setting(x: f64) -> String {
    if x.is_finite() {
        x.to_string()
    } else {
        "n/a".to_string()
    }
}

pub(crate) const MINUTE_MS: u64 = 60_000;
pub(crate) const HOUR_MS: u64 = 60 * MINUTE_MS;
pub(crate) const DAY_MS: u64 = 24 * HOUR_MS;

/// A whole duration for people: `1 h`, `15 min`, `1 d`, `250 ms`.
pub(crate) fn format_duration(ms: u64) -> String {
    if ms >= DAY_MS && ms.is_multiple_of(DAY_MS) {
        format!("{} d", ms / DAY_MS)
    } else if ms >= HOUR_MS && ms.is_multiple_of(HOUR_MS) {
        format!("{} h", ms / HOUR_MS)
    } else if ms >= MINUTE_MS && ms.is_multiple_of(MINUTE_MS) {
        format!("{} min", ms / MINUTE_MS)
    } else if ms >= 1000 && ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

/// What one period is called after "per": `hour`, `day`, `15 min`.
pub(crate) fn format_period(ms: u64) -> String {
    match ms {
        MINUTE_MS => "minute".to_string(),
        HOUR_MS => "hour".to_string(),
        DAY_MS => "day".to_string(),
        _ => format_duration(ms),
    }
}

/// Seconds with `decimals` decimals and the unit glued on, as run summaries show them:
/// `12.3s`. (Scripts read these lines; the form stays as it was.)
pub(crate) fn format_seconds(seconds: f64, decimals: usize) -> String {
    format!("{:.*}s", decimals, finite(seconds))
}

/// Microseconds with one decimal: `812.4µs`.
pub(crate) fn format_micros(micros: f64) -> String {
    format!("{:.1}µs", finite(micros))
}

/// A whole number of messages per second without separators (`1700`), as `volley send`
/// prints it and `scripts/bench-send.sh` reads it.
pub(crate) fn format_whole_rate(per_second: f64) -> String {
    format!("{:.0}", finite(per_second).max(0.0))
}

/// A rate per second with one decimal: `12.5/s`.
pub(crate) fn format_per_second(per_second: f64) -> String {
    format!("{:.1}/s", finite(per_second))
}

/// Bytes in B, KB, MB or GB (powers of 1,000), one decimal place above bytes.
pub(crate) fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 3] = ["KB", "MB", "GB"];
    if bytes < 1_000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1_000.0;
    let mut unit = 0;
    while value >= 1_000.0 && unit < UNITS.len() - 1 {
        value /= 1_000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(1000), "1,000");
        assert_eq!(format_count(1_234_567), "1,234,567");
        assert_eq!(format_count(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(counted(0, "recipient", "recipients"), "0 recipients");
        assert_eq!(counted(1, "recipient", "recipients"), "1 recipient");
        assert_eq!(counted(2, "address", "addresses"), "2 addresses");
        assert_eq!(counted(1_000, "message", "messages"), "1,000 messages");
        assert_eq!(agree(1, "stays", "stay"), "stays");
        assert_eq!(agree(3, "stays", "stay"), "stay");
    }

    #[test]
    fn estimates_round_up_to_three_significant_digits() {
        assert_eq!(format_estimate(999), "999");
        assert_eq!(format_estimate(3841), "3,850");
        assert_eq!(format_estimate(12_345), "12,400");
        assert_eq!(format_estimate(33_275), "33,300");
        assert_eq!(format_estimate(u64::MAX), format_count(u64::MAX));
    }

    #[test]
    fn percentages_have_two_decimals_below_ten_and_never_lie_at_the_ends() {
        assert_eq!(format_percent(0.0), "0.0 %");
        assert_eq!(format_percent(0.0005), "0.05 %");
        assert_eq!(format_percent(0.000_04), "< 0.01 %");
        assert_eq!(format_percent(0.0342), "3.42 %");
        assert_eq!(format_percent(0.2357), "23.6 %");
        assert_eq!(format_percent(0.9995), "> 99.9 %");
        assert_eq!(format_percent(0.999_999), "> 99.9 %");
        assert_eq!(format_percent(1.0), "100.0 %");
        assert_eq!(format_percent(-0.0342), "-3.42 %");
        assert_eq!(format_percent(-0.000_001), "> -0.01 %");
        assert_eq!(format_percent(-0.0), "0.0 %");
        for odd in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(format_percent(odd), "0.0 %");
            assert_eq!(format_probability(odd), "0.0 %");
        }
        assert_eq!(format_percent_tick(0.025), "2.5 %");
        assert_eq!(format_percent_tick(0.1), "10 %");
    }

    #[test]
    fn probabilities_and_intervals() {
        assert_eq!(format_probability(0.021), "2.10 %");
        assert_eq!(format_probability(0.979), "97.9 %");
        assert_eq!(format_probability(0.000_013), "< 0.01 %");
        assert_eq!(format_probability(0.999_987), "> 99.9 %");
        assert_eq!(format_probability(1.5), "100.0 %");
        assert_eq!(format_interval(0.22, (0.209, 0.233)), "20.9–23.3 %");
        assert_eq!(
            format_interval(0.03, (f64::NEG_INFINITY, f64::NAN)),
            "0.00–0.00 %"
        );
    }

    #[test]
    fn a_rate_and_its_limit_are_told_apart() {
        assert_eq!(
            format_percent_pair(0.0304, 0.03),
            ("3.04 %".into(), "3.00 %".into())
        );
        assert_eq!(
            format_percent_pair(0.031, 0.02),
            ("3.10 %".into(), "2.00 %".into())
        );
        assert_eq!(
            format_percent_pair(0.30004, 0.3),
            ("30.004 %".into(), "30.000 %".into())
        );
        assert_eq!(
            format_percent_pair(0.05, 0.01),
            ("5.00 %".into(), "1.00 %".into())
        );
    }

    #[test]
    fn p_values_confidences_and_settings() {
        assert_eq!(format_p_value(0.04417), "0.0442");
        assert_eq!(format_p_value(0.31), "0.310");
        assert_eq!(format_p_value(1.0), "1.00");
        assert_eq!(format_p_value(0.000_012_34), "1.23e-5");
        assert_eq!(format_p_value(0.0), "0");
        assert_eq!(format_p_value(f64::NAN), "n/a");
        assert_eq!(format_confidence(0.95), "95 %");
        assert_eq!(format_confidence(0.975), "97.5 %");
        assert_eq!(format_confidence(0.9995), "99.95 %");
        assert_eq!(format_confidence(f64::NAN), "0 %");
        assert_eq!(format_alpha(0.95), "0.05");
        assert_eq!(format_setting(1.5), "1.5");
        assert_eq!(format_setting(f64::INFINITY), "n/a");
    }

    #[test]
    fn durations_and_rates() {
        assert_eq!(format_duration(HOUR_MS), "1 h");
        assert_eq!(format_duration(15 * MINUTE_MS), "15 min");
        assert_eq!(format_duration(2 * DAY_MS), "2 d");
        assert_eq!(format_duration(1500), "1500 ms");
        assert_eq!(format_period(HOUR_MS), "hour");
        assert_eq!(format_period(15 * MINUTE_MS), "15 min");
        assert_eq!(format_seconds(12.345, 1), "12.3s");
        assert_eq!(format_seconds(f64::NAN, 2), "0.00s");
        assert_eq!(format_micros(812.44), "812.4µs");
        assert_eq!(format_whole_rate(1700.4), "1700");
        assert_eq!(format_whole_rate(f64::INFINITY), "0");
        assert_eq!(format_per_second(12.46), "12.5/s");
    }

    #[test]
    fn bytes_read_naturally() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(32_800), "32.8 KB");
        assert_eq!(format_bytes(1_120_000_000), "1.1 GB");
    }
}
