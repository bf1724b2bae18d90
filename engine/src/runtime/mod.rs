//! The runtime wires the stages together for each command: it prepares a campaign (keys,
//! templates, list header), loads the list into the store once, runs the send pipeline and
//! answers status questions. It owns no protocol and no storage format of its own.

mod abtest;
mod bounces;
mod composers;
mod gc;
mod held;
mod host;
mod lists;
mod load;
mod oneoff;
mod pipeline;
mod plan;
mod report;
mod run;
mod serve;
mod status;
mod tracking;

pub use abtest::AbProgress;
pub use bounces::{
    receive_bounces, receiver_config, IngestReport, IngestSummary, Intake, StoreIngest,
};
pub use gc::gc;
pub use lists::{
    bounce_summary, open_store, suppress_add, suppress_export, suppress_import, suppress_remove,
    BounceSummary, ImportSummary,
};
pub use oneoff::{dry_run, render_row, test_send, DryRunReport, RenderedRow, TestSendReport};
pub use pipeline::{send, Phase, Progress, SendOptions, SendReport, DEFAULT_LINGER};
pub use report::report;
pub use serve::{Pass, ServeOptions, Server};
pub use status::{status, StatusReport};

use crate::bounce::Classifier;
use crate::campaign::RecipientReader;
use crate::compose::{
    links, template_variables, Composer, Mailbox, MessageSettings, TemplateSource, Templates,
};
use crate::config::{
    CampaignSettings, DkimSettings, KeySource, SmtpTimeouts, TlsMode, TrackingSettings,
};
use crate::dkim::{DkimError, DkimKey, Signer};
use crate::model::{RetryPolicy, SuppressionPolicy};
use crate::smtp::{Credentials, Security, SessionConfig, Timeouts};
use crate::store::TrackingMeta;
use crate::store::{OutcomePolicy, Store};
use crate::tracking::{Token, TokenKey, TokenKind};
use crate::Error;
use secrecy::ExposeSecret;
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
    match crate::schedule::due(&settings.id, schedule, now) {
        crate::schedule::Due::Edition(edition) => {
            settings.id = edition.id;
            Ok(())
        }
        crate::schedule::Due::Missed { edition, next } => Err(Error::NoEditionDue {
            campaign: settings.id.clone(),
            missed: Some(edition.id),
            next: next.map(rfc3339),
        }),
        crate::schedule::Due::Waiting { next } => Err(Error::NoEditionDue {
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
        .filter(|c| crate::schedule::is_edition_of(c, id))
        .max())
}

/// A campaign checked and ready to send: settings, loaded DKIM keys and compiled templates.
pub struct Campaign {
    settings: CampaignSettings,
    /// One composer per variant, by variant index (one for a campaign without variants).
    composers: Vec<Arc<Composer>>,
    columns: Vec<String>,
    classifier: Arc<Classifier>,
    tracking: Option<Arc<Tracking>>,
}

/// What a tracked campaign puts in each message: tokens signed with its key for the open
/// pixel, each rewritten link and the unsubscribe URL.
pub(crate) struct Tracking {
    key: TokenKey,
    base_url: String,
    links: Vec<String>,
    opens: bool,
    unsubscribe_mailto: Option<String>,
}

impl Tracking {
    /// The template fields and header fields of one recipient's message.
    pub(crate) fn fields(&self, campaign: u32, variant: u8, seq: u64) -> TrackedFields {
        let token = |kind, link| {
            self.key.encode(&Token {
                kind,
                campaign,
                variant,
                seq,
                link,
            })
        };
        let mut names = Vec::with_capacity(self.links.len() + 2);
        let mut values = Vec::with_capacity(self.links.len() + 2);
        for index in 0..self.links.len() {
            names.push(links::link_variable(index));
            let link = u16::try_from(index).unwrap_or(u16::MAX);
            values.push(format!(
                "{}/c/{}",
                self.base_url,
                token(TokenKind::Click, link)
            ));
        }
        if self.opens {
            names.push(links::OPEN_VARIABLE.to_owned());
            values.push(format!(
                "{}/o/{}.gif",
                self.base_url,
                token(TokenKind::Open, 0)
            ));
        }
        let unsubscribe = format!("{}/u/{}", self.base_url, token(TokenKind::Unsubscribe, 0));
        names.push(links::UNSUBSCRIBE_VARIABLE.to_owned());
        values.push(unsubscribe.clone());
        let list_unsubscribe = match &self.unsubscribe_mailto {
            Some(mailto) => format!("<{unsubscribe}>, <mailto:{mailto}?subject=unsubscribe>"),
            None => format!("<{unsubscribe}>"),
        };
        TrackedFields {
            names,
            values,
            headers: vec![
                ("List-Unsubscribe", list_unsubscribe),
                (
                    "List-Unsubscribe-Post",
                    "List-Unsubscribe=One-Click".to_owned(),
                ),
            ],
        }
    }
}

/// Composes one message of one variant with its tracking fields and headers, when the
/// campaign is tracked.
pub(crate) fn compose_tracked(
    composer: &Composer,
    columns: &[String],
    tracking: Option<&Tracking>,
    to: &str,
    values: &[String],
    (number, variant, seq): (u32, u8, u64),
    message_id_local: Option<&str>,
) -> Result<crate::compose::Composed, crate::compose::ComposeError> {
    let Some(tracking) = tracking else {
        return composer.compose_message(
            to,
            (columns, values, values.len()),
            &[],
            message_id_local,
        );
    };
    let fields = tracking.fields(number, variant, seq);
    let mut names = columns.to_vec();
    names.extend(fields.names);
    let mut all = values.to_vec();
    all.extend(fields.values);
    let headers: Vec<(&str, &str)> = fields
        .headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    composer.compose_message(to, (&names, &all, values.len()), &headers, message_id_local)
}

/// One message's tracking: template fields (names and values) and header fields.
pub(crate) struct TrackedFields {
    pub(crate) names: Vec<String>,
    pub(crate) values: Vec<String>,
    pub(crate) headers: Vec<(&'static str, String)>,
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
        let reader = RecipientReader::open(&settings.recipients)?;
        let columns = reader.columns().to_vec();
        let tracking = settings.tracking.as_ref().map(tracker);
        let mut links = Vec::new();
        let mut composers = Vec::new();
        for version in versions(&settings) {
            let (mut text, mut html) = (template(version.text), template(version.html));
            if let Some((tracking_settings, _)) = settings.tracking.as_ref().zip(tracking.as_ref())
            {
                track_templates(
                    tracking_settings,
                    &columns,
                    text.as_mut(),
                    html.as_mut(),
                    &mut links,
                );
            }
            let templates = Templates::new(version.subject, text, html)?;
            check_fields(&settings, &templates, &columns, tracking.is_some())?;
            let keys = settings
                .dkim
                .iter()
                .map(load_key)
                .collect::<Result<Vec<_>, _>>()?;
            let mut from = mailbox(&settings.from);
            if let Some(name) = version.from_name {
                from.name = Some(name.to_owned());
            }
            let message = MessageSettings {
                from,
                reply_to: settings.reply_to.as_ref().map(mailbox),
                extra_headers: vec![(
                    "Feedback-ID".to_owned(),
                    format!(
                        "{}:{}:volley:{}",
                        settings.id, version.id, settings.from.domain
                    ),
                )],
            };
            let signer = (!keys.is_empty()).then(|| Signer::new(keys));
            composers.push(Arc::new(Composer::new(templates, message, signer)));
        }
        let tracking = tracking.map(|mut t| {
            t.links = links;
            Arc::new(t)
        });
        let classifier = Arc::new(classifier_for(&settings)?);
        Ok(Campaign {
            settings,
            composers,
            columns,
            classifier,
            tracking,
        })
    }

    /// What the tracking server needs to know of this campaign, when it is tracked.
    pub fn tracking_meta(&self) -> Option<TrackingMeta> {
        self.tracking.as_ref().map(|t| TrackingMeta {
            links: t.links.clone(),
            key_fingerprint: t.key.fingerprint(),
        })
    }

    /// The tracked links, by index, as written in the templates (empty when untracked).
    pub fn tracked_links(&self) -> &[String] {
        self.tracking.as_ref().map_or(&[], |t| &t.links)
    }

    /// The composer of variant `variant` (the first one for an unknown index).
    pub(crate) fn composer(&self, variant: u8) -> &Arc<Composer> {
        // invariant: prepare() builds one composer per version, and there is always one
        self.composers
            .get(usize::from(variant))
            .unwrap_or(&self.composers[0])
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
            timeouts: smtp_timeouts(&self.settings.timeouts),
            pipelining: true,
            chunking: true,
            record_transcript,
        };
        Ok((config, relay.connections))
    }
}

