//! `volley send`: load once, deliver, retry what falls due, report, exit with a code that says
//! how it went.

use crate::args::SendArgs;
use crate::words::numbers::{agree, counted, format_count, format_seconds, format_whole_rate};
use crate::words::verdict::reason_sentence;
use crate::{exit, ui};
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use volley::model::format_millis;
use volley::runtime::{self, Campaign, Phase, Progress, SendOptions, SendReport};

pub(crate) async fn run(args: SendArgs) -> anyhow::Result<u8> {
    let path = &args.campaign.campaign;
    let mut settings = volley::config::load_campaign(path, args.campaign.store.as_deref())
        .with_context(|| format!("loading campaign {}", path.display()))?;
    if args.dry_run.is_none() {
        if !edition_due(&mut settings)? {
            return Ok(exit::OK);
        }
        if settings.schedule.is_some() {
            ui::line(&format!("sending edition {}", settings.id));
        }
    }
    let campaign = Campaign::prepare(settings)
        .with_context(|| format!("preparing campaign {}", path.display()))?;
    if let Some(dir) = &args.dry_run {
        return dry_run(&campaign, dir);
    }
    let cancel = CancellationToken::new();
    tokio::spawn(cancel_on_signal(cancel.clone()));
    let (progress_tx, progress_rx) = tokio::sync::watch::channel(Progress {
        phase: Phase::Loading,
        counts: Default::default(),
    });
    let bar = tokio::spawn(show_progress(progress_rx, !args.no_progress));
    let options = SendOptions {
        cancel: cancel.clone(),
        progress: Some(Arc::new(progress_tx)),
        linger: args.linger.into(),
        ..SendOptions::default()
    };
    let result = runtime::send(&campaign, options).await;
    let _ = bar.await;
    let report = match result {
        Ok(report) => report,
        Err(volley::Error::Store(error))
            if matches!(*error, volley::store::StoreError::Locked { .. }) =>
        {
            return crate::handover::run(path, &campaign, cancel).await;
        }
        Err(volley::Error::AlreadySending { campaign, pid }) => {
            let by = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            ui::line(&format!(
                "campaign {campaign} is already being sent by volley{by}; nothing was done"
            ));
            return Ok(exit::ALREADY_SENDING);
        }
        Err(error) => {
            return Err(error).with_context(|| format!("sending campaign {}", campaign.id()))
        }
    };
    print_report(&report);
    Ok(exit_code(&report))
}

/// Waits for SIGINT or SIGTERM, then asks the send to stop cleanly.
pub(crate) async fn cancel_on_signal(cancel: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            ui::warn_line(
                "stopping: finishing transactions in flight and saving state (re-run to resume)",
            );
            cancel.cancel();
            return;
        }
    }
    if tokio::signal::ctrl_c().await.is_ok() {
        cancel.cancel();
    }
}

