//! The arithmetic behind an A/B verdict: rates with Wilson intervals, the pooled two-proportion
//! z-test, the Bayesian probability of being best and the sample size still needed.

use statrs::distribution::{ContinuousCDF, Normal};

// ---------------------------------------------------------------------------------------------
// Public statistics
// ---------------------------------------------------------------------------------------------

/// Wilson score interval (two-sided) for a proportion: the range the true rate lies in with
/// the given confidence (e.g. 0.95). More honest than the plain "rate ± 1.96 sd" for small
/// samples and for rates near 0 or 1.
///
/// `successes` above `trials` are counted as `trials`. With no trials nothing is known, so the
/// answer is the whole range `(0.0, 1.0)`; so it is too for a confidence of 1 or more (or NaN).
/// A confidence of 0 or less gives the bare rate at both ends.
pub fn wilson(successes: u64, trials: u64, confidence: f64) -> (f64, f64) {
    if trials == 0 || confidence.is_nan() || confidence >= 1.0 {
        return (0.0, 1.0);
    }
    let z = two_sided_critical(1.0 - confidence);
    let n = trials as f64;
    let p = rate(successes, trials);
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half_width = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    // At 0 successes (or all successes) the bound is exactly 0 (or 1); rounding may miss it.
    let low = if successes == 0 {
        0.0
    } else {
        centre - half_width
    };
    let high = if successes >= trials {
        1.0
    } else {
        centre + half_width
    };
    (low.clamp(0.0, 1.0), high.clamp(0.0, 1.0))
}

/// Pooled two-proportion z-test: is sample 1's rate (`s1` / `n1`) different from sample 2's
/// (`s2` / `n2`)? Returns `(z, p)`: z is positive when sample 1's rate is higher, p is the
/// two-sided p-value. `None` when a sample is empty or the pooled rate is 0 or 1 (every trial
/// failed, or every one succeeded: there is no variance to test against). Successes above
/// trials are counted as trials.
pub fn two_proportion_z(s1: u64, n1: u64, s2: u64, n2: u64) -> Option<(f64, f64)> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (s1, s2) = (s1.min(n1), s2.min(n2));
    let (a, b) = (n1 as f64, n2 as f64);
    let pooled = (s1 as f64 + s2 as f64) / (a + b);
    if pooled <= 0.0 || pooled >= 1.0 {
        return None;
    }
    let standard_error = (pooled * (1.0 - pooled) * (1.0 / a + 1.0 / b)).sqrt();
    let z = (rate(s1, n1) - rate(s2, n2)) / standard_error;
    Some((z, two_sided_p(z)))
}

/// Bayesian probability that each variant has the highest true rate, from its
/// `(successes, trials)`, with independent Beta(1 + s, 1 + n − s) posteriors (uniform priors).
/// One number per variant, in the order given, summing to 1; an empty slice gives an empty
/// vector. Deterministic: the integral P(i best) = ∫ pdf_i(x) Π_{j≠i} cdf_j(x) dx is computed
/// numerically (see `posterior_masses`), not by random sampling, and stays accurate from zero
/// trials to tens of millions. Successes above trials are counted as trials.
pub fn prob_best(samples: &[(u64, u64)]) -> Vec<f64> {
    match samples.len() {
        0 => return Vec::new(),
        1 => return vec![1.0],
        _ => {}
    }
    let posteriors: Vec<Posterior> = samples.iter().map(|&(s, n)| Posterior::new(s, n)).collect();
    let knots = grid(&posteriors);
    let masses: Vec<Vec<f64>> = posteriors
        .iter()
        .map(|posterior| posterior_masses(posterior, &knots))
        .collect();
    if masses.iter().any(|m| m.is_empty()) {
        // Cannot happen with a well-formed grid; an even split is the honest fallback.
        return vec![1.0 / samples.len() as f64; samples.len()];
    }
    let probabilities = best_from_masses(&masses);
    let total: f64 = probabilities.iter().sum();
    if !(total.is_finite() && total > 0.0) {
        return vec![1.0 / samples.len() as f64; samples.len()];
    }
    probabilities
        .iter()
        .map(|p| (p / total).clamp(0.0, 1.0))
        .collect()
}

