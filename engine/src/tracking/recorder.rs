//! Group commit for tracked requests: handlers queue their event and wait; one task writes
//! whatever is queued in one batch, flushes, and answers them all. A request is answered only
//! once its event is on disk.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::store::{Store, TrackEffect, TrackInput};

/// Events written in one batch at most.
const BATCH: usize = 1_024;
/// Requests waiting for the recorder at most (more wait for room).
pub(crate) const QUEUE: usize = 16_384;

/// One queued event and where its handler waits.
pub(crate) type Job = (TrackInput, oneshot::Sender<Result<TrackEffect, String>>);

/// Runs until every sender is gone, storing at most `daily_cap` events per recipient per
/// day; `metrics` counts the flushes and their time (for `/metrics`).
pub(crate) async fn run(
    store: Store,
    mut jobs: mpsc::Receiver<Job>,
    metrics: std::sync::Arc<super::metrics::Metrics>,
    daily_cap: u32,
) {
    let mut inputs = Vec::with_capacity(BATCH);
    let mut waiting = Vec::with_capacity(BATCH);
    while let Some((input, reply)) = jobs.recv().await {
        inputs.push(input);
        waiting.push(reply);
        while inputs.len() < BATCH {
            match jobs.try_recv() {
                Ok((input, reply)) => {
                    inputs.push(input);
                    waiting.push(reply);
                }
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let result = match store.record_tracking_capped(&inputs, daily_cap) {
            Ok(effects) => match store.flush().await {
                Ok(()) => Ok(effects),
                Err(error) => Err(error.to_string()),
            },
            Err(error) => Err(error.to_string()),
        };
        metrics.flushed(
            inputs.len(),
            started.elapsed().max(Duration::from_micros(1)),
        );
        match result {
            Ok(effects) => {
                for (reply, effect) in waiting.drain(..).zip(effects) {
                    let _ = reply.send(Ok(effect));
                }
            }
            Err(error) => {
                tracing::error!(%error, "tracking events could not be recorded");
                for reply in waiting.drain(..) {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
        inputs.clear();
    }
}
