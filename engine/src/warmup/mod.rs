//! Warm-up (`[warmup]`): a daily ceiling per mailbox provider for a new sending domain or
//! address. Pure decisions, used by the scheduler's gate (`dispatch/warmup.rs`) and by
//! `volley status`:
//!
//! - [`ProviderTable`] says which provider a recipient domain belongs to, by its MX host
//!   names (direct delivery) or by the domain itself (through a relay, or when no MX
//!   pattern matched);
//! - [`next_ceiling`] computes a day's ceiling from the day before (grow after a clean day,
//!   hold after throttling, halve after policy blocks, complaints or bounces above their
//!   rates; never below the floor; done at `max`);
//! - [`today`] and [`day_start`] put the injectable clock's "now" into days of the
//!   warm-up's zone; [`plan`] gives each provider's ceiling for a day from the stored days.

mod ceiling;
mod provider;

pub use ceiling::{day_start, next_ceiling, plan, today, Ceiling, Change, ProviderPlan};
pub use provider::ProviderTable;
