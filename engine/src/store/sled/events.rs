//! A campaign's history for export (`volley events`): every delivery outcome from the attempt
//! log, every late bounce, delay and complaint, and every open, click and unsubscribe, merged
//! into one stream in time order.
//!
//! The attempt log (`a` keys) is written by [`SledStore::record_outcomes`] in the same batch as
//! the outcome, and by the loader for recipients suppressed at load; each of the three sources
//! is already in time order per campaign, so reading is a three-way merge of range scans and
//! never holds more than one pending entry per source in memory.

use super::keys;
use super::SledStore;
use crate::store::{
    BounceEvent, EventKind, ExportEvent, ExportKind, RecipientKey, RecipientRecord, StoreError,
    TrackEvent, TrackKind,
};
use crate::model::{Millis, RecipientState, ReplyRecord};
use serde::{Deserialize, Serialize};

/// One entry of the attempt log, as written (borrowing, so the hot path clones nothing).
#[derive(Serialize)]
struct AttemptRef<'a> {
    key: &'a RecipientKey,
    state: RecipientState,
    reply: Option<&'a ReplyRecord>,
}

/// One entry of the attempt log, as read back (same encoding as [`AttemptRef`]).
#[derive(Deserialize)]
struct Attempt {
    key: RecipientKey,
    state: RecipientState,
    reply: Option<ReplyRecord>,
}

/// The merged history of one campaign, oldest first, from sled. Obtained from
/// [`SledStore::export_events`];
/// reads the store as it goes (a store error ends nothing: it is yielded, then reading goes
/// on with the next entry).
pub(crate) struct SledEvents {
    store: SledStore,
    campaign: String,
    links: Vec<String>,
    sources: [Source; 3],
}

impl std::fmt::Debug for SledEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledEvents")
            .field("campaign", &self.campaign)
            .finish_non_exhaustive()
    }
}

/// One time-ordered range scan and its next entry, decoded.
struct Source {
    iter: sled::Iter,
    prefix: Vec<u8>,
    tag: u8,
    head: Option<Result<Entry, StoreError>>,
}

/// A decoded entry of one of the three sources.
enum Entry {
    Attempt(Millis, Attempt),
    Report(BounceEvent),
    Track(TrackEvent),
}

impl Entry {
    fn at(&self) -> Millis {
        match self {
            Entry::Attempt(at, _) => *at,
            Entry::Report(event) => event.at,
            Entry::Track(event) => event.at,
        }
    }
}

impl SledStore {
    /// Every event of `campaign` at or after `since` (epoch milliseconds), oldest first:
    /// delivery outcomes, late bounces, delays and complaints, opens, clicks and unsubscribes.
    /// Events at the same millisecond come as delivery outcomes, then reports, then tracking.
    /// Streams: memory stays flat however long the history.
    pub(crate) fn export_events(&self, campaign: &str, since: Millis) -> Result<SledEvents, StoreError> {
        if self.campaign(campaign)?.is_none() {
            return Err(StoreError::UnknownCampaign {
                campaign: campaign.to_owned(),
                path: self.path.clone(),
            });
        }
        let links = self
            .tracking_meta(campaign)?
            .map(|meta| meta.links)
            .unwrap_or_default();
        let source = |tag: u8| {
            let prefix = keys::prefix(tag, campaign);
            let mut start = prefix.clone();
            start.extend_from_slice(&since.to_be_bytes());
            Source {
                iter: self.tree.range(start..),
                prefix,
                tag,
                head: None,
            }
        };
        let mut events = SledEvents {
            store: self.clone(),
            campaign: campaign.to_owned(),
            links,
            sources: [
                source(keys::ATTEMPT),
                source(keys::EVENT),
                source(keys::TRACK_EVENT),
            ],
        };
        for i in 0..events.sources.len() {
            events.advance(i);
        }
        Ok(events)
    }

