//! Recording delivery outcomes: one atomic batch moves each recipient's state word (and its
//! details, when it has any), its queue or retry entry and the campaign counters together,
//! and appends the group's outcomes to the campaign's attempt log as one value (see
//! `events`).

use super::events::AttemptLog;
use super::keys;
use super::states::Changes;
use super::variants::CountsDelta;
use super::SledStore;
use crate::model::{retry_seed, Counts, Millis, Outcome, RecipientState, RetryPolicy};
use crate::store::{MessageRef, OutcomePolicy, OutcomeUpdate, RecipientRecord, StoreError};

impl SledStore {
    /// Records a group of outcomes for `campaign` at time `now` in one atomic batch and returns
    /// the updated counters. A deferral is turned into an expiry when `policy` says the
    /// recipient has run out of time. A hard bounce puts the address on the suppression
    /// list; soft bounces (and expiries) count towards it; a delivery resets that count.
    /// Outcomes for recipients already in a final state are ignored, so recording the same
    /// outcome twice changes nothing. Every recorded outcome is also appended to the attempt
    /// log ([`SledStore::export_events`]). Not durable until [`SledStore::flush`].
    pub(crate) fn record_outcomes(
        &self,
        campaign: &str,
        policy: &OutcomePolicy,
        updates: &[OutcomeUpdate],
        now: Millis,
    ) -> Result<Counts, StoreError> {
        // invariant: the lock only guards this synchronous section; poisoning means a panic
        // mid-update elsewhere, after which continuing with the inner guard is still correct
        // because every update is a single atomic batch.
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut counts = CountsDelta::load(self, campaign)?;
        let Some(number) = self.number_of(campaign)? else {
            return Ok(counts.totals().clone());
        };
        let mut changes = Changes::new(number);
        let mut log = AttemptLog::default();
        let mut batch = sled::Batch::default();
        for update in updates {
            let Some(mut record) = changes.record(self, &update.key)? else {
                continue;
            };
            if record.state.is_final() {
                continue;
            }
            let before = record.state;
            if let Some(due) = record.next_attempt {
                batch.remove(keys::retry_key(campaign, due, &update.key));
            }
            apply_outcome(&mut record, &update.outcome, &policy.retry, now);
            if record.state != RecipientState::Waiting {
                log.push(&update.key, record.state, Some(update.outcome.reply()));
            }
            self.follow_up(&mut batch, campaign, &record, update, policy, now)?;
            let retried = matches!(
                record.state,
                RecipientState::Deferred | RecipientState::Waiting
            );
            if let (true, Some(due)) = (retried, record.next_attempt) {
                batch.insert(keys::retry_key(campaign, due, &update.key), &[]);
            }
            counts.shift(self, record.variant, before, record.state)?;
            changes.put(self, &update.key, &record)?;
        }
        let counts = counts.write(self, &mut batch)?;
        changes.write(self, &mut batch);
        log.write(
            self,
            &mut batch,
            &keys::prefix(keys::ATTEMPT, campaign),
            now,
        )?;
        self.tree
            .apply_batch(batch)
            .map_err(|e| self.sled_error(e))?;
        Ok(counts)
    }
}

impl SledStore {
    /// The suppression and message-index writes that go with one recorded outcome.
    fn follow_up(
        &self,
        batch: &mut sled::Batch,
        campaign: &str,
        record: &RecipientRecord,
        update: &OutcomeUpdate,
        policy: &OutcomePolicy,
        now: Millis,
    ) -> Result<(), StoreError> {
        let reply = update.outcome.reply();
        match record.state {
            RecipientState::Delivered => {
                SledStore::clear_soft_bounces(batch, &record.email);
                // Signed Message-IDs name their recipient (see `SledStore::message`); only ids
                // of another shape are indexed, so the store does not grow with every
                // delivery.
                if let Some(id) = update.message_id.as_deref().filter(|id| !is_signed(id)) {
                    let reference = MessageRef {
                        campaign: campaign.to_owned(),
                        key: update.key.clone(),
                    };
                    batch.insert(
                        keys::global_key(keys::MESSAGE, id.as_bytes()),
                        self.encode(&reference, "message")?,
                    );
                }
            }
            RecipientState::Bounced | RecipientState::Expired => {
                self.note_failure(
                    batch,
                    campaign,
                    &record.email,
                    reply,
                    &policy.suppression,
                    now,
                )?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Moves a record to the state an outcome implies, following the retry policy.
pub(in crate::store) fn apply_outcome(
    record: &mut RecipientRecord,
    outcome: &Outcome,
    policy: &RetryPolicy,
    now: Millis,
) {
    if let Outcome::Cancelled { reply } = outcome {
        // Never attempted: no attempt counted, no first attempt.
        record.next_attempt = None;
        record.last_reply = Some(reply.clone());
        record.state = RecipientState::Cancelled;
        return;
    }
    if let Outcome::Waiting { until, .. } = outcome {
        // Not an attempt: attempts, first attempt and the last reply stay as they were.
        record.next_attempt = Some(*until);
        record.state = RecipientState::Waiting;
        return;
    }
    if let Outcome::Postponed { until, reply } = outcome {
        // Not an attempt either: deferred until the destination's suspension ends.
        record.next_attempt = Some(*until);
        record.last_reply = Some((**reply).clone());
        record.state = RecipientState::Deferred;
        return;
    }
    record.attempts += u32::from(!matches!(outcome, Outcome::Expired { .. }));
    let first = *record.first_attempt.get_or_insert(now);
    record.next_attempt = None;
    record.last_reply = Some(outcome.reply().clone());
    record.state = match outcome {
        Outcome::Deferred { .. } => {
            let seed = retry_seed(&record.email, record.attempts);
            match policy.next_attempt(record.attempts, first, now, seed) {
                Some(due) => {
                    record.next_attempt = Some(due);
                    RecipientState::Deferred
                }
                None => RecipientState::Expired,
            }
        }
        other => other.state(),
    };
}

/// True for a Message-ID whose local part is a 28-character token (base32 of a campaign
/// number, a sequence number and a MAC), as the compose stage writes them.
pub(crate) fn is_signed(message_id: &str) -> bool {
    let local = message_id.split('@').next().unwrap_or("");
    local.len() == 28
        && local
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}
