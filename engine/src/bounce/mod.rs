//! Bounces: classifying every failure, reading delivery status notifications and complaints,
//! and tying each one to the recipient it concerns.

pub mod classify;
pub mod dsn;
mod error;
pub mod mailbox;
pub mod verp;

pub use classify::{Classification, Classifier};

pub use verp::Verp;
