//! The campaign a reading command (`status`, `report`, `events`, `ab decide`) looks at: a
//! campaign file, or, on a PostgreSQL store, the id of a campaign published there, whose
//! settings come from its document (issue 19: one view from a machine with only the URL).

use crate::args::ViewArgs;
use anyhow::Context;
use std::path::Path;
use volley::config::CampaignSettings;

/// A campaign's settings for reading, and the folder its published document was written
/// into (removed when this is dropped).
pub(crate) struct Viewed {
    /// The settings.
    pub(crate) settings: CampaignSettings,
    /// What to call the campaign in messages: its file, or `campaign ID on STORE`.
    pub(crate) shown: String,
    _folder: Option<tempfile::TempDir>,
}

/// Whether `location` names a PostgreSQL database rather than a folder.
fn is_database(location: &Path) -> bool {
    volley::store::is_postgres_url(&location.to_string_lossy())
}

/// Whether `text` has a campaign id's form: 1 to 64 of `A-Z a-z 0-9 . _ -`.
fn is_campaign_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Loads the campaign `args` name: the file when it exists (or when the store is not a
/// database, or the argument cannot be an id), else the published campaign of that id.
pub(crate) fn load(args: &ViewArgs) -> anyhow::Result<Viewed> {
    let path = &args.campaign;
    let text = path.to_string_lossy();
    match args.store.as_deref() {
        Some(store) if !path.exists() && is_database(store) && is_campaign_id(&text) => {
            let folder = tempfile::Builder::new()
                .prefix("volley-view-")
                .tempdir()
                .context("making a temporary folder for the campaign's document")?;
            let settings = volley::runtime::published_for_reading(store, &text, folder.path())
                .with_context(|| {
                    format!(
                        "reading published campaign {text} (there is no file of that name here)"
                    )
                })?;
            Ok(Viewed {
                shown: format!("campaign {}", settings.id),
                settings,
                _folder: Some(folder),
            })
        }
        store => {
            let settings = volley::config::load_campaign_for_reading(path, store)
                .with_context(|| format!("loading campaign {}", path.display()))?;
            Ok(Viewed {
                settings,
                shown: path.display().to_string(),
                _folder: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_has_the_campaign_id_form() {
        assert!(is_campaign_id("spring-sale.2024_05"));
        assert!(!is_campaign_id(""));
        assert!(!is_campaign_id("dir/campaign.toml"));
        assert!(!is_campaign_id(&"x".repeat(65)));
    }
}
