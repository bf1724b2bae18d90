//! Volley's engine: everything between a campaign file and a delivered, DKIM-signed message.
//!
//! The pipeline, top to bottom (an arrow means "may `use`"):
//!
//! ```text
//! preflight ──► runtime, delivery, config, dkim
//! runtime ──► campaign, dispatch, recurring, compose, delivery, bounce, control, tracking,
//!             report, ab, store, shaping, config, dkim, smtp, sink (the bounce listener), model
//! report ──► ab, store, config, model          control ──► report, store, model
//! tracking ──► store, model                 recurring ──► config
//! dispatch ──► delivery, shaping, store, config, smtp, model
//! delivery ──► smtp, shaping, bounce, store, config, model
//! shaping ──► config, model                   campaign ──► config
//! compose ──► dkim                            bounce, store, ab ──► model
//! config ──► ab (its metric and rules)
//! leaves: model, dkim, smtp, sink, nameserver  (smtp, dkim, sink and nameserver know
//!         nothing of campaigns)
//! ```
//!
//! `tests/it/layering.rs` checks every module's `use crate::…` lines against this picture.
//!
//! Only `store` touches sled, only `smtp` speaks the SMTP protocol as a client, and the
//! engine never prints: the `volley` binary owns the terminal.

pub mod ab;
pub mod bounce;
pub mod campaign;
pub mod compose;
pub mod config;
pub mod control;
pub mod delivery;
pub mod dispatch;
pub mod dkim;
pub mod model;
pub mod nameserver;
pub mod preflight;
pub mod recurring;
pub mod report;
pub mod runtime;
pub mod shaping;
pub mod sink;
pub mod smtp;
pub mod store;
pub mod tracking;

mod error;

pub use error::Error;
