//! `volley bounces`: ingest, parse, listen, report.

use crate::args::BouncesCommand;
use crate::suppress::open_store;
use crate::words::numbers::counted;
use crate::{exit, ui};
use anyhow::Context;
use tokio_util::sync::CancellationToken;
use volley::bounce::receiver::ReceiverConfig;
use volley::bounce::{Classifier, ReportKind};
use volley::runtime::{self, IngestSummary, Intake};

pub(crate) async fn run(command: BouncesCommand) -> anyhow::Result<u8> {
    match command {
        BouncesCommand::Parse { files, json } => parse(&files, json),
        BouncesCommand::Ingest { store, paths } => {
            let (store, settings) = open_store(&store)?;
            let intake = Intake::open(&store, settings.as_ref())?;
            // Parsing and sled writes block: off the async runtime.
            let summary =
                tokio::task::spawn_blocking(move || intake.ingest_paths(&paths)).await??;
            print_summary(&summary);
            Ok(if summary.unmatched.is_empty() {
                exit::OK
            } else {
                exit::FAILURES
            })
        }
        BouncesCommand::Listen {
            store,
            bind,
            seconds,
            limits,
        } => listen(&store, bind, seconds, &limits).await,
        BouncesCommand::Report {
            campaign,
            store,
            json,
        } => {
            let settings = volley::config::load_campaign_for_reading(&campaign, store.as_deref())
                .with_context(|| format!("loading campaign {}", campaign.display()))?;
            let store = runtime::open_store(&settings.store)?;
            let summary = runtime::bounce_summary(&store, &settings.id)?;
            if json {
                ui::line(&serde_json::to_string_pretty(&summary)?);
            } else {
                print_report(&summary);
            }
            Ok(exit::OK)
        }
    }
}

fn parse(files: &[std::path::PathBuf], json: bool) -> anyhow::Result<u8> {
    let classifier = Classifier::builtin();
    for file in files {
        for message in volley::bounce::read_messages(file)? {
            let report = volley::bounce::parse_message(&message.bytes, &classifier);
            if json {
                let mut value = serde_json::to_value(&report)?;
                if let Some(object) = value.as_object_mut() {
                    object.insert(
                        "file".into(),
                        serde_json::Value::String(message.source.clone()),
                    );
                }
                ui::line(&serde_json::to_string(&value)?);
                continue;
            }
            let kind = match report.kind {
                ReportKind::Dsn => "DSN",
                ReportKind::NonStandard => "non-standard bounce",
                ReportKind::Complaint => "complaint",
                ReportKind::NotABounce => "not a bounce",
            };
            ui::line(&format!("{}: {kind}", message.source));
            for r in &report.recipients {
                ui::line(&format!(
                    "  {} {} {} {} ({}) {}",
                    r.address,
                    format!("{:?}", r.action).to_lowercase(),
                    r.status.as_deref().unwrap_or("-"),
                    r.category,
                    if r.hard { "hard" } else { "soft" },
                    r.diagnostic.as_deref().unwrap_or("")
                ));
            }
        }
    }
    Ok(exit::OK)
}

fn print_summary(summary: &IngestSummary) {
    for line in &summary.matched {
        ui::line(line);
    }
    for line in &summary.unmatched {
        ui::warn_line(&format!("unmatched: {line}"));
    }
    ui::line(&format!(
        "{}: {} bounced, {} delayed, {}, {} already known, {} unmatched, {} not bounces, {} ingested before",
        counted(summary.messages, "message", "messages"),
        summary.bounced,
        summary.delayed,
        counted(summary.complaints, "complaint", "complaints"),
        summary.unchanged,
        summary.unmatched.len() as u64 - summary.not_bounces,
        summary.not_bounces,
        summary.already_ingested
    ));
}

fn print_report(summary: &runtime::BounceSummary) {
    ui::line(&format!(
        "campaign {}: {} bounced ({} hard, {} soft), {}, {}",
        summary.campaign,
        summary.bounced,
        summary.hard,
        summary.soft,
        counted(summary.delayed, "delay", "delays"),
        counted(summary.complaints, "complaint", "complaints")
    ));
    if !summary.by_category.is_empty() {
        ui::line("by reason:");
        for (category, n) in &summary.by_category {
            ui::line(&format!("  {:<20}{n:>8}", category.as_str()));
        }
    }
    if !summary.by_domain.is_empty() {
        ui::line("by domain (top 10):");
        for (domain, n) in summary.by_domain.iter().take(10) {
            ui::line(&format!("  {domain:<30}{n:>8}"));
        }
    }
}

/// Runs the bounce receiver for the bounce domain's MX and ingests what arrives (spooled
/// first, ingested on a thread of its own) until interrupted or `seconds` pass.
/// The spool folder: `--spool`, else `bounce-spool` in the store's local folder (the sled
/// folder, or a PostgreSQL store's `[store] local_dir`).
fn spool(
    args: &crate::args::StoreArgs,
    settings: Option<&volley::config::CampaignSettings>,
    limits: &crate::args::ListenArgs,
) -> anyhow::Result<std::path::PathBuf> {
    if let Some(spool) = &limits.spool {
        return Ok(spool.clone());
    }
    let location = match (settings, &args.store) {
        (Some(settings), _) => settings.store.clone(),
        (None, Some(path)) => volley::store::StoreLocation::parse(path),
        (None, None) => anyhow::bail!("name a store with --store or --campaign"),
    };
    match location.local_dir() {
        Some(dir) => Ok(dir.join("bounce-spool")),
        None => anyhow::bail!(
            "the store {location} is a database, with no local folder for the bounce spool: \
             give --spool DIR (or --campaign FILE: its [store] local_dir is used)"
        ),
    }
}

async fn listen(
    args: &crate::args::StoreArgs,
    bind: std::net::SocketAddr,
    seconds: Option<u64>,
    limits: &crate::args::ListenArgs,
) -> anyhow::Result<u8> {
    let (store, settings) = open_store(args)?;
    let tls = match (&limits.tls_cert, &limits.tls_key) {
        (Some(cert), Some(key)) => Some(volley::bounce::receiver::tls::server_config(cert, key)?),
        _ => None,
    };
    let config = ReceiverConfig {
        max_message_size: limits.max_message_size,
        max_recipients: limits.max_recipients,
        max_connections: limits.max_connections,
        max_connections_per_ip: limits.max_connections_per_ip,
        command_timeout: limits.command_timeout.into(),
        data_block_timeout: limits.data_block_timeout.into(),
        session_timeout: limits.session_timeout.into(),
        spool: spool(args, settings.as_ref(), limits)?,
        tls,
        ..ReceiverConfig::default()
    };
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("listening on {bind}"))?;
    let cancel = CancellationToken::new();
    let receiver = runtime::receive_bounces(
        listener,
        config,
        &store,
        settings.as_ref(),
        Some(Box::new(print_summary)),
        cancel.clone(),
    )?;
    ui::line(&format!("receiving bounces on {}", receiver.addr()));
    crate::until_stopped(seconds).await;
    cancel.cancel();
    receiver.stopped().await;
    store.flush().await?;
    Ok(exit::OK)
}
