//! `volley send` on a store another `volley send` holds: the campaign is handed over to that
//! process (which loads it and sends it alongside its own, by priority), and this one follows
//! its progress until it is done.

use crate::send::list_summary;
use crate::words::numbers::{agree, counted};
use crate::{exit, ui};
use anyhow::Context;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use volley::control::{self, Request, Response};
use volley::model::{format_millis, Counts};
use volley::runtime::Campaign;

/// How often the owner is asked how the campaign is going.
const POLL: Duration = Duration::from_millis(500);

pub(crate) async fn run(
    path: &Path,
    campaign: &Campaign,
    cancel: CancellationToken,
) -> anyhow::Result<u8> {
    // Only a sled folder is ever held by another process (a database is shared).
    let store = &campaign.settings().store.shown();
    let file = std::fs::canonicalize(path)
        .with_context(|| format!("locating campaign {}", path.display()))?;
    let reply = control::request(
        store,
        &Request::Submit {
            campaign_file: file,
        },
    )
    .await
    .map_err(|error| {
        anyhow::anyhow!(
            "the store {} is in use by another volley process that does not answer ({error}); wait for it to finish",
            store.display()
        )
    })?;
    let (id, priority) = match reply {
        Response::Submitted {
            campaign,
            priority,
            loaded_now,
            counts,
        } => {
            let loaded = if loaded_now { "loaded now" } else { "loaded earlier" };
            ui::line(&format!(
                "the store is held by a running volley send: campaign {campaign} was handed over to it (priority {priority}, {}, list {loaded})",
                counted(counts.total, "recipient", "recipients")
            ));
            (campaign, priority)
        }
        Response::Error { message } => anyhow::bail!(
            "the store {} is in use by another volley process, which could not take this campaign: {message}",
            store.display()
        ),
        Response::AlreadySending { campaign, pid } => {
            ui::line(&format!(
                "campaign {campaign} is already being sent by volley (pid {pid}); nothing was done"
            ));
            return Ok(exit::ALREADY_SENDING);
        }
        Response::Status { .. }
        | Response::Exported { .. }
        | Response::Report { .. }
        | Response::Marked
        | Response::Refused { .. }
        | Response::Collected { .. } => {
            anyhow::bail!("unexpected answer from the running volley send")
        }
    };
    follow(campaign, &id, priority, cancel).await
}

/// Polls the owner until it is done with the campaign (or goes away), then reports.
async fn follow(
    campaign: &Campaign,
    id: &str,
    priority: u8,
    cancel: CancellationToken,
) -> anyhow::Result<u8> {
    let mut last_log = std::time::Instant::now();
    let mut counts = Counts::default();
    let mut pid = None;
    loop {
        tokio::select! {
            () = cancel.cancelled() => {
                ui::line(&format!(
                    "stopped following: campaign {id} is still being sent by pid {}",
                    pid.map_or_else(|| "?".to_owned(), |p: u32| p.to_string())
                ));
                return Ok(exit::INTERRUPTED);
            }
            () = tokio::time::sleep(POLL) => {}
        }
        match volley::runtime::status(campaign.settings()).await {
            Ok(report) => {
                counts = report.counts.clone();
                pid = report.live_from.or(pid);
                if report.live_from.is_none() || !report.active {
                    break;
                }
                if last_log.elapsed() >= Duration::from_secs(5) {
                    last_log = std::time::Instant::now();
                    tracing::info!(
                        campaign = id,
                        priority,
                        delivered = counts.delivered,
                        pending = counts.pending,
                        deferred = counts.deferred,
                        "progress (sent by pid {})",
                        pid.unwrap_or(0)
                    );
                }
            }
            Err(error) => {
                tracing::debug!(%error, "status unavailable; the owner may have finished");
                break;
            }
        }
    }
    let c = &counts;
    ui::line(&format!("campaign {id}: {}", list_summary(c)));
    ui::line(&format!(
        "  delivered {}  bounced {}  deferred {}  expired {}  suppressed {}  pending {}",
        c.delivered, c.bounced, c.deferred, c.expired, c.suppressed, c.pending
    ));
    if let Ok(report) = volley::runtime::status(campaign.settings()).await {
        if let Some(due) = report.next_due {
            ui::line(&format!(
                "  {} {} deferred; the next is due at {} (run `volley send` again then)",
                counted(report.counts.deferred, "recipient", "recipients"),
                agree(report.counts.deferred, "stays", "stay"),
                format_millis(due)
            ));
        }
    }
    Ok(
        if c.invalid + c.bounced + c.expired + c.deferred + c.pending + c.waiting > 0 {
            exit::FAILURES
        } else {
            exit::OK
        },
    )
}
