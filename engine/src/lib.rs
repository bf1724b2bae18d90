//! Volley's engine: everything between a campaign file and a delivered, DKIM-signed message.
//!
//! The pipeline, top to bottom (an arrow means "may `use`"):
//!
//! ```text
//! runtime ──► api, preflight, recorder, campaign, dispatch, cluster, recurring, compose,
//!             delivery, bounce, control, tracking, webhooks, transactional, report, ab,
//!             warmup, store, shaping, config, smtp, model
//! api ──► tracking (its connection limits), control, recurring, transactional, cluster,
//!         report, campaign, bounce (provider webhooks: classify, VERP), webhooks (status),
//!         ab, store, config, metrics, model
//! transactional ──► compose, store, config, metrics, model
//! preflight ──► delivery, config, dkim
//! recorder ──► dispatch, delivery, shaping, store, metrics, model
//! compose ──► dispatch, delivery, bounce, tracking, store, config, dkim, smtp, model
//! report ──► ab, store, config, model          control ──► report, webhooks, warmup, store, model
//! tracking ──► store, config, metrics, model   recurring ──► config
//! webhooks ──► recurring, store, config, model (events out, signed)
//! dispatch ──► cluster, delivery, shaping, warmup, store, config, smtp, model
//! warmup ──► store, config, model (the warm-up ceilings and provider groups)
//! cluster ──► config, store, model (nodes, leases, the scheduler's filter, campaign documents)
//! delivery ──► smtp, shaping, bounce, store, config, model
//! shaping ──► config, model                    campaign ──► config, store, model
//! bounce, store, ab ──► model                  config ──► ab (its metric and rules), dkim, smtp, store (its location)
//! leaves: model, dkim, smtp, metrics  (smtp and dkim know nothing of campaigns; recorder,
//!         tracking and transactional feed metrics)
//! ```
//!
//! `runtime` is the only place that wires stages together, one module per command; nothing
//! imports it. `tests/it/layering.rs` checks every module's `use crate::…` lines against this
//! picture, that every module has a place in it, and that it has no cycles.
//!
//! Only `store` knows which database is behind it (everyone else holds a `store::Store`
//! handle on its interface, and only its `sled/` engine touches sled), only `smtp` speaks the
//! SMTP protocol as a client, and the engine never prints: the `volley` binary owns the
//! terminal. The test SMTP and DNS servers live apart, in the `volley-testkit` crate, a
//! dev-dependency only.

pub mod ab;
pub mod api;
pub mod bounce;
pub mod campaign;
pub mod cluster;
pub mod compose;
pub mod config;
pub mod control;
pub mod delivery;
pub mod dispatch;
pub mod dkim;
pub mod metrics;
pub mod model;
pub mod preflight;
pub mod recurring;
pub mod report;
pub mod runtime;
pub mod shaping;
pub mod smtp;
pub mod store;
pub mod tracking;
pub mod transactional;
pub mod warmup;
pub mod webhooks;

mod error;
mod recorder;

pub use error::Error;
