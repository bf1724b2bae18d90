//! Why a campaign stopped: its bounce or complaint rate passed a limit (`[bounces]
//! max_bounce_rate`, `max_complaint_rate`) after a minimum sample. `runtime` judges the
//! counts; sends and `volley status` report the fact.

use serde::{Deserialize, Serialize};

/// Which rate stopped a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopMetric {
    /// Bounces per attempt that ended (delivered or bounced).
    BounceRate,
    /// Complaints per delivered message.
    ComplaintRate,
}

impl StopMetric {
    /// The campaign-file key of its limit.
    pub fn key(self) -> &'static str {
        match self {
            StopMetric::BounceRate => "bounces.max_bounce_rate",
            StopMetric::ComplaintRate => "bounces.max_complaint_rate",
        }
    }
}

/// Why a campaign stopped: the rate, its limit and the sample it was judged on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CampaignStop {
    /// Which rate.
    pub metric: StopMetric,
    /// The rate seen (a fraction).
    pub rate: f64,
    /// The limit it passed (a fraction).
    pub limit: f64,
    /// The outcomes it was judged on.
    pub sample: u64,
}
