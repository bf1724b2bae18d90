//! `volley conversions import`: a shop's orders recorded against a campaign.

use crate::args::ConversionsImportArgs;
use crate::words::numbers::counted;
use crate::{exit, ui};
use anyhow::Context;

pub(crate) async fn import(args: ConversionsImportArgs) -> anyhow::Result<u8> {
    let viewed = crate::view::load(&args.campaign)?;
    let settings = viewed.settings.clone();
    let orders = args.orders.clone();
    let summary = tokio::task::spawn_blocking(move || {
        volley::runtime::conversions_import(&settings, &orders)
    })
    .await
    .context("the import task stopped")?
    .with_context(|| {
        format!(
            "importing {} into campaign {}",
            args.orders.display(),
            viewed.settings.id
        )
    })?;
    for error in &summary.errors {
        ui::warn_line(&format!("skipped {error}"));
    }
    for changed in &summary.changed {
        ui::warn_line(&format!("kept the first: {changed}"));
    }
    ui::line(&format!(
        "imported {} in {} ({} attributed, {} unattributed), {} already recorded, {} changed, {} skipped",
        counted(summary.added, "order", "orders"),
        summary.currency,
        summary.attributed,
        summary.added - summary.attributed,
        summary.duplicates,
        summary.changed.len(),
        counted(summary.errors.len() as u64, "row", "rows"),
    ));
    if summary.errors.is_empty() && summary.changed.is_empty() {
        Ok(exit::OK)
    } else {
        Ok(exit::FAILURES)
    }
}
