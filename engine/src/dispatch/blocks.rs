//! Destinations held back by their circuit breaker on policy blocks: while one is suspended,
//! its domains' recipients are deferred until the pause ends (no attempt counted, the reply
//! naming the block), and the block is kept in the store (which campaigns it held, whether
//! a probe lifted it) for the next run, `volley status` and the campaign's report.

use std::collections::HashMap;

use super::Scheduler;
use crate::delivery::Settled;
use crate::model::{format_millis, now_millis, DestinationBlock, Outcome, ReplyRecord};
use crate::store::{OutcomeUpdate, StoreError};

/// The latest policy block of each destination of the run (by its index).
#[derive(Debug, Default)]
pub(super) struct Blocks {
    records: HashMap<usize, DestinationBlock>,
}

/// The local reply of a recipient deferred by `block`.
fn held_reply(block: &DestinationBlock) -> ReplyRecord {
    ReplyRecord::local(format!(
        "not sent: {} is suspended until {} after {} policy block replies ({}), the last: {}",
        block.destination,
        format_millis(block.paused_until),
        block.replies,
        block.category,
        block.last_reply
    ))
}

impl Scheduler {
    /// The breaker of destination `id` tripped: remember the block and keep it.
    pub(super) fn block_tripped(&mut self, id: usize, mut record: DestinationBlock) {
        if let Some(known) = self.blocks.records.get(&id) {
            record.campaigns = known.campaigns.clone();
        }
        self.keep_block(id, record);
    }

    /// A probe of destination `id` was delivered: its block is lifted.
    pub(super) fn block_lifted(&mut self, id: usize) {
        let known = self.blocks.records.get(&id).cloned();
        let record = known.or_else(|| {
            let name = &self.routing.destinations.get(id)?.name;
            let kept = self.store.destination_blocks().ok()?;
            kept.into_iter().find(|b| &b.destination == name)
        });
        if let Some(mut record) = record {
            record.lifted_at = Some(now_millis());
            self.keep_block(id, record);
        }
    }

    fn keep_block(&mut self, id: usize, record: DestinationBlock) {
        if let Err(error) = self.store.set_destination_block(&record) {
            tracing::warn!(destination = %record.destination, %error, "could not keep the policy block in the store");
        }
        self.blocks.records.insert(id, record);
    }

    /// Defers a batch of `domain`'s recipients of campaign `position` until `block`'s
    /// pause ends, and notes the campaign in the block.
    pub(super) async fn hold_for_block(
        &mut self,
        position: usize,
        domain: &str,
        id: usize,
        block: DestinationBlock,
    ) -> Result<(), StoreError> {
        let campaign_id = self.feeds[position].id.clone();
        let mut record = self.blocks.records.get(&id).cloned().unwrap_or(block);
        if !record.campaigns.contains(&campaign_id) {
            record.add_campaign(&campaign_id);
            self.keep_block(id, record.clone());
        }
        let reply = Box::new(held_reply(&record));
        let until = record.paused_until;
        let recipients = self.take_locally(position, domain)?;
        let campaign = self.feeds[position].index;
        for recipient in recipients {
            let settled = Settled::Outcome {
                campaign,
                destination: Some(id),
                update: OutcomeUpdate {
                    key: recipient.key,
                    outcome: Outcome::Postponed {
                        until,
                        reply: reply.clone(),
                    },
                    message_id: None,
                },
            };
            if self.ctx.settled.send(settled).await.is_err() {
                break;
            }
        }
        Ok(())
    }

    /// The policy block of destination `id` seen in this run, if any.
    pub(super) fn block_of(&self, id: usize) -> Option<&DestinationBlock> {
        self.blocks.records.get(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Category;

    #[test]
    fn the_held_reply_names_the_destination_the_pause_and_the_block() {
        let last = ReplyRecord {
            code: Some(550),
            enhanced: Some("5.7.1".into()),
            text: "Service unavailable, Client host [192.0.2.1] blocked using Spamhaus".into(),
            category: Some(Category::Blocked),
            hard: false,
        };
        let block = DestinationBlock {
            destination: "mx0.sink.test".into(),
            category: Category::Blocked,
            first_reply: last.clone(),
            last_reply: last,
            replies: 5,
            trips: 1,
            tripped_at: 0,
            paused_until: 3_600_000,
            campaigns: Vec::new(),
            lifted_at: None,
        };
        let text = held_reply(&block).text;
        assert!(text.contains("mx0.sink.test is suspended until 1970-01-01T01:00:00Z"));
        assert!(text.contains("5 policy block replies (blocked)"));
        assert!(
            text.ends_with(
                "550 5.7.1 Service unavailable, Client host [192.0.2.1] blocked using Spamhaus"
            ),
            "{text}"
        );
    }
}