/// The SMTP client's timeouts from the campaign's `[timeouts]`.
pub(crate) fn smtp_timeouts(t: &SmtpTimeouts) -> Timeouts {
    Timeouts {
        connect: t.connect,
        banner: t.banner,
        ehlo: t.ehlo,
        starttls: t.starttls,
        auth: t.auth,
        mail_from: t.mail_from,
        rcpt_to: t.rcpt_to,
        data: t.data,
        data_end: t.data_end,
        rset: t.rset,
        quit: t.quit,
    }
}

/// Loads the private key of one `[[dkim]]` entry, from its file or environment variable; a
/// key file that group or others may read is warned about (once per process).
pub(crate) fn load_key(entry: &DkimSettings) -> Result<DkimKey, DkimError> {
    match &entry.key {
        KeySource::File(path) => {
            let what = format!("dkim key {}._domainkey.{}", entry.selector, entry.domain);
            crate::config::warn_if_loose(&what, path);
            DkimKey::from_file(&entry.domain, &entry.selector, path)
        }
        KeySource::Env(var) => {
            let pem = std::env::var(var).unwrap_or_default();
            DkimKey::from_pem(
                &entry.domain,
                &entry.selector,
                &pem,
                &format!("environment variable {var}"),
            )
        }
    }
}

/// The tracking of a campaign with its key and URLs; its links are filled in as each
/// variant's templates are rewritten.
fn tracker(settings: &TrackingSettings) -> Tracking {
    Tracking {
        key: TokenKey::new(settings.key.expose_secret().as_bytes()),
        base_url: settings.base_url.clone(),
        links: Vec::new(),
        opens: settings.opens,
        unsubscribe_mailto: settings.unsubscribe_mailto.clone(),
    }
}

