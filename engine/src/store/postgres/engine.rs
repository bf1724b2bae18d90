//! The PostgreSQL engine behind the store's interface ([`crate::store::api`]): a synchronous
//! facade over the async sqlx client.
//!
//! The interface is synchronous (sled answers from memory or a local disk) and is called from
//! plain threads, from `spawn_blocking` threads and from tokio workers alike. The engine owns a
//! small tokio runtime of its own (one worker: the pool's sockets and timers live there) and
//! each call is driven to completion by [`PgEngine::run`]:
//! - outside any runtime, with `block_on` on the calling thread;
//! - on a worker of a multi-thread runtime, inside `block_in_place` (the worker hands its other
//!   tasks to its siblings while it waits, as it would for a sled disk read);
//! - on a current-thread runtime (where `block_in_place` panics), on a scoped helper thread.
//!
//! `Handle::block_on` of the caller's own runtime is not an option: it panics inside an async
//! context, and a pool bound to one runtime breaks when that runtime shuts down (tests).

use super::{PgSettings, PgStore, PgStoreError};
use crate::model::{Counts, Millis};
use crate::store::api::{CampaignStore, StoreFuture};
use crate::store::{CampaignMeta, Loader, StoreError};
use sqlx::Row;
use std::future::Future;
use std::path::{Path, PathBuf};

/// An open PostgreSQL store behind the storage interface.
pub(crate) struct PgEngine {
    pub(super) store: PgStore,
    runtime: std::sync::Arc<OwnRuntime>,
    /// The URL without its password, as errors name the store.
    path: PathBuf,
    /// Groups of outcomes that may be recorded at once (half the pool, at most
    /// [`MAX_GROUPS_IN_FLIGHT`]).
    groups_in_flight: usize,
    /// Relay usage per (relay, minute) as this process last read or wrote it: what it
    /// writes is added to the shared count as the difference (other nodes add theirs).
    pub(super) relay_seen: std::sync::Mutex<std::collections::HashMap<(String, u64), u32>>,
}

/// Groups of outcomes recorded at once, at most: four commits waiting on one WAL flush
/// already hide most of it (PostgreSQL flushes the WAL of every commit waiting at once).
const MAX_GROUPS_IN_FLIGHT: usize = 4;

impl std::fmt::Debug for PgEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgEngine")
            .field("url", &self.store.url())
            .finish_non_exhaustive()
    }
}

/// SQL turning epoch milliseconds (`int8` parameter `$n`) into a `timestamptz`.
macro_rules! ts {
    ($n:literal) => {
        concat!(
            "(timestamptz 'epoch' + $",
            $n,
            "::int8 * interval '1 millisecond')"
        )
    };
}
pub(super) use ts;

/// SQL turning a `timestamptz` column into epoch milliseconds (`int8`).
macro_rules! ms {
    ($col:literal) => {
        concat!("floor(extract(epoch FROM ", $col, ") * 1000)::int8")
    };
}
pub(super) use ms;

impl PgEngine {
    /// Connects to the database `settings` name and brings its schema up to date.
    pub(crate) fn open(settings: PgSettings) -> Result<PgEngine, StoreError> {
        let path = PathBuf::from(settings.shown_url());
        let half_pool = usize::try_from(settings.max_connections / 2).unwrap_or(1);
        let groups_in_flight = half_pool.clamp(1, MAX_GROUPS_IN_FLIGHT);
        let runtime = std::sync::Arc::new(OwnRuntime::new(&settings.shown_url())?);
        let store = drive(runtime.get(), async {
            let store = PgStore::connect(&settings).await?;
            store.migrate().await?;
            Ok(store)
        })
        .map_err(|e| engine_error(&path, e))?;
        Ok(PgEngine {
            store,
            runtime,
            path,
            groups_in_flight,
            relay_seen: std::sync::Mutex::default(),
        })
    }

