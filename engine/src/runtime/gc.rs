//! `volley gc`: removes the per-recipient data of finished campaigns whose events have been
//! exported, then, when this process can have the store to itself, rewrites the store so
//! that its files shrink (the embedded engine never returns freed space to the filesystem).
//!
//! A campaign is collected when every recipient is in a final state (nobody pending,
//! deferred or held), nothing sends it, and `volley events` has exported every event it has
//! (or `force`). While another process holds the store, that process collects on request and
//! the files shrink the next time `volley gc` runs with the store free.

use crate::control::{self, Request, Response};
use crate::model::variant_index;
use crate::report::History;
use crate::store::{
    Collected, GcLine, GcOptions, GcOutcome, GcReport, Store, StoreError, StoreLocation,
};
use crate::Error;
use std::path::{Path, PathBuf};

/// Collects the finished campaigns of the store at `location`: a sled folder directly when
/// it is free (and then rewrites it), through the process holding it otherwise; a database
/// directly, always (it has no folder to rewrite: its sizes are reported as zero).
pub async fn gc(location: &StoreLocation, options: GcOptions) -> Result<GcReport, Error> {
    let Some(store_dir) = location.folder() else {
        let store = Store::open_at(location)?;
        return super::blocking("gc task", move || {
            Ok(GcReport {
                campaigns: collect_campaigns(&store, &options, |_| false)?,
                bytes_before: 0,
                bytes_after: 0,
                compacted: false,
            })
        })
        .await?;
    };
    if !store_dir.exists() {
        return Err(Error::Io {
            path: store_dir.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no store here"),
        });
    }
    let bytes_before = disk_usage(store_dir);
    match Store::open(store_dir) {
        Ok(store) => {
            let dir = store_dir.to_owned();
            super::blocking("gc task", move || {
                let campaigns = collect_campaigns(&store, &options, |_| false)?;
                let any_collected = campaigns.iter().any(|line| {
                    matches!(
                        line.outcome,
                        GcOutcome::Collected { .. } | GcOutcome::AlreadyCollected
                    )
                });
                let compacted = any_collected && !options.dry_run;
                if compacted {
                    compact(store, &dir)?;
                } else {
                    drop(store);
                }
                Ok(GcReport {
                    campaigns,
                    bytes_before,
                    bytes_after: disk_usage(&dir),
                    compacted,
                })
            })
            .await?
        }
        Err(StoreError::Locked { .. }) => {
            match control::request(store_dir, &Request::Gc { options }).await? {
                Response::Collected { mut report } => {
                    report.bytes_before = bytes_before;
                    report.bytes_after = disk_usage(store_dir);
                    Ok(*report)
                }
                Response::Error { message } => Err(Error::Remote(message)),
                _ => Err(Error::Remote(
                    "unexpected answer to a gc request".to_owned(),
                )),
            }
        }
        Err(other) => Err(other.into()),
    }
}

/// Collects what `options` asks for in an open store; `sending` tells which campaigns a
/// running send is sending.
pub(crate) fn collect_campaigns(
    store: &Store,
    options: &GcOptions,
    sending: impl Fn(&str) -> bool,
) -> Result<Vec<GcLine>, Error> {
    for webhook in &options.forget_webhooks {
        if !options.dry_run && store.forget_webhook(webhook)? {
            tracing::info!(%webhook, "webhook forgotten: it no longer keeps any history");
        }
    }
    let all = store.campaigns()?;
    let chosen: Vec<String> = if options.campaigns.is_empty() {
        all
    } else {
        all.into_iter()
            .filter(|id| {
                options
                    .campaigns
                    .iter()
                    .any(|asked| asked == id || crate::recurring::is_edition_of(id, asked))
            })
            .collect()
    };
    if chosen.is_empty() && !options.campaigns.is_empty() {
        return Err(StoreError::UnknownCampaign {
            campaign: options.campaigns.join(", "),
            path: store.path().to_owned(),
        }
        .into());
    }
    let mut lines = Vec::with_capacity(chosen.len());
    for campaign in chosen {
        let outcome = collect_one(store, &campaign, options, sending(&campaign))?;
        lines.push(GcLine { campaign, outcome });
    }
    Ok(lines)
}

