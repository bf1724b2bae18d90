//! A webhook batch: the next events of one campaign after a cursor, read from the store's
//! history ([`crate::store::HistoryStore::export_events`]), as the JSON body sent.
//!
//! The history is in time order, and at one millisecond in a fixed order (outcomes, reports,
//! tracking; then as written). An event is named by its place: campaign, millisecond, and
//! its rank among the events of that millisecond. That place is the event's id (stable: a
//! retry, or a batch read again after a restart, carries the same ids) and the cursor is
//! the place after the last event acknowledged.

use std::time::{Duration, UNIX_EPOCH};

use aws_lc_rs::digest;
use serde::Serialize;

use crate::model::{variant_index, Millis};
use crate::store::{ExportEvent, ExportKind, Store, StoreError, WebhookCursor};

/// Events looked at per batch at most, sent or not (a webhook taking only rare kinds
/// moves its cursor over the rest in steps this long).
const SCAN_LIMIT: usize = 10_000;

/// One batch read from the history.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The campaign.
    pub(crate) campaign: String,
    /// The events to send (maybe none: only events of other kinds were passed over).
    pub(crate) events: Vec<serde_json::Value>,
    /// Where the cursor stands once the batch is acknowledged.
    pub(crate) end: WebhookCursor,
    /// The batch's id (`webhook-id`): the same for the same events.
    pub(crate) id: String,
}

/// What to read: the webhook's kinds and batch size, and the newest moment to read up to.
pub(crate) struct Reading<'a> {
    /// The kinds of events sent.
    pub(crate) kinds: &'a [ExportKind],
    /// Events per batch at most.
    pub(crate) max: usize,
    /// Events after this moment are left for later (they may still be written out of
    /// order: see `SETTLE` in `task.rs`).
    pub(crate) horizon: Millis,
    /// The campaign's variant ids by index (empty when unknown: the variant is then left
    /// blank, as `volley events` does without the campaign file).
    pub(crate) variants: Vec<String>,
}

/// One event as sent: the fields `volley events --format jsonl` prints, plus its id.
#[derive(Serialize)]
struct EventJson<'a> {
    id: String,
    at: String,
    campaign: &'a str,
    variant: String,
    recipient: &'a str,
    event: &'static str,
    machine: Option<&'static str>,
    link: Option<u16>,
    url: Option<&'a str>,
    code: Option<u16>,
    enhanced: Option<&'a str>,
    reply: Option<&'a str>,
    category: Option<&'static str>,
}

/// The id of the event of `campaign` at `at` ranked `rank` among that millisecond's.
pub(crate) fn event_id(campaign: &str, at: Millis, rank: u64) -> String {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(campaign.as_bytes());
    context.update(&[0]);
    context.update(&at.to_be_bytes());
    context.update(&rank.to_be_bytes());
    let digest = context.finish();
    let hex: String = digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("evt_{hex}")
}

/// The event as sent.
fn to_json(
    campaign: &str,
    event: &ExportEvent,
    id: String,
    variants: &[String],
) -> serde_json::Value {
    let reply = event.reply.as_ref();
    let json = EventJson {
        id,
        at: humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(event.at))
            .to_string(),
        campaign,
        variant: event
            .variant
            .and_then(|v| variants.get(usize::from(variant_index(v))))
            .cloned()
            .unwrap_or_default(),
        recipient: &event.recipient,
        event: event.kind.as_str(),
        machine: event.machine.map(|m| m.as_str()),
        link: event.link,
        url: event.url.as_deref(),
        code: reply.and_then(|r| r.code),
        enhanced: reply.and_then(|r| r.enhanced.as_deref()),
        reply: reply.map(|r| r.text.as_str()),
        category: reply.and_then(|r| r.category).map(|c| c.as_str()),
    };
    serde_json::to_value(json).unwrap_or(serde_json::Value::Null)
}

/// The next batch of `campaign` after `cursor`, or `None` when nothing (up to the horizon)
/// follows it. Reads the store: call off the async workers.
pub(crate) fn read(
    store: &Store,
    campaign: &str,
    cursor: WebhookCursor,
    reading: &Reading<'_>,
) -> Result<Option<Batch>, StoreError> {
    let mut events = Vec::new();
    let mut end = cursor;
    let (mut at, mut rank) = (cursor.at, 0u64);
    let mut looked = 0;
    for event in store.export_events(campaign, cursor.at)? {
        let event = event?;
        if event.at > reading.horizon {
            break;
        }
        if event.at != at {
            (at, rank) = (event.at, 0);
        }
        let this = rank;
        rank += 1;
        if event.at == cursor.at && this < cursor.skip {
            continue;
        }
        if reading.kinds.contains(&event.kind) {
            let id = event_id(campaign, event.at, this);
            events.push(to_json(campaign, &event, id, &reading.variants));
        }
        end = WebhookCursor {
            at: event.at,
            skip: this + 1,
        };
        looked += 1;
        if events.len() >= reading.max || looked >= SCAN_LIMIT {
            break;
        }
    }
    if end == cursor {
        return Ok(None);
    }
    let id = batch_id(campaign, cursor, end);
    Ok(Some(Batch {
        campaign: campaign.to_owned(),
        events,
        end,
        id,
    }))
}

/// The `webhook-id` of the batch of `campaign` from `start` to `end`.
fn batch_id(campaign: &str, start: WebhookCursor, end: WebhookCursor) -> String {
    let first = event_id(campaign, start.at, start.skip);
    let last = event_id(campaign, end.at, end.skip);
    format!("msg_{}{}", &first[4..20], &last[4..20])
}

