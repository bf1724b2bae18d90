//! Simulated A/B tests looked at after every event: the false-winner rate of A/A tests, the
//! power of real lifts, and the mean size at which a test stops, for the sequential method
//! (the mSPRT `volley` uses) and, for contrast, the fixed z-test peeked at just as often.
//!
//! `cargo run --release -p volley-engine --example ab_simulate -- [TESTS] [SEED]`
//! (default 10,000 tests per row, seed 21). Deliveries alternate between the two variants;
//! after each one the verdict is taken as `volley` takes it: `min_per_variant` first (100),
//! then the winner (always-valid p ≤ alpha) or futility (the confidence sequence inside
//! ±`min_lift`).
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use volley::ab::sequential::{always_valid_p, confidence_sequence};
use volley::ab::{two_proportion_z, Rules};

/// SplitMix64: fast, seeded, good enough for Monte Carlo.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy, PartialEq)]
enum End {
    AWins,
    BWins,
    Futile,
    MaxWait,
}

/// One test: true rates `pa`, `pb`, up to `max` deliveries per variant, alternating A and B,
/// a look after each.
fn run(rng: &mut Rng, pa: f64, pb: f64, max: u64, peeking: bool, rules: &Rules) -> (End, u64) {
    let (mut sa, mut na, mut sb, mut nb) = (0_u64, 0_u64, 0_u64, 0_u64);
    while nb < max {
        na += 1;
        sa += u64::from(rng.unit() < pa);
        if let Some(end) = look((sa, na), (sb, nb), peeking, rules) {
            return (end, na);
        }
        nb += 1;
        sb += u64::from(rng.unit() < pb);
        if let Some(end) = look((sa, na), (sb, nb), peeking, rules) {
            return (end, nb);
        }
    }
    (End::MaxWait, max)
}

/// One look: a stop, or `None` to go on.
fn look((s1, n1): (u64, u64), (s2, n2): (u64, u64), peeking: bool, rules: &Rules) -> Option<End> {
    if n1.min(n2) < rules.min_per_variant {
        return None;
    }
    let alpha = 1.0 - rules.confidence;
    let winner = |lift: f64| Some(if lift > 0.0 { End::AWins } else { End::BWins });
    if peeking {
        let (z, p) = two_proportion_z(s1, n1, s2, n2)?;
        return if p < alpha { winner(z) } else { None };
    }
    let tau = rules.mixture_sd;
    if always_valid_p(s1, n1, s2, n2, tau) <= alpha {
        return winner(s1 as f64 / n1 as f64 - s2 as f64 / n2 as f64);
    }
    let (low, high) = confidence_sequence(s1, n1, s2, n2, tau, alpha);
    (low > -rules.min_lift && high < rules.min_lift).then_some(End::Futile)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let tests: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(21);
    let rules = Rules::default();
    println!(
        "{tests} simulated tests per row, a look after every delivery, alpha {:.2}, min_per_variant {}, min_lift {}, mixture_sd {}",
        1.0 - rules.confidence,
        rules.min_per_variant,
        rules.min_lift,
        rules.mixture_sd
    );
    println!(
        "| method | rates A / B | max per variant | false winner | B wins (power) | futility | max_wait | mean stop size per variant |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let rows: [(&str, f64, f64, u64, bool); 8] = [
        ("sequential", 0.10, 0.10, 5_000, false),
        ("sequential", 0.03, 0.03, 10_000, false),
        ("sequential", 0.30, 0.30, 5_000, false),
        ("sequential", 0.10, 0.12, 12_000, false),
        ("sequential", 0.03, 0.04, 20_000, false),
        ("sequential", 0.10, 0.10, 50_000, false),
        ("fixed, peeking", 0.10, 0.10, 5_000, true),
        ("fixed, peeking", 0.10, 0.12, 12_000, true),
    ];
    for (i, (method, pa, pb, max, peeking)) in rows.into_iter().enumerate() {
        let mut rng = Rng(seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
        let (mut a, mut b, mut futile, mut maxed, mut size) = (0u32, 0u32, 0u32, 0u32, 0u64);
        for _ in 0..tests {
            let (end, n) = run(&mut rng, pa, pb, max, peeking, &rules);
            size += n;
            match end {
                End::AWins => a += 1,
                End::BWins => b += 1,
                End::Futile => futile += 1,
                End::MaxWait => maxed += 1,
            }
        }
        let share = |k: u32| k as f64 / tests as f64;
        let false_winner = if pa == pb { share(a + b) } else { share(a) };
        let power = if pa == pb {
            "—".to_owned()
        } else {
            format!("{:.3}", share(b))
        };
        println!(
            "| {method} | {:.0} % / {:.0} % | {max} | {false_winner:.4} (± {:.4}) | {power} | {:.3} | {:.3} | {:.0} |",
            pa * 100.0,
            pb * 100.0,
            (false_winner.max(0.0001) * (1.0 - false_winner) / tests as f64).sqrt(),
            share(futile),
            share(maxed),
            size as f64 / tests as f64
        );
    }
}
