//! Topics in the store (issue 22): the known topics with their display names, each
//! campaign's topic (for the tracking server), and the topic-scoped part of the suppression
//! list. A global entry (see [`super::api::SuppressionStore`]) keeps an address from every
//! campaign; a topic entry only from campaigns of that topic. A store written before topics
//! simply has no topic entries. The topic types live here, with the store that keeps them.

use super::StoreError;
use crate::model::Suppression;
use serde::{Deserialize, Serialize};

/// The longest topic id, in bytes.
pub const MAX_TOPIC_CHARS: usize = 64;
/// The longest display name of a topic, in bytes.
pub const MAX_TOPIC_NAME_CHARS: usize = 200;

/// Whether `id` is a topic id: 1 to [`MAX_TOPIC_CHARS`] of `a-z 0-9 _ -`, starting with a
/// letter or digit.
pub fn is_topic_id(id: &str) -> bool {
    let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-');
    !id.is_empty()
        && id.len() <= MAX_TOPIC_CHARS
        && id.bytes().all(ok)
        && id.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// What a campaign's one-click unsubscribe (`List-Unsubscribe`) removes the recipient from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsubscribeScope {
    /// The campaign's topic only (the default for a campaign with a topic).
    Topic,
    /// Every mailing: a global suppression (`[campaign] unsubscribe = "all"`).
    All,
}

impl UnsubscribeScope {
    /// The name in campaign files: `topic` or `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            UnsubscribeScope::Topic => "topic",
            UnsubscribeScope::All => "all",
        }
    }

    /// Parses the name in campaign files.
    pub fn parse(text: &str) -> Option<UnsubscribeScope> {
        match text {
            "topic" => Some(UnsubscribeScope::Topic),
            "all" => Some(UnsubscribeScope::All),
            _ => None,
        }
    }
}

/// A campaign's topic, as its campaign file declares it and the store keeps it for the
/// tracking server. (sled stores it encoded: the fields' order is its format.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignTopic {
    /// The topic id (see [`is_topic_id`]).
    pub topic: String,
    /// Its display name on the preference page (`[campaign] topic_name`; default the id).
    pub name: String,
    /// What the campaign's one-click unsubscribe removes the recipient from.
    pub unsubscribe: UnsubscribeScope,
}

impl CampaignTopic {
    /// The topic a one-click unsubscribe of this campaign suppresses, `None` for all.
    pub fn unsubscribe_topic(&self) -> Option<&str> {
        match self.unsubscribe {
            UnsubscribeScope::Topic => Some(&self.topic),
            UnsubscribeScope::All => None,
        }
    }
}

/// One known topic of a store: every topic a campaign of the store was sent with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    /// The topic id.
    pub id: String,
    /// Its display name (the latest campaign's `topic_name`).
    pub name: String,
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_ids_are_short_lowercase_identifiers() {
        for good in ["digest", "product-news", "a", "x_1", &"a".repeat(64)] {
            assert!(is_topic_id(good), "{good}");
        }
        for bad in ["", "Digest", "-x", "a b", "a/b", "é", &"a".repeat(65)] {
            assert!(!is_topic_id(bad), "{bad}");
        }
    }

    #[test]
    fn a_topic_campaign_unsubscribes_from_its_topic_unless_it_says_all() {
        let mut topic = CampaignTopic {
            topic: "digest".into(),
            name: "Digest".into(),
            unsubscribe: UnsubscribeScope::Topic,
        };
        assert_eq!(topic.unsubscribe_topic(), Some("digest"));
        topic.unsubscribe = UnsubscribeScope::All;
        assert_eq!(topic.unsubscribe_topic(), None);
        assert_eq!(UnsubscribeScope::parse("all"), Some(UnsubscribeScope::All));
        assert_eq!(UnsubscribeScope::parse("every"), None);
    }
}
