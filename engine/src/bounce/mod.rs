//! Bounces: classifying every failure (`classify`), reading delivery status notifications
//! and complaints (`dsn`, from files, mboxes and Maildirs via `mailbox`), reports a sending
//! provider's webhook gives field by field (`reported`), and signed VERP return paths
//! (`verp`) that tie a late bounce to exactly one recipient.

pub mod classify;
pub mod dsn;
pub mod error;
pub mod mailbox;
pub mod receiver;
pub mod reported;
pub mod verp;

pub use classify::{Classification, Classifier};
pub use dsn::{parse_message, Action, BounceReport, BouncedRecipient, ReportKind};
pub use error::BounceError;
pub use mailbox::{read_messages, SourcedMessage};
pub use reported::Reported;
pub use verp::Verp;
