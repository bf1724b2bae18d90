//! Bounces: classifying every failure, reading delivery status notifications and complaints,
//! and tying each one to the recipient it concerns.

pub mod classify;
pub mod dsn;
pub mod error;

pub use error::BounceError;
pub mod mailbox;
