//! Opening a store again in the process that just closed it. sled releases a store's lock
//! only when its file is closed, and its file is closed only when the last of sled's own
//! background threads lets go of it: the thread pool that writes the log finishes its last
//! writes holding a handle on the open file, a moment after the last [`Store`] handle was
//! dropped (on a busy machine, many milliseconds). A process that closes a store and opens it
//! again at once (a test after a send, a server restarted in-process) would find it "in use"
//! by itself. So the store remembers which folders this process holds (with how many open
//! [`Store`]s) or closed lately: a folder it closed lately is waited for (bounded), while one
//! still open here, or not opened here lately (held by another process), fails at once.
//!
//! [`Store`]: super::Store

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest a store closed here is waited for (sled's writers take milliseconds).
pub(super) const WAIT: Duration = Duration::from_secs(10);
/// How often its lock is tried meanwhile.
const POLL: Duration = Duration::from_millis(5);

/// A store folder this process has opened.
struct Folder {
    /// Its open [`super::Store`]s (clones count once).
    open: usize,
    /// When the last of them was dropped, while none is open.
    closed_at: Option<Instant>,
}

/// Store folders this process has open, or closed less than [`WAIT`] ago (older ones are
/// forgotten, so the map stays as small as the stores in use).
static OPEN_HERE: Mutex<BTreeMap<PathBuf, Folder>> = Mutex::new(BTreeMap::new());

fn open_here() -> std::sync::MutexGuard<'static, BTreeMap<PathBuf, Folder>> {
    // invariant: the map is updated in single insert/remove steps; a panic while it was
    // held leaves it whole, so a poisoned lock is used as it is.
    OPEN_HERE.lock().unwrap_or_else(|p| p.into_inner())
}

/// The folder's name as the registry knows it (the same folder under any spelling).
fn key(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// One open store of this process, shared by its clones; dropped with the last of them.
pub(super) struct OpenStore {
    key: PathBuf,
}

impl OpenStore {
    /// Notes that `path` is open here.
    pub(super) fn new(path: &Path) -> Arc<OpenStore> {
        let key = key(path);
        let mut folders = open_here();
        folders.retain(|_, f| f.open > 0 || f.closed_at.is_some_and(|at| at.elapsed() < WAIT));
        let folder = folders.entry(key.clone()).or_insert(Folder {
            open: 0,
            closed_at: None,
        });
        folder.open += 1;
        folder.closed_at = None;
        Arc::new(OpenStore { key })
    }
}

impl Drop for OpenStore {
    fn drop(&mut self) {
        if let Some(folder) = open_here().get_mut(&self.key) {
            folder.open = folder.open.saturating_sub(1);
            if folder.open == 0 {
                folder.closed_at = Some(Instant::now());
            }
        }
    }
}

/// Runs `open` until it succeeds or fails for another reason than `is_locked`; while the
/// folder at `path` is locked and this process opened and closed it, tries again for up to
/// [`WAIT`] (blocking: only that tail ever waits).
pub(super) fn open_when_released<T, E>(
    path: &Path,
    is_locked: impl Fn(&E) -> bool,
    mut open: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let deadline = Instant::now() + WAIT;
    loop {
        match open() {
            Err(error) if is_locked(&error) && closed_here(path) && Instant::now() < deadline => {
                std::thread::sleep(POLL);
            }
            result => return result,
        }
    }
}

/// Whether this process closed the folder at `path` lately and has no store of it open now.
fn closed_here(path: &Path) -> bool {
    open_here()
        .get(&key(path))
        .is_some_and(|f| f.open == 0 && f.closed_at.is_some())
}
