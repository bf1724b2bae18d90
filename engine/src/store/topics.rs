//! Topics in the store (issue 22): the known topics with their display names, each
//! campaign's topic (for the tracking server), and the topic-scoped part of the suppression
//! list. A global entry (see [`super::api::SuppressionStore`]) keeps an address from every
//! campaign; a topic entry only from campaigns of that topic. A store written before topics
//! simply has no topic entries.

use super::StoreError;
use crate::model::{CampaignTopic, Suppression, Topic};

/// One topic-scoped suppression-list entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TopicSuppression {
    /// The address.
    pub address: String,
    /// The topic it left.
    pub topic: String,
    /// Why, when and by which campaign.
    pub entry: Suppression,
}

/// Topics and topic suppressions, on every engine.
pub trait TopicStore {
    /// Records `campaign`'s topic, and adds the topic (or renames it) in the known topics.
    fn set_campaign_topic(&self, campaign: &str, topic: &CampaignTopic) -> Result<(), StoreError>;

    /// Forgets `campaign`'s topic (a campaign sent again without one); the known topics stay.
    fn clear_campaign_topic(&self, campaign: &str) -> Result<(), StoreError>;

    /// The topic of `campaign`, if it was sent with one.
    fn campaign_topic(&self, campaign: &str) -> Result<Option<CampaignTopic>, StoreError>;

    /// Every known topic, in id order.
    fn topics(&self) -> Result<Vec<Topic>, StoreError>;

    /// The entry suppressing `address` for `topic`, if any (global entries not included).
    fn topic_suppression(
        &self,
        address: &str,
        topic: &str,
    ) -> Result<Option<Suppression>, StoreError>;

    /// The topics `address` left, with their entries, in topic order.
    fn topic_suppressions_of(
        &self,
        address: &str,
    ) -> Result<Vec<(String, Suppression)>, StoreError>;

    /// Suppresses `address` for `topic`; false (the existing entry kept) when it already was.
    fn suppress_topic(
        &self,
        address: &str,
        topic: &str,
        entry: &Suppression,
    ) -> Result<bool, StoreError>;

    /// Removes `address`'s entry for `topic`; false when there was none.
    fn unsuppress_topic(&self, address: &str, topic: &str) -> Result<bool, StoreError>;

    /// At most `limit` topic entries after (address, topic) `after` (from the first when
    /// `None`), in address then topic order.
    fn topic_suppressions_after(
        &self,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<TopicSuppression>, StoreError>;

    /// Every topic entry, in address then topic order.
    fn topic_suppressions(&self) -> Result<Vec<TopicSuppression>, StoreError> {
        let mut out = Vec::new();
        loop {
            let after = out
                .last()
                .map(|last: &TopicSuppression| (last.address.clone(), last.topic.clone()));
            let page = self.topic_suppressions_after(
                after.as_ref().map(|(a, t)| (a.as_str(), t.as_str())),
                10_000,
            )?;
            if page.is_empty() {
                return Ok(out);
            }
            out.extend(page);
        }
    }
}

impl super::Store {
    /// The entry keeping `address` from a campaign of `topic` (`None`: no topic): the
    /// global one first, else the topic's.
    pub fn suppression_for(
        &self,
        address: &str,
        topic: Option<&str>,
    ) -> Result<Option<Suppression>, StoreError> {
        if let Some(entry) = self.suppression(address)? {
            return Ok(Some(entry));
        }
        match topic {
            Some(topic) => self.topic_suppression(address, topic),
            None => Ok(None),
        }
    }
}
