//! The outcome recorder: every settled recipient of a running send (delivered, deferred,
//! bounced, suppressed…) is written to the store by group commit, and the scheduler hears of
//! it only once it is durable.
//!
//! ```text
//! connections, compose threads ─settled─► recorder ─batch, flush─► store
//!                                            └────settled (after the flush)────► scheduler
//! ```
//!
//! It waits for a settled recipient, takes every other one already waiting (up to
//! [`RECORD_BATCH`]; a group of fewer than [`GATHER_AT`] waits up to [`GATHER_WAIT`] for
//! more), writes the outcomes in one batch per campaign and flushes; what arrives during a
//! flush forms the next group. The window between a server's 250 and its durable
//! record is therefore about one flush (flushes slower than [`SLOW_FLUSH`] are logged). A
//! relay's hourly and daily counts are saved with each group.
//!
//! A store that commits each group on a connection of its own (PostgreSQL:
//! [`Store::max_groups_in_flight`] above 1) gets more than one group written at once once
//! enough outcomes wait, so one group's commit wait overlaps the next group's writes; each
//! group still reaches the scheduler only after its own commit. There the relay's counts
//! are saved at most every 250 ms (a crash forgets at most that much of them).
//!
//! The tracking server's events have a group commit of their own (`tracking::recorder`): it
//! answers each HTTP request once its event is on disk, and counts its flushes for `/metrics`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::Instrument;

use crate::delivery::Settled;
use crate::dispatch::SchedulerEvent;
use crate::model::{now_millis, Counts, Outcome};
use crate::shaping::RelayBudget;
use crate::store::{OutcomePolicy, OutcomeUpdate, RelayTally, Store, StoreError};

/// A flush slower than this is logged (at debug level): it widens the duplicate window after
/// a crash.
const SLOW_FLUSH: Duration = Duration::from_millis(100);
/// Outcomes recorded in one batch at most.
const RECORD_BATCH: usize = 1_024;
/// A group of fewer outcomes waits up to [`GATHER_WAIT`] for more before it is written (as
/// PostgreSQL's `commit_delay` does): a group's write and flush cost about the same for 15
/// outcomes as for 60, so at full speed this halves the recorder's CPU per message, and it
/// delays a lone outcome by a millisecond at most.
const GATHER_AT: usize = 64;
/// See [`GATHER_AT`].
const GATHER_WAIT: Duration = Duration::from_millis(1);
/// Outcomes waiting before a further group starts while others are being written.
const OVERLAP_AT: usize = 64;
/// How often the overlapped recorder looks whether [`OVERLAP_AT`] outcomes wait.
const OVERLAP_POLL: Duration = Duration::from_millis(2);
/// The overlapped recorder saves a relay's minutes at most this often (and at the end).
const RELAY_SAVE_EVERY: Duration = Duration::from_millis(250);
/// Minutes of relay usage kept in the store.
const RELAY_MINUTES_KEPT: u64 = 24 * 60;

/// One campaign of a running send, as the recorder sees it.
pub(crate) trait Lane {
    /// The campaign id.
    fn id(&self) -> &str;
    /// Its retry and suppression policies.
    fn policy(&self) -> &OutcomePolicy;
    /// Told the campaign's counts after each recorded batch.
    fn recorded(&self, counts: Counts);
}

/// The campaigns of a running send, by index.
pub(crate) trait Lanes: Send + Sync + 'static {
    /// What a campaign is.
    type Lane: Lane;
    /// The campaign at `index`, when the send knows it.
    fn lane(&self, index: usize) -> Option<Arc<Self::Lane>>;
    /// The name of destination `id` of the send (for the metrics), when it knows it.
    fn destination_name(&self, id: usize) -> Option<String> {
        let _ = id;
        None
    }
    /// The relay name of destination `id` when it is a relay (for the relay tallies).
    fn relay_name(&self, id: usize) -> Option<String> {
        let _ = id;
        None
    }
}

/// A relay's hourly and daily caps and where their counts are kept.
#[derive(Clone)]
pub(crate) struct RelayUsage {
    /// The store key of the relay's counts (`host:port:user`).
    pub(crate) key: String,
    /// The counts, shared with the connections that take from them.
    pub(crate) budget: Arc<Mutex<RelayBudget>>,
}

/// Records what arrives on `settled` until every sender is gone, telling `scheduler` after
/// each flush; returns the number of outcomes recorded. An error means nothing more can be
/// recorded (a full disk, a file-size limit).
///
/// A store that commits groups independently ([`Store::max_groups_in_flight`] above 1,
/// PostgreSQL) gets that many groups written at once, each on a blocking thread; each group
/// is still reported to the scheduler only once it is durable.
pub(crate) async fn record(
    store: Store,
    lanes: Arc<impl Lanes>,
    settled: mpsc::Receiver<Settled>,
    scheduler: mpsc::UnboundedSender<SchedulerEvent>,
    relay_usage: Vec<RelayUsage>,
) -> Result<u64, StoreError> {
    let in_flight = store.max_groups_in_flight();
    if in_flight > 1 {
        let out = Out {
            scheduler,
            relay_usage,
        };
        return record_overlapped(store, lanes, settled, out, in_flight).await;
    }
    record_one_by_one(store, lanes, settled, scheduler, relay_usage).await
}

