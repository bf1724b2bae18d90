//! Errors of the PostgreSQL engine: what failed, against which store (its URL without the
//! password).

/// A failure of the PostgreSQL store. The URL it names never contains a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgStoreError {
    /// The settings could not be turned into connection options (a malformed URL, a password
    /// file that cannot be read, a password variable that is not set).
    #[error("store {url}: {reason}")]
    Settings {
        /// The store URL, password removed.
        url: String,
        /// What is wrong, naming the setting.
        reason: String,
    },
    /// The database could not be reached or refused us.
    #[error("store {url}: could not connect: {reason}")]
    Connect {
        /// The store URL, password removed.
        url: String,
        /// Refused, timed out, authentication failed…, in words.
        reason: String,
        /// What the client said, if anything.
        #[source]
        source: Option<sqlx::Error>,
    },
    /// The schema could not be created or migrated.
    #[error("store {url}: could not migrate the schema: {source}")]
    Migrate {
        /// The store URL, password removed.
        url: String,
        /// What the migrator said.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A statement failed.
    #[error("store {url}: {what} failed: {source}")]
    Query {
        /// The store URL, password removed.
        url: String,
        /// What was being done ("load campaign spring: COPY").
        what: String,
        /// What the server or the client said.
        #[source]
        source: sqlx::Error,
    },
    /// A recipient row cannot be stored (PostgreSQL text cannot hold a NUL byte).
    #[error("line {line}: field {field}: {reason}")]
    Row {
        /// The CSV line.
        line: u64,
        /// The column name.
        field: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A stored row cannot be read back (a value outside what Volley writes).
    #[error("store {url}: damaged {what}")]
    Damaged {
        /// The store URL, password removed.
        url: String,
        /// Which record and what is wrong with it ("recipient record: unreadable state").
        what: String,
    },
    /// A database cannot be copied into a store folder by the engine itself.
    #[error(
        "store {url}: a PostgreSQL store is not copied into a folder ({}) by gc; \
         use `volley store copy --from <database URL> --to <folder>` to move it",
        target.display()
    )]
    NoFolderCopy {
        /// The store URL, password removed.
        url: String,
        /// The folder asked for.
        target: std::path::PathBuf,
    },
    /// A load could not go on: its task ended early.
    #[error("store {url}: load campaign {campaign}: {reason}")]
    LoadEnded {
        /// The store URL, password removed.
        url: String,
        /// The campaign id.
        campaign: String,
        /// Why, in words.
        reason: String,
    },
    /// The campaign was loaded already (a re-run never loads again).
    #[error("store {url}: campaign {campaign} is loaded already")]
    AlreadyLoaded {
        /// The store URL, password removed.
        url: String,
        /// The campaign id.
        campaign: String,
    },
}
