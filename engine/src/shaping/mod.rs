//! Shaping: how fast and how wide Volley may send to each destination. Pure decisions and
//! small gates, used by the scheduler (what to feed, when to open a connection) and by delivery
//! (when the next message may go):
//!
//! - [`ShapingPolicy`] picks the `[shaping.*]` rule of a destination from its domain and MX
//!   hosts;
//! - [`Backoff`] is one destination's adaptive state: throttling replies cut its rate and
//!   connection count (multiplicative decrease), deliveries win them back step by step
//!   (additive increase), and repeated throttling suspends it for a while;
//! - [`Breaker`] is one destination's circuit breaker on policy blocks: replies saying the
//!   sender is blocked trip it past a threshold and suspend the destination;
//! - [`RateGate`] paces messages or connections at a rate that can change while it is used;
//! - [`RelayBudget`] counts what went to a relay in the last hour and day, so a provider's
//!   caps hold across runs.
//!
//! A leaf but for `config` (its rule types) and `model` (the clock unit).

mod backoff;
mod breaker;
mod budget;
mod gate;
mod policy;

pub use backoff::{Backoff, BackoffChange, HOLD};
pub use breaker::{BlockVerdict, Breaker};
pub use budget::{BudgetExhausted, RelayBudget, RelayCaps, SHARE_RETRY};
pub use gate::RateGate;
pub use policy::ShapingPolicy;
