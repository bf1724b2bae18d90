//! From a verified token to what it is about: the campaign (by its number), the recipient
//! and, for a click, the URL to redirect to — the campaign's own link of that index,
//! rendered with the recipient's fields when it has merge fields. Campaign data is cached.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use minijinja::{Environment, UndefinedBehavior, Value};

use super::token::Token;
use crate::model::Millis;
use crate::store::{RecipientKey, Store, TrackingMeta};

/// A campaign as the tracking server needs it.
#[derive(Debug)]
pub(crate) struct Campaign {
    pub(crate) id: String,
    columns: Vec<String>,
    meta: TrackingMeta,
}

/// The recipient and campaign a token points at.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) campaign: Arc<Campaign>,
    pub(crate) key: RecipientKey,
    pub(crate) address: String,
    pub(crate) first_attempt: Option<Millis>,
    values: Vec<String>,
}

/// Resolves tokens against the store, caching campaigns.
pub(crate) struct Targets {
    store: Store,
    fingerprint: String,
    campaigns: RwLock<HashMap<u32, Arc<Campaign>>>,
}

impl Targets {
    /// Resolves against `store` for tokens signed with the key of `fingerprint`.
    pub(crate) fn new(store: Store, fingerprint: String) -> Targets {
        Targets {
            store,
            fingerprint,
            campaigns: RwLock::new(HashMap::new()),
        }
    }

    /// What `token` points at, when its campaign is tracked with this server's key and its
    /// recipient exists.
    pub(crate) fn resolve(&self, token: &Token) -> Option<Target> {
        let campaign = self.campaign(token.campaign)?;
        let key = self
            .store
            .recipient_key_by_number(token.campaign, token.seq)
            .ok()??;
        let record = self.store.recipient(&campaign.id, &key).ok()??;
        Some(Target {
            campaign,
            key,
            address: record.email,
            first_attempt: record.first_attempt,
            values: record.values,
        })
    }

    fn campaign(&self, number: u32) -> Option<Arc<Campaign>> {
        if let Some(found) = self
            .campaigns
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&number)
        {
            return Some(found.clone());
        }
        let id = self.store.campaign_by_number(number).ok()??;
        let meta = self.store.tracking_meta(&id).ok()??;
        if meta.key_fingerprint != self.fingerprint {
            tracing::warn!(campaign = %id, "a token of a campaign signed with another tracking key");
            return None;
        }
        let columns = self.store.campaign(&id).ok()??.columns;
        let campaign = Arc::new(Campaign { id, columns, meta });
        self.campaigns
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(number, campaign.clone());
        Some(campaign)
    }
}

impl Target {
    /// The URL of link `index` of the campaign for this recipient, if there is such a link.
    pub(crate) fn link(&self, index: u16) -> Option<String> {
        let template = self.campaign.meta.links.get(usize::from(index))?;
        if !template.contains("{{") && !template.contains("{%") {
            return Some(template.clone());
        }
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let context = Value::from_iter(
            self.campaign
                .columns
                .iter()
                .map(String::as_str)
                .zip(self.values.iter().map(|v| Value::from(v.as_str()))),
        );
        let rendered = env.render_str(template, context).ok()?;
        let lower = rendered.trim().to_ascii_lowercase();
        (lower.starts_with("https://") || lower.starts_with("http://"))
            .then(|| rendered.trim().to_owned())
    }
}
