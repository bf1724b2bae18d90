//! The local control socket: how other `volley` commands reach the process that owns a store.
//!
//! sled is single-process, so while `volley send` holds a store it listens on a Unix socket
//! inside the store folder (`control.sock`). `volley status` first tries to open the store
//! itself; when the store is locked it asks the owner over this socket instead, and a second
//! `volley send` hands its campaign to the owner to send alongside its own (by priority).
//! Requests and replies are one line of JSON each.
//!
//! Access is local and personal: the store folder is private (mode 0700), the socket is
//! created with mode 0600, and the server answers only peers (per `SO_PEERCRED`) running as
//! the same user as itself or as root; anyone else gets [`Response::Refused`] and nothing is
//! done.

mod error;
mod status;

pub use error::ControlError;
pub use status::{StatusReport, WarmupStatus};

use crate::model::{Counts, DestinationStatus, Millis, TrackCounts};
use crate::webhooks::WebhookStatus;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

/// How long an answer may take (a submitted campaign's list is loaded before the reply).
const ANSWER_LIMIT: Duration = Duration::from_secs(600);
/// How long a client waits for a status answer.
const STATUS_LIMIT: Duration = Duration::from_secs(10);

/// The socket's file name inside a store folder.
pub const SOCKET_NAME: &str = "control.sock";

/// The control socket path of the store in `store_dir`.
pub fn socket_path(store_dir: &Path) -> PathBuf {
    store_dir.join(SOCKET_NAME)
}

/// A question to the process that owns a store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// Counts by state for one campaign.
    Status {
        /// The campaign id.
        campaign: String,
    },
    /// Write the campaign's events since `since` (epoch ms) into `file`, one JSON object per
    /// line (for `volley events` while the store is held).
    Export {
        /// The campaign id (for a scheduled campaign, its latest edition is exported).
        campaign: String,
        /// Only events at or after this moment.
        since: Millis,
        /// Where to write them (created or truncated).
        file: PathBuf,
    },
    /// The campaign's report (for `volley report` and `volley ab decide` while the store is
    /// held); a scheduled campaign's latest edition when `spec.campaign` has editions.
    Report {
        /// The campaign and what the report needs to know of it.
        spec: crate::report::ReportSpec,
    },
    /// Note that the campaign's events from `since` through `through` were exported (the
    /// export mark `volley gc` checks).
    MarkExported {
        /// The campaign id as exported (an edition for scheduled campaigns).
        campaign: String,
        /// Where the export started.
        since: Millis,
        /// Its last event.
        through: Millis,
    },
    /// Collect finished campaigns (`volley gc` while the store is held).
    Gc {
        /// What to collect.
        options: crate::store::GcOptions,
    },
    /// Send this campaign too, alongside what the owner is sending, by its priority.
    Submit {
        /// The campaign file (absolute, or relative to the owner's working folder).
        campaign_file: PathBuf,
    },
}

