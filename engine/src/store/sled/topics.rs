//! Topics on sled (issue 22): topic suppressions (`U <address> 0 <topic>`), each campaign's
//! topic (`O <campaign>`) and the known topics (`Y <topic>` → display name), all in the main
//! tree so that a one-click unsubscribe's topic entry is written in the tracking batch.
//! Addresses and topic ids never contain a zero byte.

use super::keys::{self, CAMPAIGN_TOPIC, TOPIC, TOPIC_SUPPRESSED};
use super::SledStore;
use crate::model::Suppression;
use crate::store::{CampaignTopic, StoreError, Topic, TopicStore, TopicSuppression};

/// `U address 0 topic`.
fn topic_key(address: &str, topic: &str) -> Vec<u8> {
    let mut key = keys::prefix(TOPIC_SUPPRESSED, address);
    key.extend_from_slice(topic.as_bytes());
    key
}

/// The address and topic of a `U` key.
fn split_topic_key(key: &[u8]) -> Option<(String, String)> {
    let rest = key.get(1..)?;
    let zero = rest.iter().position(|&b| b == 0)?;
    let address = std::str::from_utf8(&rest[..zero]).ok()?;
    let topic = std::str::from_utf8(&rest[zero + 1..]).ok()?;
    Some((address.to_owned(), topic.to_owned()))
}

impl SledStore {
    /// Adds a topic suppression write to `batch` unless the address already left the topic.
    pub(crate) fn suppress_topic_in_batch(
        &self,
        batch: &mut sled::Batch,
        address: &str,
        topic: &str,
        entry: &Suppression,
    ) -> Result<(), StoreError> {
        let key = topic_key(address, topic);
        if !self
            .tree
            .contains_key(&key)
            .map_err(|e| self.sled_error(e))?
        {
            batch.insert(key, self.encode(entry, "topic suppression")?);
        }
        Ok(())
    }

    /// Decodes one `U` entry.
    fn topic_entry(&self, key: &[u8], value: &[u8]) -> Result<TopicSuppression, StoreError> {
        let (address, topic) = split_topic_key(key).ok_or_else(|| StoreError::Decode {
            path: self.path.clone(),
            what: "topic suppression key",
            source: postcard::Error::DeserializeBadUtf8,
        })?;
        Ok(TopicSuppression {
            address,
            topic,
            entry: self.decode(value, "topic suppression")?,
        })
    }
}