fn collect_one(
    store: &Store,
    campaign: &str,
    options: &GcOptions,
    sending: bool,
) -> Result<GcOutcome, Error> {
    let Some(counts) = store.counts(campaign)? else {
        // Still being loaded by a process that crashed; a send finishes the load.
        return Ok(GcOutcome::Unfinished { open: 0 });
    };
    if sending {
        return Ok(GcOutcome::Sending);
    }
    let open = counts.pending + counts.deferred + counts.held + counts.waiting;
    if open > 0 {
        return Ok(GcOutcome::Unfinished { open });
    }
    let last_event = store.last_event_at(campaign)?;
    let collected = store.is_collected(campaign)?;
    let Some(last_event) = last_event else {
        if collected {
            return Ok(GcOutcome::AlreadyCollected);
        }
        return finish(store, campaign, options);
    };
    let mark = store.export_mark(campaign)?;
    if !options.force && mark.is_none_or(|m| m.through < last_event) {
        return Ok(GcOutcome::NotExported {
            last_event,
            exported_through: mark.map(|m| m.through),
        });
    }
    // Even with --force: a webhook's events are not ours to drop (forget the webhook).
    if let Some(webhook) = crate::webhooks::first_behind(store, campaign)? {
        return Ok(GcOutcome::WebhookBehind {
            webhook,
            last_event,
        });
    }
    finish(store, campaign, options)
}

/// Archives the history and collects (or, in a dry run, only says so).
fn finish(store: &Store, campaign: &str, options: &GcOptions) -> Result<GcOutcome, Error> {
    if options.dry_run {
        return Ok(GcOutcome::Collected {
            removed: Collected::default(),
        });
    }
    let variants = store
        .variant_counts(campaign)?
        .iter()
        .map(|(stored, _)| usize::from(variant_index(*stored)) + 1)
        .max()
        .unwrap_or(1);
    let history = History::read(store, campaign, variants)?;
    let templated_links = store.tracking_meta(campaign)?.is_some_and(|meta| {
        meta.links
            .iter()
            .any(|link| link.contains("{{") || link.contains("{%"))
    });
    let removed = store.collect(campaign, &history, templated_links)?;
    tracing::info!(
        campaign,
        recipients = removed.recipients,
        keys = removed.keys_removed,
        "collected"
    );
    Ok(GcOutcome::Collected { removed })
}

/// Rewrites the store into a fresh copy and swaps the two folders in one atomic rename, so
/// a crash at any point leaves either the old store or the new one in place.
fn compact(store: Store, dir: &Path) -> Result<(), Error> {
    // Absolute, so that a store given as `.` still has a name and a parent folder.
    let dir = &std::path::absolute(dir).map_err(|source| Error::Io {
        path: dir.to_owned(),
        source,
    })?;
    let sibling = |suffix: &str| -> PathBuf {
        let mut name = dir.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        dir.with_file_name(name)
    };
    let copy = sibling(".gc-copy");
    let io = |path: &Path, source: std::io::Error| Error::Io {
        path: path.to_owned(),
        source,
    };
    if copy.exists() {
        // Left by an earlier gc that stopped before the swap.
        std::fs::remove_dir_all(&copy).map_err(|e| io(&copy, e))?;
    }
    store.copy_to(&copy)?;
    // Files that are not the engine's (none today besides a stale control socket) stay with
    // the store: carry everything but the engine's own files over.
    let mut foreign = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let name = entry.file_name();
        if !store.is_own_file(&name) && name != control::SOCKET_NAME {
            foreign.push(entry);
        }
    }
    drop(store);
    for entry in foreign {
        std::fs::rename(entry.path(), copy.join(entry.file_name()))
            .map_err(|e| io(&entry.path(), e))?;
    }
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        dir,
        rustix::fs::CWD,
        &copy,
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .map_err(|e| io(dir, e.into()))?;
    // `copy` now names the old store.
    std::fs::remove_dir_all(&copy).map_err(|e| io(&copy, e))?;
    Ok(())
}

/// The bytes the files under `dir` take.
fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_usage(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}
