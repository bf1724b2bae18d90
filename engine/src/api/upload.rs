//! Uploads (a recipient list, a suppression list): streamed to a spool file beside nothing
//! else in memory, at most `[api] max_upload` bytes. An upload past the limit, or one that
//! breaks off, is refused whole (413, 400) before any of it is used: nothing half-loaded.
//! The spool file goes when the [`Upload`] is dropped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;

use super::body::next_chunk;
use super::problem::{internal, Problem};

/// An upload received whole, in its spool file.
#[derive(Debug)]
pub struct Upload {
    path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

impl Upload {
    /// The spool file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Receives `body` into a spool file in the system's temporary folder, refusing with 413
/// what is larger than `limit` bytes.
pub async fn receive(body: Body, limit: u64) -> Result<Upload, Problem> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let announced = axum::body::HttpBody::size_hint(&body).lower();
    if announced > limit {
        return Err(Problem::too_large("max_upload", limit));
    }
    let name = format!(
        "volley-upload-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let path = std::env::temp_dir().join(name);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| internal("opening an upload's spool file", &e))?;
    let mut upload = Upload { path, bytes: 0 };
    let mut out = std::io::BufWriter::new(file);
    let mut body = body;
    while let Some(chunk) = next_chunk(&mut body).await? {
        upload.bytes += u64::try_from(chunk.len()).unwrap_or(u64::MAX);
        if upload.bytes > limit {
            return Err(Problem::too_large("max_upload", limit));
        }
        // A chunk is at most a few hundred KiB: written in place rather than off the runtime.
        out.write_all(&chunk)
            .map_err(|e| internal("writing an upload's spool file", &e))?;
    }
    out.flush()
        .map_err(|e| internal("writing an upload's spool file", &e))?;
    Ok(upload)
}