/// One group at a time: write, flush, tell the scheduler, next group.
async fn record_one_by_one(
    store: Store,
    lanes: Arc<impl Lanes>,
    mut settled: mpsc::Receiver<Settled>,
    scheduler: mpsc::UnboundedSender<SchedulerEvent>,
    relay_usage: Vec<RelayUsage>,
) -> Result<u64, StoreError> {
    let mut recorded = 0u64;
    while let Some(first) = settled.recv().await {
        let mut group = take_group(first, &mut settled);
        gather(&mut group, &mut settled).await;
        let started = Instant::now();
        recorded += write_group(&store, &*lanes, &group)?;
        for usage in &relay_usage {
            save_relay_usage(&store, usage)?;
        }
        flush(&store).await?;
        crate::metrics::global().store_write(started.elapsed());
        let _ = scheduler.send(SchedulerEvent::Settled(group));
    }
    Ok(recorded)
}

/// Where a recorded group is reported, and the relay counts saved with the groups.
struct Out {
    scheduler: mpsc::UnboundedSender<SchedulerEvent>,
    relay_usage: Vec<RelayUsage>,
}

/// Up to `in_flight` groups written at once, each on a blocking thread (the store's call
/// commits before it returns); a group goes to the scheduler when its own write is done.
/// A further group starts while others are being written only once [`OVERLAP_AT`]
/// outcomes wait: small groups cost the database as much per statement as large ones.
async fn record_overlapped<L: Lanes>(
    store: Store,
    lanes: Arc<L>,
    mut settled: mpsc::Receiver<Settled>,
    out: Out,
    in_flight: usize,
) -> Result<u64, StoreError> {
    let mut writing: tokio::task::JoinSet<Result<(u64, Vec<Settled>), StoreError>> =
        tokio::task::JoinSet::new();
    let mut recorded = 0u64;
    let mut open = true;
    let mut relay_saved = Instant::now();
    while open || !writing.is_empty() {
        let may_start =
            writing.is_empty() || (writing.len() < in_flight && settled.len() >= OVERLAP_AT);
        tokio::select! {
            biased;
            Some(done) = writing.join_next(), if !writing.is_empty() => {
                let (count, group) =
                    done.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
                recorded += count;
                let _ = out.scheduler.send(SchedulerEvent::Settled(group));
            }
            next = settled.recv(), if open && may_start => {
                let Some(first) = next else {
                    open = false;
                    continue;
                };
                let group = take_group(first, &mut settled);
                // Saved before a group (its durable commit carries these counts along), at
                // most every RELAY_SAVE_EVERY.
                if relay_saved.elapsed() >= RELAY_SAVE_EVERY {
                    for usage in &out.relay_usage {
                        save_relay_usage(&store, usage)?;
                    }
                    relay_saved = Instant::now();
                }
                let (store, lanes) = (store.clone(), Arc::clone(&lanes));
                let span = tracing::Span::current();
                writing.spawn_blocking(move || {
                    let _entered = span.enter();
                    let started = Instant::now();
                    let count = write_group(&store, &*lanes, &group)?;
                    store.flush_blocking()?;
                    crate::metrics::global().store_write(started.elapsed());
                    Ok((count, group))
                });
            }
            // Looks again whether enough has piled up to start another group.
            () = tokio::time::sleep(OVERLAP_POLL), if open && !may_start => {}
        }
    }
    for usage in &out.relay_usage {
        save_relay_usage(&store, usage)?;
    }
    Ok(recorded)
}

/// `first` and every other settled recipient already waiting, up to [`RECORD_BATCH`].
fn take_group(first: Settled, settled: &mut mpsc::Receiver<Settled>) -> Vec<Settled> {
    let mut group = Vec::with_capacity(RECORD_BATCH);
    group.push(first);
    while group.len() < RECORD_BATCH {
        match settled.try_recv() {
            Ok(item) => group.push(item),
            Err(_) => break,
        }
    }
    group
}

/// Adds to a small `group` what arrives within [`GATHER_WAIT`], until it holds
/// [`GATHER_AT`] outcomes (see there).
async fn gather(group: &mut Vec<Settled>, settled: &mut mpsc::Receiver<Settled>) {
    let deadline = tokio::time::Instant::now() + GATHER_WAIT;
    while group.len() < GATHER_AT {
        match tokio::time::timeout_at(deadline, settled.recv()).await {
            Ok(Some(item)) => {
                group.push(item);
                while group.len() < RECORD_BATCH {
                    match settled.try_recv() {
                        Ok(item) => group.push(item),
                        Err(_) => break,
                    }
                }
            }
            // The deadline passed, or every sender is gone (the next receive says so).
            _ => return,
        }
    }
}

