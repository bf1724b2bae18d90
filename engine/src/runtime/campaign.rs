//! A campaign prepared for sending: its settings, its messages ready to compose (see
//! `compose::CampaignMessages`), its bounce classifier and the policies for its outcomes.

use crate::bounce::Classifier;
use crate::campaign::{RecipientReader, SegmentFilter};
use crate::compose::{CampaignMessages, ComposeStage, Identity};
use crate::config::{CampaignSettings, RelayAuth, RelaySettings, TlsMode};
use crate::delivery::TokenCache;
use crate::model::{RetryPolicy, SuppressionPolicy};
use crate::smtp::{Credentials, Security, SessionConfig};
use crate::store::{OutcomePolicy, Store, TrackingMeta};
use crate::Error;
use std::sync::Arc;

/// A campaign checked and ready to send: settings, loaded DKIM keys and compiled templates.
pub struct Campaign {
    pub(super) settings: CampaignSettings,
    pub(super) messages: CampaignMessages,
    pub(super) classifier: Arc<Classifier>,
    /// `[campaign] where`, bound to the list's columns (`None`: every row is loaded).
    pub(super) segment: Option<SegmentFilter>,
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
        check_timezone_column(&settings, &columns)?;
        let segment = bind_segment(&settings, &columns)?;
        let messages = CampaignMessages::prepare(&settings, columns)?;
        let classifier = Arc::new(classifier_for(&settings)?);
        Ok(Campaign {
            settings,
            messages,
            classifier,
            segment,
        })
    }

    /// The transactional lane's campaign from its file (`[api] transactional`): the keys are
    /// loaded and the templates compiled as for any campaign, but the recipient list is
    /// not read (messages come one at a time, see `crate::transactional`).
    pub(crate) fn prepare_transactional(settings: CampaignSettings) -> Result<Campaign, Error> {
        if !settings.secrets_read {
            return Err(Error::ReadOnlySettings {
                file: settings.file.clone(),
            });
        }
        let messages = CampaignMessages::prepare_transactional(&settings)?;
        let classifier = Arc::new(classifier_for(&settings)?);
        Ok(Campaign {
            settings,
            messages,
            classifier,
            segment: None,
        })
    }

    /// The merge fields a transactional message's `data` must give (the templates' own).
    pub(crate) fn required_fields(&self) -> Vec<String> {
        self.messages.required_fields()
    }

    /// What the tracking server needs to know of this campaign, when it is tracked.
    pub fn tracking_meta(&self) -> Option<TrackingMeta> {
        self.messages.tracking().map(|t| TrackingMeta {
            links: t.links().to_vec(),
            key_fingerprint: t.key_fingerprint(),
        })
    }

    /// What the tracking server needs to show this campaign's messages in a browser, when it
    /// is tracked.
    pub fn view_meta(&self) -> Option<&crate::store::ViewMeta> {
        self.messages.view()
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
            topic: self.settings.topic.as_ref().map(|t| t.topic.clone()),
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

    /// The segment (`[campaign] where`) bound to the list's columns, if the campaign has one.
    pub(crate) fn segment(&self) -> Option<&SegmentFilter> {
        self.segment.as_ref()
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

    /// The SMTP session settings for the configured relay; an error when its source address
    /// is not on this host.
    pub fn relay_session(&self, record_transcript: bool) -> Result<(SessionConfig, usize), Error> {
        let relay = self.settings.relay.as_ref().ok_or_else(|| Error::NoRelay {
            file: self.settings.file.clone(),
        })?;
        self.session_for(relay, record_transcript)
    }

    /// The SMTP session settings for `relay` (one of the campaign's relays) and its
    /// connection count; an error when its source address is not on this host.
    pub(crate) fn session_for(
        &self,
        relay: &RelaySettings,
        record_transcript: bool,
    ) -> Result<(SessionConfig, usize), Error> {
        if let Some(address) = relay.source_address {
            crate::delivery::probe_source(address, "[relay] source_address")?;
        }
        let tls = super::plan::tls_trusting(relay.ca_file.as_deref())?;
        let credentials = match (&relay.username, &relay.password, &relay.auth) {
            (Some(username), Some(token), RelayAuth::XOAuth2 { .. }) => {
                Some(Credentials::xoauth2(username.clone(), token.clone()))
            }
            (Some(username), Some(password), _) => {
                Some(Credentials::password(username.clone(), password.clone()))
            }
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
            source: relay.source_address,
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

    /// The relay's access token cache, when it logs in with XOAUTH2 (`[relay] auth =
    /// "xoauth2"`): it starts from the token read when the campaign was loaded.
    pub(crate) fn relay_token(&self) -> Option<Arc<TokenCache>> {
        self.settings.relay.as_ref().and_then(token_for)
    }
}

/// `relay`'s access token cache, when it logs in with XOAUTH2: it starts from the token read
/// when the campaign was loaded.
pub(crate) fn token_for(relay: &RelaySettings) -> Option<Arc<TokenCache>> {
    {
        match (&relay.auth, &relay.password) {
            (RelayAuth::XOAuth2 { source, lifetime }, Some(token)) => Some(Arc::new(
                TokenCache::new(source.clone(), *lifetime, token.clone()),
            )),
            _ => None,
        }
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

/// Binds `[campaign] where` to the list's `columns`: an unknown column or a type error is
/// refused here, before anything is loaded, naming the file, the key and the position.
pub(crate) fn bind_segment(
    settings: &CampaignSettings,
    columns: &[String],
) -> Result<Option<SegmentFilter>, Error> {
    let Some(segment) = &settings.segment else {
        return Ok(None);
    };
    segment.bind(columns).map(Some).map_err(|source| {
        crate::config::ConfigError::Segment {
            file: settings.file.clone(),
            text: segment.text().to_owned(),
            source: Box::new(source),
        }
        .into()
    })
}

/// Refuses a `[schedule] timezone_column` that the recipient list does not have.
fn check_timezone_column(settings: &CampaignSettings, columns: &[String]) -> Result<(), Error> {
    let Some(column) = settings.window.as_ref().and_then(|w| w.column.as_ref()) else {
        return Ok(());
    };
    if columns.iter().any(|c| c.eq_ignore_ascii_case(column)) {
        return Ok(());
    }
    Err(crate::campaign::CampaignError::NoTimezoneColumn {
        path: settings.recipients.clone(),
        column: column.clone(),
        columns: columns.to_vec(),
    }
    .into())
}