/// Sample size per group (variant) for a two-sided two-proportion test at level `alpha` to
/// detect rates `p1` vs `p2` with probability `power`:
/// n = (z_{1−α/2}·√(2·p̄(1−p̄)) + z_{power}·√(p1(1−p1) + p2(1−p2)))² / (p1 − p2)², rounded up,
/// with p̄ = (p1 + p2) / 2. `None` when p1 == p2 (no difference to detect), when a rate is not
/// in [0, 1], or when alpha or power is not strictly between 0 and 1.
pub fn needed_per_variant(p1: f64, p2: f64, alpha: f64, power: f64) -> Option<u64> {
    let is_rate = |p: f64| (0.0..=1.0).contains(&p);
    let is_open_unit = |p: f64| p > 0.0 && p < 1.0;
    if !(is_rate(p1) && is_rate(p2) && is_open_unit(alpha) && is_open_unit(power)) || p1 == p2 {
        return None;
    }
    let z_alpha = normal_quantile(1.0 - alpha / 2.0);
    let z_power = normal_quantile(power);
    let mean = (p1 + p2) / 2.0;
    let root = z_alpha * (2.0 * mean * (1.0 - mean)).sqrt()
        + z_power * (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt();
    let n = (root * root / ((p1 - p2) * (p1 - p2))).ceil();
    // `as` saturates; the bound keeps a huge answer from silently becoming u64::MAX.
    (n.is_finite() && n >= 0.0 && n < u64::MAX as f64).then_some(n as u64)
}

// ---------------------------------------------------------------------------------------------
// Numerics
// ---------------------------------------------------------------------------------------------

/// s / n with successes capped at trials; 0 when there are no trials.
fn rate(successes: u64, trials: u64) -> f64 {
    ratio(successes.min(trials), trials)
}

/// a / b, or 0 when b is 0.
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// The standard normal quantile (inverse CDF) with the edges made total: −∞ at 0 and below,
/// +∞ at 1 and above, NaN for NaN. statrs computes it from its inverse complementary error
/// function (Boost's rational approximations, accurate to about machine precision).
fn normal_quantile(p: f64) -> f64 {
    if p.is_nan() {
        f64::NAN
    } else if p <= 0.0 {
        f64::NEG_INFINITY
    } else if p >= 1.0 {
        f64::INFINITY
    } else {
        Normal::standard().inverse_cdf(p)
    }
}

/// The z such that a standard normal falls outside ±z with probability `alpha` (never negative).
fn two_sided_critical(alpha: f64) -> f64 {
    normal_quantile(1.0 - alpha / 2.0).max(0.0)
}

/// Two-sided p-value of a standard normal statistic, P(|Z| ≥ |z|), from the upper tail so that
/// tiny p-values keep their precision.
fn two_sided_p(z: f64) -> f64 {
    (2.0 * Normal::standard().sf(z.abs())).min(1.0)
}

/// A Beta(1 + s, 1 + n − s) posterior, with the numbers the integration needs.
struct Posterior {
    /// First shape parameter, 1 + successes.
    alpha: f64,
    /// Second shape parameter, 1 + failures.
    beta: f64,
    /// Its mean.
    mean: f64,
    /// Its standard deviation.
    sd: f64,
    /// The log of the unnormalised density at its mode, so that densities scale to at most 1.
    log_peak: f64,
}

impl Posterior {
    fn new(successes: u64, trials: u64) -> Self {
        let successes = successes.min(trials);
        let alpha = 1.0 + successes as f64;
        let beta = 1.0 + (trials - successes) as f64;
        let total = alpha + beta;
        let mean = alpha / total;
        let sd = (alpha * beta / (total * total * (total + 1.0))).sqrt();
        let mode = if total > 2.0 {
            (alpha - 1.0) / (total - 2.0)
        } else {
            0.5
        };
        let mut posterior = Posterior {
            alpha,
            beta,
            mean,
            sd,
            log_peak: 0.0,
        };
        posterior.log_peak = posterior.log_kernel(mode);
        posterior
    }

    /// (α − 1)·ln x + (β − 1)·ln(1 − x): the log density up to a constant (−∞ where it is 0).
    fn log_kernel(&self, x: f64) -> f64 {
        x_ln_y(self.alpha - 1.0, x) + x_ln_y(self.beta - 1.0, 1.0 - x)
    }

    /// The density up to a constant, scaled to 1 at the mode (so it never overflows).
    fn kernel(&self, x: f64) -> f64 {
        (self.log_kernel(x) - self.log_peak).exp()
    }

    /// The range holding all but a negligible part of the posterior, within [0, 1].
    fn support(&self) -> (f64, f64) {
        let reach = SUPPORT_SDS * self.sd;
        ((self.mean - reach).max(0.0), (self.mean + reach).min(1.0))
    }
}

/// How many standard deviations either side of a posterior's mean are integrated. The thinnest
/// tail, Beta(1, n)'s (nearly exponential), leaves about e^(−16) ≈ 1e-7 beyond 15.
const SUPPORT_SDS: f64 = 15.0;

/// Grid cells per posterior standard deviation: fine enough that the steps' error is ~1e-6.
const CELLS_PER_SD: f64 = 100.0;

/// c·ln(y), taken as 0 when c is 0 (so a flat factor stays flat at y = 0).
fn x_ln_y(c: f64, y: f64) -> f64 {
    if c == 0.0 {
        0.0
    } else {
        c * y.ln()
    }
}

/// The integration grid: increasing knots from the lowest posterior support to the highest,
/// spaced at most 1/`CELLS_PER_SD` of a standard deviation of every posterior whose support
/// they are in (so each posterior, narrow or wide, is finely resolved wherever it has mass,
/// and overlapping posteriors share knots), jumping straight across gaps between supports.
fn grid(posteriors: &[Posterior]) -> Vec<f64> {
    let supports: Vec<(f64, f64, f64)> = posteriors
        .iter()
        .map(|p| {
            let (low, high) = p.support();
            (low, high, p.sd / CELLS_PER_SD)
        })
        .collect();
    let start = supports.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
    let end = supports
        .iter()
        .map(|s| s.1)
        .fold(f64::NEG_INFINITY, f64::max);
    if !(start.is_finite() && end.is_finite()) {
        return Vec::new();
    }
    let mut knots = vec![start];
    let mut x = start;
    while x < end {
        // The finest step of the supports x is in, without stepping past a support's start.
        let step = supports
            .iter()
            .filter(|&&(low, high, _)| low <= x && x < high)
            .map(|s| s.2)
            .fold(f64::INFINITY, f64::min);
        let next_start = supports
            .iter()
            .map(|s| s.0)
            .filter(|&low| low > x)
            .fold(end, f64::min);
        let mut next = (x + step).min(next_start);
        if next <= x {
            // A support narrower than the floats around x can resolve: move on by one float.
            next = x.next_up();
        }
        x = next.min(end);
        knots.push(x);
    }
    knots
}

/// The posterior's probability mass in each cell of the grid (between consecutive knots), by
/// Simpson's rule on each cell, normalised to sum to 1. Normalising numerically instead of
/// through the Beta function keeps full precision for millions of trials, and makes every
/// posterior exactly a probability distribution on the grid, so the answers sum to 1.
/// Empty only when the grid has no cells.
///
/// (statrs's Beta CDF is not used: its continued fraction stops after 140 terms and loses
/// accuracy beyond about a million trials.)
fn posterior_masses(posterior: &Posterior, knots: &[f64]) -> Vec<f64> {
    let masses: Vec<f64> = knots
        .iter()
        .zip(knots.iter().skip(1))
        .map(|(&a, &b)| {
            let middle = 0.5 * (a + b);
            (b - a) / 6.0
                * (posterior.kernel(a) + 4.0 * posterior.kernel(middle) + posterior.kernel(b))
        })
        .collect();
    let total: f64 = masses.iter().sum();
    if !(total.is_finite() && total > 0.0) {
        // The posterior is too narrow for the grid to see (billions of billions of trials):
        // it is all in the cell holding its mean.
        let cell = knots
            .iter()
            .skip(1)
            .take_while(|&&b| b < posterior.mean)
            .count()
            .min(masses.len().saturating_sub(1));
        return (0..masses.len())
            .map(|c| if c == cell { 1.0 } else { 0.0 })
            .collect();
    }
    // Masses below MASS_FLOOR (far tails) are dropped: together they weigh under 1e-15, and
    // skipping them is what keeps ten variants over a fine grid fast.
    masses
        .iter()
        .map(|m| m / total)
        .map(|m| if m < MASS_FLOOR { 0.0 } else { m })
        .collect()
}

/// A cell mass below this counts as none (see `posterior_masses`).
const MASS_FLOOR: f64 = 1e-20;

/// P(each variant is best) from the posteriors' masses per grid cell (`masses[variant][cell]`).
///
/// Within a cell every density is taken as flat, so with u ∈ [0, 1] the position inside the
/// cell, variant i is best there with probability m_i·∫₀¹ Π_{j≠i} (F_j + m_j·u) du, where F_j is
/// j's mass below the cell. The polynomial in u is integrated exactly, so the answers add up to
/// Π_j F_j at the top of the grid, which is 1; identical posteriors get identical answers.
fn best_from_masses(masses: &[Vec<f64>]) -> Vec<f64> {
    let cells = masses.iter().map(Vec::len).min().unwrap_or(0);
    let mut below = vec![0.0_f64; masses.len()];
    let mut best = vec![0.0_f64; masses.len()];
    let mut here = vec![0.0_f64; masses.len()];
    let mut coefficients = Vec::with_capacity(masses.len() + 1);
    for cell in 0..cells {
        for (slot, m) in here.iter_mut().zip(masses) {
            *slot = m.get(cell).copied().unwrap_or(0.0);
        }
        for (i, (&mass, total)) in here.iter().zip(best.iter_mut()).enumerate() {
            if mass <= 0.0 {
                continue;
            }
            let factors = below
                .iter()
                .zip(&here)
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, (&f, &m))| (f, m));
            *total += mass * integral_of_linear_product(factors, &mut coefficients);
        }
        for (f, m) in below.iter_mut().zip(&here) {
            *f += m;
        }
    }
    best
}

