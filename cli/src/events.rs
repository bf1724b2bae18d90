//! `volley events`: a campaign's history, one event per line (JSON lines or CSV), streamed
//! from the store for loading into a warehouse.

use crate::args::{EventsArgs, EventsFormat};
use crate::exit;
use anyhow::Context;
use std::io::Write;
use volley::model::now_millis;
use volley::report::EventRow;
use volley::store::ExportEvent;

pub(crate) async fn run(args: EventsArgs) -> anyhow::Result<u8> {
    let since = match &args.since {
        Some(value) => volley::config::parse_since("--since", value, now_millis())?,
        None => 0,
    };
    let viewed = crate::view::load(&args.campaign)?;
    let settings = &viewed.settings;
    let asked = match &args.edition {
        Some(edition) if volley::recurring::is_edition_of(edition, &settings.id) => edition.clone(),
        Some(edition) => anyhow::bail!(
            "--edition {edition}: not an edition of campaign {} (editions are named {}.<date>)",
            settings.id,
            settings.id
        ),
        None => settings.id.clone(),
    };
    let (campaign, events, store) = match volley::store::Store::open_at(&settings.store) {
        Ok(store) => {
            let campaign = volley::runtime::resolve_campaign(&store, &asked)?;
            let events: Events = Box::new(
                store
                    .export_events(&campaign, since)?
                    .map(|e| e.map_err(anyhow::Error::from)),
            );
            if store.is_collected(&campaign)? {
                tracing::warn!(
                    campaign = %campaign,
                    "the campaign was collected by volley gc: only events since then are left"
                );
            }
            (campaign, events, Some(store))
        }
        Err(volley::store::StoreError::Locked { .. }) => {
            let (campaign, events) = from_owner(&settings.store.shown(), &asked, since).await?;
            (campaign, events, None)
        }
        Err(error) => return Err(error.into()),
    };
    let out: Box<dyn Write> = match &args.out {
        Some(file) => Box::new(
            std::fs::File::create(file).with_context(|| format!("creating {}", file.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let out = std::io::BufWriter::new(out);
    let written = match args.format {
        EventsFormat::Jsonl => write_jsonl(out, &campaign, &settings.variant_ids(), events),
        EventsFormat::Csv => write_csv(out, &campaign, &settings.variant_ids(), events),
    };
    let target = args
        .out
        .as_ref()
        .map_or_else(|| "standard output".to_owned(), |p| p.display().to_string());
    let last = written.with_context(|| format!("writing events to {target}"))?;
    if let Some(through) = last {
        mark_exported(store, &settings.store.shown(), &campaign, since, through).await?;
    }
    Ok(exit::OK)
}

/// Notes in the store that the events were exported (what `volley gc` waits for), in the
/// store itself or through the process holding it.
async fn mark_exported(
    store: Option<volley::store::Store>,
    store_dir: &std::path::Path,
    campaign: &str,
    since: u64,
    through: u64,
) -> anyhow::Result<()> {
    if let Some(store) = store {
        store.mark_exported(campaign, since, through, now_millis())?;
        store.flush().await?;
        return Ok(());
    }
    let request = volley::control::Request::MarkExported {
        campaign: campaign.to_owned(),
        since,
        through,
    };
    match volley::control::request(store_dir, &request).await? {
        volley::control::Response::Marked => Ok(()),
        volley::control::Response::Error { message } => {
            anyhow::bail!("the process holding the store could not note the export: {message}")
        }
        _ => anyhow::bail!("unexpected answer from the process holding the store"),
    }
}

type Events = Box<dyn Iterator<Item = anyhow::Result<ExportEvent>>>;

/// Asks the process that holds the store (a send, `volley serve`, a tracking server) to write
/// the events into a temporary file, and reads them back from it.
async fn from_owner(
    store: &std::path::Path,
    campaign: &str,
    since: u64,
) -> anyhow::Result<(String, Events)> {
    let file = std::env::temp_dir().join(format!("volley-events-{}.jsonl", std::process::id()));
    let reply = volley::control::request(
        store,
        &volley::control::Request::Export {
            campaign: campaign.to_owned(),
            since,
            file: file.clone(),
        },
    )
    .await
    .with_context(|| {
        format!(
            "the store {} is in use and its owner does not answer",
            store.display()
        )
    })?;
    let campaign = match reply {
        volley::control::Response::Exported { campaign, .. } => campaign,
        volley::control::Response::Error { message } => {
            let _ = std::fs::remove_file(&file);
            anyhow::bail!("the process holding the store could not export: {message}")
        }
        _ => anyhow::bail!("unexpected answer from the process holding the store"),
    };
    let opened = std::fs::File::open(&file).with_context(|| format!("reading {}", file.display()));
    let _ = std::fs::remove_file(&file);
    let lines = std::io::BufRead::lines(std::io::BufReader::new(opened?));
    let events: Events = Box::new(lines.map(|line| {
        let line = line?;
        Ok(serde_json::from_str::<ExportEvent>(&line)?)
    }));
    Ok((campaign, events))
}

/// Writes the events as JSON lines; returns the time of the last one.
fn write_jsonl(
    mut out: impl Write,
    campaign: &str,
    variants: &[String],
    events: Events,
) -> anyhow::Result<Option<u64>> {
    let mut last = None;
    for event in events {
        let event = event?;
        serde_json::to_writer(&mut out, &EventRow::new(campaign, variants, &event))?;
        out.write_all(b"\n")?;
        last = Some(event.at);
    }
    out.flush()?;
    Ok(last)
}

/// Writes the events as CSV with a header; returns the time of the last one.
fn write_csv(
    out: impl Write,
    campaign: &str,
    variants: &[String],
    events: Events,
) -> anyhow::Result<Option<u64>> {
    let mut last = None;
    // The header is written by hand (not from the first row) so an empty history has one too.
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    writer.write_record([
        "at",
        "campaign",
        "variant",
        "recipient",
        "event",
        "machine",
        "link",
        "url",
        "code",
        "enhanced",
        "reply",
        "category",
    ])?;
    for event in events {
        let event = event?;
        writer.serialize(EventRow::new(campaign, variants, &event))?;
        last = Some(event.at);
    }
    writer.flush()?;
    Ok(last)
}
