//! The runtime wires the stages together for each command: it prepares a campaign (keys,
//! templates, list header), loads the list into the store once, runs the send pipeline and
//! answers status questions. It owns no protocol and no storage format of its own.

mod abtest;
mod bounces;
mod check;
mod gc;
mod held;
mod host;
mod load;
mod oneoff;
mod pipeline;
mod plan;
mod report;
mod run;
mod serve;
mod status;
mod suppress;
mod tracking;

pub use abtest::AbProgress;
pub use bounces::{
    bounce_summary, receive_bounces, receiver_config, BounceSummary, IngestReport, IngestSummary,
    Intake, StoreIngest,
};
pub use check::check;
pub use gc::gc;
pub use oneoff::{dry_run, render_row, test_send, DryRunReport, RenderedRow, TestSendReport};
pub use pipeline::{send, Phase, Progress, SendOptions, SendReport, DEFAULT_LINGER};
pub use report::report;
pub use serve::{Clock, ServeOptions, Server};
pub use status::{status, StatusReport};
pub use suppress::{
    open_store, suppress_add, suppress_export, suppress_import, suppress_remove, ImportSummary,
};

use crate::bounce::Classifier;
use crate::campaign::RecipientReader;
use crate::compose::{CampaignMessages, ComposeStage, Identity};
use crate::config::{CampaignSettings, TlsMode};
use crate::model::{RetryPolicy, SuppressionPolicy};
use crate::smtp::{Credentials, Security, SessionConfig};
use crate::store::{OutcomePolicy, Store, TrackingMeta};
use crate::Error;
use std::sync::Arc;

/// Turns a scheduled campaign's settings into those of its edition due at `now` (its id
/// becomes the edition's); one-off campaigns are left as they are.
pub fn apply_schedule(
    settings: &mut CampaignSettings,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Error> {
    let Some(schedule) = &settings.schedule else {
        return Ok(());
    };
    let rfc3339 =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match crate::recurring::due(&settings.id, schedule, now) {
        crate::recurring::Due::Edition(edition) => {
            settings.id = edition.id;
            Ok(())
        }
        crate::recurring::Due::Missed { edition, next } => Err(Error::NoEditionDue {
            campaign: settings.id.clone(),
            missed: Some(edition.id),
            next: next.map(rfc3339),
        }),
        crate::recurring::Due::Waiting { next } => Err(Error::NoEditionDue {
            campaign: settings.id.clone(),
            missed: None,
            next: next.map(rfc3339),
        }),
    }
}

/// The campaign `id` names in `store`: itself, or for a scheduled campaign its latest edition.
pub fn resolve_campaign(store: &Store, id: &str) -> Result<String, Error> {
    Ok(latest_edition(store, id)?.unwrap_or_else(|| id.to_owned()))
}

/// Writes the events of campaign `id` (resolved like [`resolve_campaign`]) since `since` into
/// `file` as JSON lines; returns the campaign exported and how many events.
pub(crate) fn export_events_to(
    store: &Store,
    id: &str,
    since: crate::model::Millis,
    file: &std::path::Path,
) -> Result<(String, u64), Error> {
    use std::io::Write as _;
    let campaign = resolve_campaign(store, id)?;
    let events = store.export_events(&campaign, since)?;
    let io = |source: std::io::Error| Error::Export {
        file: file.to_path_buf(),
        source,
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(file).map_err(io)?);
    let mut count = 0;
    for event in events {
        let line = serde_json::to_string(&event?).map_err(|e| io(std::io::Error::other(e)))?;
        out.write_all(line.as_bytes()).map_err(io)?;
        out.write_all(b"\n").map_err(io)?;
        count += 1;
    }
    out.flush().map_err(io)?;
    Ok((campaign, count))
}

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

/// The id of the latest edition of campaign `id` in `store`, when it has editions and `id`
/// itself is not a campaign there.
pub(crate) fn latest_edition(store: &Store, id: &str) -> Result<Option<String>, Error> {
    if store.counts(id)?.is_some() {
        return Ok(None);
    }
    Ok(store
        .campaigns()?
        .into_iter()
        .filter(|c| crate::recurring::is_edition_of(c, id))
        .max())
}

/// A campaign checked and ready to send: settings, loaded DKIM keys and compiled templates.
pub struct Campaign {
    settings: CampaignSettings,
    messages: CampaignMessages,
    classifier: Arc<Classifier>,
}

impl std::fmt::Debug for Campaign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Campaign")
            .field("id", &self.settings.id)
            .finish()
    }
}

