//! Campaigns handed to the cluster on a PostgreSQL store (issue 19): publishing a campaign's
//! document after its list is loaded, reading the published ones back on a node (materialised
//! under `<local_dir>/cluster/<id>/`, secrets checked), marking a finished one done, and the
//! two leases of a campaign: `load:<id>` (whoever holds it loads the campaign or the edition)
//! and `send:<id>` (whoever holds it sends the campaign). Both are renewed while held, given
//! back when done, and run out [`LEASE_TTL`] after their holder died (at once when it was a
//! process of this machine).

use super::Campaign;
use crate::cluster::{self, CampaignDocument, DocumentFile};
use crate::config::{load_campaign_in, CampaignSettings};
use crate::store::{DocumentRecord, DocumentState, Store, StoreLocation};
use crate::Error;
use std::sync::OnceLock;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a campaign lease lasts without renewal: a dead node's campaign goes to another
/// after at most this long.
pub(crate) const LEASE_TTL: Duration = Duration::from_secs(15);

/// This process's name as a lease owner and publisher.
static NODE: OnceLock<String> = OnceLock::new();

/// This process's name: `<host>-<pid>` for `volley serve`, `send-<host>-<pid>` otherwise.
pub(crate) fn node_name() -> &'static str {
    NODE.get_or_init(|| format!("send-{}-{}", host_name(), std::process::id()))
}

/// Names this process as a serve node (`<host>-<pid>`), unless it was named already.
pub(crate) fn name_serve_node() {
    let _ = NODE.set(format!("{}-{}", host_name(), std::process::id()));
}

/// The machine's host name (`localhost` when it cannot be read).
fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| {
            let name = std::fs::read_to_string(path).ok()?;
            let name = name.trim();
            (!name.is_empty()).then(|| name.to_owned())
        })
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Publishes `campaign`'s document on a store shared by a cluster (nothing to do on sled, or
/// for a campaign that came from a document); returns whether the stored document changed.
pub(crate) fn publish(campaign: &Campaign, store: &Store) -> Result<bool, Error> {
    let settings = campaign.settings();
    let Some(documents) = store.documents() else {
        return Ok(false);
    };
    if cluster::is_materialised(&settings.file) {
        return Ok(false);
    }
    let text = std::fs::read_to_string(&settings.file).map_err(|source| Error::Io {
        path: settings.file.clone(),
        source,
    })?;
    let (document, files) = CampaignDocument::build(settings, &text)?;
    let files: Vec<(String, Vec<u8>)> = files.into_iter().map(|f| (f.name, f.body)).collect();
    let record = DocumentRecord {
        id: document.id.clone(),
        document: document.to_json(),
        state: DocumentState::Active,
        published_at: 0,
        published_by: node_name().to_owned(),
    };
    let changed = documents.publish_document(&record, &files)?;
    if changed {
        tracing::info!(campaign = %document.id, files = files.len(), "campaign published to the cluster");
    }
    Ok(changed)
}

/// Marks the document of one-off campaign `id` done once every recipient is in a final
/// state (a scheduled campaign's document stays active: it has more editions to come).
pub(crate) fn finish_if_done(store: &Store, id: &str) -> Result<(), Error> {
    let Some(documents) = store.documents() else {
        return Ok(());
    };
    let Some(counts) = store.counts(id)? else {
        return Ok(());
    };
    if counts.pending + counts.deferred + counts.held > 0 {
        return Ok(());
    }
    let Some(record) = documents.document(id)? else {
        return Ok(());
    };
    let scheduled = CampaignDocument::from_json(id, &record.document).is_ok_and(|d| d.scheduled);
    if record.state == DocumentState::Active && !scheduled {
        documents.set_document_state(id, DocumentState::Done)?;
        tracing::info!(campaign = id, "campaign done: its document is marked done");
    }
    Ok(())
}

/// A published campaign as a node sees it.
pub(crate) struct Published {
    /// The document's id (its campaign's).
    pub(crate) id: String,
    /// Its digest (a new one means a changed document).
    pub(crate) digest: String,
    /// Its settings, loaded from the materialised file; or why this node cannot send it.
    pub(crate) settings: Result<CampaignSettings, String>,
}

/// Reads the active document `record` on this node: materialises it under `location`'s local
/// folder, checks its secrets and loads it. `known` is the digest this node has loaded
/// already (then `None` comes back: nothing changed).
pub(crate) fn read_published(
    store: &Store,
    location: &StoreLocation,
    record: &DocumentRecord,
    known: Option<&str>,
) -> Option<Published> {
    let document = match CampaignDocument::from_json(&record.id, &record.document) {
        Ok(document) => document,
        Err(error) => {
            return Some(Published {
                id: record.id.clone(),
                digest: String::new(),
                settings: Err(error.to_string()),
            })
        }
    };
    if known == Some(document.digest.as_str()) {
        return None;
    }
    let settings = load_published(store, location, &document).map_err(|e| e.to_string());
    Some(Published {
        id: record.id.clone(),
        digest: document.digest,
        settings,
    })
}