    /// Adds an attempt-log entry to `batch`: `state` is what the recipient became.
    pub(crate) fn log_attempt(
        &self,
        batch: &mut sled::Batch,
        log_prefix: &[u8],
        at: Millis,
        key: &RecipientKey,
        state: RecipientState,
        reply: Option<&ReplyRecord>,
    ) -> Result<(), StoreError> {
        let id = self.db.generate_id().map_err(|e| self.sled_error(e))?;
        let mut log_key = Vec::with_capacity(log_prefix.len() + 16);
        log_key.extend_from_slice(log_prefix);
        log_key.extend_from_slice(&at.to_be_bytes());
        log_key.extend_from_slice(&id.to_be_bytes());
        let entry = AttemptRef { key, state, reply };
        batch.insert(log_key, self.encode(&entry, "attempt")?);
        Ok(())
    }
}

impl SledEvents {
    /// Reads source `i`'s next entry into its head.
    fn advance(&mut self, i: usize) {
        let store = &self.store;
        let source = &mut self.sources[i];
        source.head = match source.iter.next() {
            None => None,
            Some(Err(e)) => Some(Err(store.sled_error(e))),
            Some(Ok((key, _))) if !key.starts_with(&source.prefix) => None,
            Some(Ok((key, value))) => Some(match source.tag {
                keys::ATTEMPT => {
                    let at = key
                        .get(source.prefix.len()..source.prefix.len() + 8)
                        .and_then(|b| b.try_into().ok())
                        .map_or(0, u64::from_be_bytes);
                    store
                        .decode(&value, "attempt")
                        .map(|attempt| Entry::Attempt(at, attempt))
                }
                keys::EVENT => store.decode(&value, "event").map(Entry::Report),
                _ => store.decode(&value, "tracking event").map(Entry::Track),
            }),
        };
    }

    /// The address and variant of a recipient, from its record.
    fn recipient(&self, key: &RecipientKey) -> Result<(String, Option<u8>), StoreError> {
        let record: Option<RecipientRecord> = self.store.recipient(&self.campaign, key)?;
        Ok(record.map_or((String::new(), None), |r| (r.email, Some(r.variant))))
    }

    fn export(&self, entry: Entry) -> Result<ExportEvent, StoreError> {
        Ok(match entry {
            Entry::Attempt(at, attempt) => {
                let (recipient, variant) = self.recipient(&attempt.key)?;
                ExportEvent {
                    at,
                    kind: ExportKind::from_state(attempt.state),
                    recipient,
                    variant,
                    machine: None,
                    link: None,
                    url: None,
                    reply: attempt.reply,
                }
            }
            Entry::Report(event) => ExportEvent {
                at: event.at,
                kind: match event.kind {
                    EventKind::Bounce => ExportKind::Bounced,
                    EventKind::Delay => ExportKind::Deferred,
                    EventKind::Complaint => ExportKind::Complaint,
                },
                variant: self.recipient(&event.key)?.1,
                recipient: event.address,
                machine: None,
                link: None,
                url: None,
                reply: Some(event.reply),
            },
            Entry::Track(event) => ExportEvent {
                at: event.at,
                kind: match event.kind {
                    TrackKind::Open => ExportKind::Open,
                    TrackKind::Click => ExportKind::Click,
                    TrackKind::Unsubscribe => ExportKind::Unsubscribe,
                },
                recipient: self.recipient(&event.key)?.0,
                variant: Some(event.variant),
                machine: event.machine,
                link: event.link,
                url: event
                    .link
                    .and_then(|i| self.links.get(usize::from(i)))
                    .cloned(),
                reply: None,
            },
        })
    }
}

