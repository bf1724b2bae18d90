//! The server as a node of a cluster on a shared database: the active published campaigns it
//! runs beside its serve file's own. Which node loads a campaign (`load:<id>`) and which
//! domains each sends are the node's leases (`crate::cluster`). The transactional lane's
//! campaign is shared the same way: any node accepts a message, the node holding its
//! domain sends it.

use super::Server;
use crate::cluster::Node;
use crate::config::CampaignSettings;
use crate::runtime::cluster_docs::read_published;
use crate::store::DocumentState;
use std::collections::HashSet;

impl Server {
    /// The settings of every active published campaign this node can send (not those of its
    /// serve file: `own` holds their ids). A document is materialised and loaded once per
    /// version; one whose secrets this node lacks is said once (per version) and left to
    /// the other nodes.
    pub(super) fn published(
        &self,
        own: &HashSet<String>,
        told: &mut HashSet<String>,
    ) -> Vec<CampaignSettings> {
        let Some(documents) = self.store.documents() else {
            return Vec::new();
        };
        let records = match documents.documents_in(DocumentState::Active) {
            Ok(records) => records,
            Err(error) => {
                if told.insert("campaign documents".to_owned()) {
                    tracing::error!(%error, "cannot read the published campaigns");
                }
                return Vec::new();
            }
        };
        let mut cache = self.published.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|id, _| records.iter().any(|r| r.id == *id));
        let mut found = Vec::new();
        for record in records.iter().filter(|r| !own.contains(&r.id)) {
            let known = cache.get(&record.id).map(|(digest, _)| digest.as_str());
            if let Some(read) = read_published(&self.store, &self.settings.store, record, known) {
                match read.settings {
                    Ok(settings) => {
                        tracing::info!(campaign = %read.id, "published campaign loaded on this node");
                        cache.insert(read.id, (read.digest, settings));
                    }
                    Err(message) => {
                        cache.remove(&read.id);
                        if told.insert(format!("document {} {}", read.id, read.digest)) {
                            tracing::warn!(campaign = %read.id, "{message}; leaving it to other nodes");
                        }
                        continue;
                    }
                }
            }
            if let Some((_, settings)) = cache.get(&record.id) {
                found.push(settings.clone());
            }
        }
        found
    }

    /// On a cluster node with a transactional lane: the lane's campaign joins the campaigns
    /// whose work the node shares (`working`), and the domains it holds with lane messages
    /// waiting are handed to the lane's send, which reads their queues again (a message
    /// woke only the send of the node that accepted it; this one may be another, or the
    /// same one after the accepting node died).
    pub(super) fn share_lane(
        &self,
        node: &Node,
        working: &mut Vec<String>,
        told: &mut HashSet<String>,
    ) {
        let (Some(lane), Some(cluster)) = (&self.transactional, self.store.cluster()) else {
            return;
        };
        let id = lane.campaign().to_owned();
        working.push(id.clone());
        match cluster.domains_with_work(std::slice::from_ref(&id), node.heartbeat_every()) {
            Ok(work) => {
                told.remove(LANE_WORK);
                let filter = node.filter();
                let mine: Vec<String> = work
                    .into_iter()
                    .map(|w| w.domain)
                    .filter(|d| filter.allows(d))
                    .collect();
                if !mine.is_empty() {
                    lane.arrived(mine);
                }
            }
            Err(error) => {
                if told.insert(LANE_WORK.to_owned()) {
                    tracing::error!(lane = %id, %error, "cannot read the transactional lane's work");
                }
            }
        }
    }
}

/// What `told` notes while the lane's work cannot be read.
const LANE_WORK: &str = "transactional lane work";
