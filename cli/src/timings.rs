//! `--timings`: where the time of a run goes, per tracing span (compose, render, MIME, DKIM
//! signing, SMTP transactions, store writes and flushes). A tracing layer adds up, per span
//! name, how long spans were entered (busy: CPU time on a thread) and how long they lived
//! (wall time, which for an SMTP transaction includes waiting for the server), and a table
//! is printed at the end.

use crate::words::numbers::{format_micros, format_seconds};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::span::{Attributes, Id};
use tracing::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Totals for one span name.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    count: u64,
    busy: Duration,
    wall: Duration,
}

/// Per-span timing, kept in the span's extensions.
struct Timing {
    created: Instant,
    entered: Option<Instant>,
    busy: Duration,
}

/// The collected totals; a [`Layer`] that fills them.
#[derive(Debug, Default, Clone)]
pub(crate) struct Timings {
    totals: Arc<Mutex<BTreeMap<&'static str, Totals>>>,
}

impl Timings {
    /// The table, one line per span name, or `None` when nothing was timed.
    pub(crate) fn table(&self) -> Option<String> {
        let totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        if totals.is_empty() {
            return None;
        }
        let mut out = format!(
            "{:<18} {:>10} {:>12} {:>11} {:>12} {:>11}\n",
            "span", "count", "busy total", "busy each", "wall total", "wall each"
        );
        for (name, t) in totals.iter() {
            let each = |d: Duration| format_micros(d.as_secs_f64() * 1e6 / t.count.max(1) as f64);
            out.push_str(&format!(
                "{name:<18} {:>10} {:>12} {:>11} {:>12} {:>11}\n",
                t.count,
                format_seconds(t.busy.as_secs_f64(), 2),
                each(t.busy),
                format_seconds(t.wall.as_secs_f64(), 2),
                each(t.wall)
            ));
        }
        Some(out)
    }
}

impl<S> Layer<S> for Timings
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, _attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Timing {
                created: Instant::now(),
                entered: None,
                busy: Duration::ZERO,
            });
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(timing) = span.extensions_mut().get_mut::<Timing>() {
                timing.entered = Some(Instant::now());
            }
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(timing) = span.extensions_mut().get_mut::<Timing>() {
                if let Some(at) = timing.entered.take() {
                    timing.busy += at.elapsed();
                }
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let name = span.metadata().name();
        let Some(timing) = span.extensions_mut().remove::<Timing>() else {
            return;
        };
        let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        let entry = totals.entry(name).or_default();
        entry.count += 1;
        entry.busy += timing.busy;
        entry.wall += timing.created.elapsed();
    }
}
