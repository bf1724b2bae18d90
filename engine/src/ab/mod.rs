//! A/B tests: which variant each recipient gets, and the statistics that turn each
//! variant's deliveries, opens, clicks and complaints into rates with intervals, a
//! significance test, the probability of being best and a verdict. Pure computation: a leaf
//! module that knows nothing of the store or the campaign file.

mod assign;
pub mod revenue;
mod stats;

pub use crate::model::{Exceeded, Limit, Metric, Reason, VariantCount, VariantRate, Vetoed};
pub use assign::Assigner;
pub use stats::{
    decide, needed_per_variant, prob_best, two_proportion_z, wilson, Rules, VariantInput,
    VariantStats, Verdict, VerdictKind,
};
