//! `volley test-send`: one message to one address, with the SMTP transcript.

use crate::args::TestSendArgs;
use crate::{exit, ui};
use anyhow::Context;
use volley::runtime::{self, Campaign};

pub(crate) async fn run(args: TestSendArgs) -> anyhow::Result<u8> {
    let path = &args.campaign.campaign;
    let settings = volley::config::load_campaign(path, args.campaign.store.as_deref())
        .with_context(|| format!("loading campaign {}", path.display()))?;
    let campaign = Campaign::prepare(settings)
        .with_context(|| format!("preparing campaign {}", path.display()))?;
    let report = runtime::test_send(&campaign, &args.to, args.row, args.variant.as_deref())
        .await
        .with_context(|| format!("test-sending to {}", args.to))?;
    for line in &report.transcript {
        ui::line(line);
    }
    let verdict = if report.accepted {
        "accepted"
    } else {
        "NOT accepted"
    };
    ui::line(&format!(
        "test message to {} (fields of list line {}) {verdict}: {}",
        report.to, report.line, report.reply
    ));
    Ok(if report.accepted {
        exit::OK
    } else {
        exit::FAILURES
    })
}