async fn show_progress(mut progress: tokio::sync::watch::Receiver<Progress>, enabled: bool) {
    let bar = ui::progress_bar(enabled);
    let mut last_log = std::time::Instant::now();
    loop {
        let snapshot = progress.borrow_and_update().clone();
        let counts = &snapshot.counts;
        let done = counts.finished() + counts.deferred + counts.waiting;
        if let Some(bar) = &bar {
            let message = match snapshot.phase {
                Phase::Loading => "loading".to_owned(),
                Phase::Sending | Phase::Done => format!(
                    "delivered {} bounced {} deferred {}",
                    counts.delivered, counts.bounced, counts.deferred
                ),
            };
            bar.set_message(message);
            bar.set_length(counts.total);
            bar.set_position(if snapshot.phase == Phase::Loading {
                0
            } else {
                done
            });
        } else if last_log.elapsed() >= Duration::from_secs(5) && snapshot.phase != Phase::Loading {
            last_log = std::time::Instant::now();
            tracing::info!(
                delivered = counts.delivered,
                bounced = counts.bounced,
                deferred = counts.deferred,
                pending = counts.pending,
                total = counts.total,
                "progress"
            );
        }
        if snapshot.phase == Phase::Done || progress.changed().await.is_err() {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

fn print_report(report: &SendReport) {
    for error in &report.row_errors {
        ui::warn_line(&format!("skipped {error}"));
    }
    let c = &report.counts;
    let shown = report.row_errors.len() as u64;
    if report.loaded_now && c.invalid > shown {
        ui::warn_line(&format!(
            "{} more invalid {} skipped (see the log)",
            format_count(c.invalid - shown),
            agree(c.invalid - shown, "row was", "rows were")
        ));
    }
    ui::line(&format!(
        "campaign {}: {}",
        report.campaign,
        list_summary(c)
    ));
    ui::line(&format!(
        "  delivered {}  bounced {}  deferred {}  expired {}  suppressed {}  pending {}{}",
        c.delivered,
        c.bounced,
        c.deferred,
        c.expired,
        c.suppressed,
        c.pending,
        if c.waiting > 0 {
            format!("  waiting {}", c.waiting)
        } else {
            String::new()
        }
    ));
    ui::line(&format!(
        "  this run: {} in {} ({} messages/s{})",
        counted(report.attempts, "attempt", "attempts"),
        format_seconds(report.elapsed.as_secs_f64(), 1),
        format_whole_rate(report.messages_per_second()),
        if report.idle.is_zero() {
            String::new()
        } else {
            format!(
                ", {} waiting for retries",
                format_seconds(report.idle.as_secs_f64(), 1)
            )
        }
    ));
    if !report.sources.is_empty() {
        let each: Vec<String> = report
            .sources
            .iter()
            .map(|s| format!("{} ({}) {}", s.address, s.helo, s.delivered))
            .collect();
        ui::line(&format!("  delivered from: {}", each.join(", ")));
    }
    if let Some(pause) = &report.paused {
        ui::line(&format!(
            "  paused: {} = {} reached; sending can go on at {} (run `volley send` again then)",
            pause.cap,
            pause.limit,
            format_millis(pause.resume_at)
        ));
    }
    if let Some(stop) = &report.stopped {
        ui::line(&crate::words::blocks::stop_line(stop));
    }
    for blocked in &report.blocked {
        if let Some(block) = &blocked.block {
            ui::line(&format!(
                "  destination {} is suspended until {} by a policy block: the receiver refused                  {} with \"{}\"; its recipients are deferred, not bounced (run `volley send`                  again then)",
                blocked.destination,
                format_millis(blocked.until),
                counted(block.replies, "message", "messages"),
                block.last_reply
            ));
            continue;
        }
        ui::line(&format!(
            "  destination {} is {} until {}; its recipients stay pending (run `volley send` again then)",
            blocked.destination,
            blocked.why,
            format_millis(blocked.until)
        ));
    }
    if let Some(due) = report.next_due.filter(|_| c.deferred > 0) {
        ui::line(&format!(
            "  {} {} deferred; the next is due at {} (run `volley send` again then)",
            counted(c.deferred, "recipient", "recipients"),
            agree(c.deferred, "stays", "stay"),
            format_millis(due)
        ));
    }
    if let Some(opens) = report.next_window {
        ui::line(&format!(
            "  {} {} for their sending window; the next opens at {} (run `volley send` again \
             then, keep `volley serve` running, or send with a --linger that reaches it)",
            counted(c.waiting, "recipient", "recipients"),
            agree(c.waiting, "waits", "wait"),
            format_millis(opens)
        ));
    }
    if let Some(line) = warmup_line(&report.warmup) {
        ui::line(&line);
    }
    if let Some(ab) = &report.ab {
        if let Some(line) = ab_line(ab) {
            ui::line(&line);
        }
    }
    if report.interrupted {
        ui::line("  interrupted: state saved; run the same command again to resume");
    }
}

/// The recipients left pending by used-up warm-up ceilings, per provider, in one line.
fn warmup_line(held: &[volley::dispatch::WarmupHeld]) -> Option<String> {
    let total: u64 = held.iter().map(|h| h.held).sum();
    let until = held.iter().map(|h| h.until).min()?;
    let each: Vec<String> = held
        .iter()
        .map(|h| format!("{} {} (ceiling {} reached)", h.provider, h.held, h.ceiling))
        .collect();
    Some(format!(
        "  {} {} for tomorrow's warm-up allowance: {}; the next day begins at {} (run \
         `volley send` again then)",
        counted(total, "recipient", "recipients"),
        agree(total, "waits", "wait"),
        each.join(", "),
        format_millis(until)
    ))
}

/// Where a test-then-winner campaign stands after this run, in one line.
pub(crate) fn ab_line(ab: &volley::runtime::AbProgress) -> Option<String> {
    if let Some((how, variant, reason)) = &ab.decision {
        let to = variant.as_deref().unwrap_or("the variants by weight");
        let when = if ab.decided_now {
            "decided now"
        } else {
            "decided"
        };
        Some(format!(
            "  A/B test {when} ({how}): the remainder goes to {to}. {}",
            reason_sentence(reason)
        ))
    } else if let Some(reason) = &ab.holding {
        let why = if matches!(reason, volley::ab::Reason::Vetoed { .. }) {
            "A/B test stopped by a guardrail veto and on_veto"
        } else {
            "A/B test inconclusive and on_inconclusive"
        };
        Some(format!(
            "  {why} = \"hold\": {} {} held. {}",
            counted(ab.held, "recipient", "recipients"),
            agree(ab.held, "stays", "stay"),
            reason_sentence(reason)
        ))
    } else {
        ab.decide_after.map(|at| format!(
            "  A/B test share sent; {} {} held for the winner, decided at {} (run `volley send` again then, or let `volley serve` do it)",
            counted(ab.held, "recipient", "recipients"),
            agree(ab.held, "is", "are"),
            format_millis(at)
        ))
    }
}

/// Picks the edition of a scheduled campaign due now (a plain campaign is always due); when
/// none is, says so and returns false.
pub(crate) fn edition_due(settings: &mut volley::config::CampaignSettings) -> anyhow::Result<bool> {
    match runtime::apply_schedule(settings, chrono::Utc::now()) {
        Ok(()) => Ok(true),
        Err(error @ volley::Error::NoEditionDue { .. }) => {
            ui::line(&error.to_string());
            Ok(false)
        }
        Err(error) => Err(error.into()),
    }
}

/// A campaign's list in a few words: `20 recipients (1 invalid row, 2 duplicates skipped)`,
/// with `, 5 excluded by where` when its segment left rows out.
pub(crate) fn list_summary(c: &volley::model::Counts) -> String {
    format!(
        "{} ({}, {}{})",
        counted(c.total, "recipient", "recipients"),
        counted(c.invalid, "invalid row", "invalid rows"),
        skipped(c.duplicate),
        excluded(c.excluded)
    )
}

/// `, 5 excluded by where` (rows the segment left out), or nothing when there are none.
pub(crate) fn excluded(rows: u64) -> String {
    if rows == 0 {
        return String::new();
    }
    format!(", {} excluded by where", format_count(rows))
}

/// Duplicates skipped: `1 duplicate skipped`.
pub(crate) fn skipped(duplicates: u64) -> String {
    format!("{} skipped", counted(duplicates, "duplicate", "duplicates"))
}

fn exit_code(report: &SendReport) -> u8 {
    let c = &report.counts;
    if report.stopped.is_some() {
        exit::FAILURES
    } else if report.interrupted {
        exit::INTERRUPTED
    } else if c.invalid + c.bounced + c.expired + c.deferred + c.pending + c.waiting > 0 {
        exit::FAILURES
    } else {
        exit::OK
    }
}

fn dry_run(campaign: &Campaign, dir: &std::path::Path) -> anyhow::Result<u8> {
    let report = runtime::dry_run(campaign, dir)
        .with_context(|| format!("writing messages to {}", dir.display()))?;
    for error in &report.row_errors {
        ui::warn_line(&format!("skipped {error}"));
    }
    ui::line(&format!(
        "dry run: wrote {} to {} ({}, {}{}); nothing was sent",
        counted(report.written as u64, "signed message", "signed messages"),
        report.dir.display(),
        counted(report.invalid as u64, "invalid row", "invalid rows"),
        skipped(report.duplicate as u64),
        excluded(report.excluded)
    ));
    Ok(if report.invalid > 0 {
        exit::FAILURES
    } else {
        exit::OK
    })
}
