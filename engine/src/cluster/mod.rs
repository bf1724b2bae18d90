//! The cluster (issue 19): several `volley serve` nodes, and `volley send`, on one
//! PostgreSQL store sharing the work through leases in the database. A node holds
//! `domain:<recipient domain>` leases, the right to send to that domain for every campaign
//! (due retries included), so a domain's rate and connection caps hold for the cluster: one
//! node sends to it at a time.
//!
//! - `node`: registration, the heartbeat renewing the node and its leases, claiming and
//!   draining domains, the load lease, handing everything back when stopping;
//! - `share`: the fair-share arithmetic (pure);
//! - `filter`: `WorkFilter`, what the scheduler may take now (held, not draining, and
//!   renewed recently enough that the lease cannot have run out);
//! - `document` and `materialise`: campaign documents, the form in which a campaign handed
//!   to the cluster travels in the database, and how a node turns one back into a campaign
//!   file it can load and send, reading the secrets from its own machine.
//!
//! ```text
//! runtime ─► node ─heartbeat─► store (nodes, leases)
//!              │ grants / drains / losses
//!              ▼
//!          WorkFilter ◄─asks before each take─ dispatch (scheduler)
//! ```

mod document;
mod error;
mod filter;
mod materialise;
mod node;
mod share;

pub use document::{CampaignDocument, DocumentFile, SecretRef, DOCUMENT_FORMAT};
pub use error::{ClusterError, DocumentProblem};
pub(crate) use filter::WorkFilter;
pub use materialise::{check_secrets, is_materialised, materialise, MATERIALISED_DIR};
pub use node::NodeSettings;
pub(crate) use node::{default_name, host_name, Node};

#[cfg(test)]
mod tests;
