//! Topics (issue 22): what a campaign is about (`[campaign] topic = "digest"`), so that a
//! recipient can leave one topic and keep the others. A suppression-list entry is either
//! global (every campaign skips the address) or for one topic (only that topic's campaigns
//! skip it).

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
