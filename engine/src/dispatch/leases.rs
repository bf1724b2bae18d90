//! The scheduler on a cluster node: it takes recipients only of the domains whose leases
//! the node holds (the shared `WorkFilter`), reads newly granted domains from the start (what
//! another node left pending), wakes at each grant, and splits the relay's limits between
//! the live nodes.

use crate::cluster::WorkFilter;

use super::Scheduler;

impl Scheduler {
    /// True when recipients of `domain` may be taken now (always, outside a cluster).
    pub(super) fn may_take(&self, domain: &str) -> bool {
        self.filter.as_ref().is_none_or(|f| f.allows(domain))
    }

    /// After a grant, reads the newly open domains from the start in every campaign (what
    /// another node left pending) and looks for their due retries at once.
    pub(super) fn take_grants(&mut self) {
        let Some(filter) = &self.filter else {
            return;
        };
        // A relay's connections and rate are split between the live nodes.
        let live = filter.live_nodes();
        for destination in &self.routing.destinations {
            if destination.fatal_connect_errors {
                destination.split_between(live);
            }
        }
        let generation = filter.generation();
        if generation == self.open.0 {
            return;
        }
        let open = filter.open_domains();
        for domain in open.difference(&self.open.1) {
            for feed in &mut self.feeds {
                feed.rewind(domain);
            }
        }
        self.open = (generation, open);
        self.last_retry_check = None;
    }
}

impl Scheduler {
    /// Up to a page of `campaign`'s deferred recipients due at or before `at` that this
    /// process may send: all of them outside a cluster; on a node, those of the domains it
    /// holds, read by domain (a page of all due retries could be all other nodes' and leave
    /// its own unread).
    pub(super) fn due_here(
        &self,
        campaign: &str,
        at: crate::model::Millis,
    ) -> Result<Vec<crate::store::StoredRecipient>, crate::store::StoreError> {
        let Some(filter) = &self.filter else {
            return self.store.due(campaign, at, super::RETRY_PAGE);
        };
        let mut mine: Vec<String> = filter.open_domains().into_iter().collect();
        mine.sort();
        let mut due = self
            .store
            .due_in_domains(campaign, &mine, at, super::RETRY_PAGE)?;
        due.retain(|r| filter.allows(&r.key.domain));
        Ok(due)
    }
}

/// Resolves when `filter` granted domains (never without a filter).
pub(super) async fn granted(filter: Option<&WorkFilter>) {
    match filter {
        Some(filter) => filter.granted().await,
        None => std::future::pending().await,
    }
}