/// How many events of `kinds` follow `cursor` in `campaign` (up to `horizon`), counting
/// at most `cap`.
pub(crate) fn count_after(
    store: &Store,
    campaign: &str,
    cursor: WebhookCursor,
    kinds: &[ExportKind],
    horizon: Millis,
    cap: u64,
) -> Result<u64, StoreError> {
    let (mut at, mut rank, mut count) = (cursor.at, 0u64, 0u64);
    for event in store.export_events(campaign, cursor.at)? {
        let event = event?;
        if event.at > horizon || count >= cap {
            break;
        }
        if event.at != at {
            (at, rank) = (event.at, 0);
        }
        rank += 1;
        if event.at == cursor.at && rank <= cursor.skip {
            continue;
        }
        count += u64::from(kinds.contains(&event.kind));
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Assignment, Outcome, ReplyRecord};
    use crate::store::{OutcomePolicy, OutcomeUpdate};

    /// A sled store with campaign `c` of five recipients: two delivered at 1000 ms, three at
    /// 2000 ms (the second group's middle one bounced).
    fn history() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut loader = store.start_load("c", vec!["email".into()]).unwrap();
        for i in 0..5u64 {
            let address = format!("r{i}@x.example");
            let values = vec![address.clone()];
            loader
                .add(&address, "x.example", values, i + 2, Assignment::Variant(0))
                .unwrap();
        }
        loader.finish(0, 0, 0).unwrap();
        let pending = store.pending("c", None, 10).unwrap();
        let reply = |code: u16| ReplyRecord {
            code: Some(code),
            enhanced: None,
            text: format!("{code} said"),
            category: None,
            hard: code >= 500,
        };
        for (at, range) in [(1_000, 0..2), (2_000, 2..5)] {
            let updates: Vec<OutcomeUpdate> = pending[range]
                .iter()
                .map(|r| OutcomeUpdate {
                    key: r.key.clone(),
                    outcome: if r.key.seq == 3 {
                        Outcome::Bounced { reply: reply(550) }
                    } else {
                        Outcome::Delivered { reply: reply(250) }
                    },
                    message_id: None,
                })
                .collect();
            store
                .record_outcomes("c", &OutcomePolicy::default(), &updates, at)
                .unwrap();
        }
        (dir, store)
    }

    fn reading(kinds: &[ExportKind], max: usize, horizon: Millis) -> Reading<'_> {
        Reading {
            kinds,
            max,
            horizon,
            variants: vec!["main".into()],
        }
    }

    #[test]
    fn batches_follow_the_cursor_through_a_millisecond_and_stop_at_the_horizon() {
        let (_dir, store) = history();
        let all = [ExportKind::Delivered, ExportKind::Bounced];
        let start = WebhookCursor { at: 0, skip: 0 };
        let first = read(&store, "c", start, &reading(&all, 3, 5_000))
            .unwrap()
            .unwrap();
        assert_eq!(first.events.len(), 3);
        // The third event is the first of 2000 ms: the cursor stands inside it.
        assert_eq!(first.end, WebhookCursor { at: 2_000, skip: 1 });
        assert_eq!(first.events[2]["id"], event_id("c", 2_000, 0));
        assert_eq!(first.events[0]["variant"], "main");
        assert_eq!(first.events[0]["campaign"], "c");
        let second = read(&store, "c", first.end, &reading(&all, 3, 5_000))
            .unwrap()
            .unwrap();
        let ids: Vec<_> = second.events.iter().map(|e| e["id"].clone()).collect();
        assert_eq!(
            ids,
            [event_id("c", 2_000, 1), event_id("c", 2_000, 2)].map(serde_json::Value::from)
        );
        assert_eq!(second.events[0]["event"], "bounced");
        assert_eq!(second.events[0]["code"], 550);
        assert!(read(&store, "c", second.end, &reading(&all, 3, 5_000))
            .unwrap()
            .is_none());
        // Read again from the same cursor: the same batch, the same id.
        let again = read(&store, "c", first.end, &reading(&all, 3, 5_000))
            .unwrap()
            .unwrap();
        assert_eq!((again.id, again.events), (second.id, second.events));
        // Events after the horizon wait.
        let early = read(&store, "c", start, &reading(&all, 10, 1_999))
            .unwrap()
            .unwrap();
        assert_eq!(early.end, WebhookCursor { at: 1_000, skip: 2 });
        assert_eq!(
            count_after(&store, "c", start, &all, 5_000, 100).unwrap(),
            5
        );
        assert_eq!(
            count_after(&store, "c", first.end, &all, 5_000, 100).unwrap(),
            2
        );
    }

    #[test]
    fn events_of_other_kinds_move_the_cursor_without_a_request() {
        let (_dir, store) = history();
        let bounces = [ExportKind::Bounced];
        let start = WebhookCursor { at: 0, skip: 0 };
        let batch = read(&store, "c", start, &reading(&bounces, 10, 5_000))
            .unwrap()
            .unwrap();
        assert_eq!(batch.events.len(), 1);
        assert_eq!(batch.end, WebhookCursor { at: 2_000, skip: 3 });
        let opens = [ExportKind::Open];
        let none = read(&store, "c", start, &reading(&opens, 10, 5_000))
            .unwrap()
            .unwrap();
        assert!(none.events.is_empty());
        assert_eq!(none.end, batch.end);
        assert_eq!(
            count_after(&store, "c", start, &opens, 5_000, 100).unwrap(),
            0
        );
    }

    #[test]
    fn an_event_id_names_its_place_and_nothing_else() {
        let id = event_id("spring", 1_000, 0);
        assert_eq!(id, event_id("spring", 1_000, 0));
        assert!(id.starts_with("evt_") && id.len() == 36, "{id}");
        assert_ne!(id, event_id("spring", 1_000, 1));
        assert_ne!(id, event_id("spring", 1_001, 0));
        assert_ne!(id, event_id("summer", 1_000, 0));
    }
}