impl Campaign {
    /// Loads the DKIM keys, compiles the templates and checks that the recipient list has
    /// every merge field the templates use. Nothing is sent and the store is not touched.
    pub fn prepare(settings: CampaignSettings) -> Result<Campaign, Error> {
        if !settings.secrets_read {
            return Err(Error::ReadOnlySettings {
                file: settings.file.clone(),
            });
        }
        let columns = RecipientReader::open(&settings.recipients)?
            .columns()
            .to_vec();
        let messages = CampaignMessages::prepare(&settings, columns)?;
        let classifier = Arc::new(classifier_for(&settings)?);
        Ok(Campaign {
            settings,
            messages,
            classifier,
        })
    }

    /// What the tracking server needs to know of this campaign, when it is tracked.
    pub fn tracking_meta(&self) -> Option<TrackingMeta> {
        self.messages.tracking().map(|t| TrackingMeta {
            links: t.links().to_vec(),
            key_fingerprint: t.key_fingerprint(),
        })
    }

    /// The tracked links, by index, as written in the templates (empty when untracked).
    pub fn tracked_links(&self) -> &[String] {
        self.messages.tracking().map_or(&[], |t| t.links())
    }

    /// The compose stage of this campaign, loaded into `store`.
    pub(crate) fn compose_stage(&self, store: &Store) -> Result<Arc<ComposeStage>, Error> {
        let number = store
            .campaign(self.id())?
            .map(|meta| meta.number)
            .ok_or_else(|| Error::NotLoaded {
                campaign: self.id().to_owned(),
                store: store.path().to_owned(),
            })?;
        let identity = Identity {
            number,
            secret: store.secret()?,
            from: self.settings.from.address.clone(),
            bounce_domain: self.settings.bounces.domain.clone(),
        };
        Ok(Arc::new(ComposeStage::new(
            self.messages.clone(),
            identity,
            store.clone(),
        )))
    }

    /// The index of variant `id`, or an error listing the campaign's variants.
    pub fn variant_index(&self, id: &str) -> Result<u8, Error> {
        let known = self.settings.variant_ids();
        known
            .iter()
            .position(|v| v == id)
            .and_then(|i| u8::try_from(i).ok())
            .ok_or_else(|| Error::UnknownVariant {
                file: self.settings.file.clone(),
                campaign: self.settings.id.clone(),
                variant: id.to_owned(),
                known,
            })
    }

    /// The campaign id.
    pub fn id(&self) -> &str {
        &self.settings.id
    }

    /// The validated settings.
    pub fn settings(&self) -> &CampaignSettings {
        &self.settings
    }

    /// The recipient list's columns (merge fields).
    pub fn columns(&self) -> &[String] {
        self.messages.columns()
    }

    /// The retry and suppression policies from `[retry]` and `[bounces]`.
    pub fn outcome_policy(&self) -> OutcomePolicy {
        outcome_policy(&self.settings)
    }

    /// The SMTP session settings for the configured relay.
    pub fn relay_session(&self, record_transcript: bool) -> Result<(SessionConfig, usize), Error> {
        let relay = self.settings.relay.as_ref().ok_or_else(|| Error::NoRelay {
            file: self.settings.file.clone(),
        })?;
        let tls = plan::tls_trusting(relay.ca_file.as_deref())?;
        let credentials = match (&relay.username, &relay.password) {
            (Some(username), Some(password)) => Some(Credentials {
                username: username.clone(),
                password: password.clone(),
            }),
            _ => None,
        };
        let security = match relay.tls {
            TlsMode::None => Security::None,
            TlsMode::StartTls => Security::StartTls,
            TlsMode::Tls => Security::Tls,
        };
        let config = SessionConfig {
            host: relay.host.clone(),
            address: None,
            port: relay.port,
            security,
            helo: relay.helo.clone(),
            credentials,
            // The configuration refuses clear-text AUTH except to this machine.
            allow_plain_auth: crate::config::is_loopback_host(&relay.host),
            tls,
            timeouts: self.settings.timeouts,
            pipelining: true,
            chunking: true,
            record_transcript,
        };
        Ok((config, relay.connections))
    }
}

/// The shipped classification rules, extended by `[bounces] rules_file` when set.
pub(crate) fn classifier_for(settings: &CampaignSettings) -> Result<Classifier, Error> {
    match &settings.bounces.rules_file {
        Some(path) => Ok(Classifier::with_rules_file(path)?),
        None => Ok(Classifier::builtin()),
    }
}

/// The retry and suppression policies a campaign's `[retry]` and `[bounces]` ask for.
pub(crate) fn outcome_policy(settings: &CampaignSettings) -> OutcomePolicy {
    OutcomePolicy {
        retry: RetryPolicy {
            schedule: settings.retry.schedule.clone(),
            expire_after: settings.retry.expire_after,
            jitter: settings.retry.jitter,
        },
        suppression: SuppressionPolicy {
            soft_limit: settings.bounces.soft_limit,
            soft_window: settings.bounces.soft_window,
            soft_min_span: settings.bounces.soft_min_span,
        },
    }
}
