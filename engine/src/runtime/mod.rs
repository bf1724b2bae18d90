//! The runtime wires the stages together for each command, one module per command (`send`
//! in `pipeline` and `run`, `serve`, `check`, `status`, `report`, `gc`, `suppress`, `bounces`,
//! `events`, and `test-send`/`--dry-run` in `oneoff`): it prepares a campaign, loads the list
//! into the store once, runs the send pipeline and answers status questions. It owns no
//! protocol, no storage format and no message format of its own, and nothing imports it.

mod abtest;
mod audience;
mod bounces;
mod campaign;
mod check;
mod cluster_docs;
mod cluster_send;
mod conversions;
mod editions;
mod events;
mod gc;
mod held;
mod host;
mod load;
mod load_only;
mod oneoff;
mod pipeline;
mod plan;
mod published;
mod relay_share;
mod report;
mod run;
mod send_lock;
mod serve;
mod status;
mod stop;
mod suppress;
mod tracking;

pub use abtest::AbProgress;
pub use audience::{audience, AudienceReport, RuleTally};
pub use bounces::{
    bounce_summary, receive_bounces, receiver_config, BounceSummary, IngestReport, IngestSummary,
    Intake, StoreIngest,
};
pub use campaign::Campaign;
pub use check::check;
pub use conversions::{conversions_import, ConversionImport};
pub use editions::{apply_schedule, resolve_campaign};
pub use gc::gc;
pub use load_only::{load, LoadReport};
pub use oneoff::{dry_run, render_row, test_send, DryRunReport, RenderedRow, TestSendReport};
pub use pipeline::{send, Phase, Progress, SendOptions, SendReport, DEFAULT_LINGER};
pub use published::published_for_reading;
pub use report::report;
pub use serve::{register_postbacks, MetricsSource, Pass, ServeOptions, Server};
pub use status::{status, warmup_status, StatusReport, WarmupStatus};
pub use suppress::{
    open_store, suppress_add, suppress_export, suppress_import, suppress_remove, ImportSummary,
};

pub(crate) use campaign::{classifier_for, outcome_policy};
pub(crate) use editions::latest_edition;
pub(crate) use events::export_events_to;

use crate::Error;

/// Runs `work` on tokio's blocking pool (store scans, list loading); a panic in it comes
/// back as an error naming `what`.
pub(crate) async fn blocking<R: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Io {
            path: what.into(),
            source: std::io::Error::other(e.to_string()),
        })
}
