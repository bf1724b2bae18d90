//! The rules a tracked request follows, as the sled engine applies them (`sled/tracking.rs`),
//! over the PostgreSQL engine's `engagement` row: unique opens and clicks, machine-made
//! events counted apart, and click bursts (a scanner following every link).

use crate::model::{Millis, TrackCounts};
use crate::store::{MachineReason, TrackEffect, TrackInput, TrackKind};

/// Clicks on two different links closer than this are a scanner following every link.
const BURST_MILLIS: Millis = 1_000;

/// What a recipient has done (an `engagement` row), for unique counts, click bursts and the
/// daily cap. Times are epoch milliseconds, 0 for none.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Engagement {
    pub(super) opened: bool,
    pub(super) clicked: bool,
    pub(super) unsubscribed: bool,
    /// When the human click that made `clicked` true happened.
    pub(super) first_click_at: Millis,
    pub(super) last_click_at: Millis,
    pub(super) last_link: u16,
    /// Days since the epoch (UTC) of `cap_events`.
    pub(super) cap_day: u32,
    /// Events stored that day.
    pub(super) cap_events: u32,
}

/// Updates one recipient's engagement and the counters for one input.
pub(super) fn apply(
    input: &TrackInput,
    engagement: &mut Engagement,
    counts: &mut TrackCounts,
) -> TrackEffect {
    let stored = |machine, first| TrackEffect {
        machine,
        first,
        stored: true,
    };
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

/// A click: a burst across links is machine-made, and undoes the click that began it when
/// that click was all that made the recipient a clicker.
fn click(input: &TrackInput, engagement: &mut Engagement, counts: &mut TrackCounts) -> TrackEffect {
    let link = input.link.unwrap_or(0);
    let burst = engagement.last_click_at > 0
        && input.at.saturating_sub(engagement.last_click_at) < BURST_MILLIS
        && link != engagement.last_link;
    if burst && engagement.clicked && engagement.first_click_at == engagement.last_click_at {
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
        return TrackEffect {
            machine,
            first: false,
            stored: true,
        };
    }
    counts.clicks += 1;
    let first = !std::mem::replace(&mut engagement.clicked, true);
    if first {
        engagement.first_click_at = input.at;
        counts.clicked += 1;
    }
    TrackEffect {
        machine: None,
        first,
        stored: true,
    }
}
