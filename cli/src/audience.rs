//! `volley audience`: the list's rows and what the segment and each `[audience]` rule leave
//! out, as a table
//! or JSON, before sending.

use crate::args::AudienceArgs;
use crate::words::numbers::format_count;
use crate::{exit, ui};
use anyhow::Context;
use volley::model::now_millis;
use volley::store::StoreError;

pub(crate) async fn run(args: AudienceArgs) -> anyhow::Result<u8> {
    let path = &args.campaign.campaign;
    let settings = volley::config::load_campaign_for_reading(path, args.campaign.store.as_deref())
        .with_context(|| format!("loading campaign {}", path.display()))?;
    let report = match volley::runtime::audience(&settings, now_millis()).await {
        Err(volley::Error::Store(error)) if matches!(*error, StoreError::Locked { .. }) => {
            return Err(anyhow::Error::new(volley::Error::Store(error)).context(
                "volley audience reads the store itself: run it when the send holding the store is done",
            ))
        }
        other => other?,
    };
    if args.json {
        let segment = report.segment_removed.map(|removed| {
            serde_json::json!({
                "rule": "where",
                "removed": removed,
                "remaining": report.rows - removed,
            })
        });
        let rules: Vec<_> = segment
            .into_iter()
            .chain(report.rules.iter().map(|t| {
                serde_json::json!({
                    "rule": t.rule.key(),
                    "removed": t.removed,
                    "remaining": t.remaining,
                })
            }))
            .collect();
        let json = serde_json::json!({
            "campaign": report.campaign,
            "rows": report.rows,
            "rules": rules,
            "remaining": report.remaining(),
        });
        ui::line(&serde_json::to_string_pretty(&json)?);
        return Ok(exit::OK);
    }
    ui::line(&format!("campaign {}", report.campaign));
    ui::line(&format!(
        "  {:<20}{:>12}",
        "list rows",
        format_count(report.rows)
    ));
    if let Some(removed) = report.segment_removed {
        ui::line(&format!(
            "  {:<20}{:>12} removed{:>12} remain",
            "where",
            format_count(removed),
            format_count(report.rows - removed)
        ));
    }
    if report.rules.is_empty() {
        ui::line("  no [audience] rules");
    }
    for t in &report.rules {
        ui::line(&format!(
            "  {:<20}{:>12} removed{:>12} remain",
            t.rule.key(),
            format_count(t.removed),
            format_count(t.remaining)
        ));
    }
    ui::line("  (suppressed addresses are left out as well when the list is loaded)");
    Ok(exit::OK)
}
