//! Campaign control over the API, the server's side (`crate::api::control` is the HTTP
//! side): a new campaign is checked as `volley check` loads it and published as a document
//! in state `paused`; its list is loaded as `volley load` loads it; start and resume make
//! the document `active` (the server's next look sends it), pause and cancel make it
//! `paused` or `cancelled` and take it out of the running send, answering once nothing of it
//! is in flight. Cancel then records every unsent recipient (pending, deferred, or held for
//! an A/B verdict) as `cancelled`, with the reason `cancelled over the API`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::super::host::Host;
use super::super::Campaign;
use crate::api::control::{
    Action, CampaignControl, CampaignState, ControlFuture, InvalidRow, ListLoaded, NewCampaign,
};
use crate::api::problem::internal;
use crate::api::Problem;
use crate::cluster::{CampaignDocument, DocumentFile};
use crate::config::{load_campaign_in, ConfigError};
use crate::model::{now_millis, Outcome, ReplyRecord};
use crate::store::{DocumentRecord, DocumentState, OutcomeUpdate, Store, StoreLocation};

mod keys;

/// How long pause and cancel wait for the campaign's messages in flight.
const SETTLE_WAIT: Duration = Duration::from_secs(60);
/// The reason a cancelled campaign's unsent recipients are recorded with.
pub(crate) const CANCELLED: &str = "cancelled over the API";

/// When each campaign was last handed to the host (the server's; cleared on start/resume).
pub(super) type Launched = Arc<Mutex<HashMap<String, LastLaunch>>>;

/// One campaign's last hand-over to the host.
#[derive(Debug, Clone, Copy)]
pub(super) struct LastLaunch {
    /// When, on the machine's monotonic clock.
    pub(super) at: tokio::time::Instant,
    /// The cluster node's grant generation then (0 off a cluster).
    pub(super) grants: u64,
    /// When, on the server's clock.
    pub(super) clock: chrono::DateTime<chrono::Utc>,
}

/// The server's campaign control.
pub(super) struct ServeControl {
    pub(super) store: Store,
    pub(super) location: StoreLocation,
    pub(super) host: Arc<Host>,
    pub(super) launched: Launched,
    pub(super) wake: Arc<tokio::sync::Notify>,
    /// One list load (or state change) at a time.
    pub(super) busy: tokio::sync::Mutex<()>,
}

/// A folder of its own under the system's temporary folder, gone when dropped.
struct Staging(PathBuf);

