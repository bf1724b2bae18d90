//! Volley's engine: everything between a campaign file and a delivered, DKIM-signed message.
//!
//! The pipeline, top to bottom (an arrow means "may `use`"):
//!
//! ```text
//! preflight ──► runtime, delivery, config, dkim
//! runtime ──► campaign, scheduler, schedule, compose, delivery, bounce, control, tracking,
//!             report, ab, store, shaping, config, dkim, smtp, model
//! report ──► ab, store, config, model          control ──► report, store, model
//! tracking ──► store, model                 schedule ──► config
//! scheduler ──► delivery, shaping, store, config, smtp, model
//! delivery ──► smtp, shaping, bounce, store, config, model
//! shaping ──► config, model                   campaign ──► config
//! compose ──► dkim                            bounce, store, ab ──► model
//! config ──► ab (its metric and rules)
//! leaves: model, dkim, smtp  (smtp and dkim know nothing of campaigns)
//! ```
//!
//! `tests/it/layering.rs` checks every module's `use crate::…` lines against this picture.
//!
//! Only `store` touches sled, only `smtp` speaks the SMTP protocol as a client, and the
//! engine never prints: the `volley` binary owns the terminal. The test SMTP and DNS servers
//! live apart, in the `volley-testkit` crate, a dev-dependency only.

pub mod ab;
pub mod bounce;
pub mod campaign;
pub mod compose;
pub mod config;
pub mod control;
pub mod delivery;
pub mod dkim;
pub mod model;
pub mod preflight;
pub mod report;
pub mod runtime;
pub mod schedule;
pub mod scheduler;
pub mod shaping;
pub mod smtp;
pub mod store;
pub mod tracking;

mod error;

pub use error::Error;
