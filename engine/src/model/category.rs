//! The bounce reason vocabulary ([`Category`]).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a delivery failed, as far as the reply (or a later bounce report) tells: the reason
/// vocabulary shown in reports, events and `volley bounces parse`. Only
/// [`Category::means_gone`] reasons are hard (the address or its domain no longer takes mail).
///
/// Stores encode the variant's position, so new variants go at the end; the names changed
/// once (`invalid_recipient` became `user_unknown` and so on) and the old names are still
/// read as aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Category {
    /// `user_unknown`: the mailbox does not exist (5.1.1 and friends). Hard.
    #[serde(rename = "user_unknown", alias = "invalid_recipient")]
    InvalidRecipient,
    /// `mailbox_full`: the mailbox is over quota. Soft.
    #[serde(rename = "mailbox_full")]
    MailboxFull,
    /// `mailbox_disabled`: the mailbox exists but is disabled for good or has moved. Hard.
    #[serde(rename = "mailbox_disabled")]
    MailboxDisabled,
    /// `policy`: refused by the receiver's policy (5.7.x without a more precise reason). Soft.
    #[serde(rename = "policy", alias = "policy_block")]
    PolicyBlock,
    /// `security`: SPF, DKIM, DMARC, TLS or other authentication failed. Soft.
    #[serde(rename = "security", alias = "auth_failure")]
    AuthFailure,
    /// `throttled`: the receiver is rate limiting us (the manifest's `rate_limited`). Soft.
    #[serde(rename = "throttled", alias = "rate_limited")]
    Throttled,
    /// `dns_routing`: the domain or its mail servers could not be found (read from older
    /// stores; new failures say `no_such_domain` or `network`). Hard.
    #[serde(rename = "dns_routing")]
    DnsRouting,
    /// `content`: the content was refused (virus, bad links, attachments). Soft.
    #[serde(rename = "content", alias = "content_rejected")]
    ContentRejected,
    /// `message_too_big`: larger than the receiver accepts. Soft.
    #[serde(rename = "message_too_big", alias = "message_too_large")]
    MessageTooLarge,
    /// `other`: anything else. Soft.
    #[serde(rename = "other")]
    Other,
    /// `no_such_domain`: the recipient's domain does not exist or takes no mail. Hard.
    #[serde(rename = "no_such_domain")]
    NoSuchDomain,
    /// `blocked`: the sending IP or domain is on a blocklist or blocked for reputation. Soft.
    #[serde(rename = "blocked")]
    Blocked,
    /// `spam`: the message was judged to be spam. Soft.
    #[serde(rename = "spam")]
    Spam,
    /// `filtered`: a recipient-side filter or rule refused it. Soft.
    #[serde(rename = "filtered")]
    Filtered,
    /// `expired`: retried until the reporting server gave up. Soft.
    #[serde(rename = "expired")]
    Expired,
    /// `network`: connection refused, timed out, DNS lookup failure. Soft.
    #[serde(rename = "network")]
    Network,
    /// `system_error`: the receiving system is broken (mail loop, misconfiguration). Soft.
    #[serde(rename = "system_error")]
    SystemError,
}

impl Category {
    /// Every category, in display order.
    pub const ALL: [Category; 17] = [
        Category::InvalidRecipient,
        Category::NoSuchDomain,
        Category::MailboxDisabled,
        Category::MailboxFull,
        Category::MessageTooLarge,
        Category::Blocked,
        Category::PolicyBlock,
        Category::Spam,
        Category::Filtered,
        Category::Throttled,
        Category::AuthFailure,
        Category::Expired,
        Category::Network,
        Category::SystemError,
        Category::ContentRejected,
        Category::DnsRouting,
        Category::Other,
    ];

    /// The snake_case reason name used in JSON, reports, events and rule files.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::InvalidRecipient => "user_unknown",
            Category::MailboxFull => "mailbox_full",
            Category::MailboxDisabled => "mailbox_disabled",
            Category::PolicyBlock => "policy",
            Category::AuthFailure => "security",
            Category::Throttled => "throttled",
            Category::DnsRouting => "dns_routing",
            Category::ContentRejected => "content",
            Category::MessageTooLarge => "message_too_big",
            Category::Other => "other",
            Category::NoSuchDomain => "no_such_domain",
            Category::Blocked => "blocked",
            Category::Spam => "spam",
            Category::Filtered => "filtered",
            Category::Expired => "expired",
            Category::Network => "network",
            Category::SystemError => "system_error",
        }
    }

    /// The category named `name`: a reason name, or one of the names used before the
    /// reason vocabulary (`invalid_recipient`, `policy_block`, `auth_failure`,
    /// `content_rejected`, `message_too_large`) or `rate_limited` for `throttled`.
    pub fn from_name(name: &str) -> Option<Category> {
        let legacy = match name {
            "invalid_recipient" => Some(Category::InvalidRecipient),
            "policy_block" => Some(Category::PolicyBlock),
            "auth_failure" => Some(Category::AuthFailure),
            "content_rejected" => Some(Category::ContentRejected),
            "message_too_large" => Some(Category::MessageTooLarge),
            "rate_limited" => Some(Category::Throttled),
            _ => None,
        };
        legacy.or_else(|| Category::ALL.into_iter().find(|c| c.as_str() == name))
    }

    /// True for the reasons that say the address is gone: the mailbox or its domain does
    /// not exist or no longer accepts mail. Only these make a permanent failure hard.
    pub fn means_gone(self) -> bool {
        matches!(
            self,
            Category::InvalidRecipient
                | Category::NoSuchDomain
                | Category::MailboxDisabled
                | Category::DnsRouting
        )
    }
}

impl Category {
    /// True for the reasons that say the receiver refuses the *sender*, not the mailbox: a
    /// blocklist or reputation block (`blocked`), a spam verdict (`spam`) and a 5.7.x policy
    /// refusal (`policy`). These feed a destination's circuit breaker on policy blocks and
    /// are deferred rather than bounced while it watches.
    pub fn blames_sender(self) -> bool {
        matches!(
            self,
            Category::Blocked | Category::Spam | Category::PolicyBlock
        )
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
