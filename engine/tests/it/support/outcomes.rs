//! What a test reads back after a send: every recipient's state, last reply and recorded
//! attempts from the store, and how many times each address reached the test servers.

use std::collections::BTreeMap;
use std::path::Path;

use volley::model::{RecipientState, ReplyRecord};
use volley::store::{ExportKind, Store};
use volley_testkit::sink::Sink;

/// What the store says about every recipient of a campaign, read once the send is over.
pub struct Outcomes {
    /// Final state and last reply per address.
    pub states: BTreeMap<String, (RecipientState, Option<ReplyRecord>)>,
    /// Each address's recorded attempts, oldest first.
    pub history: BTreeMap<String, Vec<(ExportKind, Option<ReplyRecord>)>>,
}

impl Outcomes {
    /// Reads `campaign` from the store at `store` (which no send may hold open).
    pub fn read(store: &Path, campaign: &str) -> Outcomes {
        Outcomes::read_from(Store::open(store).unwrap(), campaign)
    }

    /// Reads `campaign` from the store its settings name (a folder, or a database on
    /// PostgreSQL).
    pub fn read_at(store: &volley::store::StoreLocation, campaign: &str) -> Outcomes {
        Outcomes::read_from(Store::open_at(store).unwrap(), campaign)
    }

    fn read_from(store: Store, campaign: &str) -> Outcomes {
        let mut states = BTreeMap::new();
        for state in [
            RecipientState::Pending,
            RecipientState::Deferred,
            RecipientState::Delivered,
            RecipientState::Bounced,
            RecipientState::Expired,
            RecipientState::Suppressed,
            RecipientState::Held,
        ] {
            for r in store.recipients_in(campaign, state).unwrap() {
                states.insert(r.record.email, (state, r.record.last_reply));
            }
        }
        let mut history: BTreeMap<_, Vec<_>> = BTreeMap::new();
        for event in store.export_events(campaign, 0).unwrap() {
            let event = event.unwrap();
            history
                .entry(event.recipient)
                .or_default()
                .push((event.kind, event.reply));
        }
        Outcomes { states, history }
    }

    /// `email`'s current state.
    pub fn state(&self, email: &str) -> RecipientState {
        self.states
            .get(email)
            .unwrap_or_else(|| panic!("{email} is not in the store"))
            .0
    }

    /// `email`'s last reply.
    pub fn reply(&self, email: &str) -> ReplyRecord {
        self.states[email]
            .1
            .clone()
            .unwrap_or_else(|| panic!("{email} has no reply"))
    }

    /// The kinds of `email`'s recorded attempts, oldest first.
    pub fn kinds(&self, email: &str) -> Vec<ExportKind> {
        self.history
            .get(email)
            .map(|events| events.iter().map(|(kind, _)| *kind).collect())
            .unwrap_or_default()
    }

    /// The reply of `email`'s first recorded attempt.
    pub fn first_reply(&self, email: &str) -> ReplyRecord {
        self.history[email][0]
            .1
            .clone()
            .unwrap_or_else(|| panic!("{email}'s first attempt has no reply"))
    }

    /// Every address in `state`.
    pub fn in_state(&self, state: RecipientState) -> Vec<&str> {
        self.states
            .iter()
            .filter(|(_, (s, _))| *s == state)
            .map(|(email, _)| email.as_str())
            .collect()
    }
}

/// How many times each address arrived at any of `sinks`.
pub fn arrivals(sinks: &[&Sink]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for sink in sinks {
        for (email, n) in super::arrivals(sink) {
            *counts.entry(email).or_insert(0) += n;
        }
    }
    counts
}
