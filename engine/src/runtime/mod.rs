//! The runtime wires the stages together for each command: it prepares a campaign (keys,
//! templates, list header), loads the list into the store once, runs the send pipeline and
//! answers status questions. It owns no protocol and no storage format of its own.

mod bounces;
mod composers;
mod lists;
mod load;
mod oneoff;
mod pipeline;
mod plan;
mod run;
mod status;

pub use bounces::{IngestSummary, Intake};
pub use lists::{
    bounce_summary, open_store, suppress_add, suppress_export, suppress_import, suppress_remove,
    BounceSummary, ImportSummary,
};
pub use oneoff::{dry_run, render_row, test_send, DryRunReport, RenderedRow, TestSendReport};
pub use pipeline::{send, Phase, Progress, SendOptions, SendReport, DEFAULT_LINGER};
pub use status::{status, StatusReport};

use crate::bounce::Classifier;
use crate::campaign::RecipientReader;
use crate::compose::{Composer, Mailbox, MessageSettings, TemplateSource, Templates};
use crate::config::{CampaignSettings, KeySource, TlsMode};
use crate::dkim::{DkimKey, Signer};
use crate::model::{RetryPolicy, SuppressionPolicy};
use crate::smtp::{self, Credentials, Security, SessionConfig, Timeouts};
use crate::store::OutcomePolicy;
use crate::Error;
use std::sync::Arc;

/// A campaign checked and ready to send: settings, loaded DKIM keys and compiled templates.
pub struct Campaign {
    settings: CampaignSettings,
    composer: Arc<Composer>,
    columns: Vec<String>,
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
        let keys = settings
            .dkim
            .iter()
            .map(|entry| match &entry.key {
                KeySource::File(path) => DkimKey::from_file(&entry.domain, &entry.selector, path),
                KeySource::Env(var) => {
                    let pem = std::env::var(var).unwrap_or_default();
                    DkimKey::from_pem(
                        &entry.domain,
                        &entry.selector,
                        &pem,
                        &format!("environment variable {var}"),
                    )
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let template = |file: &Option<crate::config::TemplateFile>| {
            file.as_ref().map(|t| TemplateSource {
                name: t.path.display().to_string(),
                source: t.source.clone(),
            })
        };
        let templates = Templates::new(
            &settings.subject,
            template(&settings.text),
            template(&settings.html),
        )?;
        let reader = RecipientReader::open(&settings.recipients)?;
        let columns = reader.columns().to_vec();
        let missing: Vec<String> = templates
            .variables()
            .into_iter()
            .filter(|name| !columns.contains(name))
            .collect();
        if !missing.is_empty() {
            return Err(Error::MissingFields {
                recipients: settings.recipients.clone(),
                missing,
                columns,
            });
        }
        let message = MessageSettings {
            from: mailbox(&settings.from),
            reply_to: settings.reply_to.as_ref().map(mailbox),
            extra_headers: Vec::new(),
        };
        let signer = (!keys.is_empty()).then(|| Signer::new(keys));
        let composer = Arc::new(Composer::new(templates, message, signer));
        let classifier = Arc::new(classifier_for(&settings)?);
        Ok(Campaign {
            settings,
            composer,
            columns,
            classifier,
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
        &self.columns
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
        let extra_ca = match &relay.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?),
            None => None,
        };
        let tls = smtp::tls_client_config(extra_ca.as_deref())?;
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
            tls,
            timeouts: Timeouts::default(),
            pipelining: true,
            chunking: true,
            record_transcript,
        };
        Ok((config, relay.connections))
    }
}

fn mailbox(address: &crate::config::Address) -> Mailbox {
    Mailbox {
        name: address.name.clone(),
        address: address.address.clone(),
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
        },
        suppression: SuppressionPolicy {
            soft_limit: settings.bounces.soft_limit,
            soft_window: settings.bounces.soft_window,
        },
    }
}