/// Rewrites one version's templates for tracking: links (when `clicks`; text links too with
/// `text_links`) become placeholders numbered after those already in `links` (one link table
/// for every variant), and the HTML gets the open pixel (when `opens`). A link is tracked
/// only when it uses nothing but the list's own fields.
fn track_templates(
    settings: &TrackingSettings,
    columns: &[String],
    text: Option<&mut TemplateSource>,
    html: Option<&mut TemplateSource>,
    links: &mut Vec<String>,
) {
    let trackable = |url: &str| {
        settings.clicks
            && template_variables(url).is_some_and(|vars| vars.iter().all(|v| columns.contains(v)))
    };
    if let Some(html) = html {
        let rewritten = links::rewrite_html(&html.source, links.len(), settings.opens, &trackable);
        html.source = rewritten.source;
        links.extend(rewritten.links);
    }
    if let Some(text) = text.filter(|_| settings.text_links) {
        let rewritten = links::rewrite_text(&text.source, links.len(), &trackable);
        text.source = rewritten.source;
        links.extend(rewritten.links);
    }
}

/// One version of a campaign's message: the campaign's own, or a variant's overrides on it.
struct Version<'a> {
    id: &'a str,
    subject: &'a str,
    from_name: Option<&'a str>,
    text: Option<&'a crate::config::TemplateFile>,
    html: Option<&'a crate::config::TemplateFile>,
}

/// The versions a campaign sends, by variant index.
fn versions(settings: &CampaignSettings) -> Vec<Version<'_>> {
    if settings.variants.is_empty() {
        return vec![Version {
            id: crate::config::MAIN_VARIANT,
            subject: &settings.subject,
            from_name: None,
            text: settings.text.as_ref(),
            html: settings.html.as_ref(),
        }];
    }
    settings
        .variants
        .iter()
        .map(|v| Version {
            id: &v.id,
            subject: v.subject.as_deref().unwrap_or(&settings.subject),
            from_name: v.from_name.as_deref(),
            text: v.text.as_ref().or(settings.text.as_ref()),
            html: v.html.as_ref().or(settings.html.as_ref()),
        })
        .collect()
}

/// A template file as the template engine takes it.
fn template(file: Option<&crate::config::TemplateFile>) -> Option<TemplateSource> {
    file.map(|t| TemplateSource {
        name: t.path.display().to_string(),
        source: t.source.clone(),
    })
}

/// Every merge field the templates use must be a column of the list (or a tracking field).
fn check_fields(
    settings: &CampaignSettings,
    templates: &Templates,
    columns: &[String],
    tracked: bool,
) -> Result<(), Error> {
    let provided = |name: &str| {
        tracked && (name.starts_with(links::PROVIDED_PREFIX) || name == links::UNSUBSCRIBE_VARIABLE)
    };
    let missing: Vec<String> = templates
        .variables()
        .into_iter()
        .filter(|name| !columns.iter().any(|c| c == name) && !provided(name))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::MissingFields {
        recipients: settings.recipients.clone(),
        missing,
        columns: columns.to_vec(),
    })
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
            jitter: settings.retry.jitter,
        },
        suppression: SuppressionPolicy {
            soft_limit: settings.bounces.soft_limit,
            soft_window: settings.bounces.soft_window,
            soft_min_span: settings.bounces.soft_min_span,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_timeout_defaults_are_the_smtp_client_defaults() {
        assert_eq!(smtp_timeouts(&SmtpTimeouts::default()), Timeouts::default());
    }
}