impl Staging {
    fn new() -> Result<Staging, Problem> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "volley-api-campaign-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).map_err(|e| internal("making a staging folder", &e))?;
        Ok(Staging(path))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A store failure as a problem.
fn store_problem(what: &'static str) -> impl Fn(crate::store::StoreError) -> Problem {
    move |e| internal(what, &e)
}

/// A campaign file that does not load, as a problem naming its key (the staging path is
/// shown as `campaign`).
fn config_problem(error: &ConfigError, file: &Path) -> Problem {
    let detail = error
        .to_string()
        .replace(&file.display().to_string(), "campaign");
    let detail = file
        .parent()
        .map_or(detail.clone(), |folder| hide(&detail, folder));
    let key = match error {
        ConfigError::OutOfRange { key, .. }
        | ConfigError::BadValue { key, .. }
        | ConfigError::Empty { key, .. }
        | ConfigError::BadAddress { key, .. }
        | ConfigError::BadDuration { key, .. }
        | ConfigError::WeakKey { key, .. }
        | ConfigError::Misplaced { key, .. }
        | ConfigError::Conflict { key, .. }
        | ConfigError::Missing { key, .. }
        | ConfigError::EnvVar { key, .. }
        | ConfigError::FileRead { key, .. }
        | ConfigError::DuplicateDkim { key, .. } => key.clone(),
        _ => "campaign".to_owned(),
    };
    Problem::bad_field(key, detail)
}

/// `text` without the staging folder's path (file names stay).
fn hide(text: &str, folder: &Path) -> String {
    text.replace(&format!("{}/", folder.display()), "")
}

impl ServeControl {
    /// See [`CampaignControl::create`], on a blocking thread.
    fn create_now(&self, request: &NewCampaign) -> Result<String, Problem> {
        keys::check_files(&request.files)?;
        let list = keys::check_keys(&request.campaign, &request.files)?;
        let staging = Staging::new()?;
        let write = |name: &str, body: &[u8]| {
            std::fs::write(staging.0.join(name), body)
                .map_err(|e| internal("writing a campaign file", &e))
        };
        for file in &request.files {
            write(&file.name, file.content.as_bytes())?;
        }
        let list_later = list.filter(|l| !request.files.iter().any(|f| f.name == *l));
        if let Some(list) = &list_later {
            // The list comes later (PUT …/list): until then the campaign names an empty one,
            // and its templates are checked against the list's header then.
            write(list, b"")?;
        }
        let file = staging.0.join("campaign.toml");
        write("campaign.toml", request.campaign.as_bytes())?;
        let settings =
            load_campaign_in(&file, &self.location).map_err(|e| config_problem(&e, &file))?;
        if list_later.is_none() {
            Campaign::prepare(settings.clone())
                .map_err(|e| Problem::bad_field("campaign", hide(&e.to_string(), &staging.0)))?;
        }
        let id = settings.id.clone();
        let documents = self.documents()?;
        let taken = documents
            .document(&id)
            .map_err(store_problem("reading the campaign documents"))?
            .is_some()
            || self
                .store
                .campaign(&id)
                .map_err(store_problem("reading the campaigns"))?
                .is_some();
        if taken {
            return Err(Problem::conflict(format!("campaign {id} exists already"))
                .field("campaign.id", format!("{id} is taken")));
        }
        let (document, files) = CampaignDocument::build(&settings, &request.campaign)
            .map_err(|e| Problem::bad_field("campaign", e.to_string()))?;
        let record = DocumentRecord {
            id: id.clone(),
            document: document.to_json(),
            state: DocumentState::Paused,
            published_at: 0,
            published_by: "api".to_owned(),
        };
        let files: Vec<(String, Vec<u8>)> = files.into_iter().map(|f| (f.name, f.body)).collect();
        documents
            .publish_document(&record, &files)
            .map_err(store_problem("publishing the campaign"))?;
        tracing::info!(campaign = %id, "campaign created over the API (paused)");
        Ok(id)
    }

    fn documents(&self) -> Result<&dyn crate::store::CampaignDocuments, Problem> {
        self.store
            .documents()
            .ok_or_else(|| Problem::unavailable("this store keeps no campaign documents"))
    }

    /// The document `id`, or 404.
    fn document(&self, id: &str) -> Result<DocumentRecord, Problem> {
        self.documents()?
            .document(id)
            .map_err(store_problem("reading the campaign documents"))?
            .ok_or_else(|| Problem::not_found(format!("no campaign {id} created over the API")))
    }

    /// The campaign of document `record`, materialised under `staging` with its list at
    /// `list` (when given), loaded and prepared as the server would send it.
    fn campaign_of(
        &self,
        record: &DocumentRecord,
        staging: &Path,
        list: Option<&Path>,
    ) -> Result<Campaign, Problem> {
        let document = CampaignDocument::from_json(&record.id, &record.document)
            .map_err(|e| internal("reading a campaign document", &e))?;
        let files: Vec<DocumentFile> = self
            .documents()?
            .document_files(&record.id)
            .map_err(store_problem("reading a campaign's files"))?
            .into_iter()
            .map(|(name, body)| DocumentFile { name, body })
            .collect();
        let file = crate::cluster::materialise(&document, &files, staging)
            .map_err(|e| internal("materialising a campaign", &e))?;
        let mut settings = load_campaign_in(&file, &self.location).map_err(|e| {
            Problem::conflict(format!("campaign {} no longer loads: {e}", record.id))
        })?;
        if let Some(list) = list {
            settings.recipients = list.to_owned();
        }
        Campaign::prepare(settings)
            .map_err(|e| Problem::bad_field("list", hide(&e.to_string(), staging)))
    }