/// ∫₀¹ Π_k (c0_k + c1_k·u) du, exactly: the product is expanded into its polynomial
/// coefficients (in `coefficients`, a reused buffer), and ∫₀¹ u^d du = 1 / (d + 1).
/// Constant factors (c1 = 0, the common case away from a posterior) only scale the result.
fn integral_of_linear_product(
    factors: impl Iterator<Item = (f64, f64)>,
    coefficients: &mut Vec<f64>,
) -> f64 {
    coefficients.clear();
    coefficients.push(1.0);
    let mut scale = 1.0_f64;
    for (c0, c1) in factors {
        if c1 == 0.0 {
            scale *= c0;
            if scale == 0.0 {
                return 0.0;
            }
            continue;
        }
        // Multiply in place by (c0 + c1·u): each coefficient becomes c0·own + c1·previous.
        let mut previous = 0.0;
        for c in coefficients.iter_mut() {
            let own = *c;
            *c = c0 * own + c1 * previous;
            previous = own;
        }
        coefficients.push(c1 * previous);
    }
    scale
        * coefficients
            .iter()
            .enumerate()
            .map(|(d, c)| c / (d as f64 + 1.0))
            .sum::<f64>()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use statrs::function::gamma::ln_gamma;

    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} is not within {tolerance} of {expected}"
        );
    }

    /// Exact P(rate_B > rate_A) for Beta(1 + s, 1 + n − s) posteriors with integer shapes
    /// (Evan Miller's closed form): an independent check of the numerical integration.
    fn exact_b_beats_a((sa, na): (u64, u64), (sb, nb): (u64, u64)) -> f64 {
        let ln_beta = |a: f64, b: f64| ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b);
        let (alpha_a, beta_a) = (1.0 + sa as f64, 1.0 + (na - sa) as f64);
        // The sum runs over i < alpha_b = 1 + sb.
        let beta_b = 1.0 + (nb - sb) as f64;
        (0..=sb)
            .map(|i| {
                let i = i as f64;
                (ln_beta(alpha_a + i, beta_a + beta_b)
                    - (beta_b + i).ln()
                    - ln_beta(1.0 + i, beta_b)
                    - ln_beta(alpha_a, beta_a))
                .exp()
            })
            .sum()
    }

    fn normal_cdf(z: f64) -> f64 {
        Normal::standard().cdf(z)
    }

    // --- two_proportion_z ---------------------------------------------------------------

    #[test]
    fn z_test_known_value() {
        // Pooled rate 0.321, standard error 0.020879: z = -0.042 / 0.020879 = -2.0116.
        let (z, p) = two_proportion_z(300, 1000, 342, 1000).unwrap();
        close(z, -2.0116, 1e-4);
        close(p, 0.04426, 1e-5);
        let (z, p_swapped) = two_proportion_z(342, 1000, 300, 1000).unwrap();
        close(z, 2.0116, 1e-4);
        close(p_swapped, p, 1e-12);
    }

    #[test]
    fn z_test_without_variance_or_data() {
        assert_eq!(two_proportion_z(0, 0, 5, 10), None);
        assert_eq!(two_proportion_z(5, 10, 0, 0), None);
        assert_eq!(two_proportion_z(0, 10, 0, 20), None);
        assert_eq!(two_proportion_z(10, 10, 20, 20), None);
        // Successes above trials count as trials: 15/10 is 10/10.
        assert_eq!(two_proportion_z(15, 10, 20, 20), None);
        let (z, p) = two_proportion_z(50, 100, 50, 100).unwrap();
        close(z, 0.0, 1e-12);
        close(p, 1.0, 1e-12);
    }

    // --- wilson ---------------------------------------------------------------------------

    #[test]
    fn wilson_known_value() {
        let (low, high) = wilson(300, 1000, 0.95);
        close(low, 0.27241, 1e-5);
        close(high, 0.32912, 1e-5);
    }

    #[test]
    fn wilson_edges() {
        assert_eq!(wilson(0, 0, 0.95), (0.0, 1.0));
        assert_eq!(wilson(3, 10, 1.0), (0.0, 1.0));
        assert_eq!(wilson(3, 10, f64::NAN), (0.0, 1.0));
        let (low, high) = wilson(3, 10, 0.0);
        close(low, 0.3, 1e-12);
        close(high, 0.3, 1e-12);
        let (low, high) = wilson(0, 10, 0.95);
        assert_eq!(low, 0.0);
        close(high, 0.2775, 1e-4);
        let (low, high) = wilson(10, 10, 0.95);
        close(low, 0.7225, 1e-4);
        assert_eq!(high, 1.0);
        assert_eq!(wilson(15, 10, 0.95), wilson(10, 10, 0.95));
        let (narrow_low, narrow_high) = wilson(300, 1000, 0.90);
        let (wide_low, wide_high) = wilson(300, 1000, 0.99);
        assert!(wide_low < narrow_low && narrow_high < wide_high);
    }

    // --- needed_per_variant -----------------------------------------------------------------

    #[test]
    fn needed_known_value() {
        // (1.959964 * sqrt(2 * 0.11 * 0.89) + 0.841621 * sqrt(0.09 + 0.1056))^2 / 0.02^2
        // = 3840.85, rounded up.
        assert_eq!(needed_per_variant(0.10, 0.12, 0.05, 0.8), Some(3841));
        assert_eq!(needed_per_variant(0.12, 0.10, 0.05, 0.8), Some(3841));
        // Stricter alpha or more power asks for more.
        assert!(needed_per_variant(0.10, 0.12, 0.01, 0.8) > Some(3841));
        assert!(needed_per_variant(0.10, 0.12, 0.05, 0.9) > Some(3841));
    }

    #[test]
    fn needed_rejects_what_it_cannot_answer() {
        assert_eq!(needed_per_variant(0.1, 0.1, 0.05, 0.8), None);
        assert_eq!(needed_per_variant(-0.1, 0.1, 0.05, 0.8), None);
        assert_eq!(needed_per_variant(0.1, 1.1, 0.05, 0.8), None);
        assert_eq!(needed_per_variant(f64::NAN, 0.1, 0.05, 0.8), None);
        assert_eq!(needed_per_variant(0.1, 0.2, 0.0, 0.8), None);
        assert_eq!(needed_per_variant(0.1, 0.2, 0.05, 1.0), None);
        assert!(needed_per_variant(0.0, 1.0, 0.05, 0.8).is_some());
    }

    // --- prob_best ----------------------------------------------------------------------------

    #[test]
    fn prob_best_trivial_sizes() {
        assert!(prob_best(&[]).is_empty());
        assert_eq!(prob_best(&[(3, 10)]), vec![1.0]);
    }

    #[test]
    fn prob_best_identical_data_splits_evenly() {
        for sample in [(0, 0), (300, 1000), (0, 50), (50, 50), (123_456, 2_000_000)] {
            let p = prob_best(&[sample, sample]);
            close(p[0], 0.5, 1e-9);
            close(p[1], 0.5, 1e-9);
            let p = prob_best(&[sample, sample, sample]);
            for q in p {
                close(q, 1.0 / 3.0, 1e-9);
            }
        }
    }

    #[test]
    fn prob_best_known_value() {
        // Exact (closed form) 0.977823; normal approximation Φ(2.012) = 0.9779.
        let exact = exact_b_beats_a((300, 1000), (342, 1000));
        close(exact, 0.977823, 1e-6);
        let p = prob_best(&[(300, 1000), (342, 1000)]);
        close(p[1], exact, 1e-6);
        close(p[0], 1.0 - exact, 1e-6);
        // Small samples are skewed; the integration still matches the closed form.
        let exact = exact_b_beats_a((3, 20), (9, 20));
        let p = prob_best(&[(3, 20), (9, 20)]);
        close(p[1], exact, 1e-6);
        let exact = exact_b_beats_a((0, 0), (1, 2));
        close(prob_best(&[(0, 0), (1, 2)])[1], exact, 1e-6);
        close(exact, 0.5, 1e-12);
    }

    #[test]
    fn prob_best_matches_the_closed_form() {
        let pairs = [
            ((0, 10), (10, 10)),
            ((1, 5), (0, 0)),
            ((30, 100), (3_100, 10_000)),
            ((12, 50_000), (30, 60_000)),
            ((49_000, 50_000), (9_850, 10_000)),
        ];
        for (a, b) in pairs {
            let p = prob_best(&[a, b]);
            close(p[1], exact_b_beats_a(a, b), 2e-6);
        }
    }

    #[test]
    fn prob_best_beyond_float_resolution() {
        // A posterior narrower than a float step sits in one cell of its neighbours' grid,
        // so it is resolved only to that cell (0.3 % of the flat posteriors' width here).
        let p = prob_best(&[(0, 0), (u64::MAX, u64::MAX), (0, 0)]);
        close(p[1], 1.0, 3e-3);
        assert!(p[1] > p[0] && p[0] == p[2]);
        close(p.iter().sum::<f64>(), 1.0, 1e-9);
        let p = prob_best(&[(u64::MAX, u64::MAX), (u64::MAX, u64::MAX)]);
        close(p[0], 0.5, 1e-9);
    }

    #[test]
    fn prob_best_millions_of_trials() {
        // Posteriors about 1.45e-4 wide; the difference 2e-4 is about 0.976 sd of the
        // difference: the normal approximation is excellent at this size.
        let (a, b) = ((3_000_000, 10_000_000), (3_002_000, 10_000_000));
        let sd = |(s, n): (u64, u64)| {
            let (alpha, beta) = (1.0 + s as f64, 1.0 + (n - s) as f64);
            alpha * beta / ((alpha + beta).powi(2) * (alpha + beta + 1.0))
        };
        let mean = |(s, n): (u64, u64)| (1.0 + s as f64) / (2.0 + n as f64);
        let z = (mean(b) - mean(a)) / (sd(a) + sd(b)).sqrt();
        let p = prob_best(&[a, b]);
        close(p[1], normal_cdf(z), 1e-5);
        // A rate near zero over ten million, against one with no data at all.
        let p = prob_best(&[(0, 0), (5, 10_000_000)]);
        close(p[0], 1.0 - 6.0 / 10_000_002.0, 1e-7);
        close(p.iter().sum::<f64>(), 1.0, 1e-9);
    }

    #[test]
    fn prob_best_sums_to_one_and_is_deterministic() {
        let cases: Vec<Vec<(u64, u64)>> = vec![
            vec![(0, 0), (0, 0)],
            vec![(0, 10), (10, 10)],
            vec![(1, 1_000_000), (2, 10), (30, 40)],
            (0..10).map(|i| (100 + i * 3, 1000)).collect(),
            (0..10).map(|i| (i * 1000, 10_000 + i * 100_000)).collect(),
        ];
        for samples in cases {
            let p = prob_best(&samples);
            assert_eq!(p.len(), samples.len());
            close(p.iter().sum::<f64>(), 1.0, 1e-6);
            assert!(p.iter().all(|q| (0.0..=1.0).contains(q)));
            assert_eq!(p, prob_best(&samples));
        }
        // Higher rate on equal trials: higher probability of being best.
        let p = prob_best(&(0..10).map(|i| (100 + i * 3, 1000)).collect::<Vec<_>>());
        assert!(p.windows(2).all(|w| w[0] < w[1]));
    }
}
