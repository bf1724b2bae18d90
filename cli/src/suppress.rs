//! `volley suppress`: the suppression list by hand.

use crate::args::{StoreArgs, SuppressCommand};
use crate::words::numbers::counted;
use crate::{exit, ui};
use anyhow::Context;
use volley::runtime;

/// Opens the store a command names (through its campaign file or directly).
pub(crate) fn open_store(
    args: &StoreArgs,
) -> anyhow::Result<(
    volley::store::Store,
    Option<volley::config::CampaignSettings>,
)> {
    let settings = match &args.campaign {
        Some(path) => Some(
            volley::config::load_campaign_for_reading(path, args.store.as_deref())
                .with_context(|| format!("loading campaign {}", path.display()))?,
        ),
        None => None,
    };
    let location = match (&settings, &args.store) {
        (Some(settings), _) => settings.store.clone(),
        (None, Some(path)) => volley::store::StoreLocation::parse(path),
        (None, None) => {
            anyhow::bail!("name a store with --store DIR (or postgresql://…) or --campaign FILE")
        }
    };
    let store = runtime::open_store(&location)?;
    Ok((store, settings))
}

/// `--topic` must be a topic id.
fn check_topic(topic: Option<&str>) -> anyhow::Result<()> {
    match topic {
        Some(topic) if !volley::store::is_topic_id(topic) => anyhow::bail!(
            "--topic {topic:?}: a topic id is 1 to 64 of a-z 0-9 _ -, starting with a letter or digit"
        ),
        _ => Ok(()),
    }
}

/// " for topic T", or nothing for a global entry.
fn scope(topic: Option<&str>) -> String {
    topic.map(|t| format!(" for topic {t}")).unwrap_or_default()
}

pub(crate) fn run(command: SuppressCommand) -> anyhow::Result<u8> {
    match command {
        SuppressCommand::List { store } | SuppressCommand::Export { store, out: None } => {
            let (store, _) = open_store(&store)?;
            let mut stdout = std::io::stdout().lock();
            runtime::suppress_export(&store, &mut stdout)?;
        }
        SuppressCommand::Export {
            store,
            out: Some(path),
        } => {
            let (store, _) = open_store(&store)?;
            let mut file = std::fs::File::create(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            let n = runtime::suppress_export(&store, &mut file)?;
            ui::line(&format!(
                "exported {} to {}",
                counted(n as u64, "suppressed address", "suppressed addresses"),
                path.display()
            ));
        }
        SuppressCommand::Add {
            store,
            address,
            topic,
            note,
        } => {
            check_topic(topic.as_deref())?;
            let (store, _) = open_store(&store)?;
            let added = runtime::suppress_add(&store, &address, topic.as_deref(), &note)?;
            let scope = scope(topic.as_deref());
            ui::line(&if added {
                format!("{address} suppressed{scope}")
            } else {
                format!("{address} was already suppressed{scope}")
            });
        }
        SuppressCommand::Remove {
            store,
            address,
            topic,
        } => {
            check_topic(topic.as_deref())?;
            let (store, _) = open_store(&store)?;
            let removed = runtime::suppress_remove(&store, &address, topic.as_deref())?;
            let scope = scope(topic.as_deref());
            ui::line(&if removed {
                format!("{address} removed from the suppression list{scope}")
            } else {
                format!("{address} was not suppressed{scope}")
            });
            if !removed {
                return Ok(exit::FAILURES);
            }
        }
        SuppressCommand::Import { store, file } => {
            let (store, _) = open_store(&store)?;
            let summary = runtime::suppress_import(&store, &file)?;
            for error in &summary.errors {
                ui::warn_line(&format!("skipped {error}"));
            }
            ui::line(&format!(
                "imported {} ({} already suppressed, {} skipped)",
                counted(summary.added as u64, "address", "addresses"),
                summary.already,
                counted(summary.errors.len() as u64, "row", "rows")
            ));
            if !summary.errors.is_empty() {
                return Ok(exit::FAILURES);
            }
        }
    }
    Ok(exit::OK)
}
