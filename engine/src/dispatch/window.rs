//! Local-time sending windows in the scheduler (`[schedule] window` / `send_at`): of the
//! recipients a campaign's feed hands out, those outside their window in their own zone are
//! not composed; they are recorded as waiting (no attempt counted) with the moment their
//! window opens as their next attempt, and come back through the retry index then.

use std::collections::HashSet;
use std::sync::Arc;

use chrono_tz::Tz;

use super::{Scheduler, Settled};
use crate::config::{zone_of, SendWindow};
use crate::model::{format_millis, Millis, Outcome, RecipientState, ReplyRecord};
use crate::store::{OutcomeUpdate, StoredRecipient};

/// Distinct unknown zone names warned about per campaign, at most.
const UNKNOWN_ZONES_WARNED: usize = 32;

/// One campaign's window, with the position of its zone column in the recipient rows.
#[derive(Debug)]
pub(super) struct FeedWindow {
    window: Arc<SendWindow>,
    column: Option<usize>,
    warned: HashSet<String>,
}

impl FeedWindow {
    /// The window of campaign `campaign`, whose rows have `columns`.
    pub(super) fn new(campaign: &str, window: Arc<SendWindow>, columns: &[String]) -> FeedWindow {
        let column = window.column.as_ref().and_then(|name| {
            let found = columns.iter().position(|c| c.eq_ignore_ascii_case(name));
            if found.is_none() {
                tracing::warn!(campaign, column = %name, "no time zone column in the list: every recipient is in the default zone");
            }
            found
        });
        FeedWindow {
            window,
            column,
            warned: HashSet::new(),
        }
    }

    /// The zone of `recipient`: its column's value, or the default for an empty or unknown
    /// one (an unknown name is warned about once per campaign).
    fn zone(&mut self, campaign: &str, recipient: &StoredRecipient) -> Tz {
        let value = self
            .column
            .and_then(|i| recipient.record.values.get(i))
            .map_or("", String::as_str);
        let (zone, unknown) = zone_of(value, self.window.default_zone);
        if unknown
            && self.warned.len() < UNKNOWN_ZONES_WARNED
            && self.warned.insert(value.to_owned())
        {
            tracing::warn!(
                campaign,
                zone = value,
                line = recipient.record.line,
                default = %self.window.default_zone,
                "unknown time zone in the list: recipients with it are sent in the default zone"
            );
        }
        zone
    }

    /// Splits `recipients` taken at `now` into those to send now and those to record as
    /// waiting, with their outcome.
    pub(super) fn split(
        &mut self,
        campaign: &str,
        recipients: Vec<StoredRecipient>,
        now: Millis,
    ) -> (Vec<StoredRecipient>, Vec<(StoredRecipient, Outcome)>) {
        let mut send = Vec::with_capacity(recipients.len());
        let mut wait = Vec::new();
        for recipient in recipients {
            let zone = self.zone(campaign, &recipient);
            let first = recipient.record.state == RecipientState::Pending;
            match self.window.wait_until(first, zone, now) {
                None => send.push(recipient),
                Some(until) => {
                    let reply = ReplyRecord::local(format!(
                        "waiting for the sending window {} in {zone} (opens {})",
                        self.window.text,
                        format_millis(until)
                    ));
                    wait.push((recipient, Outcome::Waiting { until, reply }));
                }
            }
        }
        (send, wait)
    }
}

impl Scheduler {
    /// Records recipients outside their sending window as waiting (not composed, no attempt).
    pub(super) async fn wait_for_windows(
        &mut self,
        campaign: usize,
        priority: u8,
        waiting: Vec<(StoredRecipient, Outcome)>,
    ) {
        for (recipient, outcome) in waiting {
            self.flight
                .add(campaign, priority, recipient.key.clone(), None);
            let settled = Settled::Outcome {
                campaign,
                destination: None,
                update: OutcomeUpdate {
                    key: recipient.key,
                    outcome,
                    message_id: None,
                },
            };
            if self.ctx.settled.send(settled).await.is_err() {
                return;
            }
        }
    }
}
