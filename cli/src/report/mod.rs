//! `volley report`: a campaign's report as a terminal table, JSON, tidy CSV or one
//! self-contained HTML page with charts.

/// Appends formatted text to a `String`; writing to a `String` cannot fail.
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

mod charts;
mod csv;
mod html;
mod money;
pub(crate) mod text;
pub(crate) mod words;

#[cfg(test)]
mod chromium;
#[cfg(test)]
mod golden;
#[cfg(test)]
mod tests;

use crate::args::{ReportArgs, ReportFormat};
use crate::exit;
use anyhow::Context;
use volley::report::Report;

pub(crate) async fn run(args: ReportArgs) -> anyhow::Result<u8> {
    let viewed = crate::view::load(&args.campaign)?;
    let settings = &viewed.settings;
    let report = volley::runtime::report(settings, args.top)
        .await
        .with_context(|| format!("reading the report of campaign {}", settings.id))?;
    let rendered = render(&report, args.format)?;
    match &args.out {
        Some(file) => {
            std::fs::write(file, rendered)
                .with_context(|| format!("writing the report to {}", file.display()))?;
            crate::ui::line(&format!(
                "report of {} written to {}",
                report.campaign,
                file.display()
            ));
        }
        None => crate::ui::line(rendered.trim_end_matches('\n')),
    }
    Ok(exit::OK)
}

/// The report in `format`.
pub(crate) fn render(report: &Report, format: ReportFormat) -> anyhow::Result<String> {
    Ok(match format {
        ReportFormat::Table => text::table(report),
        ReportFormat::Json => {
            let mut json =
                serde_json::to_string_pretty(&crate::words::json::ReportJson::new(report))
                    .context("encoding the report")?;
            json.push('\n');
            json
        }
        ReportFormat::Csv => csv::csv(report),
        ReportFormat::Html => html::html(report)?,
    })
}
