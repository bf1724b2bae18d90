//! The handle callers hold ([`Store`]), opening a store by its address, and the two values
//! that wrap an engine's own streams: a list being loaded ([`Loader`]) and an event export
//! ([`ExportEvents`]).

use super::api::{LoadSession, StoreEngine};
use super::{ExportEvent, StoreError, StoreLocation};
use crate::model::{Assignment, Counts};
use serde::{de::DeserializeOwned, Serialize};
use std::path::Path;
use std::sync::Arc;

/// An open store, whichever engine is behind it. Cheap to clone; clones share the same
/// store. Every method of the store's interface ([`super::api`]) is called on it directly.
#[derive(Clone, Debug)]
pub struct Store {
    engine: Arc<dyn StoreEngine>,
}

impl std::ops::Deref for Store {
    type Target = dyn StoreEngine;

    fn deref(&self) -> &Self::Target {
        &*self.engine
    }
}

impl Store {
    /// Opens (creating if needed) the store at `location`: a `postgresql://` (or
    /// `postgres://`) address is a database (password from the address or the usual `PG*`
    /// environment), anything else a folder. See [`Store::open_at`].
    pub fn open(location: &Path) -> Result<Store, StoreError> {
        Store::open_at(&StoreLocation::parse(location))
    }

    /// Opens (creating if needed) the store at `location`. A folder is the embedded sled
    /// engine (private to the user running Volley: mode 0700); a database is the PostgreSQL
    /// engine: it connects (the password from `password_file`, `password_env`, the address
    /// or the usual `PG*` environment and `~/.pgpass`) and creates or migrates the schema. A
    /// sled folder another process holds fails with [`StoreError::Locked`].
    pub fn open_at(location: &StoreLocation) -> Result<Store, StoreError> {
        match location {
            StoreLocation::Postgres { settings, .. } => {
                let engine = super::postgres::PgEngine::open(settings.clone())?;
                Ok(Store::from_engine(Arc::new(engine)))
            }
            StoreLocation::Folder(folder) => Ok(Store::from_engine(Arc::new(
                super::sled::SledStore::open(folder)?,
            ))),
        }
    }

    /// A handle on an engine already open (for engines and their tests).
    pub(crate) fn from_engine(engine: Arc<dyn StoreEngine>) -> Store {
        Store { engine }
    }

    /// The archive [`Store::collect`] kept of the campaign's history, once it was collected.
    pub fn archive<T: DeserializeOwned>(&self, campaign: &str) -> Result<Option<T>, StoreError> {
        match self.engine.archive_encoded(campaign)? {
            Some(bytes) => {
                postcard::from_bytes(&bytes)
                    .map(Some)
                    .map_err(|source| StoreError::Decode {
                        path: self.path().to_owned(),
                        what: "archive",
                        source,
                    })
            }
            None => Ok(None),
        }
    }

    /// Collects `campaign`: keeps `archive` (what reports keep of its history) first, then
    /// drops the per-recipient detail that reports and tracking do not need (see
    /// [`super::api::HistoryStore::collect_encoded`]). Durable once it returns.
    pub fn collect(
        &self,
        campaign: &str,
        archive: &impl Serialize,
        keep_values: bool,
    ) -> Result<super::Collected, StoreError> {
        let bytes = postcard::to_stdvec(archive).map_err(|source| StoreError::Encode {
            path: self.path().to_owned(),
            what: "archive",
            source,
        })?;
        self.engine.collect_encoded(campaign, &bytes, keep_values)
    }
}

/// Writes one campaign's recipients into the store. Obtained from
/// [`super::api::CampaignStore::start_load`].
pub struct Loader<'a> {
    session: Box<dyn LoadSession + 'a>,
}

impl std::fmt::Debug for Loader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("accepted", &self.session.accepted())
            .finish_non_exhaustive()
    }
}

/// What a finished load added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadResult {
    /// The campaign's counters right after loading.
    pub counts: Counts,
}

impl<'a> Loader<'a> {
    /// Wraps an engine's load session.
    pub(crate) fn new(session: Box<dyn LoadSession + 'a>) -> Loader<'a> {
        Loader { session }
    }

    /// Adds one accepted row with its A/B assignment; see [`LoadSession::add`].
    pub fn add(
        &mut self,
        address: &str,
        domain: &str,
        values: Vec<String>,
        line: u64,
        assignment: Assignment,
    ) -> Result<bool, StoreError> {
        self.session.add(address, domain, values, line, assignment)
    }

    /// Recipients accepted so far.
    pub fn accepted(&self) -> u64 {
        self.session.accepted()
    }

    /// Writes the rest, marks the campaign loaded and makes it durable, with the rows the
    /// loader skipped: `invalid`, `duplicate`, and `excluded` (left out by the campaign's
    /// rules, e.g. `[campaign] where`).
    pub fn finish(
        self,
        invalid: u64,
        duplicate: u64,
        excluded: u64,
    ) -> Result<LoadResult, StoreError> {
        self.session.finish(invalid, duplicate, excluded)
    }
}

/// The merged history of one campaign, oldest first. Obtained from
/// [`super::api::HistoryStore::export_events`]; reads the store as it goes (a store error
/// ends nothing: it is yielded, then reading goes on with the next entry).
pub struct ExportEvents {
    events: Box<dyn Iterator<Item = Result<ExportEvent, StoreError>> + Send>,
}

impl ExportEvents {
    /// Wraps an engine's event stream.
    pub(crate) fn new(
        events: Box<dyn Iterator<Item = Result<ExportEvent, StoreError>> + Send>,
    ) -> ExportEvents {
        ExportEvents { events }
    }
}

impl std::fmt::Debug for ExportEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportEvents").finish_non_exhaustive()
    }
}

impl Iterator for ExportEvents {
    type Item = Result<ExportEvent, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.events.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgresql_address_opens_that_engine_and_its_password_stays_secret() {
        // Nothing listens on port 1 of the loopback: the connection is refused at once.
        for url in [
            "postgresql://volley:s3cret@127.0.0.1:1/mail",
            "postgres://u:p@ss@127.0.0.1:1/db?password=x&sslmode=disable",
        ] {
            let error = Store::open(Path::new(url)).unwrap_err().to_string();
            assert!(error.contains("could not connect"), "{error}");
            assert!(error.contains("@127.0.0.1:1/"), "{error}");
            assert!(
                !error.contains("s3cret")
                    && !error.contains("ss@")
                    && !error.contains("password=x"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_folder_opens_the_embedded_engine() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.path(), dir.path());
        assert!(format!("{store:?}").contains("SledStore"));
    }
}
