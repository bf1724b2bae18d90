//! The PostgreSQL engine (groundwork of issue 18): connecting, the schema and its versioned
//! migrations (`engine/migrations/`, applied by Volley itself through sqlx's `migrate!`), and
//! loading a list with binary `COPY`; and `PgEngine`, the storage interface on top of them
//! (every trait: campaigns, the queue, outcomes, late reports, suppression, tracking, A/B,
//! the event export and gc).
//!
//! Client: sqlx (pool, migrations, `COPY`, the `PG*` environment and `~/.pgpass`, TLS through
//! rustls with aws-lc). Everything here is async; nothing blocks a tokio worker.

mod ab;
mod append;
mod cluster;
mod conversions;
mod copy;
mod documents;
mod engine;
mod error;
mod export;
mod history;
mod load;
mod lookups;
mod outcomes;
mod queue;
mod relay_tallies;
mod relays;
mod reports;
mod session;
mod settings;
mod suppression;
mod topics;
mod track_reads;
mod tracking;
mod transfer;
mod transfer_import;
mod views;
mod warmup;
mod webhooks;

pub(crate) use engine::PgEngine;

pub use error::PgStoreError;
pub use load::{LoadBatch, LoadRow, PgLoadResult};
pub use settings::{PgSettings, PgTls};

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Connection;

/// The schema's migrations, compiled in from `engine/migrations/`.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// An open PostgreSQL store: a pool of connections. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The URL without its password, for messages.
    url: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("url", &self.url).finish()
    }
}

impl PgStore {
    /// Connects (one connection first, so a refused connection or a wrong password fails at
    /// once with a clear error), then opens the pool. Does not touch the schema: see
    /// [`PgStore::migrate`].
    pub async fn connect(settings: &PgSettings) -> Result<PgStore, PgStoreError> {
        let url = settings.shown_url();
        let options = settings.options()?;
        let probe = tokio::time::timeout(
            settings.connect_timeout,
            sqlx::PgConnection::connect_with(&options),
        )
        .await
        .map_err(|_| PgStoreError::Connect {
            url: url.clone(),
            reason: format!("no answer within {:?}", settings.connect_timeout),
            source: None,
        })?
        .map_err(|source| connect_error(&url, source))?;
        // A clean goodbye; the pool makes its own connections.
        let _ = probe.close().await;
        let pool = pool_options(settings).connect_lazy_with(options);
        Ok(PgStore { pool, url })
    }

    /// Creates the schema or brings it up to date; a second run changes nothing. Several
    /// processes may run it at once (the migrator takes an advisory lock).
    pub async fn migrate(&self) -> Result<(), PgStoreError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|source| PgStoreError::Migrate {
                url: self.url.clone(),
                source,
            })
    }

    /// The store URL, password removed.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The pool, for the engine's own queries.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Wraps a failed statement with the store and what was being done.
    pub(crate) fn query_error(&self, what: impl Into<String>, source: sqlx::Error) -> PgStoreError {
        PgStoreError::Query {
            url: self.url.clone(),
            what: what.into(),
            source,
        }
    }
}

fn pool_options(settings: &PgSettings) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(settings.max_connections.max(1))
        .acquire_timeout(settings.connect_timeout)
}

/// A connection failure in words: refused, authentication, TLS, or what the client said.
fn connect_error(url: &str, source: sqlx::Error) -> PgStoreError {
    let reason = match &source {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused (is PostgreSQL running there, on that port?)".to_owned()
        }
        sqlx::Error::Database(db) if db.code().as_deref() == Some("28P01") => {
            "password authentication failed (check password_file, password_env or PGPASSWORD)"
                .to_owned()
        }
        sqlx::Error::Database(db) if db.code().as_deref() == Some("3D000") => {
            format!("the database does not exist: {}", db.message())
        }
        sqlx::Error::Tls(e) => format!("TLS failed: {e}"),
        sqlx::Error::Io(io) if io.get_ref().is_some_and(|e| e.is::<rustls::Error>()) => {
            format!("TLS failed: {io}")
        }
        other => settings::redact(&other.to_string()),
    };
    PgStoreError::Connect {
        url: url.to_owned(),
        reason,
        source: Some(source),
    }
}

#[cfg(test)]
pub(in crate::store) mod tests;