impl TopicStore for SledStore {
    fn set_campaign_topic(&self, campaign: &str, topic: &CampaignTopic) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        batch.insert(
            keys::campaign_key(CAMPAIGN_TOPIC, campaign),
            self.encode(topic, "campaign topic")?,
        );
        batch.insert(
            keys::campaign_key(TOPIC, &topic.topic),
            topic.name.as_bytes(),
        );
        self.tree.apply_batch(batch).map_err(|e| self.sled_error(e))
    }

    fn clear_campaign_topic(&self, campaign: &str) -> Result<(), StoreError> {
        self.tree
            .remove(keys::campaign_key(CAMPAIGN_TOPIC, campaign))
            .map(drop)
            .map_err(|e| self.sled_error(e))
    }

    fn campaign_topic(&self, campaign: &str) -> Result<Option<CampaignTopic>, StoreError> {
        self.get(
            &keys::campaign_key(CAMPAIGN_TOPIC, campaign),
            "campaign topic",
        )
    }

    fn topics(&self) -> Result<Vec<Topic>, StoreError> {
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix([TOPIC]) {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            out.push(Topic {
                id: String::from_utf8_lossy(&key[1..]).into_owned(),
                name: String::from_utf8_lossy(&value).into_owned(),
            });
        }
        Ok(out)
    }

    fn topic_suppression(
        &self,
        address: &str,
        topic: &str,
    ) -> Result<Option<Suppression>, StoreError> {
        self.get(&topic_key(address, topic), "topic suppression")
    }

    fn topic_suppressions_of(
        &self,
        address: &str,
    ) -> Result<Vec<(String, Suppression)>, StoreError> {
        let mut out = Vec::new();
        for entry in self
            .tree
            .scan_prefix(keys::prefix(TOPIC_SUPPRESSED, address))
        {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            let found = self.topic_entry(&key, &value)?;
            out.push((found.topic, found.entry));
        }
        Ok(out)
    }

    fn suppress_topic(
        &self,
        address: &str,
        topic: &str,
        entry: &Suppression,
    ) -> Result<bool, StoreError> {
        let value = self.encode(entry, "topic suppression")?;
        let swapped = self
            .tree
            .compare_and_swap(
                topic_key(address, topic),
                None as Option<&[u8]>,
                Some(value),
            )
            .map_err(|e| self.sled_error(e))?;
        Ok(swapped.is_ok())
    }

    fn unsuppress_topic(&self, address: &str, topic: &str) -> Result<bool, StoreError> {
        let removed = self
            .tree
            .remove(topic_key(address, topic))
            .map_err(|e| self.sled_error(e))?;
        Ok(removed.is_some())
    }

    fn topic_suppressions_after(
        &self,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<TopicSuppression>, StoreError> {
        let start = match after {
            Some((address, topic)) => {
                let mut key = topic_key(address, topic);
                key.push(0);
                key
            }
            None => vec![TOPIC_SUPPRESSED],
        };
        let end = vec![TOPIC_SUPPRESSED + 1];
        let mut out = Vec::new();
        for entry in self.tree.range(start..end) {
            if out.len() >= limit {
                break;
            }
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            out.push(self.topic_entry(&key, &value)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SuppressionReason;
    use crate::store::UnsubscribeScope;

    fn entry() -> Suppression {
        Suppression {
            reason: SuppressionReason::Unsubscribe,
            at: 1,
            campaign: Some("c1".into()),
            detail: "one-click unsubscribe".into(),
        }
    }

    #[test]
    fn topic_entries_are_apart_from_global_ones_and_page_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        assert!(store
            .suppress_topic("a@x.example", "digest", &entry())
            .unwrap());
        assert!(!store
            .suppress_topic("a@x.example", "digest", &entry())
            .unwrap());
        assert!(store
            .suppress_topic("a@x.example", "news", &entry())
            .unwrap());
        assert!(store
            .suppress_topic("a@x.examplez", "digest", &entry())
            .unwrap());
        assert!(store.suppression("a@x.example").unwrap().is_none());
        assert!(store.suppressions().unwrap().is_empty());
        let of: Vec<String> = store
            .topic_suppressions_of("a@x.example")
            .unwrap()
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(of, ["digest", "news"]);
        let first = store.topic_suppressions_after(None, 2).unwrap();
        assert_eq!(first.len(), 2);
        let last = &first[1];
        let rest = store
            .topic_suppressions_after(Some((&last.address, &last.topic)), 10)
            .unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].address, "a@x.examplez");
        assert_eq!(store.topic_suppressions().unwrap().len(), 3);
        assert!(store.unsuppress_topic("a@x.example", "news").unwrap());
        assert!(!store.unsuppress_topic("a@x.example", "news").unwrap());
    }

    #[test]
    fn a_campaign_topic_is_kept_and_names_a_known_topic() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let topic = CampaignTopic {
            topic: "digest".into(),
            name: "Weekly digest".into(),
            unsubscribe: UnsubscribeScope::Topic,
        };
        store.set_campaign_topic("c1", &topic).unwrap();
        assert_eq!(store.campaign_topic("c1").unwrap(), Some(topic));
        assert_eq!(store.campaign_topic("c2").unwrap(), None);
        let topics = store.topics().unwrap();
        assert_eq!(topics.len(), 1);
        assert_eq!(topics[0].name, "Weekly digest");
    }
}
