//! `volley status`: counts by state, as a table or JSON.

use crate::args::StatusArgs;
use crate::ui;
use anyhow::Context;
use volley::model::format_millis;

pub(crate) async fn run(args: StatusArgs) -> anyhow::Result<u8> {
    let path = &args.campaign.campaign;
    let settings = volley::config::load_campaign(path, args.campaign.store.as_deref())
        .with_context(|| format!("loading campaign {}", path.display()))?;
    let report = volley::runtime::status(&settings).await?;
    let c = &report.counts;
    if args.json {
        let json = serde_json::json!({
            "campaign": report.campaign,
            "total": c.total,
            "pending": c.pending,
            "delivered": c.delivered,
            "deferred": c.deferred,
            "bounced": c.bounced,
            "expired": c.expired,
            "suppressed": c.suppressed,
            "invalid": c.invalid,
            "duplicate": c.duplicate,
            "next_attempt": report.next_due.map(format_millis),
            "running_pid": report.live_from,
        });
        ui::line(&serde_json::to_string_pretty(&json)?);
        return Ok(crate::exit::OK);
    }
    let live = report
        .live_from
        .map(|pid| format!(" (sending now, pid {pid})"))
        .unwrap_or_default();
    ui::line(&format!("campaign {}{live}", report.campaign));
    for (name, value) in [
        ("total", c.total),
        ("pending", c.pending),
        ("delivered", c.delivered),
        ("deferred", c.deferred),
        ("bounced", c.bounced),
        ("expired", c.expired),
        ("suppressed", c.suppressed),
        ("invalid rows", c.invalid),
        ("duplicates", c.duplicate),
    ] {
        ui::line(&format!("  {name:<13}{value:>10}"));
    }
    if let Some(due) = report.next_due {
        ui::line(&format!("  next retry due at {}", format_millis(due)));
    }
    Ok(crate::exit::OK)
}
