//! A list being loaded through the interface's row-by-row [`LoadSession`]: rows are gathered
//! into batches and streamed to [`PgStore::load`] (binary `COPY`, one transaction) running on
//! the engine's runtime. Dropped without `finish` (an interrupted load), the load is cancelled
//! and its transaction rolled back: nothing of it stays in the database.

use super::engine::PgEngine;
use super::{LoadBatch, LoadRow, PgLoadResult, PgStoreError};
use crate::model::Assignment;
use crate::store::api::LoadSession;
use crate::store::{LoadResult, StoreError};
use std::collections::HashSet;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Rows sent to the loader at a time.
const BATCH: usize = 8192;

/// One campaign's list being loaded into PostgreSQL.
pub(super) struct PgLoadSession<'a> {
    engine: &'a PgEngine,
    campaign: String,
    /// Addresses accepted so far, to answer `add` (the database de-duplicates too).
    seen: HashSet<String>,
    batch: Vec<LoadRow>,
    rows: Option<mpsc::Sender<LoadBatch>>,
    load: Option<JoinHandle<Result<PgLoadResult, PgStoreError>>>,
}

impl<'a> PgLoadSession<'a> {
    /// Starts the load task for `campaign`; a campaign that is loaded already is refused.
    pub(super) fn start(
        engine: &'a PgEngine,
        campaign: &str,
        columns: Vec<String>,
    ) -> Result<PgLoadSession<'a>, StoreError> {
        let (sender, receiver) = mpsc::channel(2);
        let store = engine.store.clone();
        let id = campaign.to_owned();
        let load = engine.spawn(async move { store.load(&id, &columns, receiver).await });
        Ok(PgLoadSession {
            engine,
            campaign: campaign.to_owned(),
            seen: HashSet::new(),
            batch: Vec::with_capacity(BATCH),
            rows: Some(sender),
            load: Some(load),
        })
    }

    /// Hands the gathered rows to the load task; if it has stopped, its error.
    fn send(&mut self, invalid: u64) -> Result<(), StoreError> {
        let batch = LoadBatch {
            rows: std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH)),
            invalid,
        };
        let Some(sender) = self.rows.as_ref() else {
            return Ok(());
        };
        let sent = self
            .engine
            .run(async { Ok(sender.send(batch).await.is_ok()) })?;
        if sent {
            return Ok(());
        }
        // The load ended early: it failed; its error says why.
        self.rows = None;
        match self.load.take() {
            Some(load) => self.join(load).map(|_| ()),
            None => Ok(()),
        }
    }

    /// Waits for the load task's result.
    fn join(
        &self,
        load: JoinHandle<Result<PgLoadResult, PgStoreError>>,
    ) -> Result<PgLoadResult, StoreError> {
        let campaign = self.campaign.clone();
        let url = self.engine.store.url().to_owned();
        self.engine.run(async move {
            load.await.map_err(|e| PgStoreError::LoadEnded {
                url,
                campaign,
                reason: format!("the load task ended: {e}"),
            })?
        })
    }
}

impl LoadSession for PgLoadSession<'_> {
    fn add(
        &mut self,
        address: &str,
        domain: &str,
        values: Vec<String>,
        line: u64,
        assignment: Assignment,
    ) -> Result<bool, StoreError> {
        if !self.seen.insert(address.to_owned()) {
            return Ok(false);
        }
        self.batch.push(LoadRow {
            email: address.to_owned(),
            domain: domain.to_owned(),
            values,
            line,
            assignment,
        });
        if self.batch.len() >= BATCH {
            self.send(0)?;
        }
        Ok(true)
    }

    fn accepted(&self) -> u64 {
        u64::try_from(self.seen.len()).unwrap_or(u64::MAX)
    }

    fn finish(
        mut self: Box<Self>,
        invalid: u64,
        duplicate: u64,
        excluded: u64,
    ) -> Result<LoadResult, StoreError> {
        self.send(invalid)?;
        self.rows = None; // the end of the list
        let Some(load) = self.load.take() else {
            return Err(self.engine.fail_with(PgStoreError::LoadEnded {
                url: self.engine.store.url().to_owned(),
                campaign: self.campaign.clone(),
                reason: "it failed earlier (as reported then); run it again".to_owned(),
            }));
        };
        let result = self.join(load)?;
        let campaign = self.campaign.clone();
        let dup = super::queue::to_i64(duplicate);
        let left_out = super::queue::to_i64(excluded);
        self.engine.run(async {
            sqlx::query("UPDATE campaigns SET duplicate = $2, excluded = $3 WHERE number = $1")
                .bind(result.number)
                .bind(dup)
                .bind(left_out)
                .execute(self.engine.store.pool())
                .await
                .map_err(|e| {
                    self.engine
                        .failed(&format!("load campaign {campaign}: count duplicates"), e)
                })
        })?;
        Ok(LoadResult {
            counts: crate::model::Counts {
                duplicate,
                excluded,
                ..result.counts
            },
        })
    }
}

impl Drop for PgLoadSession<'_> {
    /// An unfinished load is cancelled before the end of its list is signalled, so its
    /// transaction is rolled back rather than committed.
    fn drop(&mut self) {
        if let Some(load) = self.load.take() {
            load.abort();
            let _ = self.engine.run(async {
                let _ = load.await;
                Ok(())
            });
        }
        self.rows = None;
    }
}
