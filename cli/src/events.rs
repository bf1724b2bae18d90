//! `volley events`: a campaign's history, one event per line (JSON lines or CSV), streamed
//! from the store for loading into a warehouse.

use crate::args::{EventsArgs, EventsFormat};
use crate::exit;
use anyhow::Context;
use serde::Serialize;
use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};
use volley::model::now_millis;
use volley::store::ExportEvent;

/// One output line. Field order is the CSV column order.
#[derive(Serialize)]
struct Row<'a> {
    at: String,
    campaign: &'a str,
    variant: String,
    recipient: &'a str,
    event: &'static str,
    machine: Option<&'static str>,
    link: Option<u16>,
    url: Option<&'a str>,
    code: Option<u16>,
    enhanced: Option<&'a str>,
    reply: Option<&'a str>,
    category: Option<&'static str>,
}

impl<'a> Row<'a> {
    fn new(campaign: &'a str, event: &'a ExportEvent) -> Self {
        let reply = event.reply.as_ref();
        Row {
            at: humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(event.at))
                .to_string(),
            campaign,
            variant: event.variant.map(|v| v.to_string()).unwrap_or_default(),
            recipient: &event.recipient,
            event: event.kind.as_str(),
            machine: event.machine.map(|m| m.as_str()),
            link: event.link,
            url: event.url.as_deref(),
            code: reply.and_then(|r| r.code),
            enhanced: reply.and_then(|r| r.enhanced.as_deref()),
            reply: reply.map(|r| r.text.as_str()),
            category: reply.and_then(|r| r.category).map(|c| c.as_str()),
        }
    }
}

pub(crate) fn run(args: EventsArgs) -> anyhow::Result<u8> {
    let path = &args.campaign.campaign;
    let since = match &args.since {
        Some(value) => volley::config::parse_since("--since", value, now_millis())?,
        None => 0,
    };
    let settings = volley::config::load_campaign_for_reading(path, args.campaign.store.as_deref())
        .with_context(|| format!("loading campaign {}", path.display()))?;
    let store = volley::runtime::open_store(&settings.store)?;
    let events = store.export_events(&settings.id, since)?;
    let out: Box<dyn Write> = match &args.out {
        Some(file) => Box::new(
            std::fs::File::create(file).with_context(|| format!("creating {}", file.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let out = std::io::BufWriter::new(out);
    let written = match args.format {
        EventsFormat::Jsonl => write_jsonl(out, &settings.id, events),
        EventsFormat::Csv => write_csv(out, &settings.id, events),
    };
    let target = args
        .out
        .as_ref()
        .map_or_else(|| "standard output".to_owned(), |p| p.display().to_string());
    written.with_context(|| format!("writing events to {target}"))?;
    Ok(exit::OK)
}

type Events = volley::store::ExportEvents;

fn write_jsonl(mut out: impl Write, campaign: &str, events: Events) -> anyhow::Result<()> {
    for event in events {
        let event = event?;
        serde_json::to_writer(&mut out, &Row::new(campaign, &event))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

fn write_csv(out: impl Write, campaign: &str, events: Events) -> anyhow::Result<()> {
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
        writer.serialize(Row::new(campaign, &event))?;
    }
    writer.flush()?;
    Ok(())
}