    /// Puts the header line of the list at `list` in document `record` (its nodes, and this
    /// server, prepare the campaign with it); the state stays.
    fn publish_header(&self, record: &DocumentRecord, list: &Path) -> Result<(), Problem> {
        use std::io::{BufRead as _, Read as _};
        let mut header = Vec::new();
        let file = std::fs::File::open(list).map_err(|e| internal("reading the list", &e))?;
        std::io::BufReader::new(file)
            .take(64 * 1024)
            .read_until(b'\n', &mut header)
            .map_err(|e| internal("reading the list", &e))?;
        let mut document = CampaignDocument::from_json(&record.id, &record.document)
            .map_err(|e| internal("reading a campaign document", &e))?;
        let documents = self.documents()?;
        let mut files: Vec<DocumentFile> = documents
            .document_files(&record.id)
            .map_err(store_problem("reading a campaign's files"))?
            .into_iter()
            .map(|(name, body)| DocumentFile { name, body })
            .collect();
        if !document.set_list_header(&mut files, header) {
            return Ok(());
        }
        let record = DocumentRecord {
            document: document.to_json(),
            ..record.clone()
        };
        let files: Vec<(String, Vec<u8>)> = files.into_iter().map(|f| (f.name, f.body)).collect();
        documents
            .publish_document(&record, &files)
            .map_err(store_problem("publishing the campaign"))?;
        Ok(())
    }

    /// Whether campaign `id`'s list is loaded.
    fn loaded(&self, id: &str) -> Result<bool, Problem> {
        Ok(self
            .store
            .campaign(id)
            .map_err(store_problem("reading the campaigns"))?
            .is_some_and(|meta| meta.loaded))
    }

    /// Where campaign `id` stands.
    fn state_of(&self, id: &str) -> Result<CampaignState, Problem> {
        let record = self.document(id)?;
        Ok(CampaignState {
            id: id.to_owned(),
            state: record.state.as_str().to_owned(),
            counts: self
                .store
                .counts(id)
                .map_err(store_problem("reading the counters"))?,
        })
    }

    /// Loads the list of `id` from `list`.
    async fn load_list_now(&self, id: &str, list: &Path) -> Result<ListLoaded, Problem> {
        let _busy = self.busy.lock().await;
        let record = self.document(id)?;
        if record.state != DocumentState::Paused || self.loaded(id)? {
            return Err(Problem::conflict(format!(
                "campaign {id} has its list already (one list per campaign)"
            )));
        }
        let staging = Staging::new()?;
        let campaign = self.campaign_of(&record, &staging.0, Some(list))?;
        self.publish_header(&record, list)?;
        let (_, errors) = super::super::pipeline::load_once(&campaign, &self.store, None)
            .await
            .map_err(|e| Problem::bad_field("list", e.to_string()))?;
        self.store
            .flush()
            .await
            .map_err(store_problem("making the list durable"))?;
        let counts = self
            .store
            .counts(id)
            .map_err(store_problem("reading the counters"))?
            .unwrap_or_default();
        tracing::info!(campaign = %id, accepted = counts.total, invalid = counts.invalid, "list loaded over the API");
        Ok(ListLoaded {
            id: id.to_owned(),
            accepted: counts.total,
            invalid: counts.invalid,
            duplicate: counts.duplicate,
            excluded: counts.excluded,
            suppressed: counts.suppressed,
            invalid_rows: errors
                .into_iter()
                .map(|e| InvalidRow {
                    line: e.line,
                    field: e.field,
                    detail: e.reason,
                })
                .collect(),
        })
    }

    /// Runs `action` on campaign `id`.
    async fn change_now(&self, id: &str, action: Action) -> Result<CampaignState, Problem> {
        let _busy = self.busy.lock().await;
        let record = self.document(id)?;
        let from = record.state;
        let set = |state| {
            self.documents()?
                .set_document_state(id, state)
                .map_err(store_problem("changing a campaign's state"))
        };
        match (action, from) {
            (Action::Start | Action::Resume, DocumentState::Paused) => {
                if !self.loaded(id)? {
                    return Err(Problem::conflict(format!(
                        "campaign {id} has no list yet: PUT /api/campaigns/{id}/list first"
                    )));
                }
                set(DocumentState::Active)?;
                self.launched
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(id);
                self.wake.notify_one();
                tracing::info!(campaign = %id, "campaign started over the API");
            }
            (Action::Start | Action::Resume, DocumentState::Active)
            | (Action::Pause, DocumentState::Paused) => {}
            (Action::Cancel, DocumentState::Cancelled) => {
                // Again: finishes what a crash midway may have left.
                self.cancel_unsent(id).await?;
            }
            (Action::Pause, DocumentState::Active) => {
                let told = self.set_and_stop(id, DocumentState::Paused)?;
                settle(id, told).await;
                tracing::info!(campaign = %id, "campaign paused over the API");
            }
            (Action::Cancel, DocumentState::Active | DocumentState::Paused) => {
                let told = self.set_and_stop(id, DocumentState::Cancelled)?;
                settle(id, told).await;
                let cancelled = self.cancel_unsent(id).await?;
                tracing::info!(campaign = %id, cancelled, "campaign cancelled over the API");
            }
            (_, state) => {
                return Err(Problem::conflict(format!(
                    "campaign {id} is {}",
                    state.as_str()
                )))
            }
        }
        self.state_of(id)
    }

