//! [`OutcomeStore`] on PostgreSQL: recording is in `outcomes.rs`, Message-IDs in
//! `reports.rs`; here the interface's methods and finding a recipient by campaign number.

use super::engine::PgEngine;
use super::queue::to_i64;
use crate::model::{Counts, Millis};
use crate::store::api::OutcomeStore;
use crate::store::{MessageRef, OutcomePolicy, OutcomeUpdate, RecipientKey, StoreError};

impl OutcomeStore for PgEngine {
    fn record_outcomes(
        &self,
        campaign: &str,
        policy: &OutcomePolicy,
        updates: &[OutcomeUpdate],
        now: Millis,
    ) -> Result<Counts, StoreError> {
        let number = self.known(campaign)?;
        self.run(self.record((number, campaign), policy, updates, now))
    }

    fn message(&self, message_id: &str) -> Result<Option<MessageRef>, StoreError> {
        self.find_message(message_id)
    }

    fn campaign_by_number(&self, number: u32) -> Result<Option<String>, StoreError> {
        let number = i32::try_from(number).unwrap_or(-1);
        self.run(async {
            sqlx::query_scalar("SELECT id FROM campaigns WHERE number = $1")
                .bind(number)
                .fetch_optional(self.store.pool())
                .await
                .map_err(|e| self.failed("find a campaign by number", e))
        })
    }

    fn recipient_key_by_number(
        &self,
        number: u32,
        seq: u64,
    ) -> Result<Option<RecipientKey>, StoreError> {
        let number = i32::try_from(number).unwrap_or(-1);
        let domain: Option<String> = self.run(async {
            sqlx::query_scalar("SELECT domain FROM recipients WHERE campaign = $1 AND seq = $2")
                .bind(number)
                .bind(to_i64(seq))
                .fetch_optional(self.store.pool())
                .await
                .map_err(|e| self.failed("find a recipient by number", e))
        })?;
        Ok(domain.map(|domain| RecipientKey { domain, seq }))
    }

    fn recipient_by_number(&self, number: u32, seq: u64) -> Result<Option<MessageRef>, StoreError> {
        let Some(campaign) = self.campaign_by_number(number)? else {
            return Ok(None);
        };
        Ok(self
            .recipient_key_by_number(number, seq)?
            .map(|key| MessageRef { campaign, key }))
    }
}
