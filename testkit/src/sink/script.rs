//! Scripted recipient behaviour: the local part's prefix tells the sink how to treat a
//! recipient, so a test states its scenario in the address (`bounce-7@example.com`).

/// What the sink does for one recipient, chosen by the local part's prefix
/// (case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Script {
    /// Anything else: accepted.
    Accept,
    /// `bounce…@`: RCPT gets `550 5.1.1 <addr>: user unknown`.
    Bounce,
    /// `blocked…@`: RCPT gets `550 5.7.1 <addr>: message blocked by policy`, every time (a
    /// soft bounce: the address is not gone).
    Blocked,
    /// `defer…@`: RCPT gets `451 4.7.1` the first time the address is seen.
    Defer,
    /// `drop…@`: the connection closes in the middle of DATA the first time.
    Drop,
    /// `slow…@`: the final reply after the body waits `slow_delay`.
    Slow,
    /// `421…@`: RCPT gets `421 4.7.0 closing` and the connection closes, first time only.
    Close421,
    /// `reject…@`: the body is refused with `554 5.7.1` every time.
    Reject,
    /// `grey…@`: RCPT gets `451 4.7.1 greylisted` until the address was first seen at least
    /// `greylist_delay` ago.
    Grey,
    /// `throttle…@`: RCPT gets `450 4.7.0 too many messages` the first time the address is
    /// seen.
    Throttle,
    /// `mail550…@`: the MAIL FROM of a transaction whose pipelined RCPTs name the address
    /// gets `550 5.7.1`, every time (the sink sees the RCPTs only when they came in the
    /// same write as MAIL, that is with PIPELINING).
    MailRefused,
    /// `data554…@`: DATA gets `554 5.7.1` instead of 354 when the address is among the
    /// accepted recipients, every time (BDAT has no such step and is not refused).
    DataRefused,
    /// `stall…@`: the final reply after the body waits `slow_delay` the first time the
    /// address is seen at that point; the message is still accepted after the wait.
    Stall,
    /// `data451…@`: the final reply after the body is `451 4.3.0` the first time the
    /// address gets there; accepted afterwards.
    DataDeferred,
}

const PREFIXES: [(&str, Script); 13] = [
    ("bounce", Script::Bounce),
    ("blocked", Script::Blocked),
    ("defer", Script::Defer),
    ("drop", Script::Drop),
    ("slow", Script::Slow),
    ("421", Script::Close421),
    ("reject", Script::Reject),
    ("grey", Script::Grey),
    ("throttle", Script::Throttle),
    ("mail550", Script::MailRefused),
    ("data554", Script::DataRefused),
    ("data451", Script::DataDeferred),
    ("stall", Script::Stall),
];

/// The script for `address` (a bare `local@domain`, no angle brackets).
pub(crate) fn script_for(address: &str) -> Script {
    let local = address.rsplit_once('@').map_or(address, |(local, _)| local);
    let local = local.as_bytes();
    PREFIXES
        .iter()
        .find(|(prefix, _)| {
            local.len() >= prefix.len()
                && local[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        })
        .map_or(Script::Accept, |(_, script)| *script)
}

/// The domain of `address`, lower-cased; empty when there is none.
pub(crate) fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map_or(String::new(), |(_, domain)| domain.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_part_prefix_picks_the_script() {
        let cases = [
            ("ok@example.com", Script::Accept),
            ("bounce@example.com", Script::Bounce),
            ("Bounce-12@example.com", Script::Bounce),
            ("blocked-1@example.com", Script::Blocked),
            ("block@example.com", Script::Accept),
            ("DEFER.x@example.com", Script::Defer),
            ("drop-in-data@example.com", Script::Drop),
            ("slow@example.com", Script::Slow),
            ("421@example.com", Script::Close421),
            ("reject1@example.com", Script::Reject),
            ("grey@example.com", Script::Grey),
            ("Greylist-3@example.com", Script::Grey),
            ("throttle.9@example.com", Script::Throttle),
            ("mail550-1@example.com", Script::MailRefused),
            ("MAIL550@example.com", Script::MailRefused),
            ("data554.x@example.com", Script::DataRefused),
            ("stall-2@example.com", Script::Stall),
            ("data451-3@example.com", Script::DataDeferred),
            ("mail@example.com", Script::Accept),
            ("data@example.com", Script::Accept),
            ("stal@example.com", Script::Accept),
            ("gray@example.com", Script::Accept),
            ("user@bounce.example.com", Script::Accept),
            ("nobody", Script::Accept),
            ("", Script::Accept),
        ];
        for (address, want) in cases {
            assert_eq!(script_for(address), want, "{address}");
        }
    }

    #[test]
    fn domain_is_lower_cased() {
        assert_eq!(domain_of("a@Example.COM"), "example.com");
        assert_eq!(domain_of("a"), "");
    }
}
