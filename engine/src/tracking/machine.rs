//! Human or machine: privacy proxies and security scanners fetch pixels and follow links
//! that no person looked at. Events they cause are stored flagged, and counted apart.

use crate::model::Millis;
use crate::store::{MachineReason, TrackKind};

/// By default, an open this soon after the first delivery attempt was fetched on arrival,
/// not read.
pub const TOO_SOON_MILLIS: Millis = 5_000;

/// User-agent fragments of security scanners, link checkers and HTTP libraries
/// (lowercase).
const SCANNERS: [&str; 24] = [
    "barracuda",
    "mimecast",
    "proofpoint",
    "safelinks",
    "microsoft office protection",
    "symantec",
    "forcepoint",
    "trend micro",
    "sophos",
    "fortiguard",
    "cisco",
    "ironport",
    "zscaler",
    "bot",
    "crawler",
    "spider",
    "scanner",
    "curl/",
    "wget/",
    "python-requests",
    "go-http-client",
    "okhttp",
    "java/",
    "libwww-perl",
];

/// Image proxies that fetch every image whether or not the message is read (lowercase).
const PREFETCHING_PROXIES: [&str; 2] = ["yahoomailproxy", "apple-mail-privacy"];

/// What a request looked like, for [`judge`].
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Open, click or unsubscribe.
    pub kind: TrackKind,
    /// A HEAD request.
    pub head: bool,
    /// Its `User-Agent`.
    pub user_agent: Option<&'a str>,
    /// The recipient's first delivery attempt.
    pub delivered_at: Option<Millis>,
    /// When it came.
    pub now: Millis,
}

/// Why this request looks machine-made, if it does; an open within `too_soon` milliseconds
/// of delivery counts as fetched on arrival.
pub fn judge(request: Request<'_>, too_soon: Millis) -> Option<MachineReason> {
    let Request {
        kind,
        head,
        user_agent,
        delivered_at,
        now,
    } = request;
    if head {
        return Some(MachineReason::HeadRequest);
    }
    let agent = user_agent.unwrap_or("").trim();
    let lower = agent.to_ascii_lowercase();
    if SCANNERS.iter().any(|s| lower.contains(s)) {
        return Some(MachineReason::Scanner);
    }
    if kind == TrackKind::Open {
        // Apple Mail Privacy Protection fetches through Apple's proxies with a bare
        // "Mozilla/5.0" (or no) user agent.
        let bare = agent.is_empty() || agent == "Mozilla/5.0";
        if bare || PREFETCHING_PROXIES.iter().any(|p| lower.contains(p)) {
            return Some(MachineReason::PrivacyProxy);
        }
        if delivered_at.is_some_and(|at| now.saturating_sub(at) < too_soon) {
            return Some(MachineReason::TooSoon);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROWSER: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15";

    #[test]
    fn people_and_machines_are_told_apart() {
        use MachineReason::*;
        use TrackKind::*;
        let at = 1_000_000;
        type Case<'a> = (
            TrackKind,
            bool,
            Option<&'a str>,
            Option<Millis>,
            Option<MachineReason>,
        );
        let cases: [Case<'_>; 12] = [
            (Open, false, Some(BROWSER), Some(at - 60_000), None),
            (Click, false, Some(BROWSER), Some(at - 1_000), None),
            (
                Open,
                false,
                Some("Mozilla/5.0"),
                Some(at - 60_000),
                Some(PrivacyProxy),
            ),
            (Open, false, None, Some(at - 60_000), Some(PrivacyProxy)),
            (
                Open,
                false,
                Some("Mozilla/5.0 (compatible; YahooMailProxy; https://help.yahoo.com)"),
                None,
                Some(PrivacyProxy),
            ),
            (
                Open,
                false,
                Some("Mozilla/5.0 (Windows NT 5.1) (via ggpht.com GoogleImageProxy)"),
                Some(at - 60_000),
                None,
            ),
            (Open, false, Some(BROWSER), Some(at - 2_000), Some(TooSoon)),
            (Open, true, Some(BROWSER), None, Some(HeadRequest)),
            (Click, true, Some(BROWSER), None, Some(HeadRequest)),
            (
                Click,
                false,
                Some("Mozilla/5.0 Barracuda Sentinel"),
                None,
                Some(Scanner),
            ),
            (
                Click,
                false,
                Some("python-requests/2.31"),
                None,
                Some(Scanner),
            ),
            (Click, false, Some("Mozilla/5.0"), None, None),
        ];
        for (kind, head, user_agent, delivered_at, want) in cases {
            let request = Request {
                kind,
                head,
                user_agent,
                delivered_at,
                now: at,
            };
            assert_eq!(
                judge(request, TOO_SOON_MILLIS),
                want,
                "{kind:?} {user_agent:?}"
            );
        }
    }
}
