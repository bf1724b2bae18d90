//! `volley::Error`: every module's error under one roof, for callers of the public API.
//! Module errors are boxed to keep `Result<_, Error>` small.

use std::path::PathBuf;

/// Anything that stops the engine from doing what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The campaign file is invalid.
    #[error(transparent)]
    Config(Box<crate::config::ConfigError>),
    /// The recipient list could not be read.
    #[error(transparent)]
    Campaign(Box<crate::campaign::CampaignError>),
    /// The store failed.
    #[error(transparent)]
    Store(Box<crate::store::StoreError>),
    /// The `[audience]` rules could not be applied.
    #[error(transparent)]
    Audience(Box<crate::campaign::AudienceError>),
    /// A template or message could not be built.
    #[error(transparent)]
    Compose(Box<crate::compose::ComposeError>),
    /// A DKIM key could not be loaded or used.
    #[error(transparent)]
    Dkim(Box<crate::dkim::DkimError>),
    /// An SMTP session failed.
    #[error(transparent)]
    Smtp(Box<crate::smtp::SmtpError>),
    /// Delivery had to stop.
    #[error(transparent)]
    Delivery(Box<crate::delivery::DeliveryError>),
    /// The control socket failed.
    #[error(transparent)]
    Control(Box<crate::control::ControlError>),
    /// The tracking server failed.
    #[error(transparent)]
    Tracking(Box<crate::tracking::TrackingError>),
    /// A bounce classification rules file is invalid.
    #[error(transparent)]
    Rules(Box<crate::bounce::classify::RulesError>),
    /// Bounce messages could not be read.
    #[error(transparent)]
    Bounce(Box<crate::bounce::BounceError>),
    /// The bounce receiver could not start.
    #[error(transparent)]
    Receiver(Box<crate::bounce::receiver::ReceiverError>),
    /// A campaign document could not be made, read or materialised.
    #[error(transparent)]
    Cluster(Box<crate::cluster::ClusterError>),
    /// Events could not be written to a file.
    #[error("writing events to {file}: {source}")]
    Export {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A scheduled campaign has no edition due now.
    #[error("no edition of {campaign} is due{}{}", .missed.as_ref().map(|m| format!(" ({m} was missed: it fired more than the catch-up time ago)")).unwrap_or_default(), .next.as_ref().map(|n| format!("; the next fires at {n}")).unwrap_or_default())]
    NoEditionDue {
        /// The campaign id.
        campaign: String,
        /// The latest edition, skipped because it fired too long ago.
        missed: Option<String>,
        /// When the next firing is (RFC 3339).
        next: Option<String>,
    },
    /// Settings loaded for reading only (without their secrets) were given to a send.
    #[error("{file}: loaded without its secrets, for reading only; it cannot be sent")]
    ReadOnlySettings {
        /// The campaign file.
        file: PathBuf,
    },
    /// The campaign has no `[relay]` where one is needed.
    #[error("{file}: no [relay] section")]
    NoRelay {
        /// The campaign file.
        file: PathBuf,
    },
    /// No MX host of a domain could be reached for a single message.
    #[error("cannot deliver to {domain} directly: {reason}")]
    Direct {
        /// The recipient domain.
        domain: String,
        /// What DNS or the hosts answered.
        reason: String,
    },
    /// `test-send --row N` asked for a row the list does not have (or an invalid one).
    #[error("{recipients}: there is no valid data row {row}")]
    NoSuchRow {
        /// The CSV file.
        recipients: PathBuf,
        /// The 1-based data row asked for.
        row: usize,
    },
    /// `test-send --variant ID` named a variant the campaign does not have.
    #[error("{file}: campaign {campaign} has no variant {variant:?} (its variants: {})", known.join(", "))]
    UnknownVariant {
        /// The campaign file.
        file: PathBuf,
        /// The campaign id.
        campaign: String,
        /// The id asked for.
        variant: String,
        /// The variant ids it has.
        known: Vec<String>,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The campaign has not been sent from this store yet.
    #[error("campaign {campaign} has not been loaded into the store {store} yet (run `volley send` first)")]
    NotLoaded {
        /// The campaign id.
        campaign: String,
        /// The store (a folder, or a database's address without its password).
        store: PathBuf,
    },
    /// No campaign of this id is published on the (PostgreSQL) store, or the store keeps no
    /// published campaigns.
    #[error(
        "no campaign {campaign:?} is published on the store {store}{}",
        published_list(known)
    )]
    NotPublished {
        /// The id asked for.
        campaign: String,
        /// The store (its address without a password).
        store: PathBuf,
        /// The ids it has published.
        known: Vec<String>,
    },
    /// Another process is sending the campaign on this (PostgreSQL) store.
    #[error("campaign {campaign} is already being sent by another volley process{} on this store", .pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    AlreadySending {
        /// The campaign id.
        campaign: String,
        /// That process, when its lock file says.
        pid: Option<u32>,
    },
    /// An address given on the command line is not valid.
    #[error("{address}: {reason}")]
    BadAddress {
        /// The address as given.
        address: String,
        /// Why it was refused.
        reason: String,
    },
    /// The owner of the store answered with an error.
    #[error("the process owning the store answered: {0}")]
    Remote(String),
    /// The transactional lane's campaign id names a campaign of the store that is not a
    /// transactional lane (a list was loaded under it).
    #[error(
        "{file}: campaign {campaign} is already in the store {store} as a campaign with a list, \
         not a transactional lane; give the lane's file another [campaign] id"
    )]
    NotALane {
        /// The lane's campaign file.
        file: PathBuf,
        /// Its id.
        campaign: String,
        /// The store.
        store: PathBuf,
    },
}

/// `(published: a, b, c)` for [`Error::NotPublished`]: at most 20 ids, or a hint when none.
fn published_list(known: &[String]) -> String {
    if known.is_empty() {
        return " (it has none: a campaign is published by `volley send` on a PostgreSQL store)"
            .to_owned();
    }
    let shown: Vec<&str> = known.iter().take(20).map(String::as_str).collect();
    let more = known.len().saturating_sub(shown.len());
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(" (published: {}{more})", shown.join(", "))
}

/// `From` for each boxed module error, so `?` works on every module's `Result`.
macro_rules! boxed_from {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        $(impl From<$ty> for Error {
            fn from(error: $ty) -> Self {
                Error::$variant(Box::new(error))
            }
        })*
    };
}

boxed_from!(
    Rules(crate::bounce::classify::RulesError),
    Bounce(crate::bounce::BounceError),
    Receiver(crate::bounce::receiver::ReceiverError),
    Config(crate::config::ConfigError),
    Campaign(crate::campaign::CampaignError),
    Store(crate::store::StoreError),
    Audience(crate::campaign::AudienceError),
    Compose(crate::compose::ComposeError),
    Dkim(crate::dkim::DkimError),
    Smtp(crate::smtp::SmtpError),
    Delivery(crate::delivery::DeliveryError),
    Control(crate::control::ControlError),
    Tracking(crate::tracking::TrackingError),
    Cluster(crate::cluster::ClusterError),
);
