//! What arrives after sending: bounce reports and complaints tied back to a recipient, the
//! indexes that make that possible (campaign numbers, message ids), and the store's token
//! secret.

use super::keys;
use super::states::Changes;
use super::suppression::entry_for;
use super::SledStore;
use crate::model::{Millis, RecipientState, ReplyRecord, SuppressionReason};
use crate::store::{
    BounceEvent, EventKind, MessageRef, OutcomePolicy, RecipientKey, RecipientRecord, ReportEffect,
    StoreError,
};

impl SledStore {
    /// Hands out the next campaign number of this store.
    pub(crate) fn next_campaign_number(&self) -> Result<u32, StoreError> {
        let value = self
            .tree
            .update_and_fetch(keys::NEXT_NUMBER, |old| {
                let current = old
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u32::from_be_bytes);
                Some(current.wrapping_add(1).to_be_bytes().to_vec())
            })
            .map_err(|e| self.sled_error(e))?;
        Ok(value
            .and_then(|b| b.as_ref().try_into().ok())
            .map_or(1, u32::from_be_bytes))
    }

    /// This store's secret for signing tokens (VERP), created on first use.
    pub(crate) fn secret(&self) -> Result<[u8; 32], StoreError> {
        if let Some(bytes) = self
            .tree
            .get(keys::SECRET)
            .map_err(|e| self.sled_error(e))?
        {
            if let Ok(secret) = <[u8; 32]>::try_from(bytes.as_ref()) {
                return Ok(secret);
            }
        }
        let fresh: [u8; 32] = rand::random();
        let _ = self
            .tree
            .compare_and_swap(keys::SECRET, None as Option<&[u8]>, Some(&fresh[..]))
            .map_err(|e| self.sled_error(e))?;
        self.flush_blocking()?;
        // Whoever won the race, read back the stored one.
        match self
            .tree
            .get(keys::SECRET)
            .map_err(|e| self.sled_error(e))?
        {
            Some(bytes) => Ok(<[u8; 32]>::try_from(bytes.as_ref()).unwrap_or(fresh)),
            None => Ok(fresh),
        }
    }

    /// The campaign id with the given number.
    pub(crate) fn campaign_by_number(&self, number: u32) -> Result<Option<String>, StoreError> {
        for id in self.campaigns()? {
            if self
                .campaign(&id)?
                .is_some_and(|meta| meta.number == number)
            {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// The key of the recipient with sequence `seq` of campaign number `number` (its
    /// campaign id already known), without looking the campaign up.
    pub(crate) fn recipient_key_by_number(
        &self,
        number: u32,
        seq: u64,
    ) -> Result<Option<RecipientKey>, StoreError> {
        let Some(domain) = self.packed_domain(number, seq)? else {
            return Ok(None);
        };
        Ok(Some(RecipientKey { domain, seq }))
    }

    /// The recipient with sequence `seq` of campaign number `number`.
    pub(crate) fn recipient_by_number(
        &self,
        number: u32,
        seq: u64,
    ) -> Result<Option<MessageRef>, StoreError> {
        let Some(key) = self.recipient_key_by_number(number, seq)? else {
            return Ok(None);
        };
        let Some(campaign) = self.campaign_by_number(number)? else {
            return Ok(None);
        };
        Ok(Some(MessageRef { campaign, key }))
    }

    /// The recipient a delivered message (by Message-ID, without angle brackets) went to.
    pub(crate) fn message(&self, message_id: &str) -> Result<Option<MessageRef>, StoreError> {
        self.get(
            &keys::global_key(keys::MESSAGE, message_id.as_bytes()),
            "message",
        )
    }

    /// True when a report with this fingerprint was ingested before.
    pub(crate) fn is_ingested(&self, fingerprint: &[u8]) -> Result<bool, StoreError> {
        self.tree
            .contains_key(keys::global_key(keys::INGESTED, fingerprint))
            .map_err(|e| self.sled_error(e))
    }

    /// Remembers that a report was ingested.
    pub(crate) fn mark_ingested(&self, fingerprint: &[u8]) -> Result<(), StoreError> {
        self.tree
            .insert(keys::global_key(keys::INGESTED, fingerprint), &[])
            .map(drop)
            .map_err(|e| self.sled_error(e))
    }

    /// Applies a late report to one recipient: a bounce moves it to `bounced` (whatever it
    /// was, unless already bounced) and suppresses the address when hard (soft bounces count
    /// towards the policy); a complaint suppresses the address; a delay is only noted. Every
    /// change is written with its event in one batch.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn apply_report(
        &self,
        reference: &MessageRef,
        kind: EventKind,
        reply: ReplyRecord,
        source: &str,
        policy: &OutcomePolicy,
        now: Millis,
    ) -> Result<(ReportEffect, Option<String>), StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let campaign = reference.campaign.as_str();
        let Some(number) = self.number_of(campaign)? else {
            return Ok((ReportEffect::Unchanged, None));
        };
        let mut changes = Changes::new(number);
        let Some(mut record) = changes.record(self, &reference.key)? else {
            return Ok((ReportEffect::Unchanged, None));
        };
        let address = record.email.clone();
        let mut batch = sled::Batch::default();
        let effect = match kind {
            EventKind::Delay => ReportEffect::Delayed,
            EventKind::Complaint => {
                let entry = entry_for(
                    SuppressionReason::Complaint,
                    campaign,
                    reply.to_string(),
                    now,
                );
                self.suppress_in_batch(&mut batch, &address, &entry)?;
                ReportEffect::Complained
            }
            EventKind::Bounce if record.state == RecipientState::Bounced => {
                return Ok((ReportEffect::Unchanged, Some(address)))
            }
            EventKind::Bounce => {
                self.bounce_record(
                    &mut batch,
                    &mut changes,
                    (campaign, &reference.key),
                    &mut record,
                    &reply,
                    policy,
                    now,
                )?;
                changes.write(self, &mut batch);
                ReportEffect::Bounced
            }
        };
        let event = BounceEvent {
            at: now,
            kind,
            key: reference.key.clone(),
            address: address.clone(),
            reply,
            source: source.to_owned(),
        };
        let id = self.db.generate_id().map_err(|e| self.sled_error(e))?;
        let mut event_key = keys::prefix(keys::EVENT, campaign);
        event_key.extend_from_slice(&now.to_be_bytes());
        event_key.extend_from_slice(&id.to_be_bytes());
        batch.insert(event_key, self.encode(&event, "event")?);
        self.tree
            .apply_batch(batch)
            .map_err(|e| self.sled_error(e))?;
        Ok((effect, Some(address)))
    }

    /// Moves a record to `bounced` with its counters, queue and retry entries, and suppression.
    #[allow(clippy::too_many_arguments)]
    fn bounce_record(
        &self,
        batch: &mut sled::Batch,
        changes: &mut Changes,
        (campaign, key): (&str, &RecipientKey),
        record: &mut RecipientRecord,
        reply: &ReplyRecord,
        policy: &OutcomePolicy,
        now: Millis,
    ) -> Result<(), StoreError> {
        let mut counts = super::variants::CountsDelta::load(self, campaign)?;
        let retried = matches!(
            record.state,
            RecipientState::Deferred | RecipientState::Waiting
        );
        if let (true, Some(due)) = (retried, record.next_attempt) {
            batch.remove(keys::retry_key(campaign, due, key));
        }
        counts.shift(self, record.variant, record.state, RecipientState::Bounced)?;
        record.state = RecipientState::Bounced;
        record.next_attempt = None;
        record.last_reply = Some(reply.clone());
        changes.put(self, key, record)?;
        counts.write(self, batch)?;
        self.note_failure(
            batch,
            campaign,
            &record.email,
            reply,
            &policy.suppression,
            now,
        )?;
        Ok(())
    }

    /// Complaints among the campaign's late reports, by the stored variant of the recipient
    /// (0 when the recipient is gone). Reads only the late reports, never the delivery
    /// history.
    pub(crate) fn complaints_by_variant(
        &self,
        campaign: &str,
    ) -> Result<std::collections::HashMap<u8, u64>, StoreError> {
        let mut complaints = std::collections::HashMap::new();
        for value in self
            .tree
            .scan_prefix(keys::prefix(keys::EVENT, campaign))
            .values()
        {
            let event: BounceEvent =
                self.decode(&value.map_err(|e| self.sled_error(e))?, "event")?;
            if event.kind == EventKind::Complaint {
                let variant = self
                    .recipient(campaign, &event.key)?
                    .map_or(0, |record| record.variant);
                *complaints.entry(variant).or_default() += 1;
            }
        }
        Ok(complaints)
    }

    /// Every bounce, delay and complaint event of a campaign, oldest first.
    pub(crate) fn events(&self, campaign: &str) -> Result<Vec<BounceEvent>, StoreError> {
        self.tree
            .scan_prefix(keys::prefix(keys::EVENT, campaign))
            .values()
            .map(|value| self.decode(&value.map_err(|e| self.sled_error(e))?, "event"))
            .collect()
    }
}
