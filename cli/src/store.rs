//! `volley store copy`: move a store's campaigns and store-wide records to another engine.

use crate::args::StoreCopyArgs;
use crate::exit;
use crate::ui;
use crate::words::numbers::counted;
use anyhow::Context;
use std::path::Path;
use std::time::Instant;
use volley::store::{Store, StoreError};

/// Whether `location` names a PostgreSQL database rather than a folder.
fn is_database(location: &Path) -> bool {
    let text = location.to_string_lossy();
    text.starts_with("postgresql://") || text.starts_with("postgres://")
}

/// Opens one side of the copy, saying which side failed and why in words a user acts on.
fn open(location: &Path, side: &str) -> anyhow::Result<Store> {
    if side == "source" && !is_database(location) && !location.is_dir() {
        anyhow::bail!(
            "the source store {} does not exist (give a store folder or a postgresql:// address)",
            location.display()
        );
    }
    Store::open(location).map_err(|error| match error {
        StoreError::Locked { path, .. } => anyhow::anyhow!(
            "the {side} store {} is held by another volley process (a send, serve or gc): \
             copy it once that has finished; nothing was copied",
            path.display()
        ),
        other => anyhow::Error::new(other).context(format!("opening the {side} store")),
    })
}

pub(crate) async fn copy(args: StoreCopyArgs) -> anyhow::Result<u8> {
    if args.from == args.to {
        anyhow::bail!("--from and --to name the same store: nothing to copy");
    }
    let started = Instant::now();
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let from = open(&args.from, "source")?;
        let to = open(&args.to, "target")?;
        volley::store::transfer::copy_store(&from, &to, args.campaign.as_deref())
            .context("copying the store")
    })
    .await
    .context("the copy stopped")??;
    let elapsed = started.elapsed();
    let mut recipients = 0;
    let mut events = 0;
    for campaign in &report.campaigns {
        let t = &campaign.tally;
        recipients += t.recipients;
        events += t.events();
        ui::line(&format!(
            "campaign {}: {}, {} ({}, {}, {})",
            campaign.id,
            counted(t.recipients, "recipient", "recipients"),
            counted(t.events(), "event", "events"),
            counted(t.attempts, "delivery outcome", "delivery outcomes"),
            counted(t.reports, "late report", "late reports"),
            counted(t.tracking, "tracking event", "tracking events"),
        ));
        if campaign.number_to != campaign.number_from {
            ui::line(&format!(
                "  note: its number changed from {} to {} (the target used it): late bounces \
                 to the VERP addresses of mail already sent will not find it",
                campaign.number_from, campaign.number_to
            ));
        }
    }
    ui::line(&format!(
        "copied {}, {}, {} and {} in {:.1} s",
        counted(report.campaigns.len() as u64, "campaign", "campaigns"),
        counted(recipients, "recipient", "recipients"),
        counted(events, "event", "events"),
        counted(
            report.suppressions as u64,
            "suppressed address",
            "suppressed addresses"
        ),
        elapsed.as_secs_f64()
    ));
    if report.documents > 0 {
        ui::line(&format!(
            "with {} (campaigns made over the API or published to a cluster, their files and state)",
            counted(report.documents as u64, "campaign document", "campaign documents")
        ));
    }
    if report.secret_kept {
        ui::line(
            "note: the target kept its own token secret (it had campaigns already): tracking \
             links and VERP addresses of mail already sent will not verify there",
        );
    }
    Ok(exit::OK)
}
