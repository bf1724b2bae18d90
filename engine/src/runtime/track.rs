//! `volley track serve`: one long-running process that owns the store, serves the tracking
//! URLs over HTTP and hosts the sends handed over to it (sled is single-process: while the
//! tracking server runs, `volley send` hands its campaign to it, and `volley status` asks it).

use super::host::Host;
use crate::control;
use crate::store::Store;
use crate::tracking::{TokenKey, TrackingServer};
use crate::Error;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A tracking server that has taken its store: open, answering its control socket, about
/// to serve HTTP.
pub struct TrackService {
    store: Store,
    key: TokenKey,
    host: Arc<Host>,
    control_stop: CancellationToken,
    control_task: tokio::task::JoinHandle<()>,
    cancel: CancellationToken,
}

impl TrackService {
    /// Opens the store in `store_dir` and answers its control socket at once (so a `volley
    /// send` started after this returns is handed over); everything stops when `cancel` fires.
    pub fn open(
        store_dir: &Path,
        key: TokenKey,
        cancel: CancellationToken,
    ) -> Result<TrackService, Error> {
        let store = Store::open(store_dir)?;
        warn_about_other_keys(&store, &key)?;
        let host = Host::new(store.clone(), cancel.clone(), None);
        let socket = control::bind(store.path())?;
        let control_stop = CancellationToken::new();
        let control_task =
            tokio::spawn(control::serve(socket, host.handler(), control_stop.clone()));
        Ok(TrackService {
            store,
            key,
            host,
            control_stop,
            control_task,
            cancel,
        })
    }

    /// Serves the tracking URLs on `listener` until `cancel` fires; campaigns handed over
    /// meanwhile are sent, and stopped cleanly (transactions in flight finish) at the end.
    pub async fn serve(self, listener: TcpListener) -> Result<(), Error> {
        let server = TrackingServer::new(self.store.clone(), self.key);
        let served = server
            .serve(listener, self.cancel.clone().cancelled_owned())
            .await;
        self.host.wait().await;
        self.control_stop.cancel();
        let _ = self.control_task.await;
        self.store.flush().await?;
        served.map_err(Error::from)
    }
}

/// Logs the tracked campaigns of the store whose tokens another key signed: their links and
/// pixels will not be recognised.
fn warn_about_other_keys(store: &Store, key: &TokenKey) -> Result<(), Error> {
    let fingerprint = key.fingerprint();
    for campaign in store.campaigns()? {
        if let Some(meta) = store.tracking_meta(&campaign)? {
            if meta.key_fingerprint != fingerprint {
                tracing::warn!(%campaign, "this campaign's tracking tokens were signed with another key; its opens and clicks will get 404");
            }
        }
    }
    Ok(())
}
