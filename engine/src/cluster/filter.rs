//! [`WorkFilter`]: which recipient domains this node may take recipients of now, shared by
//! the node's lease keeper (which grants and takes away) and the scheduler (which asks before
//! each take). A domain is open while its lease is held, not being drained, and the last
//! renewal is recent enough that the lease cannot have run out (a local deadline on the
//! monotonic clock, set by the heartbeat): when the database cannot be reached, takes stop
//! by themselves before another node may take the domain over.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The domains a cluster node may send to, and what it has in flight to each.
#[derive(Debug, Default)]
pub(crate) struct WorkFilter {
    state: Mutex<State>,
    /// Bumped at each grant, so the scheduler knows to look for new work.
    generation: AtomicU64,
    /// Wakes the scheduler when domains were granted (one waiter: the scheduler).
    granted: Notify,
    /// Messages handed out per second, for the last minute.
    sent: Mutex<VecDeque<(Instant, u64)>>,
    /// Live nodes at the last heartbeat (0 before the first): a relay's limits are split
    /// between them.
    live: AtomicU64,
    /// This node's place among the live ones, by name.
    rank: AtomicU64,
    /// See [`WorkFilter::set_benched`].
    benched: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    held: HashSet<String>,
    draining: HashSet<String>,
    valid_until: Option<Instant>,
    busy: HashMap<String, usize>,
}

impl WorkFilter {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True when recipients of `domain` may be taken now.
    pub(crate) fn allows(&self, domain: &str) -> bool {
        if self.benched() {
            return false;
        }
        let state = self.state();
        state
            .valid_until
            .is_some_and(|until| Instant::now() < until)
            && state.held.contains(domain)
            && !state.draining.contains(domain)
    }

    /// The domains open now (see [`WorkFilter::allows`]).
    pub(crate) fn open_domains(&self) -> HashSet<String> {
        let state = self.state();
        if state
            .valid_until
            .is_none_or(|until| Instant::now() >= until)
        {
            return HashSet::new();
        }
        state
            .held
            .iter()
            .filter(|d| !state.draining.contains(*d))
            .cloned()
            .collect()
    }

    /// This node's place among the live nodes, in name order (0-based).
    pub(crate) fn rank(&self) -> usize {
        usize::try_from(self.rank.load(Ordering::Acquire)).unwrap_or(0)
    }

    /// Notes this node's place among the live nodes.
    /// A change (a node came or went) lifts a bench: the next run looks again.
    pub(crate) fn set_rank(&self, rank: usize) {
        if self.rank.swap(rank as u64, Ordering::AcqRel) != rank as u64 {
            self.set_benched(false);
        }
    }

    /// Set by the scheduler while the node has no connection of its own to the relay (more
    /// nodes than connections): it then takes nothing and claims nothing.
    pub(crate) fn set_benched(&self, benched: bool) {
        self.benched.store(benched, Ordering::Release);
    }

    /// See [`WorkFilter::set_benched`].
    pub(crate) fn benched(&self) -> bool {
        self.benched.load(Ordering::Acquire)
    }

    /// Live nodes at the last heartbeat, itself included (at least 1).
    pub(crate) fn live_nodes(&self) -> usize {
        usize::try_from(self.live.load(Ordering::Acquire))
            .unwrap_or(1)
            .max(1)
    }

    /// Notes the live nodes counted at a heartbeat.
    pub(crate) fn set_live_nodes(&self, live: usize) {
        if self.live.swap(live as u64, Ordering::AcqRel) != live as u64 {
            self.set_benched(false);
        }
    }

    /// Changes with every grant.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Resolves after the next grant (or at once when one came since the last wait).
    pub(crate) async fn granted(&self) {
        self.granted.notified().await;
    }

    /// The scheduler's count of messages in flight, per domain (all of them, each time).
    pub(crate) fn set_busy(&self, busy: HashMap<String, usize>) {
        self.state().busy = busy;
    }

    /// Messages in flight to `domain`.
    pub(crate) fn in_flight(&self, domain: &str) -> usize {
        self.state().busy.get(domain).copied().unwrap_or(0)
    }

