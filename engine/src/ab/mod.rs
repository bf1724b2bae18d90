//! A/B tests: which variant each recipient gets, and the statistics that turn each
//! variant's deliveries, opens, clicks and complaints into rates with intervals, a
//! significance test, the probability of being best and a verdict. Pure computation: a leaf
//! module that knows nothing of the store or the campaign file.
//!
//! `verdict` holds the rules and `decide`; `sequential` (the default, valid at every look) and
//! `fixed` (one look) compare the variants; `guardrail` vetoes a variant on evidence;
//! `stats` holds the shared numerics.

mod assign;
mod fixed;
pub mod guardrail;
pub mod revenue;
pub mod sequential;
mod stats;
mod verdict;

pub use crate::model::{Exceeded, Limit, Metric, Reason, VariantCount, VariantRate, Veto, Vetoed};
pub use assign::Assigner;
pub use guardrail::GuardrailTest;
pub use stats::{needed_per_variant, prob_best, two_proportion_z, wilson};
pub use verdict::{
    decide, decide_without_prob_best, Comparison, Method, Rules, Stop, VariantInput, VariantStats,
    Verdict, VerdictKind,
};