    /// Runs one async step of the engine to completion from whatever thread calls.
    pub(super) fn run<T: Send>(
        &self,
        step: impl Future<Output = Result<T, PgStoreError>> + Send,
    ) -> Result<T, StoreError> {
        drive(self.runtime.get(), step).map_err(|e| engine_error(&self.path, e))
    }

    /// What a reader that outlives this call (the event export) needs to run steps of its
    /// own: the runtime (kept alive by it) and the pool.
    pub(super) fn detached(&self) -> Detached {
        Detached {
            runtime: std::sync::Arc::clone(&self.runtime),
            store: self.store.clone(),
            path: self.path.clone(),
        }
    }

    /// Starts `task` on the engine's runtime (a load streaming in the background).
    pub(super) fn spawn<T: Send + 'static>(
        &self,
        task: impl Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        self.runtime.get().spawn(task)
    }

    /// A failed statement, as the interface reports it.
    pub(super) fn failed(&self, what: &str, source: sqlx::Error) -> PgStoreError {
        self.store.query_error(what, source)
    }

    /// Opens a transaction on a pooled connection; a failure names `what` was being done.
    pub(super) async fn begin(
        &self,
        what: &str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, PgStoreError> {
        self.store
            .pool()
            .begin()
            .await
            .map_err(|e| self.failed(what, e))
    }

    /// A stored row that cannot be read back.
    pub(super) fn damaged(&self, what: impl Into<String>) -> PgStoreError {
        PgStoreError::Damaged {
            url: self.store.url().to_owned(),
            what: what.into(),
        }
    }

    /// A failure of this engine as the interface's error.
    pub(super) fn fail_with(&self, error: PgStoreError) -> StoreError {
        engine_error(&self.path, error)
    }

    /// The interface's error for a campaign that is not in the store.
    pub(super) fn unknown(&self, campaign: &str) -> StoreError {
        StoreError::UnknownCampaign {
            campaign: campaign.to_owned(),
            path: self.path.clone(),
        }
    }

    /// Where the store is, as errors name it (its URL without the password).
    pub(super) fn path_buf(&self) -> PathBuf {
        self.path.clone()
    }

    /// The campaign's number, or `None` when it is not in the store.
    pub(super) async fn number(&self, campaign: &str) -> Result<Option<i32>, PgStoreError> {
        sqlx::query_scalar("SELECT number FROM campaigns WHERE id = $1")
            .bind(campaign)
            .fetch_optional(self.store.pool())
            .await
            .map_err(|e| self.failed(&format!("find campaign {campaign}"), e))
    }

    /// The campaign's number, or [`StoreError::UnknownCampaign`].
    pub(super) fn known(&self, campaign: &str) -> Result<i32, StoreError> {
        self.run(self.number(campaign))?
            .ok_or_else(|| self.unknown(campaign))
    }

    /// The campaign's counters from `state_counts` (its slots summed) and its load tallies,
    /// in one statement.
    pub(super) async fn read_counts(&self, number: i32) -> Result<Counts, PgStoreError> {
        let rows = sqlx::query(
            "SELECT s.state::text, sum(s.recipients)::int8, c.invalid, c.duplicate, c.excluded \
             FROM campaigns c LEFT JOIN state_counts s ON s.campaign = c.number \
             WHERE c.number = $1 GROUP BY s.state, c.invalid, c.duplicate, c.excluded",
        )
        .bind(number)
        .fetch_all(self.store.pool())
        .await
        .map_err(|e| self.failed("read the counters", e))?;
        let mut counts = Counts::default();
        for row in rows {
            let n = u64::try_from(row.get::<Option<i64>, _>(1).unwrap_or(0)).unwrap_or(0);
            let state: Option<String> = row.get(0);
            if let Some(state) = state.as_deref().and_then(super::load::parse_state) {
                *counts.get_mut(state) += n;
                counts.total += n;
            }
            counts.invalid = u64::try_from(row.get::<i64, _>(2)).unwrap_or(0);
            counts.duplicate = u64::try_from(row.get::<i64, _>(3)).unwrap_or(0);
            counts.excluded = u64::try_from(row.get::<i64, _>(4)).unwrap_or(0);
        }
        Ok(counts)
    }
}