/// The owner's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Response {
    /// The export mark was written.
    Marked,
    /// What gc did.
    Collected {
        /// Per campaign (the sizes are filled in by the caller).
        report: Box<crate::store::GcReport>,
    },
    /// The events were written.
    Exported {
        /// The campaign exported (for a scheduled campaign, its latest edition).
        campaign: String,
        /// How many events.
        events: u64,
    },
    /// The campaign handed over is being sent already (by the owner, pid `pid`); nothing was
    /// done.
    AlreadySending {
        /// The campaign id (for a scheduled campaign, the edition).
        campaign: String,
        /// The pid of the owning process.
        pid: u32,
    },
    /// Counts for the campaign asked about.
    Status {
        /// The campaign the counts are of (for a scheduled campaign, its latest edition).
        #[serde(default)]
        campaign: String,
        /// Counts by state.
        counts: Counts,
        /// When the earliest deferred recipient is due.
        next_due: Option<Millis>,
        /// When the earliest window of a recipient waiting for one opens.
        #[serde(default)]
        next_window: Option<Millis>,
        /// The pid of the owning process.
        pid: u32,
        /// True while the owner is still sending this campaign.
        #[serde(default)]
        active: bool,
        /// The destinations of the running send, with their limits and state.
        #[serde(default)]
        destinations: Vec<DestinationStatus>,
        /// Set while a relay cap pauses sending: (cap key, its value, resume time).
        #[serde(default)]
        paused: Option<(String, u32, Millis)>,
        /// Opens, clicks and unsubscribes so far.
        #[serde(default)]
        tracking: TrackCounts,
        /// The webhooks following the campaign: backlog, last error, next attempt.
        #[serde(default)]
        webhooks: Vec<WebhookStatus>,
        /// What each relay did for the campaign (boxed: keeps the answer small).
        #[serde(default)]
        relays: Box<[crate::store::RelayTally]>,
    },
    /// A submitted campaign was loaded and is being sent.
    Submitted {
        /// The campaign id.
        campaign: String,
        /// Its priority lane.
        priority: u8,
        /// True when its list was loaded now (false: it was loaded by an earlier run).
        loaded_now: bool,
        /// Its counts right after loading.
        counts: Counts,
    },
    /// The report asked for.
    Report {
        /// The report.
        report: Box<crate::report::Report>,
    },
    /// The request could not be answered.
    Error {
        /// Why.
        message: String,
    },
    /// The asking user may not use this store: only the user the owner runs as, and root,
    /// may. The request was not read; nothing was done. [`request`] turns this answer into
    /// [`ControlError::Refused`], so callers never see it.
    Refused {
        /// The asking user's uid.
        uid: u32,
        /// The uid the owning process runs as.
        owner: u32,
    },
}

/// The reply a handler will give.
pub type Reply = Pin<Box<dyn Future<Output = Response> + Send>>;

/// Answers requests; implemented by whoever owns the store.
pub type Handler = Arc<dyn Fn(Request) -> Reply + Send + Sync>;

/// The socket file's mode: read and write (connect) for its owner only.
pub const SOCKET_MODE: u32 = 0o600;

/// Binds the control socket in `store_dir` with mode 0600, replacing a stale socket file left
/// by a killed process (the caller holds the store lock, so no live process can own it).
pub fn bind(store_dir: &Path) -> Result<UnixListener, ControlError> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = socket_path(store_dir);
    let fail = |source| ControlError::Bind {
        path: path.clone(),
        source,
    };
    if path.symlink_metadata().is_ok() {
        std::fs::remove_file(&path).map_err(fail)?;
    }
    let listener = UnixListener::bind(&path).map_err(fail)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(SOCKET_MODE)).map_err(fail)?;
    Ok(listener)
}

/// Whether a peer running as `peer` may use the control socket of a process running as
/// `owner`: the same user, or root.
fn admits(peer: u32, owner: u32) -> bool {
    peer == owner || peer == 0
}

/// Serves requests on `listener` until `shutdown` is cancelled.
pub async fn serve(listener: UnixListener, handler: Handler, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let owner = rustix::process::geteuid().as_raw();
        let peer = stream.peer_cred().map(|cred| cred.uid());
        let handler = handler.clone();
        tokio::spawn(async move {
            match peer {
                Ok(uid) if admits(uid, owner) => {
                    let _ = tokio::time::timeout(ANSWER_LIMIT, answer(stream, handler)).await;
                }
                // A peer whose uid cannot be read is refused as a stranger.
                peer => refuse(stream, peer.unwrap_or(u32::MAX), owner).await,
            }
        });
    }
    if let Ok(addr) = listener.local_addr() {
        if let Some(path) = addr.as_pathname() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Tells a peer it may not use the socket, without reading its request (bounded in time; a
/// peer that is gone is of no interest).
async fn refuse(mut stream: UnixStream, uid: u32, owner: u32) {
    let mut out = serde_json::to_vec(&Response::Refused { uid, owner }).unwrap_or_default();
    out.push(b'\n');
    let _ = tokio::time::timeout(STATUS_LIMIT, async {
        stream.write_all(&out).await?;
        stream.shutdown().await
    })
    .await;
}

async fn answer(stream: UnixStream, handler: Handler) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read)
        .take(64 * 1024)
        .read_line(&mut line)
        .await?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(request) => handler(request).await,
        Err(e) => Response::Error {
            message: format!("bad request: {e}"),
        },
    };
    let mut out = serde_json::to_vec(&response).unwrap_or_default();
    out.push(b'\n');
    write.write_all(&out).await?;
    write.shutdown().await
}

