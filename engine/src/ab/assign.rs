//! Which variant each recipient gets, deterministically and balanced per domain.
//!
//! Every address gets a hash of (campaign id, address). Within each recipient domain the
//! addresses are ordered by that hash, and the k-th of n takes the position
//! `u = (k + offset) / n` in [0, 1), `offset` being a hash of (campaign id, domain). The
//! position picks the variant against the cumulative weights (or, in a test-then-winner
//! campaign, whether the recipient is in the test share at all). So each domain, large or
//! small, is split in the weights' proportions to within one recipient, one mailbox provider
//! cannot tilt a variant, and the same list gives the same assignment on every run.
//!
//! A holdout (`[ab] holdout = h`) takes the positions [0, h) of every domain, so it mirrors
//! the list's domain mix to within one recipient per domain; the variants (and the test
//! share, which stays a share of the whole list) take the rest, [h, 1), as they would take
//! [0, 1) without it. Which recipients are held out depends on the campaign id and the list
//! alone, never on the variants, their weights or the test share; with `h = 0` every
//! assignment is what it was before holdouts existed.

use crate::model::Assignment;
use std::collections::HashMap;

/// Assigns variants for one campaign: first [`Assigner::observe`] every recipient of the list,
/// then [`Assigner::assign`] each.
#[derive(Debug, Clone)]
pub struct Assigner {
    campaign: String,
    /// Upper ends of each variant's slice of [0, 1), last one 1.
    cumulative: Vec<f64>,
    /// The test share of a test-then-winner campaign.
    test_share: Option<f64>,
    /// The share of the list held out of the send (0: none).
    holdout: f64,
    domains: HashMap<String, Vec<u64>>,
    sorted: bool,
}

impl Assigner {
    /// An assigner for `campaign` with one weight per variant (positive) and, for a
    /// test-then-winner campaign, the share of the list that gets the test.
    pub fn new(campaign: &str, weights: &[f64], test_share: Option<f64>) -> Assigner {
        let total: f64 = weights.iter().filter(|w| w.is_finite() && **w > 0.0).sum();
        let mut cumulative = Vec::with_capacity(weights.len());
        let mut running = 0.0;
        for weight in weights {
            if total > 0.0 && weight.is_finite() && *weight > 0.0 {
                running += weight / total;
            }
            cumulative.push(running);
        }
        if let Some(last) = cumulative.last_mut() {
            *last = 1.0;
        }
        Assigner {
            campaign: campaign.to_owned(),
            cumulative,
            test_share: test_share.filter(|s| *s > 0.0 && *s < 1.0),
            holdout: 0.0,
            domains: HashMap::new(),
            sorted: true,
        }
    }

    /// Holds `share` of the list out of the send (0 ≤ share < 0.5; anything else is no
    /// holdout). With a test share, the test share stays a share of the whole list and must
    /// leave room for the holdout (`share + test_share < 1`, checked by the campaign file).
    pub fn with_holdout(mut self, share: f64) -> Assigner {
        self.holdout = if share.is_finite() && (0.0..0.5).contains(&share) {
            share
        } else {
            0.0
        };
        self
    }

    /// Notes one recipient of the list (normalised address and its domain).
    pub fn observe(&mut self, domain: &str, address: &str) {
        let hash = self.hash(0, address);
        match self.domains.get_mut(domain) {
            Some(hashes) => hashes.push(hash),
            None => {
                self.domains.insert(domain.to_owned(), vec![hash]);
            }
        }
        self.sorted = false;
    }

    /// The variant (or hold, or holdout) of one observed recipient. A recipient that was not
    /// observed is placed by its own hash alone.
    pub fn assign(&mut self, domain: &str, address: &str) -> Assignment {
        let position = self.position(domain, address);
        if position < self.holdout {
            return Assignment::Holdout;
        }
        // The rest of [0, 1), after the holdout: [0, rest).
        let rest = 1.0 - self.holdout;
        let position = position - self.holdout;
        match self.test_share {
            Some(share) if position < share => {
                Assignment::Variant(self.variant_at(position / share))
            }
            Some(share) => Assignment::Held {
                fallback: self.variant_at((position - share) / (rest - share)),
            },
            None => Assignment::Variant(self.variant_at(position / rest)),
        }
    }

    /// The position in [0, 1) of one recipient: its rank by hash within its domain, offset
    /// per domain.
    fn position(&mut self, domain: &str, address: &str) -> f64 {
        if !self.sorted {
            for hashes in self.domains.values_mut() {
                hashes.sort_unstable();
            }
            self.sorted = true;
        }
        let hash = self.hash(0, address);
        match self.domains.get(domain) {
            Some(hashes) if !hashes.is_empty() => {
                let rank = hashes.partition_point(|h| *h < hash);
                let offset = unit(self.hash(1, domain));
                ((rank as f64 + offset) / hashes.len() as f64).min(1.0 - f64::EPSILON)
            }
            _ => unit(hash),
        }
    }