/// The engine's runtime and pool, held by a reader that outlives the call that made it.
pub(super) struct Detached {
    runtime: std::sync::Arc<OwnRuntime>,
    /// The pool (closed when the engine is dropped: steps then fail, never hang).
    pub(super) store: PgStore,
    path: PathBuf,
}

impl Detached {
    /// Runs one async step to completion from whatever thread calls, as [`PgEngine::run`].
    pub(super) fn run<T: Send>(
        &self,
        step: impl Future<Output = Result<T, PgStoreError>> + Send,
    ) -> Result<T, StoreError> {
        drive(self.runtime.get(), step).map_err(|e| engine_error(&self.path, e))
    }

    /// A failure of this engine as the interface's error.
    pub(super) fn fail(&self, error: PgStoreError) -> StoreError {
        engine_error(&self.path, error)
    }

    /// A stored row that cannot be read back.
    pub(super) fn damaged(&self, what: impl Into<String>) -> PgStoreError {
        PgStoreError::Damaged {
            url: self.store.url().to_owned(),
            what: what.into(),
        }
    }
}

/// The engine's own runtime. Dropped, it shuts down in the background: the last handle on a
/// store may well be dropped inside an async context, where a blocking shutdown panics.
struct OwnRuntime {
    handle: tokio::runtime::Handle,
    /// Taken out only when dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl OwnRuntime {
    fn new(url: &str) -> Result<OwnRuntime, StoreError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("volley-pg")
            .enable_all()
            .build()
            .map(|runtime| OwnRuntime {
                handle: runtime.handle().clone(),
                runtime: Some(runtime),
            })
            .map_err(|source| StoreError::Folder {
                path: PathBuf::from(PgSettings::new(url).shown_url()),
                action: "start the PostgreSQL client's runtime",
                source,
            })
    }

    /// The handle steps are driven with (its worker runs the sockets and timers).
    fn get(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for PgEngine {
    /// Closes the pool's connections (a clean goodbye to the server, a few seconds at most)
    /// before the runtime goes.
    fn drop(&mut self) {
        let pool = self.store.pool().clone();
        let _ = self.run(async move {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), pool.close()).await;
            Ok(())
        });
    }
}

/// Drives `step` on `runtime` from the calling thread, whatever runtime (if any) it is in.
fn drive<T: Send>(
    runtime: &tokio::runtime::Handle,
    step: impl Future<Output = Result<T, PgStoreError>> + Send,
) -> Result<T, PgStoreError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => runtime.block_on(step),
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(|| runtime.block_on(step)),
        Ok(_) => std::thread::scope(|scope| {
            scope
                .spawn(|| runtime.block_on(step))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }),
    }
}

/// A PostgreSQL failure as the interface's error.
fn engine_error(path: &Path, error: PgStoreError) -> StoreError {
    // The engine's errors already name the store; it is said once.
    let text = error.to_string();
    let named = format!("store {}: ", path.display());
    StoreError::Engine {
        path: path.to_owned(),
        detail: text.strip_prefix(&named).unwrap_or(&text).to_owned(),
        source: Box::new(error),
    }
}

/// Epoch milliseconds as the `int8` the SQL takes.
pub(super) fn millis(at: Millis) -> i64 {
    i64::try_from(at).unwrap_or(i64::MAX)
}

impl CampaignStore for PgEngine {
    fn path(&self) -> &Path {
        &self.path
    }

    fn campaigns(&self) -> Result<Vec<String>, StoreError> {
        self.run(async {
            sqlx::query_scalar("SELECT id FROM campaigns ORDER BY id")
                .fetch_all(self.store.pool())
                .await
                .map_err(|e| self.failed("list the campaigns", e))
        })
    }

