//! The server as a node of a cluster on a shared database: the active published campaigns it
//! runs beside its serve file's own, and the leases that make one node load a campaign (or an
//! edition: `load:<id>`) and one node at a time send it (`send:<id>`).

use super::{Lease, Server};
use crate::config::CampaignSettings;
use crate::runtime::cluster_docs::read_published;
use crate::store::DocumentState;
use std::collections::HashSet;
use std::time::Duration;

/// How long after a launch its `send:` lease is kept although the campaign is not active yet
/// (its send is starting).
const STARTING_GRACE: Duration = Duration::from_secs(5);

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

    /// On a cluster's database, takes what launching campaign `id` needs: its `load:` lease
    /// when it is not loaded yet (returned: held until it is loaded), and its `send:` lease
    /// (kept until the send ends). `None`: another node loads or sends it; leave it.
    pub(super) fn take_campaign_leases(&self, id: &str) -> Option<Option<Lease>> {
        if self.store.documents().is_none() {
            return Some(None);
        }
        let loaded = self
            .store
            .campaign(id)
            .ok()
            .flatten()
            .is_some_and(|meta| meta.loaded);
        let load = if loaded {
            None
        } else {
            match Lease::load(&self.store, id) {
                Ok(Some(lease)) => Some(lease),
                Ok(None) => {
                    tracing::debug!(campaign = id, "another node is loading it");
                    return None;
                }
                Err(error) => {
                    tracing::warn!(campaign = id, %error, "could not take the load lease");
                    return None;
                }
            }
        };
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        if !leases.contains_key(id) {
            match Lease::send(&self.store, id) {
                Ok(Some(lease)) => {
                    leases.insert(id.to_owned(), lease);
                }
                Ok(None) => {
                    tracing::debug!(campaign = id, "another node is sending it");
                    return None;
                }
                Err(error) => {
                    tracing::warn!(campaign = id, %error, "could not take the send lease");
                    return None;
                }
            }
        }
        Some(load)
    }

    /// Gives back the `send:` leases of campaigns this node no longer sends.
    pub(super) fn drop_idle_leases(&self) {
        let launched = self.launched.lock().unwrap_or_else(|p| p.into_inner());
        let starting = self.starting.lock().unwrap_or_else(|p| p.into_inner());
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        leases.retain(|id, _| {
            self.host.is_active(id)
                || starting.contains(id)
                || launched
                    .get(id)
                    .is_some_and(|at| at.elapsed() < STARTING_GRACE)
        });
    }
}
