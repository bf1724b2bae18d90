//! From a verified token to what it is about: the campaign (by its number), the recipient
//! and, for a click, the URL to redirect to — the campaign's own link of that index,
//! rendered with the recipient's fields when it has merge fields. Campaign data is cached,
//! and so are recipients once delivered (what a token needs of them no longer changes).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use minijinja::Value;
use moka::sync::Cache;

use super::token::Token;
use crate::model::Millis;
use crate::store::{CampaignTopic, RecipientKey, Store, TrackingMeta};

/// A campaign as the tracking server needs it.
#[derive(Debug)]
pub(crate) struct Campaign {
    pub(crate) id: String,
    pub(crate) columns: Vec<String>,
    meta: TrackingMeta,
    /// Its topic, if it was sent with one (issue 22).
    pub(crate) topic: Option<CampaignTopic>,
}

impl Campaign {
    /// The topic a one-click unsubscribe of this campaign leaves (`None`: everything).
    pub(crate) fn unsubscribe_topic(&self) -> Option<String> {
        self.topic
            .as_ref()
            .and_then(|t| t.unsubscribe_topic())
            .map(str::to_owned)
    }
}

/// What a token needs of its recipient.
#[derive(Debug)]
pub(crate) struct Recipient {
    pub(crate) key: RecipientKey,
    pub(crate) address: String,
    pub(crate) first_attempt: Option<Millis>,
    pub(crate) values: Vec<String>,
}

/// The recipient and campaign a token points at.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) campaign: Arc<Campaign>,
    pub(crate) recipient: Arc<Recipient>,
}

/// Recipients kept in memory at most (about 200 bytes each with a few merge fields).
const CACHED_RECIPIENTS: u64 = 100_000;
/// A cached recipient not asked for this long is dropped.
const CACHE_IDLE: Duration = Duration::from_secs(15 * 60);

/// Resolves tokens against the store, caching campaigns and delivered recipients.
pub(crate) struct Targets {
    store: Store,
    fingerprint: String,
    campaigns: RwLock<HashMap<u32, Arc<Campaign>>>,
    /// By campaign number and sequence number.
    recipients: Cache<(u32, u64), Arc<Recipient>>,
}

impl Targets {
    /// Resolves against `store` for tokens signed with the key of `fingerprint`.
    pub(crate) fn new(store: Store, fingerprint: String) -> Targets {
        Targets {
            store,
            fingerprint,
            campaigns: RwLock::new(HashMap::new()),
            recipients: Cache::builder()
                .max_capacity(CACHED_RECIPIENTS)
                .time_to_idle(CACHE_IDLE)
                .build(),
        }
    }

    /// What `token` points at, when its campaign is tracked with this server's key and its
    /// recipient exists.
    pub(crate) fn resolve(&self, token: &Token) -> Option<Target> {
        let campaign = self.campaign(token.campaign)?;
        let id = (token.campaign, token.seq);
        if let Some(recipient) = self.recipients.get(&id) {
            return Some(Target {
                campaign,
                recipient,
            });
        }
        let key = self
            .store
            .recipient_key_by_number(token.campaign, token.seq)
            .ok()??;
        let record = self.store.recipient(&campaign.id, &key).ok()??;
        let recipient = Arc::new(Recipient {
            key,
            address: record.email,
            first_attempt: record.first_attempt,
            values: record.values,
        });
        // Before delivery the first attempt is still to come: read it again next time.
        if recipient.first_attempt.is_some() {
            self.recipients.insert(id, recipient.clone());
        }
        Some(Target {
            campaign,
            recipient,
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
        let topic = self.store.campaign_topic(&id).ok()?;
        let campaign = Arc::new(Campaign {
            id,
            columns,
            meta,
            topic,
        });
        self.campaigns
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(number, campaign.clone());
        Some(campaign)
    }
}

impl Campaign {
    /// The tracked links, by index, as written in the templates.
    pub(crate) fn links(&self) -> &[String] {
        &self.meta.links
    }
}

impl Target {
    /// The URL of link `index` of the campaign for this recipient, if there is such a link;
    /// merge values in it are percent-encoded (see [`super::render`]).
    pub(crate) fn link(&self, index: u16) -> Option<String> {
        let template = self.campaign.meta.links.get(usize::from(index))?;
        if !template.contains("{{") && !template.contains("{%") {
            return Some(template.clone());
        }
        let context = Value::from_iter(
            self.campaign.columns.iter().map(String::as_str).zip(
                self.recipient
                    .values
                    .iter()
                    .map(|v| Value::from(v.as_str())),
            ),
        );
        super::render::render_link(template, context)
    }
}
