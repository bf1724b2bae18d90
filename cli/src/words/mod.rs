//! Words for people: every number shown to a person is formatted in [`numbers`], and the
//! engine's facts (an A/B verdict's [`volley::ab::Reason`], the limits a variant exceeded)
//! become sentences in [`verdict`]. [`json`] gives the machine-readable outputs their
//! sentences beside the facts.

pub(crate) mod blocks;
pub(crate) mod json;
pub(crate) mod numbers;
pub(crate) mod verdict;
