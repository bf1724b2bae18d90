//! What can go wrong making, reading or materialising a campaign document.

use std::path::PathBuf;

/// A campaign document could not be made, read or written out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// A file the campaign names could not be read while publishing it.
    #[error("{campaign_file}: {key} {path}: {source}")]
    Read {
        /// The campaign file.
        campaign_file: PathBuf,
        /// The TOML key naming the file (`campaign.html`, `variant[1].text`).
        key: String,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The campaign file is not TOML (it was validated before, so it changed meanwhile).
    #[error("{campaign_file}: {source}")]
    Toml {
        /// The campaign file.
        campaign_file: PathBuf,
        /// The parser's error.
        source: Box<toml::de::Error>,
    },
    /// A stored document cannot be used.
    #[error("campaign document {campaign}: {problem}")]
    BadDocument {
        /// The campaign id.
        campaign: String,
        /// What is wrong with it.
        problem: DocumentProblem,
    },
    /// A materialised file could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A secret the campaign needs is not at hand on this node.
    #[error("node {node} cannot send campaign {campaign}: {key} {place}: {reason}")]
    MissingSecret {
        /// This node's name.
        node: String,
        /// The campaign id.
        campaign: String,
        /// The TOML key naming the secret (`dkim[0].key_file`, `relay.password_env`).
        key: String,
        /// Where it is looked for: the file, or the environment variable.
        place: String,
        /// Why it cannot be read (`not found`, `not set`, `permission denied`).
        reason: String,
    },
}

/// Why a stored campaign document cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DocumentProblem {
    /// Its JSON does not parse.
    #[error("not a campaign document: {0}")]
    Json(String),
    /// A newer Volley wrote it.
    #[error("format {found} (this volley reads format {known})")]
    Format {
        /// The format it has.
        found: u32,
        /// The format this build reads.
        known: u32,
    },
    /// Its id is not a campaign id.
    #[error("{0:?} is not a campaign id")]
    Id(String),
    /// A file name that could reach outside its folder.
    #[error("file name {0:?} is not allowed")]
    FileName(String),
    /// A file it lists is not stored.
    #[error("its file {0} is missing")]
    MissingFile(String),
    /// Its files do not add up to its digest.
    #[error("its files do not match its digest")]
    Digest,
}
