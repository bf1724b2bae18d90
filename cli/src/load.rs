//! `volley load`: the list into the store now, sent later by `volley send`.

use crate::args::LoadArgs;
use crate::send::{edition_due, skipped};
use crate::words::numbers::{agree, counted, format_count, format_seconds, format_whole_rate};
use crate::{exit, ui};
use anyhow::Context;
use volley::runtime::{self, Campaign};

pub(crate) async fn run(args: LoadArgs) -> anyhow::Result<u8> {
    let path = &args.campaign.campaign;
    let mut settings = volley::config::load_campaign(path, args.campaign.store.as_deref())
        .with_context(|| format!("loading campaign {}", path.display()))?;
    if !edition_due(&mut settings)? {
        return Ok(exit::OK);
    }
    let campaign = Campaign::prepare(settings)
        .with_context(|| format!("preparing campaign {}", path.display()))?;
    let report = runtime::load(&campaign).await?;
    let c = &report.counts;
    if !report.loaded_now {
        ui::line(&format!(
            "campaign {}: the store has its list already ({}); nothing was read",
            campaign.id(),
            counted(c.total, "recipient", "recipients")
        ));
        return Ok(exit::OK);
    }
    for error in &report.row_errors {
        ui::warn_line(&format!("skipped {error}"));
    }
    let shown = report.row_errors.len() as u64;
    if c.invalid > shown {
        ui::warn_line(&format!(
            "{} more invalid {} skipped (see the log)",
            format_count(c.invalid - shown),
            agree(c.invalid - shown, "row was", "rows were")
        ));
    }
    let seconds = report.elapsed.as_secs_f64();
    let rows = c.total + c.invalid + c.duplicate + c.excluded;
    ui::line(&format!(
        "campaign {}: loaded {} ({}, {}{}, {} suppressed) in {} ({} rows/s); nothing was sent",
        campaign.id(),
        counted(c.total, "recipient", "recipients"),
        counted(c.invalid, "invalid row", "invalid rows"),
        skipped(c.duplicate),
        crate::send::excluded(c.excluded),
        format_count(c.suppressed),
        format_seconds(seconds, 1),
        format_whole_rate(rows as f64 / seconds.max(0.001)),
    ));
    Ok(exit::OK)
}