impl Iterator for SledEvents {
    type Item = Result<ExportEvent, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        // The earliest head; an error first, ties to the lower source.
        let next = self
            .sources
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match &s.head {
                Some(Ok(entry)) => Some((entry.at(), i)),
                Some(Err(_)) => Some((0, i)),
                None => None,
            })
            .min()
            .map(|(_, i)| i)?;
        let head = self.sources[next].head.take()?;
        self.advance(next);
        Some(head.and_then(|entry| self.export(entry)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{now_millis, Outcome, Suppression, SuppressionReason};
    use crate::store::{MessageRef, OutcomePolicy, OutcomeUpdate, TrackInput, TrackingMeta};

    fn reply(code: u16, enhanced: &str) -> ReplyRecord {
        ReplyRecord {
            code: Some(code),
            enhanced: Some(enhanced.into()),
            text: format!("{code} {enhanced} said the server"),
            category: (code >= 400).then_some(crate::model::Category::InvalidRecipient),
            hard: code >= 500,
        }
    }

    /// A campaign `c1` with one recipient per address, and their keys by local part.
    fn loaded(store: &SledStore, locals: &[&str]) -> Vec<RecipientKey> {
        let mut loader = store.start_load("c1", vec!["email".into()]).unwrap();
        for (i, local) in locals.iter().enumerate() {
            let address = format!("{local}@x.example");
            loader
                .add(
                    &address,
                    "x.example",
                    vec![address.clone()],
                    i as u64 + 2,
                    crate::model::Assignment::Variant(0),
                )
                .unwrap();
        }
        loader.finish(0, 0).unwrap();
        (0..locals.len() as u64)
            .map(|seq| RecipientKey {
                domain: "x.example".into(),
                seq,
            })
            .collect()
    }

    fn outcome(key: &RecipientKey, outcome: Outcome) -> OutcomeUpdate {
        OutcomeUpdate {
            key: key.clone(),
            outcome,
            message_id: None,
        }
    }

    fn track(key: &RecipientKey, kind: TrackKind, link: Option<u16>, at: Millis) -> TrackInput {
        TrackInput {
            campaign: "c1".into(),
            key: key.clone(),
            address: format!("ok@{}", key.domain),
            variant: 1,
            kind,
            link,
            at,
            machine: None,
        }
    }

    /// Every kind of event, written out of order across the three sources.
    fn history(store: &SledStore) -> Millis {
        let entry = Suppression {
            reason: SuppressionReason::Manual,
            at: 1,
            campaign: None,
            detail: "by hand".into(),
        };
        store.suppress("sup@x.example", &entry).unwrap();
        let k = loaded(store, &["ok", "defer", "bounce", "late", "sup", "exp"]);
        // After the load (which logs the suppressed recipient at the wall-clock time).
        let t0 = now_millis() + 60_000;
        store
            .set_tracking_meta(
                "c1",
                &TrackingMeta {
                    links: vec!["https://a.example/".into(), "https://b.example/".into()],
                    key_fingerprint: "f".into(),
                },
            )
            .unwrap();
        store
            .record_tracking(&[
                track(&k[0], TrackKind::Open, None, t0 + 1),
                track(&k[0], TrackKind::Click, Some(1), t0 + 6),
                track(&k[0], TrackKind::Unsubscribe, None, t0 + 7),
            ])
            .unwrap();
        let policy = OutcomePolicy::default();
        let first = [
            outcome(
                &k[0],
                Outcome::Delivered {
                    reply: reply(250, "2.0.0"),
                },
            ),
            outcome(
                &k[1],
                Outcome::Deferred {
                    reply: reply(451, "4.7.1"),
                },
            ),
            outcome(
                &k[2],
                Outcome::Bounced {
                    reply: reply(550, "5.1.1"),
                },
            ),
            outcome(
                &k[3],
                Outcome::Delivered {
                    reply: reply(250, "2.0.0"),
                },
            ),
        ];
        store
            .record_outcomes("c1", &policy, &first, t0 + 1)
            .unwrap();
        let later = [
            outcome(
                &k[1],
                Outcome::Delivered {
                    reply: reply(250, "2.0.0"),
                },
            ),
            outcome(
                &k[5],
                Outcome::Expired {
                    reply: reply(451, "4.7.1"),
                },
            ),
        ];
        store
            .record_outcomes("c1", &policy, &later, t0 + 3)
            .unwrap();
        for (key, kind, at) in [
            (&k[3], EventKind::Delay, t0 + 2),
            (&k[0], EventKind::Complaint, t0 + 8),
        ] {
            let reference = MessageRef {
                campaign: "c1".into(),
                key: key.clone(),
            };
            store
                .apply_report(&reference, kind, reply(450, "4.4.7"), "f.eml", &policy, at)
                .unwrap();
        }
        t0
    }

    fn seen(events: ExportEvents) -> Vec<(ExportKind, String)> {
        events
            .map(|e| e.unwrap())
            .map(|e| (e.kind, e.recipient.split('@').next().unwrap().to_owned()))
            .collect()
    }

    #[test]
    fn the_export_merges_every_kind_of_event_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        history(&store);
        let events = seen(store.export_events("c1", 0).unwrap());
        let expected = [
            (ExportKind::Suppressed, "sup"),
            // Same millisecond: outcomes first, then tracking.
            (ExportKind::Delivered, "ok"),
            (ExportKind::Deferred, "defer"),
            (ExportKind::Bounced, "bounce"),
            (ExportKind::Delivered, "late"),
            (ExportKind::Open, "ok"),
            (ExportKind::Deferred, "late"),
            (ExportKind::Delivered, "defer"),
            (ExportKind::Expired, "exp"),
            (ExportKind::Click, "ok"),
            (ExportKind::Unsubscribe, "ok"),
            (ExportKind::Complaint, "ok"),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(kind, who)| (*kind, (*who).to_owned()))
            .collect();
        assert_eq!(events, expected);
    }

    #[test]
    fn exported_events_carry_their_reply_link_and_variant() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        history(&store);
        let events: Vec<_> = store
            .export_events("c1", 0)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        let bounce = events
            .iter()
            .find(|e| e.kind == ExportKind::Bounced)
            .unwrap();
        assert_eq!(bounce.recipient, "bounce@x.example");
        assert_eq!(bounce.reply, Some(reply(550, "5.1.1")));
        assert_eq!(
            bounce.variant,
            Some(0),
            "the recipient's variant, from its record"
        );
        let click = events.iter().find(|e| e.kind == ExportKind::Click).unwrap();
        assert_eq!(
            (click.link, click.url.as_deref(), click.variant),
            (Some(1), Some("https://b.example/"), Some(1))
        );
        let suppressed = &events[0];
        assert!(suppressed.reply.as_ref().unwrap().text.contains("by hand"));
    }

    #[test]
    fn since_leaves_out_what_came_before() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let t0 = history(&store);
        let events = seen(store.export_events("c1", t0 + 3).unwrap());
        let kinds: Vec<_> = events.iter().map(|(kind, _)| *kind).collect();
        assert_eq!(
            kinds,
            [
                ExportKind::Delivered,
                ExportKind::Expired,
                ExportKind::Click,
                ExportKind::Unsubscribe,
                ExportKind::Complaint
            ]
        );
        assert_eq!(store.export_events("c1", t0 + 9).unwrap().count(), 0);
    }

    #[test]
    fn an_unknown_campaign_is_an_error_and_a_reload_starts_a_new_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        assert!(matches!(
            store.export_events("nope", 0),
            Err(StoreError::UnknownCampaign { .. })
        ));
        let k = loaded(&store, &["a"]);
        let delivered = [outcome(
            &k[0],
            Outcome::Delivered {
                reply: reply(250, "2.0.0"),
            },
        )];
        store
            .record_outcomes("c1", &OutcomePolicy::default(), &delivered, 5)
            .unwrap();
        assert_eq!(store.export_events("c1", 0).unwrap().count(), 1);
        store.remove_campaign("c1").unwrap();
        loaded(&store, &["new"]);
        assert_eq!(store.export_events("c1", 0).unwrap().count(), 0);
    }
}