/// Sends one request to the owner of the store in `store_dir` and waits (bounded) for its reply.
pub async fn request(store_dir: &Path, request: &Request) -> Result<Response, ControlError> {
    let path = socket_path(store_dir);
    let exchange = async {
        let stream = UnixStream::connect(&path)
            .await
            .map_err(|source| ControlError::Connect {
                path: path.clone(),
                source,
            })?;
        let (read, mut write) = stream.into_split();
        let mut out = serde_json::to_vec(request).map_err(ControlError::Encode)?;
        out.push(b'\n');
        // A refusing owner answers without reading the request, so a failed write may still
        // be followed by its answer: read that before reporting the write.
        let written = write.write_all(&out).await;
        let mut line = String::new();
        let read = BufReader::new(read)
            .take(1024 * 1024)
            .read_line(&mut line)
            .await;
        let io = |source| ControlError::Io {
            path: path.clone(),
            source,
        };
        let reply = serde_json::from_str(&line);
        if let Ok(Response::Refused { uid, owner }) = reply {
            return Err(ControlError::Refused {
                path: path.clone(),
                uid,
                owner,
            });
        }
        written.map_err(io)?;
        read.map_err(io)?;
        reply.map_err(|source| ControlError::BadReply {
            path: path.clone(),
            source,
        })
    };
    let limit = match request {
        Request::Submit { .. }
        | Request::Export { .. }
        | Request::Report { .. }
        | Request::Gc { .. } => ANSWER_LIMIT,
        Request::Status { .. } | Request::MarkExported { .. } => STATUS_LIMIT,
    };
    tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| ControlError::Timeout { path: path.clone() })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_status_request_reaches_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let listener = bind(dir.path()).unwrap();
        let shutdown = CancellationToken::new();
        let handler: Handler = Arc::new(|request| {
            Box::pin(async move {
                match request {
                    Request::Status { campaign } if campaign == "c1" => Response::Status {
                        campaign,
                        counts: Counts {
                            total: 7,
                            ..Counts::default()
                        },
                        next_due: None,
                        next_window: None,
                        pid: 1,
                        active: true,
                        destinations: Vec::new(),
                        paused: None,
                        tracking: TrackCounts::default(),
                        webhooks: Vec::new(),
                        relays: Box::default(),
                    },
                    _ => Response::Error {
                        message: "unknown".into(),
                    },
                }
            })
        });
        let server = tokio::spawn(serve(listener, handler, shutdown.clone()));
        let reply = request(
            dir.path(),
            &Request::Status {
                campaign: "c1".into(),
            },
        )
        .await
        .unwrap();
        assert!(matches!(reply, Response::Status { counts, .. } if counts.total == 7));
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        assert!(!socket_path(dir.path()).exists());
    }

    #[test]
    fn the_owner_and_root_are_admitted_others_not() {
        for (peer, owner, admitted) in [
            (1000, 1000, true),
            (0, 1000, true),
            (0, 0, true),
            (1001, 1000, false),
            (1001, 0, false),
            (65534, 0, false),
            (u32::MAX, 0, false),
        ] {
            assert_eq!(admits(peer, owner), admitted, "peer {peer}, owner {owner}");
        }
    }

    #[tokio::test]
    async fn the_socket_is_for_its_owner_only_even_over_a_stale_file() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(socket_path(dir.path()), "stale").unwrap();
        let _listener = bind(dir.path()).unwrap();
        let meta = std::fs::metadata(socket_path(dir.path())).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()));
        assert_eq!(meta.permissions().mode() & 0o7777, SOCKET_MODE);
    }

    #[test]
    fn a_refusal_reads_as_who_was_refused() {
        let err = ControlError::Refused {
            path: PathBuf::from("/s/control.sock"),
            uid: 1001,
            owner: 0,
        };
        assert_eq!(
            err.to_string(),
            "control socket /s/control.sock: refused: uid 1001 is not the store's owner (uid 0)"
        );
    }

    #[tokio::test]
    async fn no_owner_is_a_connect_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = request(
            dir.path(),
            &Request::Status {
                campaign: "c1".into(),
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ControlError::Connect { .. }));
    }
}
