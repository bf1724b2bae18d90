//! Compose: turn a campaign's templates and one recipient's data into a complete, signed
//! message, with its tracking links, open pixel and `List-Unsubscribe` header fields.
//!
//! In the pipeline, the composer pool threads call [`Composer::compose`] for each recipient:
//! it renders the subject and bodies ([`Templates`], minijinja, compiled once), builds the MIME
//! message (mail-builder: `multipart/alternative` when both bodies exist, RFC 2047 headers,
//! quoted-printable or base64 bodies as needed) and prepends the DKIM signature(s) from a
//! [`crate::dkim::Signer`]. The bytes then go to delivery. Merge values can never inject
//! header fields: every rendered header value is sanitised.
//!
//! `CampaignMessages` prepares a campaign once (one composer per variant, tracked links
//! rewritten, keys loaded); `tracked` puts each recipient's tracking tokens and unsubscribe
//! headers in; `stage` is the thread pool of a running send. `plain` generates the text part
//! of an HTML-only message from its rendered HTML; `view` prepares what the tracking server
//! needs to show a message in a browser.

mod campaign;
mod error;
pub mod links;
mod message;
mod plain;
mod stage;
mod templates;
mod tracked;
pub mod transactional;
mod view;

pub(crate) use campaign::CampaignMessages;
pub(crate) use stage::{spawn_composers, ComposeStage, Identity, Stages};

pub use error::ComposeError;
pub use message::{Composed, Composer, Mailbox, MessageSettings};
pub use templates::{template_variables, TemplateSource, Templates};

#[cfg(test)]
mod tests;
