//! `volley check`: the preflight table (pass/warn/fail rows from `volley::preflight`) and its
//! exit code.

use crate::args::CheckArgs;
use crate::words::numbers::counted;
use crate::{exit, ui};
use volley::preflight::{Options, Status};

pub(crate) async fn run(args: CheckArgs) -> anyhow::Result<u8> {
    let options = Options {
        store: args.campaign.store.clone(),
        sending_ip: args.sending_ip,
    };
    let checks = volley::runtime::check(&args.campaign.campaign, &options).await;
    let failed = checks.iter().any(|c| c.status == Status::Fail);
    if args.json {
        let rows: Vec<_> = checks
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "status": c.status.as_str(),
                    "detail": c.detail,
                })
            })
            .collect();
        ui::line(&serde_json::json!({ "ok": !failed, "checks": rows }).to_string());
    } else {
        let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for check in &checks {
            ui::line(&format!(
                "{:<4}  {:<width$}  {}",
                check.status.as_str().to_uppercase(),
                check.name,
                check.detail
            ));
        }
        let count = |status| checks.iter().filter(|c| c.status == status).count();
        ui::line(&format!(
            "{} passed, {}, {} failed",
            count(Status::Pass),
            counted(count(Status::Warn) as u64, "warning", "warnings"),
            count(Status::Fail)
        ));
    }
    Ok(if failed { exit::FAILURES } else { exit::OK })
}
