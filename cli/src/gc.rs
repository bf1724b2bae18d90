//! `volley gc`: collect finished, exported campaigns and shrink the store.

use crate::args::GcArgs;
use crate::exit;
use crate::words::numbers::{counted, format_bytes};
use anyhow::Context;
use std::time::{Duration, UNIX_EPOCH};
use volley::store::{GcOptions, GcOutcome, GcReport};

pub(crate) async fn run(args: GcArgs) -> anyhow::Result<u8> {
    let (store, campaigns) = match &args.campaign {
        Some(path) => {
            let settings = volley::config::load_campaign_for_reading(path, args.store.as_deref())
                .with_context(|| format!("loading campaign {}", path.display()))?;
            (settings.store, vec![settings.id])
        }
        None => match &args.store {
            Some(store) => (volley::store::StoreLocation::parse(store), Vec::new()),
            None => anyhow::bail!("give a campaign file or --store DIR"),
        },
    };
    let options = GcOptions {
        campaigns,
        force: args.force,
        dry_run: args.dry_run,
        forget_webhooks: args.forget_webhook.clone(),
    };
    let report = volley::runtime::gc(&store, options)
        .await
        .with_context(|| format!("collecting in the store {store}"))?;
    if args.json {
        crate::ui::line(&serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report, args.dry_run, &store);
    }
    Ok(exit::OK)
}

fn print_table(report: &GcReport, dry_run: bool, store: &volley::store::StoreLocation) {
    let width = report
        .campaigns
        .iter()
        .map(|line| line.campaign.len())
        .max()
        .unwrap_or(8)
        .max(8);
    crate::ui::line(&format!("{:<width$}  result", "campaign"));
    for line in &report.campaigns {
        crate::ui::line(&format!(
            "{:<width$}  {}",
            line.campaign,
            describe(&line.outcome, dry_run)
        ));
    }
    if report.campaigns.is_empty() {
        crate::ui::line("(no campaigns in the store)");
    }
    if store.is_postgres() {
        // No folder to rewrite: the database reuses the space of deleted rows itself
        // (autovacuum); `VACUUM FULL` is the administrator's tool to return it to the disk.
        crate::ui::line(&format!(
            "store {store}: a PostgreSQL database, no folder to rewrite (its autovacuum reuses the space)"
        ));
        return;
    }
    let shrink = if report.compacted {
        "rewritten"
    } else if dry_run {
        "dry run, nothing changed"
    } else {
        "not rewritten"
    };
    crate::ui::line(&format!(
        "store {store}: {} → {} ({shrink})",
        format_bytes(report.bytes_before),
        format_bytes(report.bytes_after)
    ));
}

fn describe(outcome: &GcOutcome, dry_run: bool) -> String {
    match outcome {
        GcOutcome::Collected { .. } if dry_run => "would be collected".to_owned(),
        GcOutcome::Collected { removed } => format!(
            "collected: {} packed, {} removed",
            counted(removed.recipients, "recipient", "recipients"),
            counted(removed.keys_removed, "key", "keys")
        ),
        GcOutcome::AlreadyCollected => "collected earlier, nothing new".to_owned(),
        GcOutcome::Unfinished { open } => format!(
            "kept: {} still to send (pending, deferred or held)",
            counted(*open, "recipient", "recipients")
        ),
        GcOutcome::NotExported {
            last_event,
            exported_through,
        } => format!(
            "kept: events up to {} not exported{}; run volley events first (or --force)",
            time(*last_event),
            exported_through
                .map(|t| format!(" (exported through {})", time(t)))
                .unwrap_or_default()
        ),
        GcOutcome::Sending => "kept: being sent".to_owned(),
        GcOutcome::WebhookBehind {
            webhook,
            last_event,
        } => format!(
            "kept: webhook {webhook} has not had every event up to {} acknowledged yet \
             (remove it with volley gc --forget-webhook {webhook} if it is gone for good)",
            time(*last_event)
        ),
    }
}

fn time(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}
