//! Policy blocks in words: a destination whose circuit breaker tripped on replies saying the
//! sender is blocked, for `volley send`, `volley status` and `volley report`.

use super::numbers::counted;
use volley::model::{format_millis, now_millis, CampaignStop, DestinationBlock, StopMetric};

/// One block as a line: where, whether it still holds, how often, and the reply.
pub(crate) fn block_line(block: &DestinationBlock) -> String {
    let state = match block.lifted_at {
        Some(at) => format!("lifted at {}", format_millis(at)),
        None if block.is_paused(now_millis()) => {
            format!("suspended until {}", format_millis(block.paused_until))
        }
        None => format!(
            "paused until {}; the next send probes it",
            format_millis(block.paused_until)
        ),
    };
    format!(
        "policy block ({}) at {}: {state}; tripped at {} after {} ({}), last reply: {}",
        block.category,
        block.destination,
        format_millis(block.tripped_at),
        counted(block.replies, "block reply", "block replies"),
        counted(u64::from(block.trips), "trip", "trips"),
        block.last_reply
    )
}

/// Each block as a line, the first reply beside the last when they differ.
pub(crate) fn block_lines(blocks: &[DestinationBlock]) -> Vec<String> {
    let mut out = Vec::new();
    for block in blocks {
        out.push(block_line(block));
        if block.first_reply != block.last_reply {
            out.push(format!("  first reply: {}", block.first_reply));
        }
    }
    out
}

/// The campaign-wide stop as a line: which rate, how high, its limit, and what to do.
pub(crate) fn stop_line(stop: &CampaignStop) -> String {
    let what = match stop.metric {
        StopMetric::BounceRate => "bounce rate",
        StopMetric::ComplaintRate => "complaint rate",
    };
    format!(
        "  stopped: the {what} is {:.1} % after {}, over {} = {:.1} %; the remaining \
         recipients stay unsent (raise the limit to go on)",
        stop.rate * 100.0,
        counted(stop.sample, "message", "messages"),
        stop.metric.key(),
        stop.limit * 100.0
    )
}
