//! The rules a tracked request follows, on every engine: which opens and clicks count as a
//! person's (unique opens and clicks, machine-made events counted apart), the click burst (a
//! scanner following every link within a second is machine-made, and so is the click that
//! began it when that click was all that made the recipient a clicker), a repeat unsubscribe
//! storing nothing, and the daily cap of events stored per recipient.
//!
//! The engines keep the state these rules read and change ([`Engagement`], [`DailyEvents`])
//! each in their own way (sled as encoded values, PostgreSQL as the `engagement` row) and
//! call [`refusal`] then [`apply`] for every input, in order.

use crate::model::{Millis, TrackCounts};
use crate::store::transfer::EngagementEntry;
use crate::store::{MachineReason, TrackEffect, TrackInput, TrackKind};
use serde::{Deserialize, Serialize};

/// Clicks on two different links closer than this are a scanner following every link.
const BURST_MILLIS: Millis = 1_000;

/// Milliseconds in a day.
const DAY_MILLIS: Millis = 86_400_000;

/// What a recipient has done, for unique counts and click bursts. Times are epoch
/// milliseconds, 0 for none. (sled stores it encoded: the fields' order is its format.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Engagement {
    pub(crate) opened: bool,
    pub(crate) clicked: bool,
    pub(crate) unsubscribed: bool,
    /// When the human click that made `clicked` true happened.
    pub(crate) first_click_at: Millis,
    pub(crate) last_click_at: Millis,
    pub(crate) last_link: u16,
}

impl Engagement {
    /// The engagement a `store copy` carries.
    pub(crate) fn from_entry(entry: &EngagementEntry) -> Self {
        Engagement {
            opened: entry.opened,
            clicked: entry.clicked,
            unsubscribed: entry.unsubscribed,
            first_click_at: entry.first_click_at,
            last_click_at: entry.last_click_at,
            last_link: entry.last_link,
        }
    }

    /// The engagement as `store copy` carries it, for recipient `seq`.
    pub(crate) fn entry(&self, seq: u64) -> EngagementEntry {
        EngagementEntry {
            seq,
            opened: self.opened,
            clicked: self.clicked,
            unsubscribed: self.unsubscribed,
            first_click_at: self.first_click_at,
            last_click_at: self.last_click_at,
            last_link: self.last_link,
        }
    }
}

/// How many events one recipient (of a campaign) has had stored on one UTC day, for the
/// daily cap. (sled stores it encoded: the fields' order is its format.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DailyEvents {
    /// Days since the Unix epoch (UTC).
    pub(crate) day: u32,
    /// Events stored that day.
    pub(crate) events: u32,
}

impl DailyEvents {
    /// Counts one more event at `at` (a new day starts again from none); the day's count.
    pub(crate) fn count(&mut self, at: Millis) -> u32 {
        let day = u32::try_from(at / DAY_MILLIS).unwrap_or(u32::MAX);
        if self.day != day {
            *self = DailyEvents { day, events: 0 };
        }
        self.events = self.events.saturating_add(1);
        self.events
    }
}

/// Whether `input` is stored at all: `Ok(None)` when it is (go on with [`apply`]), else the
/// effect of an input that changes nothing. A repeat unsubscribe is never stored (and not
/// counted against the cap); past `daily_cap` events of the day nothing is stored but a first
/// unsubscribe. `count_daily` counts the input's event for the cap and returns the day's count
/// (see [`DailyEvents::count`]); it is called only for an input that could be stored.
pub(crate) fn refusal<E>(
    input: &TrackInput,
    engagement: &Engagement,
    daily_cap: u32,
    count_daily: impl FnOnce() -> Result<u32, E>,
) -> Result<Option<TrackEffect>, E> {
    let unsubscribe = input.kind == TrackKind::Unsubscribe;
    if unsubscribe && engagement.unsubscribed {
        // Unsubscribed already: nothing more to store.
        return Ok(Some(unstored(None)));
    }
    if count_daily()? > daily_cap && !unsubscribe {
        return Ok(Some(unstored(input.machine)));
    }
    Ok(None)
}

/// The effect of an input that changes nothing.
pub(crate) fn unstored(machine: Option<MachineReason>) -> TrackEffect {
    TrackEffect {
        machine,
        first: false,
        stored: false,
    }
}

/// Updates one recipient's engagement and the counters for one stored input.
pub(crate) fn apply(
    input: &TrackInput,
    engagement: &mut Engagement,
    counts: &mut TrackCounts,
) -> TrackEffect {
    match input.kind {
        TrackKind::Open => {
            if input.machine.is_some() {
                counts.machine_opens += 1;
                return stored(input.machine, false);
            }
            counts.opens += 1;
            let first = !std::mem::replace(&mut engagement.opened, true);
            counts.opened += u64::from(first);
            stored(None, first)
        }
        TrackKind::Click => click(input, engagement, counts),
        TrackKind::Unsubscribe => {
            let first = !std::mem::replace(&mut engagement.unsubscribed, true);
            counts.unsubscribed += u64::from(first);
            stored(None, first)
        }
    }
}

/// The effect of a stored input.
fn stored(machine: Option<MachineReason>, first: bool) -> TrackEffect {
    TrackEffect {
        machine,
        first,
        stored: true,
    }
}

/// A click: a burst across links is machine-made, and undoes the click that began it when
/// that click was all that made the recipient a clicker.
fn click(input: &TrackInput, engagement: &mut Engagement, counts: &mut TrackCounts) -> TrackEffect {
    let link = input.link.unwrap_or(0);
    let burst = engagement.last_click_at > 0
        && input.at.saturating_sub(engagement.last_click_at) < BURST_MILLIS
        && link != engagement.last_link;
    if burst && engagement.clicked && engagement.first_click_at == engagement.last_click_at {
        // The click that made a clicker was the start of the burst: undo it.
        engagement.clicked = false;
        counts.clicked = counts.clicked.saturating_sub(1);
        counts.clicks = counts.clicks.saturating_sub(1);
        counts.machine_clicks += 1;
    }
    engagement.last_click_at = input.at;
    engagement.last_link = link;
    let machine = input.machine.or(burst.then_some(MachineReason::ClickBurst));
    if machine.is_some() {
        counts.machine_clicks += 1;
        return stored(machine, false);
    }
    counts.clicks += 1;
    let first = !std::mem::replace(&mut engagement.clicked, true);
    if first {
        engagement.first_click_at = input.at;
        counts.clicked += 1;
    }
    stored(None, first)
}
