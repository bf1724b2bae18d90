//! The campaign-wide stop: when a campaign's bounce or complaint rate passes a limit
//! (`[bounces] max_bounce_rate`, `max_complaint_rate`), after a minimum sample, the send
//! stops and the campaign's remaining recipients stay where they are. A pure check on the
//! counts, so a send, `volley status` and the next send all judge alike.

use serde::{Deserialize, Serialize};

use super::Counts;

/// The limits; both rates off by default.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StopLimits {
    /// Bounced / (delivered + bounced) above which the campaign stops (a fraction).
    pub max_bounce_rate: Option<f64>,
    /// Complaints / delivered above which the campaign stops (a fraction).
    pub max_complaint_rate: Option<f64>,
    /// Outcomes (delivered + bounced, or delivered for complaints) needed before a rate is
    /// judged; default 500.
    pub min_sample: u64,
}

// invariant: the rates are validated finite fractions (never NaN), so equality is total.
impl Eq for StopLimits {}

impl Default for StopLimits {
    fn default() -> Self {
        StopLimits {
            max_bounce_rate: None,
            max_complaint_rate: None,
            min_sample: 500,
        }
    }
}

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

impl StopLimits {
    /// True when neither rate is limited.
    pub fn is_off(&self) -> bool {
        self.max_bounce_rate.is_none() && self.max_complaint_rate.is_none()
    }

    /// The stop `counts` and `complaints` call for, if any: the bounce rate first.
    pub fn check(&self, counts: &Counts, complaints: u64) -> Option<CampaignStop> {
        let ended = counts.delivered + counts.bounced;
        let bounce = self.max_bounce_rate.and_then(|limit| {
            let rate = counts.bounced as f64 / ended.max(1) as f64;
            (ended >= self.min_sample && rate > limit).then_some(CampaignStop {
                metric: StopMetric::BounceRate,
                rate,
                limit,
                sample: ended,
            })
        });
        bounce.or_else(|| {
            let limit = self.max_complaint_rate?;
            let delivered = counts.delivered;
            let rate = complaints as f64 / delivered.max(1) as f64;
            (delivered >= self.min_sample && rate > limit).then_some(CampaignStop {
                metric: StopMetric::ComplaintRate,
                rate,
                limit,
                sample: delivered,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(delivered: u64, bounced: u64) -> Counts {
        Counts {
            delivered,
            bounced,
            ..Counts::default()
        }
    }

    #[test]
    fn a_rate_past_its_limit_stops_only_after_the_minimum_sample() {
        let limits = StopLimits {
            max_bounce_rate: Some(0.05),
            max_complaint_rate: Some(0.003),
            min_sample: 100,
        };
        assert_eq!(limits.check(&counts(50, 40), 0), None, "too few yet");
        let stop = limits.check(&counts(90, 10), 0).unwrap();
        assert_eq!(stop.metric, StopMetric::BounceRate);
        assert_eq!((stop.rate, stop.sample), (0.1, 100));
        assert_eq!(limits.check(&counts(96, 4), 0), None, "4 % is within 5 %");
        assert_eq!(limits.check(&counts(99, 0), 5), None, "too few delivered");
        let stop = limits.check(&counts(1_000, 0), 4).unwrap();
        assert_eq!(stop.metric, StopMetric::ComplaintRate);
        assert_eq!(stop.metric.key(), "bounces.max_complaint_rate");
        assert!(StopLimits::default().is_off());
        assert_eq!(
            StopLimits::default().check(&counts(0, 10_000), 10_000),
            None
        );
    }
}