/// Writes the relay minutes counted since the last save.
fn save_relay_usage(store: &Store, usage: &RelayUsage) -> Result<(), StoreError> {
    let dirty = usage
        .budget
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take_dirty();
    if !dirty.is_empty() {
        let keep_since = (now_millis() / 60_000).saturating_sub(RELAY_MINUTES_KEPT);
        store.set_relay_usage(&usage.key, &dirty, keep_since)?;
    }
    Ok(())
}

/// Flushes the store, logging a slow flush.
async fn flush(store: &Store) -> Result<(), StoreError> {
    let flush_started = Instant::now();
    store
        .flush()
        .instrument(tracing::debug_span!("store.flush"))
        .await?;
    if flush_started.elapsed() > SLOW_FLUSH {
        tracing::debug!(
            millis = flush_started.elapsed().as_millis() as u64,
            "slow store flush"
        );
    }
    Ok(())
}

/// Writes one group's outcomes, one atomic batch per campaign, and tells each campaign its
/// counts.
fn write_group(store: &Store, lanes: &impl Lanes, group: &[Settled]) -> Result<u64, StoreError> {
    let _span = tracing::debug_span!("store.record", outcomes = group.len()).entered();
    let mut by_campaign: HashMap<usize, Vec<OutcomeUpdate>> = HashMap::new();
    for item in group {
        if let Settled::Outcome {
            campaign, update, ..
        } = item
        {
            by_campaign
                .entry(*campaign)
                .or_default()
                .push(update.clone());
        }
    }
    let mut recorded = 0;
    for (index, updates) in by_campaign {
        let Some(lane) = lanes.lane(index) else {
            continue;
        };
        let counts = store.record_outcomes(lane.id(), lane.policy(), &updates, now_millis())?;
        let tallies = relay_tallies(lanes, group, index);
        if !tallies.is_empty() {
            store.add_relay_tallies(lane.id(), &tallies)?;
        }
        // Waiting for a sending window, or for a suspension to end, is not an attempt.
        recorded += updates
            .iter()
            .filter(|u| {
                !matches!(
                    u.outcome,
                    Outcome::Waiting { .. } | Outcome::Postponed { .. }
                )
            })
            .count() as u64;
        lane.recorded(counts);
    }
    count_outcomes(lanes, group);
    Ok(recorded)
}

/// What each relay did with campaign `index`'s outcomes in `group`: delivered, deferred
/// and bounced, by relay name (empty when the send goes direct to MX).
fn relay_tallies(lanes: &impl Lanes, group: &[Settled], index: usize) -> Vec<RelayTally> {
    let mut by_relay: HashMap<usize, RelayTally> = HashMap::new();
    for item in group {
        let Settled::Outcome {
            campaign,
            destination: Some(destination),
            update,
        } = item
        else {
            continue;
        };
        if *campaign != index {
            continue;
        }
        let tally = match by_relay.entry(*destination) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let Some(relay) = lanes.relay_name(*destination) else {
                    continue;
                };
                entry.insert(RelayTally {
                    relay,
                    ..RelayTally::default()
                })
            }
        };
        match update.outcome {
            Outcome::Delivered { .. } => tally.delivered += 1,
            Outcome::Deferred { .. } => tally.deferred += 1,
            Outcome::Bounced { .. } => tally.bounced += 1,
            _ => {}
        }
    }
    let mut tallies: Vec<RelayTally> = by_relay.into_values().collect();
    tallies.sort_by(|a, b| a.relay.cmp(&b.relay));
    tallies
}

/// Counts a recorded group's outcomes in the metrics, by campaign, destination and kind.
fn count_outcomes(lanes: &impl Lanes, group: &[Settled]) {
    let mut tally: HashMap<(usize, Option<usize>, &'static str), u64> = HashMap::new();
    for item in group {
        if let Settled::Outcome {
            campaign,
            destination,
            update,
        } = item
        {
            let kind = match update.outcome {
                Outcome::Delivered { .. } => "delivered",
                Outcome::Deferred { .. } => "deferred",
                Outcome::Bounced { .. } => "bounced",
                Outcome::Expired { .. } => "expired",
                Outcome::Suppressed { .. } => "suppressed",
                Outcome::Cancelled { .. } => "cancelled",
                Outcome::Waiting { .. } => "waiting",
                Outcome::Postponed { .. } => "postponed",
            };
            *tally.entry((*campaign, *destination, kind)).or_default() += 1;
        }
    }
    let metrics = crate::metrics::global();
    for ((index, destination, kind), n) in tally {
        let Some(lane) = lanes.lane(index) else {
            continue;
        };
        let name = destination
            .and_then(|id| lanes.destination_name(id))
            .unwrap_or_else(|| "none".to_owned());
        metrics.outcome(lane.id(), &name, kind, n);
    }
}
