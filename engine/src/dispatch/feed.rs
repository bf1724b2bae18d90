//! One campaign's side of the scheduler: the recipient domains that still have work, a
//! cursor into each domain's pending queue, and the deferred recipients that fell due.
//! Domains are visited round-robin, so one large domain never starves the others.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::store::{RecipientKey, Store, StoreError, StoredRecipient};

/// Recipients of one campaign being fed to delivery.
#[derive(Debug)]
pub(crate) struct CampaignFeed {
    pub(crate) index: usize,
    pub(crate) id: String,
    pub(crate) priority: u8,
    ring: VecDeque<String>,
    in_ring: HashSet<String>,
    cursors: HashMap<String, u64>,
    exhausted: HashSet<String>,
    retries: HashMap<String, VecDeque<StoredRecipient>>,
    retry_count: usize,
    /// Its local-time sending window, when it has one.
    pub(crate) window: Option<super::window::FeedWindow>,
    /// Its warm-up, when it has one.
    pub(crate) warmup: Option<std::sync::Arc<crate::config::WarmupSettings>>,
}

impl CampaignFeed {
    /// A feed over `domains` (those with pending recipients).
    pub(crate) fn new(index: usize, id: String, priority: u8, domains: Vec<String>) -> Self {
        let mut feed = CampaignFeed {
            index,
            id,
            priority,
            ring: VecDeque::new(),
            in_ring: HashSet::new(),
            cursors: HashMap::new(),
            exhausted: HashSet::new(),
            retries: HashMap::new(),
            retry_count: 0,
            window: None,
            warmup: None,
        };
        for domain in domains {
            feed.enlist(domain);
        }
        feed
    }

    fn enlist(&mut self, domain: String) {
        if self.in_ring.insert(domain.clone()) {
            self.ring.push_back(domain);
        }
    }

    /// Domains that may still have work.
    pub(crate) fn domain_count(&self) -> usize {
        self.in_ring.len()
    }

    /// The domains that may still have work.
    pub(crate) fn domains(&self) -> impl Iterator<Item = &String> {
        self.in_ring.iter()
    }

    /// The next domain to visit (it moves to the back of the ring). Domains that left the
    /// ring are dropped from it here, lazily.
    pub(crate) fn next_domain(&mut self) -> Option<String> {
        while let Some(domain) = self.ring.pop_front() {
            if self.in_ring.contains(&domain) {
                self.ring.push_back(domain.clone());
                return Some(domain);
            }
        }
        None
    }

    /// Due retries held in memory.
    pub(crate) fn retries_waiting(&self) -> usize {
        self.retry_count
    }

    /// Adds deferred recipients that fell due (skipping those in flight or already held).
    pub(crate) fn add_retries(
        &mut self,
        due: Vec<StoredRecipient>,
        in_flight: impl Fn(usize, &RecipientKey) -> bool,
    ) {
        for recipient in due {
            if in_flight(self.index, &recipient.key) {
                continue;
            }
            let domain = recipient.key.domain.clone();
            let held = self.retries.entry(domain.clone()).or_default();
            if held.iter().any(|r| r.key == recipient.key) {
                continue;
            }
            held.push_back(recipient);
            self.retry_count += 1;
            self.enlist(domain);
        }
    }

    /// Forgets where the pending cursor of `domain` stood, so its recipients are read again
    /// (those released unsent).
    pub(crate) fn rewind(&mut self, domain: &str) {
        self.cursors.remove(domain);
        self.exhausted.remove(domain);
        self.enlist(domain.to_owned());
    }

    /// Up to `n` recipients of `domain` to send now: due retries first, then pending ones,
    /// skipping any in flight. A domain with nothing left leaves the ring.
    pub(crate) fn take(
        &mut self,
        store: &Store,
        domain: &str,
        n: usize,
        in_flight: impl Fn(usize, &RecipientKey) -> bool,
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        let mut out = Vec::with_capacity(n);
        if let Some(held) = self.retries.get_mut(domain) {
            while out.len() < n {
                let Some(recipient) = held.pop_front() else {
                    break;
                };
                self.retry_count -= 1;
                out.push(recipient);
            }
            if held.is_empty() {
                self.retries.remove(domain);
            }
        }
        while out.len() < n && !self.exhausted.contains(domain) {
            let want = n - out.len();
            let after = self.cursors.get(domain).copied();
            let page = store.pending_in(&self.id, domain, after, want)?;
            if page.len() < want {
                self.exhausted.insert(domain.to_owned());
            }
            let Some(last) = page.last() else { break };
            self.cursors.insert(domain.to_owned(), last.key.seq);
            let index = self.index;
            out.extend(page.into_iter().filter(|r| !in_flight(index, &r.key)));
        }
        if self.exhausted.contains(domain) && !self.retries.contains_key(domain) {
            self.in_ring.remove(domain);
        }
        Ok(out)
    }
}