    /// Notes `n` messages handed out for sending.
    pub(crate) fn note_sent(&self, n: usize) {
        let now = Instant::now();
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        match sent.back_mut() {
            Some((at, count)) if now.duration_since(*at) < Duration::from_secs(1) => {
                *count += n as u64;
            }
            _ => sent.push_back((now, n as u64)),
        }
        while sent
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > Duration::from_secs(60))
        {
            sent.pop_front();
        }
    }

    /// Messages handed out in the last minute.
    pub(crate) fn sent_last_minute(&self) -> u64 {
        let now = Instant::now();
        let sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.iter()
            .filter(|(at, _)| now.duration_since(*at) <= Duration::from_secs(60))
            .map(|(_, n)| n)
            .sum()
    }

    /// The domains whose leases are held (draining ones included).
    pub(crate) fn held(&self) -> HashSet<String> {
        self.state().held.clone()
    }

    /// The held domains being drained.
    pub(crate) fn draining(&self) -> HashSet<String> {
        self.state().draining.clone()
    }

    /// Leases renewed: they hold until `valid_until` (the local deadline); `held` are the
    /// domains the database says this node still holds (any other is lost at once).
    pub(crate) fn renewed(&self, held: &HashSet<String>, valid_until: Instant) -> Vec<String> {
        let mut state = self.state();
        state.valid_until = Some(valid_until);
        let lost: Vec<String> = state.held.difference(held).cloned().collect();
        for domain in &lost {
            state.held.remove(domain);
            state.draining.remove(domain);
        }
        lost
    }

    /// Domains whose leases were just claimed: they open, and the scheduler is woken.
    pub(crate) fn grant(&self, domains: impl IntoIterator<Item = String>) {
        let mut any = false;
        {
            let mut state = self.state();
            for domain in domains {
                state.draining.remove(&domain);
                any |= state.held.insert(domain);
            }
        }
        if any {
            self.generation.fetch_add(1, Ordering::AcqRel);
            self.granted.notify_one();
        }
    }

    /// Stops taking from `domains` (held still, until nothing is in flight to them).
    pub(crate) fn drain(&self, domains: impl IntoIterator<Item = String>) {
        let mut state = self.state();
        for domain in domains {
            if state.held.contains(&domain) {
                state.draining.insert(domain);
            }
        }
    }

    /// Forgets `domains` (released, or lost).
    pub(crate) fn revoke(&self, domains: &[String]) {
        let mut state = self.state();
        for domain in domains {
            state.held.remove(domain);
            state.draining.remove(domain);
        }
    }

    /// Closes every domain (stopping).
    pub(crate) fn close(&self) {
        self.state().valid_until = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(domains: &[&str]) -> HashSet<String> {
        domains.iter().map(|d| (*d).to_owned()).collect()
    }

    #[test]
    fn a_domain_is_open_while_held_not_drained_and_within_the_local_deadline() {
        let filter = WorkFilter::default();
        filter.grant(["a.example".to_owned(), "b.example".to_owned()]);
        assert!(!filter.allows("a.example"), "no renewal yet: no deadline");
        let soon = Instant::now() + Duration::from_secs(60);
        assert!(filter
            .renewed(&set(&["a.example", "b.example"]), soon)
            .is_empty());
        assert!(filter.allows("a.example") && filter.allows("b.example"));
        filter.drain(["b.example".to_owned()]);
        assert!(!filter.allows("b.example"));
        assert_eq!(filter.open_domains(), set(&["a.example"]));
        // The database says b was taken over: lost at once.
        assert_eq!(
            filter.renewed(&set(&["a.example"]), soon),
            vec!["b.example".to_owned()]
        );
        assert_eq!(filter.held(), set(&["a.example"]));
        // The deadline passed without a renewal: nothing is open.
        filter.renewed(&set(&["a.example"]), Instant::now());
        assert!(!filter.allows("a.example"));
        assert!(filter.open_domains().is_empty());
    }

    #[test]
    fn a_grant_bumps_the_generation_and_wakes_the_scheduler() {
        let filter = WorkFilter::default();
        let before = filter.generation();
        filter.grant(["a.example".to_owned()]);
        assert!(filter.generation() > before);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(5), filter.granted()).await
            })
            .unwrap();
        filter.note_sent(3);
        filter.note_sent(4);
        assert_eq!(filter.sent_last_minute(), 7);
    }
}
