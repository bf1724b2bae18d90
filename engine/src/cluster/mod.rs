//! The cluster (issue 19): several `volley serve` nodes, and `volley send`, sharing one
//! PostgreSQL store. Here: campaign documents, the form in which a campaign handed to the
//! cluster travels in the database (`document`), and how a node turns one back into a
//! campaign file it can load and send, reading the secrets from its own machine
//! (`materialise`).
//!
//! Sits beside `config` in the pipeline: it reads campaign files and writes them back; the
//! store keeps its documents opaquely (`store::CampaignDocuments`), and `runtime` decides when
//! to publish and when to send.

mod document;
mod error;
mod materialise;

pub use document::{CampaignDocument, DocumentFile, SecretRef, DOCUMENT_FORMAT};
pub use error::{ClusterError, DocumentProblem};
pub use materialise::{check_secrets, is_materialised, materialise, MATERIALISED_DIR};

#[cfg(test)]
mod tests;
