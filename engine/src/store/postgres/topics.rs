//! Topics on PostgreSQL (issue 22, migration 0012): `topics` (the known topics),
//! `campaign_topics` (each campaign's) and `topic_suppressions` (the topic-scoped part of the
//! suppression list; global entries stay in `suppressions`).

use super::engine::{millis, ms, ts, PgEngine};
use super::suppression::entry;
use super::PgStoreError;
use crate::model::Suppression;
use crate::store::{
    CampaignTopic, StoreError, Topic, TopicStore, TopicSuppression, UnsubscribeScope,
};
use sqlx::Row;

/// `SELECT` of the columns `entry` reads plus the topic, then the rest of the statement.
macro_rules! select {
    ($rest:expr) => {
        concat!(
            "SELECT address, reason::text, ",
            ms!("at"),
            ", campaign, detail, topic FROM topic_suppressions ",
            $rest
        )
    };
}

impl PgEngine {
    /// The rows of a `select!` as topic entries.
    fn topic_rows(
        &self,
        rows: &[sqlx::postgres::PgRow],
    ) -> Result<Vec<TopicSuppression>, PgStoreError> {
        rows.iter()
            .map(|row| {
                let (address, entry) = entry(self, row)?;
                Ok(TopicSuppression {
                    address,
                    topic: row.get(5),
                    entry,
                })
            })
            .collect()
    }
}

impl TopicStore for PgEngine {
    fn set_campaign_topic(&self, campaign: &str, topic: &CampaignTopic) -> Result<(), StoreError> {
        self.run(async {
            sqlx::query(
                "WITH known AS (INSERT INTO topics (topic, name) VALUES ($2, $3) \
                 ON CONFLICT (topic) DO UPDATE SET name = EXCLUDED.name) \
                 INSERT INTO campaign_topics (campaign, topic, name, unsubscribe) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (campaign) DO UPDATE SET \
                 topic = EXCLUDED.topic, name = EXCLUDED.name, unsubscribe = EXCLUDED.unsubscribe",
            )
            .bind(campaign)
            .bind(&topic.topic)
            .bind(&topic.name)
            .bind(topic.unsubscribe.as_str())
            .execute(self.store.pool())
            .await
            .map(drop)
            .map_err(|e| self.failed("record the campaign's topic", e))
        })
    }

    fn clear_campaign_topic(&self, campaign: &str) -> Result<(), StoreError> {
        self.run(async {
            sqlx::query("DELETE FROM campaign_topics WHERE campaign = $1")
                .bind(campaign)
                .execute(self.store.pool())
                .await
                .map(drop)
                .map_err(|e| self.failed("forget the campaign's topic", e))
        })
    }

    fn campaign_topic(&self, campaign: &str) -> Result<Option<CampaignTopic>, StoreError> {
        self.run(async {
            let row = sqlx::query(
                "SELECT topic, name, unsubscribe FROM campaign_topics WHERE campaign = $1",
            )
            .bind(campaign)
            .fetch_optional(self.store.pool())
            .await
            .map_err(|e| self.failed("read the campaign's topic", e))?;
            row.map(|row| {
                let scope: String = row.get(2);
                let unsubscribe = UnsubscribeScope::parse(&scope)
                    .ok_or_else(|| self.damaged(format!("campaign topic: scope {scope:?}")))?;
                Ok(CampaignTopic {
                    topic: row.get(0),
                    name: row.get(1),
                    unsubscribe,
                })
            })
            .transpose()
        })
    }

    fn topics(&self) -> Result<Vec<Topic>, StoreError> {
        self.run(async {
            let rows = sqlx::query("SELECT topic, name FROM topics ORDER BY topic")
                .fetch_all(self.store.pool())
                .await
                .map_err(|e| self.failed("read the topics", e))?;
            Ok(rows
                .iter()
                .map(|row| Topic {
                    id: row.get(0),
                    name: row.get(1),
                })
                .collect())
        })
    }

    fn topic_suppression(
        &self,
        address: &str,
        topic: &str,
    ) -> Result<Option<Suppression>, StoreError> {
        self.run(async {
            let rows = sqlx::query(select!("WHERE address = $1 AND topic = $2"))
                .bind(address)
                .bind(topic)
                .fetch_all(self.store.pool())
                .await
                .map_err(|e| self.failed("read the suppression list", e))?;
            Ok(self.topic_rows(&rows)?.pop().map(|found| found.entry))
        })
    }

    fn topic_suppressions_of(
        &self,
        address: &str,
    ) -> Result<Vec<(String, Suppression)>, StoreError> {
        self.run(async {
            let rows = sqlx::query(select!("WHERE address = $1 ORDER BY topic"))
                .bind(address)
                .fetch_all(self.store.pool())
                .await
                .map_err(|e| self.failed("read the suppression list", e))?;
            Ok(self
                .topic_rows(&rows)?
                .into_iter()
                .map(|found| (found.topic, found.entry))
                .collect())
        })
    }

    fn suppress_topic(
        &self,
        address: &str,
        topic: &str,
        entry: &Suppression,
    ) -> Result<bool, StoreError> {
        let sql = concat!(
            "INSERT INTO topic_suppressions (address, topic, reason, at, campaign, detail) \
             VALUES ($1, $2, $3::text::suppression_reason, ",
            ts!(4),
            ", $5, $6) ON CONFLICT (address, topic) DO NOTHING"
        );
        self.run(async {
            sqlx::query(sql)
                .bind(address)
                .bind(topic)
                .bind(entry.reason.as_str())
                .bind(millis(entry.at))
                .bind(entry.campaign.as_deref())
                .bind(&entry.detail)
                .execute(self.store.pool())
                .await
                .map(|done| done.rows_affected() == 1)
                .map_err(|e| self.failed("add to the suppression list", e))
        })
    }

    fn unsuppress_topic(&self, address: &str, topic: &str) -> Result<bool, StoreError> {
        self.run(async {
            sqlx::query("DELETE FROM topic_suppressions WHERE address = $1 AND topic = $2")
                .bind(address)
                .bind(topic)
                .execute(self.store.pool())
                .await
                .map(|done| done.rows_affected() > 0)
                .map_err(|e| self.failed("remove from the suppression list", e))
        })
    }

    fn topic_suppressions_after(
        &self,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<TopicSuppression>, StoreError> {
        let (address, topic) = after.unzip();
        self.run(async {
            let rows = sqlx::query(select!(
                "WHERE ($1::text IS NULL OR (address, topic) > ($1, $2)) \
                 ORDER BY address, topic LIMIT $3"
            ))
            .bind(address)
            .bind(topic)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.store.pool())
            .await
            .map_err(|e| self.failed("read the suppression list", e))?;
            self.topic_rows(&rows)
        })
    }
}

/// Adds `address`'s entry for `topic` unless it is there already (a one-click unsubscribe
/// of a topic campaign, in the tracking transaction).
pub(super) async fn suppress_topic(
    conn: &mut sqlx::PgConnection,
    (address, topic): (&str, &str),
    campaign: &str,
    detail: &str,
    now: crate::model::Millis,
) -> Result<(), sqlx::Error> {
    let sql = concat!(
        "INSERT INTO topic_suppressions (address, topic, reason, at, campaign, detail) \
         VALUES ($1, $2, 'unsubscribe', ",
        ts!(3),
        ", $4, $5) ON CONFLICT (address, topic) DO NOTHING"
    );
    sqlx::query(sql)
        .bind(address)
        .bind(topic)
        .bind(millis(now))
        .bind(campaign)
        .bind(detail)
        .execute(conn)
        .await
        .map(|_| ())
}
