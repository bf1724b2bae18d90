//! Fair share: how many recipient domains a node claims and which it hands back. With D
//! domains that have work and N live nodes, a node's share is ceil(D / N) domains, largest
//! first; it claims up to its share of the domains nobody holds, and once it holds more than
//! its share plus one (a node joined, or work moved) it drains the excess, smallest first:
//! it stops taking from them and releases them when nothing is in flight to them.

use std::collections::HashSet;

use crate::store::DomainWork;

/// What a node does with its leases after one look at the work.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SharePlan {
    /// Domains to claim, largest first.
    pub(crate) claim: Vec<String>,
    /// Held domains to stop taking from (released once nothing is in flight to them).
    pub(crate) drain: Vec<String>,
    /// Held domains that have no work left (released once nothing is in flight to them).
    pub(crate) idle: Vec<String>,
}

/// The plan of a node holding `held` (of which `draining` are being handed back), given the
/// domains with `work` (largest first), those held by others, and `live` nodes (itself
/// included).
pub(crate) fn plan(
    work: &[DomainWork],
    held: &HashSet<String>,
    draining: &HashSet<String>,
    others: &HashSet<String>,
    live: usize,
) -> SharePlan {
    let live = live.max(1);
    let share = work.len().div_ceil(live);
    let with_work: HashSet<&str> = work.iter().map(|w| w.domain.as_str()).collect();
    let mut idle: Vec<String> = held
        .iter()
        .filter(|d| !with_work.contains(d.as_str()))
        .cloned()
        .collect();
    idle.sort();
    // Held, with work, still taken from: smallest last.
    let kept: Vec<&DomainWork> = work
        .iter()
        .filter(|w| held.contains(&w.domain) && !draining.contains(&w.domain))
        .collect();
    let mut out = SharePlan {
        idle,
        ..SharePlan::default()
    };
    if kept.len() > share + 1 {
        out.drain = kept[share..].iter().map(|w| w.domain.clone()).collect();
        return out;
    }
    let wanted = share.saturating_sub(kept.len());
    out.claim = work
        .iter()
        .filter(|w| !held.contains(&w.domain) && !others.contains(&w.domain))
        .take(wanted)
        .map(|w| w.domain.clone())
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(n: usize) -> Vec<DomainWork> {
        // d0 largest.
        (0..n)
            .map(|i| DomainWork {
                domain: format!("d{i}"),
                recipients: (1_000 - i) as u64,
            })
            .collect()
    }

    fn set(names: &[&str]) -> HashSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn names(range: std::ops::Range<usize>) -> HashSet<String> {
        range.map(|i| format!("d{i}")).collect()
    }

    #[test]
    fn a_lone_node_claims_everything_largest_first() {
        let plan = plan(&work(5), &set(&[]), &set(&[]), &set(&[]), 1);
        assert_eq!(plan.claim, vec!["d0", "d1", "d2", "d3", "d4"]);
        assert!(plan.drain.is_empty() && plan.idle.is_empty());
    }

    #[test]
    fn three_nodes_split_ten_domains_and_skip_what_others_hold() {
        let first = plan(&work(10), &set(&[]), &set(&[]), &set(&[]), 3);
        assert_eq!(first.claim, vec!["d0", "d1", "d2", "d3"]);
        let second = plan(&work(10), &set(&[]), &set(&[]), &names(0..4), 3);
        assert_eq!(second.claim, vec!["d4", "d5", "d6", "d7"]);
        let third = plan(&work(10), &set(&[]), &set(&[]), &names(0..8), 3);
        assert_eq!(third.claim, vec!["d8", "d9"]);
        // Holding its share, a node claims nothing more.
        let full = plan(&work(10), &names(0..4), &set(&[]), &set(&[]), 3);
        assert!(full.claim.is_empty() && full.drain.is_empty());
    }

    #[test]
    fn a_node_joining_makes_the_others_drain_down_to_their_share() {
        // Two nodes held 15 and 15 of 30; a third joins.
        let plan = plan(&work(30), &names(0..15), &set(&[]), &names(15..30), 3);
        assert!(plan.claim.is_empty());
        assert_eq!(plan.drain.len(), 5, "{plan:?}");
        assert_eq!(plan.drain[0], "d10", "the smallest go");
        // One over its share is within the slack: kept.
        let slack = super::plan(&work(30), &names(0..11), &set(&[]), &names(11..30), 3);
        assert!(slack.drain.is_empty() && slack.claim.is_empty());
    }

    #[test]
    fn held_domains_without_work_are_idle_and_draining_ones_are_not_counted() {
        let held = set(&["d0", "d1", "gone"]);
        let plan = plan(&work(4), &held, &set(&["d1"]), &set(&[]), 2);
        assert_eq!(plan.idle, vec!["gone"]);
        // Share 2: d0 kept, d1 draining, so one more is claimed (d1 is held: not again).
        assert_eq!(plan.claim, vec!["d2"]);
    }
}
