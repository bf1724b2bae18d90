//! What the `[audience]` rules read of campaigns' histories, by scanning the event export
//! of each campaign ([`crate::store::HistoryStore::export_events`], streamed): per address,
//! how many messages were delivered, when first, and the last human open or click. The
//! cost is one pass over the store's events at load (and at `volley audience`); memory is
//! one small entry per address of the store. Collected campaigns (`volley gc`) have no
//! events left and count for nothing.

use std::collections::{HashMap, HashSet};

use crate::config::Engaged;
use crate::model::Millis;
use crate::store::{ExportKind, Store, StoreError};

/// One address across every campaign of the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Ledger {
    /// Messages delivered to it.
    pub(crate) delivered: u32,
    /// When the first of them was delivered.
    pub(crate) first_delivered: Millis,
    /// Its last human open or click, if any.
    pub(crate) last_engaged: Option<Millis>,
}

impl Ledger {
    /// Since when the address has shown nothing: its last human open or click, or its
    /// first delivery when it never engaged.
    pub(crate) fn quiet_since(&self) -> Millis {
        self.last_engaged.unwrap_or(self.first_delivered)
    }
}

/// Every address delivered or engaged by a campaign of `store`, with its ledger.
pub(crate) fn ledgers(store: &Store) -> Result<HashMap<String, Ledger>, StoreError> {
    let mut ledgers: HashMap<String, Ledger> = HashMap::new();
    for campaign in store.campaigns()? {
        for event in store.export_events(&campaign, 0)? {
            let event = event?;
            if event.recipient.is_empty() {
                continue;
            }
            let human = event.machine.is_none();
            match event.kind {
                ExportKind::Delivered => {
                    let ledger = ledgers
                        .entry(event.recipient.to_ascii_lowercase())
                        .or_default();
                    if ledger.delivered == 0 || event.at < ledger.first_delivered {
                        ledger.first_delivered = event.at;
                    }
                    ledger.delivered = ledger.delivered.saturating_add(1);
                }
                ExportKind::Open | ExportKind::Click if human => {
                    let ledger = ledgers
                        .entry(event.recipient.to_ascii_lowercase())
                        .or_default();
                    ledger.last_engaged = ledger.last_engaged.max(Some(event.at));
                }
                _ => {}
            }
        }
    }
    Ok(ledgers)
}

/// What a resend needs of its first campaign.
#[derive(Debug, Default)]
pub(crate) struct ResendHistory {
    /// When its last message was delivered (`None`: none was).
    pub(crate) last_delivery: Option<Millis>,
    /// The addresses that engaged as the resend's `not` says (human events only).
    pub(crate) engaged: HashSet<String>,
}

/// Reads the history of `campaign` for a resend to those who did not `not`.
pub(crate) fn resend_history(
    store: &Store,
    campaign: &str,
    not: Engaged,
) -> Result<ResendHistory, StoreError> {
    let mut history = ResendHistory::default();
    for event in store.export_events(campaign, 0)? {
        let event = event?;
        let human = event.machine.is_none();
        match event.kind {
            ExportKind::Delivered => {
                history.last_delivery = history.last_delivery.max(Some(event.at));
            }
            ExportKind::Open | ExportKind::Click
                if human && super::audience::counts_as(not, event.kind == ExportKind::Click) =>
            {
                history.engaged.insert(event.recipient.to_ascii_lowercase());
            }
            _ => {}
        }
    }
    Ok(history)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_that_never_engaged_is_quiet_since_its_first_delivery() {
        let never = Ledger {
            delivered: 3,
            first_delivered: 100,
            last_engaged: None,
        };
        assert_eq!(never.quiet_since(), 100);
        let engaged = Ledger {
            last_engaged: Some(500),
            ..never
        };
        assert_eq!(engaged.quiet_since(), 500);
    }
}