    /// The variant whose slice of [0, 1) holds `position`.
    fn variant_at(&self, position: f64) -> u8 {
        let index = self
            .cumulative
            .iter()
            .position(|upper| position < *upper)
            .unwrap_or(self.cumulative.len().saturating_sub(1));
        u8::try_from(index).unwrap_or(u8::MAX)
    }

    /// A stable 64-bit hash of (campaign, tag, text): the first 8 bytes of SHA-256, the same
    /// on every machine and every version.
    fn hash(&self, tag: u8, text: &str) -> u64 {
        let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        context.update(self.campaign.as_bytes());
        context.update(&[0, tag]);
        context.update(text.as_bytes());
        let digest = context.finish();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest.as_ref()[..8]);
        u64::from_be_bytes(first)
    }
}

/// Maps a hash to [0, 1).
fn unit(hash: u64) -> f64 {
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(domains: &[(&str, usize)]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (domain, n) in domains {
            for i in 0..*n {
                out.push((domain.to_string(), format!("user{i}@{domain}")));
            }
        }
        out
    }

    fn assign_all(
        campaign: &str,
        weights: &[f64],
        share: Option<f64>,
        people: &[(String, String)],
    ) -> Vec<Assignment> {
        let mut assigner = Assigner::new(campaign, weights, share);
        for (domain, address) in people {
            assigner.observe(domain, address);
        }
        people
            .iter()
            .map(|(domain, address)| assigner.assign(domain, address))
            .collect()
    }

    fn count(
        assignments: &[Assignment],
        people: &[(String, String)],
        domain: &str,
        v: u8,
    ) -> usize {
        assignments
            .iter()
            .zip(people)
            .filter(|(a, (d, _))| d == domain && **a == Assignment::Variant(v))
            .count()
    }

    #[test]
    fn each_domain_is_split_by_weight_to_within_one() {
        let people = list(&[
            ("gmail.com", 5_001),
            ("yahoo.com", 1_999),
            ("small.example", 7),
        ]);
        let got = assign_all("spring", &[1.0, 1.0], None, &people);
        for (domain, n) in [("gmail.com", 5_001usize), ("yahoo.com", 1_999)] {
            let a = count(&got, &people, domain, 0);
            let b = count(&got, &people, domain, 1);
            assert_eq!(a + b, n);
            assert!(a.abs_diff(b) <= 1, "{domain}: {a} vs {b}");
        }
        let weighted = assign_all("spring", &[3.0, 1.0], None, &people);
        let a = count(&weighted, &people, "gmail.com", 0);
        assert!(a.abs_diff(3_751) <= 1, "{a}");
    }

    #[test]
    fn the_same_list_gives_the_same_assignment_in_any_order() {
        let people = list(&[("gmail.com", 300), ("outlook.com", 200)]);
        let first = assign_all("spring", &[1.0, 1.0, 1.0], None, &people);
        let mut reversed = people.clone();
        reversed.reverse();
        let mut second = assign_all("spring", &[1.0, 1.0, 1.0], None, &reversed);
        second.reverse();
        assert_eq!(first, second);
        let other = assign_all("autumn", &[1.0, 1.0, 1.0], None, &people);
        assert_ne!(first, other, "another campaign shuffles differently");
    }

    #[test]
    fn a_test_share_holds_the_rest_and_splits_the_test_evenly() {
        let people = list(&[("gmail.com", 10_000), ("tiny.example", 1)]);
        let got = assign_all("spring", &[1.0, 1.0], Some(0.2), &people);
        let a = count(&got, &people, "gmail.com", 0);
        let b = count(&got, &people, "gmail.com", 1);
        assert_eq!((a, b), (1_000, 1_000));
        let held: Vec<u8> = got
            .iter()
            .filter_map(|a| match a {
                Assignment::Held { fallback } => Some(*fallback),
                Assignment::Variant(_) | Assignment::Holdout => None,
            })
            .collect();
        assert!(held.len() == 8_000 || held.len() == 8_001);
        let fallback_a = held.iter().filter(|v| **v == 0).count();
        assert!(fallback_a.abs_diff(4_000) <= 1, "{fallback_a}");
    }

    #[test]
    fn single_recipient_domains_still_follow_the_weights_overall() {
        let people: Vec<(String, String)> = (0..4_000)
            .map(|i| (format!("d{i}.example"), format!("x@d{i}.example")))
            .collect();
        let got = assign_all("spring", &[1.0, 1.0], None, &people);
        let a = got.iter().filter(|a| **a == Assignment::Variant(0)).count();
        // Binomial(4000, 0.5): 6 standard deviations is ±190.
        assert!(a.abs_diff(2_000) < 190, "{a}");
    }
    fn holdout_all(
        weights: &[f64],
        share: Option<f64>,
        holdout: f64,
        people: &[(String, String)],
    ) -> Vec<Assignment> {
        let mut assigner = Assigner::new("spring", weights, share).with_holdout(holdout);
        for (domain, address) in people {
            assigner.observe(domain, address);
        }
        people
            .iter()
            .map(|(domain, address)| assigner.assign(domain, address))
            .collect()
    }

    fn held_out<'a>(got: &[Assignment], people: &'a [(String, String)]) -> Vec<&'a str> {
        got.iter()
            .zip(people)
            .filter(|(a, _)| **a == Assignment::Holdout)
            .map(|(_, (_, address))| address.as_str())
            .collect()
    }

    #[test]
    fn the_holdout_takes_its_share_of_every_domain_to_within_one() {
        let sizes = [
            ("gmail.com", 5_001usize),
            ("yahoo.com", 1_999),
            ("small.example", 7),
        ];
        let people = list(&sizes);
        let got = holdout_all(&[1.0, 1.0], None, 0.1, &people);
        for (domain, n) in sizes {
            let out = got
                .iter()
                .zip(&people)
                .filter(|(a, (d, _))| d == domain && **a == Assignment::Holdout)
                .count();
            let expected = n as f64 * 0.1;
            assert!(
                (out as f64 - expected).abs() <= 1.0,
                "{domain}: {out} of {n}"
            );
            // The rest is split evenly between the variants, as without a holdout.
            let a = count(&got, &people, domain, 0);
            let b = count(&got, &people, domain, 1);
            assert_eq!(a + b + out, n);
            assert!(a.abs_diff(b) <= 1, "{domain}: {a} vs {b}");
        }
    }

    #[test]
    fn single_recipient_domains_are_held_out_within_binomial_error() {
        let people: Vec<(String, String)> = (0..10_000)
            .map(|i| (format!("d{i}.example"), format!("x@d{i}.example")))
            .collect();
        let got = holdout_all(&[1.0, 1.0], None, 0.05, &people);
        let out = got.iter().filter(|a| **a == Assignment::Holdout).count();
        // Binomial(10000, 0.05): sd 21.8; 6 sd is ±131.
        assert!(out.abs_diff(500) < 131, "{out}");
    }

    #[test]
    fn the_holdout_does_not_depend_on_the_variants_or_the_test_share() {
        let people = list(&[
            ("gmail.com", 3_000),
            ("outlook.com", 1_000),
            ("tiny.example", 3),
        ]);
        let even = holdout_all(&[1.0, 1.0], None, 0.05, &people);
        let expected = held_out(&even, &people);
        assert!(!expected.is_empty());
        for (weights, share) in [
            (&[3.0, 1.0, 1.0][..], None),
            (&[1.0, 1.0][..], Some(0.2)),
            (&[1.0][..], None),
        ] {
            let got = holdout_all(weights, share, 0.05, &people);
            assert_eq!(held_out(&got, &people), expected, "{weights:?} {share:?}");
        }
        // Deterministic: the same list in another order holds out the same people.
        let mut reversed = people.clone();
        reversed.reverse();
        let again = holdout_all(&[1.0, 1.0], None, 0.05, &reversed);
        let mut second = held_out(&again, &reversed);
        let mut first = expected.clone();
        first.sort_unstable();
        second.sort_unstable();
        assert_eq!(first, second);
    }

    #[test]
    fn no_holdout_assigns_as_before_and_the_test_share_stays_a_share_of_the_list() {
        let people = list(&[("gmail.com", 10_000)]);
        for share in [None, Some(0.2)] {
            let plain = assign_all("spring", &[1.0, 1.0], share, &people);
            assert_eq!(plain, holdout_all(&[1.0, 1.0], share, 0.0, &people));
        }
        let got = holdout_all(&[1.0, 1.0], Some(0.2), 0.1, &people);
        let out = got.iter().filter(|a| **a == Assignment::Holdout).count();
        let test = got
            .iter()
            .filter(|a| matches!(a, Assignment::Variant(_)))
            .count();
        let held = got
            .iter()
            .filter(|a| matches!(a, Assignment::Held { .. }))
            .count();
        assert!(out.abs_diff(1_000) <= 1, "{out}");
        assert!(test.abs_diff(2_000) <= 1, "{test}");
        assert_eq!(out + test + held, 10_000);
        assert!(count(&got, &people, "gmail.com", 0).abs_diff(1_000) <= 1);
    }

    #[test]
    fn a_share_outside_the_range_holds_nobody_out() {
        let people = list(&[("gmail.com", 1_000)]);
        for bad in [0.5, -0.1, f64::NAN, 1.0] {
            let got = holdout_all(&[1.0, 1.0], None, bad, &people);
            assert!(held_out(&got, &people).is_empty(), "{bad}");
        }
    }
}