    /// Sets campaign `id`'s state and takes it out of the running send, through the host's
    /// gate (a launch in progress either joined the send before, and is taken out, or sees
    /// the new state and does not join); the receiver says when nothing of it is in flight.
    fn set_and_stop(
        &self,
        id: &str,
        state: DocumentState,
    ) -> Result<Option<tokio::sync::oneshot::Receiver<()>>, Problem> {
        let _gate = self.host.gate();
        self.documents()?
            .set_document_state(id, state)
            .map_err(store_problem("changing a campaign's state"))?;
        Ok(self
            .host
            .current()
            .filter(|run| run.is_open())
            .and_then(|run| run.stop(id)))
    }

    /// Records every unsent recipient of `id` (pending, deferred, held) as cancelled,
    /// reason [`CANCELLED`]; returns how many.
    async fn cancel_unsent(&self, id: &str) -> Result<u64, Problem> {
        let (store, id) = (self.store.clone(), id.to_owned());
        let cancelled = crate::api::blocking(move || cancel_all(&store, &id))
            .await?
            .map_err(store_problem("recording the cancelled recipients"))?;
        self.store
            .flush()
            .await
            .map_err(store_problem("recording the cancelled recipients"))?;
        Ok(cancelled)
    }
}

/// Waits (bounded) until nothing of campaign `id` is in flight.
async fn settle(id: &str, told: Option<tokio::sync::oneshot::Receiver<()>>) {
    if let Some(told) = told {
        if tokio::time::timeout(SETTLE_WAIT, told).await.is_err() {
            tracing::warn!(campaign = %id, "messages still in flight after a minute; answering anyway");
        }
    }
}

/// See [`ServeControl::cancel_unsent`]: the held recipients join the queue (under the
/// variant a split gives them), then the queue is recorded a page at a time, each recorded
/// one leaving it. A crash midway leaves the rest unsent and the next cancel finishes.
fn cancel_all(store: &Store, id: &str) -> Result<u64, crate::store::StoreError> {
    const PAGE: usize = 1_000;
    store.release_held(id, &|variant| variant)?;
    let policy = crate::store::OutcomePolicy::default();
    let mut cancelled = 0;
    loop {
        let mut page = store.pending(id, None, PAGE)?;
        if page.is_empty() {
            // Every deferred one, whenever due (a horizon both engines can store).
            let horizon = now_millis().saturating_add(100 * 365 * 24 * 3_600 * 1_000);
            page = store.due(id, horizon, PAGE)?;
        }
        if page.is_empty() {
            return Ok(cancelled);
        }
        let updates: Vec<OutcomeUpdate> = page
            .into_iter()
            .map(|r| OutcomeUpdate {
                key: r.key,
                outcome: Outcome::Cancelled {
                    reply: ReplyRecord::local(CANCELLED),
                },
                message_id: None,
            })
            .collect();
        cancelled += updates.len() as u64;
        store.record_outcomes(id, &policy, &updates, now_millis())?;
    }
}

impl CampaignControl for ServeControl {
    fn create(&self, request: NewCampaign) -> ControlFuture<'_, String> {
        Box::pin(async move {
            let this = self.clone_parts();
            crate::api::blocking(move || this.create_now(&request)).await?
        })
    }

    fn load_list<'a>(&'a self, id: &'a str, list: &'a Path) -> ControlFuture<'a, ListLoaded> {
        Box::pin(self.load_list_now(id, list))
    }

    fn change<'a>(&'a self, id: &'a str, action: Action) -> ControlFuture<'a, CampaignState> {
        Box::pin(self.change_now(id, action))
    }
}

impl ServeControl {
    /// A copy for a blocking thread (the lock is not shared: creation needs none).
    fn clone_parts(&self) -> ServeControl {
        ServeControl {
            store: self.store.clone(),
            location: self.location.clone(),
            host: self.host.clone(),
            launched: self.launched.clone(),
            wake: self.wake.clone(),
            busy: tokio::sync::Mutex::new(()),
        }
    }
}
