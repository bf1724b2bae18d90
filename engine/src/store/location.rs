//! Where a store is: a folder (the embedded sled engine) or a PostgreSQL database with the
//! settings to reach it, plus the local folder for the files a database cannot hold (the
//! bounce spool). Built by the configuration (`[store]`, `--store`) and given to
//! [`super::Store::open`].

use super::postgres::PgSettings;
use std::fmt;
use std::path::{Path, PathBuf};

/// The address schemes of the PostgreSQL engine.
const POSTGRES: &[&str] = &["postgresql://", "postgres://"];

/// Whether `text` is a PostgreSQL address (`postgresql://…` or `postgres://…`).
pub fn is_postgres_url(text: &str) -> bool {
    POSTGRES.iter().any(|scheme| text.starts_with(scheme))
}

/// Where a store is.
#[derive(Debug, Clone)]
pub enum StoreLocation {
    /// The embedded sled engine's folder (its local files live inside it).
    Folder(PathBuf),
    /// A PostgreSQL database.
    Postgres {
        /// How to reach it.
        settings: PgSettings,
        /// The local folder for files beside the database (the bounce spool); `None` when
        /// nothing named one (a bare address on the command line, without a campaign file).
        local: Option<PathBuf>,
    },
}

impl StoreLocation {
    /// A folder, or a PostgreSQL address (password from the address or the `PG*`
    /// environment) when `text` starts with `postgresql://` or `postgres://`.
    pub fn parse(text: &Path) -> StoreLocation {
        let shown = text.to_string_lossy();
        if is_postgres_url(&shown) {
            StoreLocation::Postgres {
                settings: PgSettings::new(shown.into_owned()),
                local: None,
            }
        } else {
            StoreLocation::Folder(text.to_path_buf())
        }
    }

    /// The sled folder, `None` for a database.
    pub fn folder(&self) -> Option<&Path> {
        match self {
            StoreLocation::Folder(folder) => Some(folder),
            StoreLocation::Postgres { .. } => None,
        }
    }

    /// Whether this is a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        matches!(self, StoreLocation::Postgres { .. })
    }

    /// The local folder for files beside the store (the bounce spool): the sled folder
    /// itself, or a database's local folder when one was named.
    pub fn local_dir(&self) -> Option<&Path> {
        match self {
            StoreLocation::Folder(folder) => Some(folder),
            StoreLocation::Postgres { local, .. } => local.as_deref(),
        }
    }

    /// Whether the store may hold something yet: a sled folder that exists; a database
    /// always may (only connecting tells).
    pub fn may_exist(&self) -> bool {
        match self {
            StoreLocation::Folder(folder) => folder.exists(),
            StoreLocation::Postgres { .. } => true,
        }
    }

    /// The store as messages name it: the folder, or the address without its password.
    pub fn shown(&self) -> PathBuf {
        match self {
            StoreLocation::Folder(folder) => folder.clone(),
            StoreLocation::Postgres { settings, .. } => PathBuf::from(settings.shown_url()),
        }
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.shown().display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_a_database_and_anything_else_a_folder() {
        let db = StoreLocation::parse(Path::new("postgresql://u:s3cret@127.0.0.1/db"));
        assert!(db.is_postgres() && db.folder().is_none() && db.local_dir().is_none());
        assert_eq!(db.to_string(), "postgresql://u@127.0.0.1/db");
        let folder = StoreLocation::parse(Path::new("postgresql.volley"));
        assert_eq!(folder.folder(), Some(Path::new("postgresql.volley")));
        assert_eq!(folder.local_dir(), Some(Path::new("postgresql.volley")));
    }
}
