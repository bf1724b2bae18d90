//! A receiver that starts blocking the sender: after a number of accepted messages, every
//! RCPT for one recipient domain is refused with a policy block (by default Gmail's
//! "likely unsolicited mail" reply), until the test lifts it. Counted in
//! `SinkStats::policy_blocked`.

/// Gmail's reply to mail it judges unsolicited, as it sends it
/// (support.google.com/mail/?p=UnsolicitedMessageError).
pub const GMAIL_UNSOLICITED: &str = "550 5.7.1 [192.0.2.1] Our system has detected that this \
    message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this \
    message has been blocked. For more information, go to \
    https://support.google.com/mail/?p=UnsolicitedMessageError";

/// When and how the sink starts blocking one domain. Used as `SinkConfig::policy_block`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyBlock {
    /// The recipient domain refused (lower case).
    pub domain: String,
    /// Messages the sink accepts (over all domains) before it starts refusing.
    pub after: u64,
    /// The whole reply line, code and enhanced code included.
    pub reply: String,
}

impl PolicyBlock {
    /// Blocks `domain` with Gmail's unsolicited-mail reply once `after` messages arrived.
    pub fn gmail(domain: &str, after: u64) -> PolicyBlock {
        PolicyBlock {
            domain: domain.to_ascii_lowercase(),
            after,
            reply: GMAIL_UNSOLICITED.to_owned(),
        }
    }
}
