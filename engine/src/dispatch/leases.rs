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
        let Some(filter) = self.filter.clone() else {
            return;
        };
        // A relay's connections and rate are split between the live nodes.
        let (live, rank) = (filter.live_nodes(), filter.rank());
        let mut benched = false;
        for destination in &self.routing.destinations {
            if destination.fatal_connect_errors {
                destination.split_between(live, rank);
                benched |= destination.benched();
            }
        }
        if benched != filter.benched() {
            tracing::info!(live, rank, benched, "more nodes than relay connections: this node sends through the relay only when it has one");
            filter.set_benched(benched);
        }
        let generation = filter.generation();
        if generation == self.open.0 {
            return;
        }
        // Domains came or went: take over the back-off the nodes that sent there left.
        self.take_shared_backoff();
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
    /// Saves the back-off of every destination whose back-off changed (throttled, suspended,
    /// recovering), so the node that takes its domains over starts from it. Cluster only.
    pub(super) fn share_changed_backoff(&self) {
        let Some(cluster) = self.filter.as_ref().and(self.store.cluster()) else {
            return;
        };
        let now = std::time::Instant::now();
        for destination in &self.routing.destinations {
            if let Some(snapshot) = destination.backoff_to_share(now) {
                if let Err(error) = cluster.save_backoff(&destination.name, &snapshot) {
                    tracing::warn!(destination = %destination.name, %error, "could not share the destination's back-off");
                }
            }
        }
    }

    /// Reads the back-off other nodes left (saved within [`SHARED_BACKOFF_AGE`]).
    fn take_shared_backoff(&mut self) {
        let Some(cluster) = self.store.cluster() else {
            return;
        };
        match cluster.backoffs(SHARED_BACKOFF_AGE) {
            Ok(saved) => self.routing.share_backoff(
                saved
                    .into_iter()
                    .map(|(name, snapshot, _)| (name, snapshot))
                    .collect(),
            ),
            Err(error) => {
                tracing::warn!(%error, "could not read the destinations' shared back-off")
            }
        }
    }
}

/// How old a destination's shared back-off may be to be taken over: a destination nobody
/// was throttled by (or recovered on) for an hour starts afresh.
const SHARED_BACKOFF_AGE: std::time::Duration = std::time::Duration::from_secs(3_600);

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
