//! The spool: every accepted message is a file in one folder, written and fsynced (file and
//! folder) before the client hears `250`, then ingested by a dedicated thread and removed once
//! its outcome is flushed. A message being received is `.tmp-*` until it is complete; a
//! complete one is `*.eml`. On start, `.tmp-*` files (never acknowledged) are removed and
//! `*.eml` files (acknowledged, perhaps not ingested) are ingested first.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufWriter};

use super::error::ReceiverError;
use super::{Counters, Ingest};

/// Messages ingested before one flush (group commit).
const BATCH: usize = 256;
/// The ingest thread looks at the spool at least this often, even unwoken (a message whose
/// ingest failed is retried then).
const RESCAN: Duration = Duration::from_secs(5);
/// Prefix of a message still being received.
const TMP: &str = ".tmp-";

/// The spool folder.
#[derive(Debug, Clone)]
pub(crate) struct Spool {
    dir: PathBuf,
    next: Arc<AtomicU64>,
}

/// A message being written; dropped before [`Draft::commit`], its file is removed.
pub(crate) struct Draft {
    file: Option<BufWriter<tokio::fs::File>>,
    tmp: PathBuf,
    name: String,
}

impl Spool {
    /// Opens (creating) the spool folder at `dir` and removes unfinished drafts.
    pub(crate) fn open(dir: &Path) -> Result<Spool, ReceiverError> {
        let error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ReceiverError::Spool { path, source }
        };
        std::fs::create_dir_all(dir).map_err(error(dir))?;
        for entry in std::fs::read_dir(dir).map_err(error(dir))? {
            let path = entry.map_err(error(dir))?.path();
            if file_name(&path).starts_with(TMP) {
                std::fs::remove_file(&path).map_err(error(&path))?;
            }
        }
        Ok(Spool {
            dir: dir.to_path_buf(),
            next: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts a new message file.
    pub(crate) async fn draft(&self) -> std::io::Result<Draft> {
        let millis = crate::model::now_millis();
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let name = format!("{millis:013}-{}-{seq:08}", std::process::id());
        let tmp = self.dir.join(format!("{TMP}{name}"));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .await?;
        Ok(Draft {
            file: Some(BufWriter::with_capacity(64 * 1024, file)),
            tmp,
            name,
        })
    }

    /// Complete messages waiting, oldest first, at most `limit`.
    fn ready(&self, limit: usize) -> std::io::Result<Vec<PathBuf>> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let name = file_name(&path);
            if !name.starts_with(TMP) && name.ends_with(".eml") {
                found.push(path);
            }
        }
        found.sort();
        found.truncate(limit);
        Ok(found)
    }
}

impl Draft {
    /// Appends body bytes.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.file {
            Some(file) => file.write_all(bytes).await,
            None => Err(std::io::Error::other("the draft was committed")),
        }
    }

    /// Makes the message durable: flush, fsync, rename to its final name, fsync the folder.
    /// Returns its name (the queue id told to the client).
    pub(crate) async fn commit(mut self) -> std::io::Result<String> {
        let Some(mut file) = self.file.take() else {
            return Err(std::io::Error::other("the draft was committed"));
        };
        file.flush().await?;
        let file = file.into_inner();
        file.sync_all().await?;
        drop(file);
        let tmp = self.tmp.clone();
        let done = tmp.with_file_name(format!("{}.eml", self.name));
        let renamed = tokio::task::spawn_blocking(move || {
            std::fs::rename(&tmp, &done)?;
            let dir = done.parent().unwrap_or(Path::new("."));
            std::fs::File::open(dir)?.sync_all()
        })
        .await
        .map_err(std::io::Error::other)?;
        if renamed.is_ok() {
            // Nothing left for Drop to remove.
            self.tmp = PathBuf::new();
        }
        renamed.map(|()| std::mem::take(&mut self.name))
    }
}

impl Drop for Draft {
    fn drop(&mut self) {
        // A message never acknowledged (too big, cut off, refused, or its client gone).
        if !self.tmp.as_os_str().is_empty() {
            if let Err(error) = std::fs::remove_file(&self.tmp) {
                tracing::warn!(file = %self.tmp.display(), %error, "could not remove an unfinished bounce draft");
            }
        }
    }
}

/// Runs the ingest thread: ingests whatever is in the spool, then again whenever woken (or
/// every few seconds), until every waker is gone; then once more, and returns.
pub(crate) fn run_ingest<I: Ingest>(
    spool: Spool,
    mut ingest: I,
    wake: Receiver<()>,
    stats: Arc<Counters>,
) {
    loop {
        while drain(&spool, &mut ingest, &stats) == BATCH {}
        match wake.recv_timeout(RESCAN) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    while drain(&spool, &mut ingest, &stats) == BATCH {}
}

/// Wakes the ingest thread (a wake-up already pending is enough).
pub(crate) fn wake(waker: &SyncSender<()>) {
    let _ = waker.try_send(());
}

/// Ingests up to [`BATCH`] spooled messages, flushes, removes them; returns how many were
/// looked at.
fn drain<I: Ingest>(spool: &Spool, ingest: &mut I, stats: &Counters) -> usize {
    let files = match spool.ready(BATCH) {
        Ok(files) => files,
        Err(error) => {
            tracing::error!(spool = %spool.dir().display(), %error, "cannot list the bounce spool");
            return 0;
        }
    };
    let mut done = Vec::with_capacity(files.len());
    for path in &files {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::error!(file = %path.display(), %error, "cannot read a received bounce from the spool");
                continue;
            }
        };
        match ingest.ingest(file_name(path), &bytes) {
            Ok(()) => done.push(path),
            Err(error) => {
                tracing::error!(file = %path.display(), %error, "a received bounce could not be ingested; it stays in the spool")
            }
        }
    }
    if done.is_empty() {
        return files.len();
    }
    if let Err(error) = ingest.flush() {
        tracing::error!(%error, "received bounces could not be flushed; they stay in the spool");
        return 0;
    }
    for path in done {
        stats.ingested.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = std::fs::remove_file(path) {
            tracing::warn!(file = %path.display(), %error, "could not remove an ingested bounce from the spool");
        }
    }
    files.len()
}

fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        seen: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    }

    impl Ingest for Recorder {
        type Error = std::convert::Infallible;
        fn ingest(&mut self, _name: &str, bytes: &[u8]) -> Result<(), Self::Error> {
            self.seen.lock().unwrap().push(bytes.to_vec());
            Ok(())
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn committed_messages_are_ingested_once_and_removed_and_drafts_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let mut first = spool.draft().await.unwrap();
        first.write(b"one").await.unwrap();
        first.commit().await.unwrap();
        let mut second = spool.draft().await.unwrap();
        second.write(b"two").await.unwrap();
        second.commit().await.unwrap();
        let mut abandoned = spool.draft().await.unwrap();
        abandoned.write(b"never acknowledged").await.unwrap();
        drop(abandoned);
        // What a crash mid-DATA leaves behind.
        std::fs::write(dir.path().join(".tmp-crashed"), b"half").unwrap();
        // A restart: the unfinished draft goes, the complete ones stay for ingest.
        let spool = Spool::open(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        let recorder = Recorder::default();
        let seen = Arc::clone(&recorder.seen);
        let stats = Arc::new(Counters::default());
        let (waker, wake) = std::sync::mpsc::sync_channel(1);
        drop(waker);
        run_ingest(spool, recorder, wake, Arc::clone(&stats));
        assert_eq!(
            *seen.lock().unwrap(),
            vec![b"one".to_vec(), b"two".to_vec()]
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(stats.ingested.load(Ordering::Relaxed), 2);
    }
}
