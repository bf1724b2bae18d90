//! Which variant each recipient gets, deterministically and balanced per domain.
//!
//! Every address gets a hash of (campaign id, address). Within each recipient domain the
//! addresses are ordered by that hash, and the k-th of n takes the position
//! `u = (k + offset) / n` in [0, 1), `offset` being a hash of (campaign id, domain). The
//! position picks the variant against the cumulative weights (or, in a test-then-winner
//! campaign, whether the recipient is in the test share at all). So each domain, large or
//! small, is split in the weights' proportions to within one recipient, one mailbox provider
//! cannot tilt a variant, and the same list gives the same assignment on every run.

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
            domains: HashMap::new(),
            sorted: true,
        }
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

    /// The variant (or hold) of one observed recipient. A recipient that was not observed
    /// is placed by its own hash alone.
    pub fn assign(&mut self, domain: &str, address: &str) -> Assignment {
        if !self.sorted {
            for hashes in self.domains.values_mut() {
                hashes.sort_unstable();
            }
            self.sorted = true;
        }
        let hash = self.hash(0, address);
        let position = match self.domains.get(domain) {
            Some(hashes) if !hashes.is_empty() => {
                let rank = hashes.partition_point(|h| *h < hash);
                let offset = unit(self.hash(1, domain));
                ((rank as f64 + offset) / hashes.len() as f64).min(1.0 - f64::EPSILON)
            }
            _ => unit(hash),
        };
        match self.test_share {
            Some(share) if position < share => {
                Assignment::Variant(self.variant_at(position / share))
            }
            Some(share) => Assignment::Held {
                fallback: self.variant_at((position - share) / (1.0 - share)),
            },
            None => Assignment::Variant(self.variant_at(position)),
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
                Assignment::Variant(_) => None,
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
}
