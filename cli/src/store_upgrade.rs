//! `volley store upgrade DIR`: rewrite a store made by an older volley in this version's
//! format, keeping the old one beside it.

use crate::ui;
use crate::words::numbers::counted;
use std::path::Path;

pub(crate) fn run(dir: &Path) -> anyhow::Result<u8> {
    let upgraded = volley::store::upgrade_store(dir)?;
    if upgraded.already {
        ui::line(&format!(
            "store {} is already in this version's format: nothing to do",
            dir.display()
        ));
        return Ok(0);
    }
    ui::line(&format!(
        "store {} upgraded: {}, {} rewritten",
        dir.display(),
        counted(upgraded.campaigns as u64, "campaign", "campaigns"),
        counted(upgraded.recipients as u64, "recipient", "recipients")
    ));
    if let Some(old) = &upgraded.old {
        ui::line(&format!(
            "the old store is kept in {} (remove it once the new one has served you well)",
            old.display()
        ));
    }
    Ok(0)
}