    fn campaign(&self, campaign: &str) -> Result<Option<CampaignMeta>, StoreError> {
        let sql = concat!(
            "SELECT columns, loaded, coalesce(",
            ms!("loaded_at"),
            ", 0), number FROM campaigns WHERE id = $1"
        );
        let row = self.run(async {
            sqlx::query(sql)
                .bind(campaign)
                .fetch_optional(self.store.pool())
                .await
                .map_err(|e| self.failed(&format!("read campaign {campaign}"), e))
        })?;
        Ok(row.map(|row| CampaignMeta {
            columns: row.get(0),
            loaded: row.get(1),
            loaded_at: u64::try_from(row.get::<i64, _>(2)).unwrap_or(0),
            number: u32::try_from(row.get::<i32, _>(3)).unwrap_or(0),
        }))
    }

    fn cluster(&self) -> Option<&dyn crate::store::ClusterStore> {
        Some(self)
    }

    fn counts(&self, campaign: &str) -> Result<Option<Counts>, StoreError> {
        self.run(async {
            match self.number(campaign).await? {
                Some(number) => self.read_counts(number).await.map(Some),
                None => Ok(None),
            }
        })
    }

    fn start_load(&self, campaign: &str, columns: Vec<String>) -> Result<Loader<'_>, StoreError> {
        let session = super::session::PgLoadSession::start(self, campaign, columns)?;
        Ok(Loader::new(Box::new(session)))
    }

    fn append(
        &self,
        campaign: &str,
        rows: &[crate::store::AppendRow],
        now: Millis,
    ) -> Result<Vec<crate::store::Appended>, StoreError> {
        self.append_rows(campaign, rows, now)
    }

    fn remove_campaign(&self, campaign: &str) -> Result<(), StoreError> {
        self.drop_relay_tallies(campaign)?;
        self.run(async {
            sqlx::query("SELECT remove_campaign($1)")
                .bind(campaign)
                .execute(self.store.pool())
                .await
                .map(|_| ())
                .map_err(|e| self.failed(&format!("remove campaign {campaign}"), e))
        })
    }

    /// Created by whichever node asks first. A node that loses the race (its insert waits
    /// for the winner's, then does nothing, and its statement's snapshot predates the
    /// winner's row) reads the winner's secret with a second statement.
    fn secret(&self) -> Result<[u8; 32], StoreError> {
        let fresh: [u8; 32] = rand::random();
        let stored: Vec<u8> = self.run(async {
            let what = "read the token secret";
            let first: Option<Vec<u8>> = sqlx::query_scalar(
                "WITH new AS (INSERT INTO store_secret (secret) VALUES ($1) \
                 ON CONFLICT DO NOTHING RETURNING secret) \
                 SELECT secret FROM new UNION ALL SELECT secret FROM store_secret LIMIT 1",
            )
            .bind(&fresh[..])
            .fetch_optional(self.store.pool())
            .await
            .map_err(|e| self.failed(what, e))?;
            match first {
                Some(secret) => Ok(secret),
                None => sqlx::query_scalar("SELECT secret FROM store_secret")
                    .fetch_one(self.store.pool())
                    .await
                    .map_err(|e| self.failed(what, e)),
            }
        })?;
        <[u8; 32]>::try_from(stored.as_slice())
            .map_err(|_| engine_error(&self.path, self.damaged("token secret: not 32 bytes")))
    }

    /// Every write is its own committed transaction: there is nothing left to flush.
    fn flush(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn flush_blocking(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Each group is one transaction on a connection of its own; the counters it shifts
    /// are the rows of its connection's slot, so groups in flight do not wait for each
    /// other's commit.
    fn max_groups_in_flight(&self) -> usize {
        self.groups_in_flight
    }

    fn documents(&self) -> Option<&dyn crate::store::CampaignDocuments> {
        Some(self)
    }
}
