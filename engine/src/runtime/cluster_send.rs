//! `volley send` on a database shared by a cluster: the process joins the cluster as a node
//! of its own (`send-<host>-<pid>`) that works on this one campaign. It loads the list (in
//! its turn: the campaign's load lease), publishes the campaign so every `volley serve` node
//! takes a share, sends the domains it holds, and follows the campaign until nothing is left
//! to send anywhere. A node alone (no `volley serve` running) sends everything itself, as
//! on sled. When what is left cannot move (every remaining destination suspended or capped)
//! it stops following and says what it leaves to the cluster.
//!
//! ```text
//! send ─► node (heartbeat, fair share) ─► WorkFilter ─► run ─► run ─► … ─► report
//!                                                         ▲ a run per grant of domains
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::pipeline::{self, SendOptions, SendReport, Sent};
use super::plan::DeliveryPlan;
use super::run::{Run, RunOptions};
use super::stop::CampaignGuard;
use super::Campaign;
use crate::cluster::{Node, NodeSettings};
use crate::dispatch::RunSummary;
use crate::model::{add_duration, Counts};
use crate::store::Store;
use crate::Error;
use tokio_util::sync::CancellationToken;

/// How long the campaign may stand still (no recipient changing state anywhere, nothing
/// sent here) before the send stops following it, in looks (one per heartbeat at most).
const STILL_FOR: u32 = 6;

/// Sends `campaign` as a node of the cluster on `store` and follows it to the end.
pub(crate) async fn send(
    campaign: &Campaign,
    store: &Store,
    options: SendOptions,
) -> Result<SendReport, Error> {
    // One process per campaign on a machine (a second is refused); other machines' sends
    // and nodes share it through the leases.
    let _lock = super::send_lock::lock(&campaign.settings.store, campaign.id())?;
    let node = Node::register(
        store.clone(),
        NodeSettings {
            name: super::cluster_docs::node_name().to_owned(),
            lease: crate::config::DEFAULT_LEASE,
        },
    )
    .await?;
    node.set_campaigns(vec![campaign.id().to_owned()]);
    let heartbeat = CancellationToken::new();
    let keeper = tokio::spawn(node.clone().keep(options.cancel.clone(), heartbeat.clone()));
    let result = send_and_follow(campaign, store, &node, &options).await;
    heartbeat.cancel();
    let _ = keeper.await;
    // Everything in flight is recorded: hand the leases back so others go on now.
    if let Err(error) = node.stop(true).await {
        tracing::warn!(%error, "could not hand the leases back; they run out by themselves");
    }
    let flushed = store.flush().await;
    let report = result?;
    flushed?;
    if let Some(progress) = &options.progress {
        progress.send_replace(pipeline::Progress {
            phase: pipeline::Phase::Done,
            counts: report.counts.clone(),
        });
    }
    Ok(report)
}

/// Loads, publishes, then runs a send whenever the node holds domains with work, until the
/// campaign is done everywhere, stands still, or the send is interrupted.
async fn send_and_follow(
    campaign: &Campaign,
    store: &Store,
    node: &Node,
    options: &SendOptions,
) -> Result<SendReport, Error> {
    let prepared = pipeline::prepare(campaign, store, Some(node), options).await?;
    let started = Instant::now();
    let mut attempts = 0;
    let mut summary = RunSummary::default();
    let mut sources = Vec::new();
    let mut still = Stillness::default();
    let filter = node.filter();
    // The campaign-wide stop ends this send (the other nodes judge the counts alike).
    let stop = options.cancel.child_token();
    let guard = Arc::new(CampaignGuard::new(
        campaign.settings.bounces.stop,
        store.clone(),
        campaign.id(),
        stop.clone(),
    ));
    guard.note(&store.counts(campaign.id())?.unwrap_or_default());
    loop {
        let run = Run::new(store.clone()).in_cluster(filter.clone());
        let result = run
            .execute(
                DeliveryPlan::for_campaign(campaign, store)?,
                pipeline::lane(campaign, store, options, Some(guard.clone()))?,
                RunOptions {
                    cancel: stop.clone(),
                    ..pipeline::run_options(campaign, options)
                },
            )
            .await?;
        attempts += result.attempts;
        crate::delivery::add_source_counts(&mut sources, result.sources);
        // Recipients held back by a used-up warm-up ceiling wait for the next day.
        let held: u64 = result.summary.warmup.iter().map(|h| h.held).sum();
        let idle = summary.idle + result.summary.idle;
        // The policy blocks seen by every pass, the latest record of each destination.
        let mut blocks = std::mem::take(&mut summary.blocks);
        blocks.retain(|b| {
            !result
                .summary
                .blocks
                .iter()
                .any(|new| new.destination == b.destination)
        });
        blocks.extend(result.summary.blocks.iter().cloned());
        summary = RunSummary {
            idle,
            blocks,
            ..result.summary
        };
        if stop.is_cancelled() {
            break;
        }
        let counts = store.counts(campaign.id())?.unwrap_or_default();
        let now = options.clock.now_millis();
        let sendable = Counts {
            pending: counts.pending.saturating_sub(held),
            ..counts.clone()
        };
        if done_everywhere(store, campaign.id(), &sendable, now, options.linger)? {
            break;
        }
        // Alone, a send that stands still has what is left blocked or capped past the
        // linger (as on sled); with other nodes, they may still be sending it.
        let still_for = still.seen(&counts);
        let patience = if node.live_nodes() == 1 { 2 } else { STILL_FOR };
        if result.attempts == 0 && still_for >= patience {
            tracing::warn!(
                campaign = campaign.id(),
                pending = counts.pending,
                deferred = counts.deferred,
                "nothing moved for a while; what is left stays with the cluster's nodes"
            );
            break;
        }
        if let Some(progress) = &options.progress {
            progress.send_replace(pipeline::Progress {
                phase: pipeline::Phase::Sending,
                counts,
            });
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = filter.granted() => {}
            () = tokio::time::sleep(node.heartbeat_every()) => {}
        }
    }
    let sent = Sent {
        attempts,
        elapsed: started.elapsed(),
        summary,
        sources,
    };
    let mut report = pipeline::finish(campaign, store, prepared, sent, options)?;
    report.stopped = guard.stopped();
    Ok(report)
}

/// True when campaign `id` (with `counts`) has nothing pending and no retry due within
/// `linger` of `now` (the send's clock), whichever node would send it.
fn done_everywhere(
    store: &Store,
    id: &str,
    counts: &Counts,
    now: crate::model::Millis,
    linger: Duration,
) -> Result<bool, Error> {
    if counts.pending > 0 {
        return Ok(false);
    }
    let horizon = add_duration(now, linger);
    Ok(store.next_due(id)?.is_none_or(|due| due > horizon))
}

/// How many looks in a row found the campaign's counts unchanged.
#[derive(Default)]
struct Stillness {
    last: Option<Counts>,
    looks: u32,
}

impl Stillness {
    /// Notes `counts`; returns how many looks before this one saw the same.
    fn seen(&mut self, counts: &Counts) -> u32 {
        if self.last.as_ref() == Some(counts) {
            self.looks += 1;
        } else {
            self.last = Some(counts.clone());
            self.looks = 0;
        }
        self.looks
    }
}