/// Materialises `document` and loads it as this node's campaign on `location`.
fn load_published(
    store: &Store,
    location: &StoreLocation,
    document: &CampaignDocument,
) -> Result<CampaignSettings, Error> {
    cluster::check_secrets(document, node_name())?;
    let local = location.local_dir().ok_or_else(|| Error::Io {
        path: location.to_string().into(),
        source: std::io::Error::other("no local folder for campaign documents ([store] local_dir)"),
    })?;
    let files = documents_of(store)?
        .document_files(&document.id)?
        .into_iter()
        .map(|(name, body)| DocumentFile { name, body })
        .collect::<Vec<_>>();
    let file = cluster::materialise(document, &files, local)?;
    Ok(load_campaign_in(&file, location)?)
}

/// The store's documents, or an error naming the store when it keeps none.
fn documents_of(store: &Store) -> Result<&dyn crate::store::CampaignDocuments, Error> {
    store.documents().ok_or_else(|| Error::Io {
        path: store.path().to_owned(),
        source: std::io::Error::other("this store keeps no campaign documents"),
    })
}

/// Takes lease `name` for this process (on a store that has leases; always granted on
/// sled); returns whether it holds it. A lease held by a process of this machine that has
/// died (a `volley send` killed a moment ago) is taken over at once rather than when it runs
/// out, so a re-run after a crash is not refused.
pub(crate) fn take(store: &Store, name: &str) -> Result<bool, Error> {
    let Some(documents) = store.documents() else {
        return Ok(true);
    };
    if documents.take_lease(name, node_name(), LEASE_TTL)? {
        return Ok(true);
    }
    match documents.lease_holder(name)? {
        Some(holder) if is_dead_here(&holder) => {
            let taken = documents.take_over_lease(name, &holder, node_name(), LEASE_TTL)?;
            if taken {
                tracing::info!(lease = name, %holder, "lease taken over from a process of this machine that has ended");
            }
            Ok(taken)
        }
        // Run out or given back meanwhile: try once more.
        None => Ok(documents.take_lease(name, node_name(), LEASE_TTL)?),
        Some(_) => Ok(false),
    }
}

/// Whether lease owner `holder` (`[send-]<host>-<pid>`) is a process of this machine that
/// no longer runs.
fn is_dead_here(holder: &str) -> bool {
    let name = holder.strip_prefix("send-").unwrap_or(holder);
    let Some((host, pid)) = name.rsplit_once('-') else {
        return false;
    };
    let Some(pid) = pid
        .parse::<i32>()
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    host == host_name()
        && pid.as_raw_nonzero().get() != i32::try_from(std::process::id()).unwrap_or(0)
        && rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH)
}

/// Gives lease `name` back (logged when that fails: it then runs out by itself).
pub(crate) fn release(store: &Store, name: &str) {
    if let Some(documents) = store.documents() {
        if let Err(error) = documents.release_lease(name, node_name()) {
            tracing::warn!(lease = name, %error, "could not give the lease back; it runs out by itself");
        }
    }
}

/// A lease held by this process: renewed every third of [`LEASE_TTL`] while held, given
/// back when dropped (and running out by itself when the process dies).
pub(crate) struct Lease {
    store: Store,
    name: String,
    stop: CancellationToken,
}

impl Lease {
    /// Takes lease `name`; `None` when another process holds it. On a store without leases
    /// (sled, whose folder lock keeps other processes out) it is always granted. Call it
    /// inside the tokio runtime (the renewal is a task).
    pub(crate) fn take(store: &Store, name: &str) -> Result<Option<Lease>, Error> {
        if !take(store, name)? {
            return Ok(None);
        }
        let stop = CancellationToken::new();
        if store.documents().is_some() {
            tokio::spawn(renew(store.clone(), name.to_owned(), stop.clone()));
        }
        Ok(Some(Lease {
            store: store.clone(),
            name: name.to_owned(),
            stop,
        }))
    }

    /// The `send:` lease of campaign `id`, held while this process sends it.
    pub(crate) fn send(store: &Store, id: &str) -> Result<Option<Lease>, Error> {
        Lease::take(store, &format!("send:{id}"))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.cancel();
        release(&self.store, &self.name);
    }
}

/// Renews lease `name` until `stop`; says so when it was lost (another node took it after a
/// stall longer than the lease).
async fn renew(store: Store, name: String, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(LEASE_TTL / 3) => {}
        }
        let (s, n) = (store.clone(), name.clone());
        match super::blocking("lease renewal", move || take(&s, &n)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => tracing::warn!(lease = %name, "lease lost: another node took it"),
            Ok(Err(error)) | Err(error) => {
                tracing::warn!(lease = %name, %error, "could not renew the lease")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_holder_is_dead_here_only_when_it_was_a_process_of_this_machine_that_ended() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let host = host_name();
        assert!(is_dead_here(&format!("send-{host}-{pid}")));
        assert!(is_dead_here(&format!("{host}-{pid}")));
        assert!(!is_dead_here(&format!("other-machine-{pid}")));
        assert!(!is_dead_here(&format!("{host}-{}", std::process::id())));
        assert!(!is_dead_here(&format!("{host}-1")), "init runs");
        assert!(!is_dead_here("no-pid-here"));
    }
}
