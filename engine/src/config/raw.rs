//! Phase one of loading a campaign file: the TOML exactly as written, with serde defaults and
//! no unknown keys. Nothing here is checked beyond types; `validate` turns it into settings.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::settings::{MxTls, TlsMode};
use crate::ab::Rules;

/// The whole campaign file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    /// `[campaign]`: required.
    pub(crate) campaign: RawCampaign,
    /// `[relay]` (one relay) or `[[relay]]` (several): absent means direct to MX.
    #[serde(default)]
    pub(crate) relay: Option<RawRelays>,
    /// `[[dkim]]` entries.
    #[serde(default)]
    pub(crate) dkim: Vec<RawDkim>,
    /// `[retry]`.
    #[serde(default)]
    pub(crate) retry: RawRetry,
    /// `[store]`.
    #[serde(default)]
    pub(crate) store: super::store::RawStore,
    /// `[bounces]`.
    #[serde(default)]
    pub(crate) bounces: RawBounces,
    /// `[mx]`: direct-to-MX delivery (used when there is no `[relay]`).
    #[serde(default)]
    pub(crate) mx: RawMx,
    /// `[dns]`: the resolver used for MX lookups.
    #[serde(default)]
    pub(crate) dns: RawDns,
    /// `[timeouts]`: SMTP timeouts per phase, for the relay and MX hosts alike.
    #[serde(default)]
    pub(crate) timeouts: RawTimeouts,
    /// `[shaping.default]`, `[shaping.global]` and `[shaping."<domain or MX suffix>"]`.
    #[serde(default)]
    pub(crate) shaping: BTreeMap<String, RawShaping>,
    /// `[tracking]`: absent means no open, click or unsubscribe tracking.
    #[serde(default)]
    pub(crate) tracking: Option<RawTracking>,
    /// `[schedule]`: absent means a one-off campaign.
    #[serde(default)]
    pub(crate) schedule: Option<RawSchedule>,
    /// `[[variant]]` entries: absent means one version of the message.
    #[serde(default, rename = "variant")]
    pub(crate) variants: Vec<RawVariant>,
    /// `[ab]`: absent means the whole list is split by the variants' weights.
    #[serde(default)]
    pub(crate) ab: Option<RawAb>,
    /// `[conversions]`: attribution window, currency, postback secret.
    #[serde(default)]
    pub(crate) conversions: super::conversions::RawConversions,
    /// `[audience]`: who of the list earlier campaigns leave out.
    #[serde(default)]
    pub(crate) audience: super::audience::RawAudience,
    /// `[warmup]`: absent means no warm-up ceilings.
    #[serde(default)]
    pub(crate) warmup: Option<super::warmup::RawWarmup>,
}

/// One `[[variant]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVariant {
    pub(crate) id: String,
    #[serde(default = "one")]
    pub(crate) weight: f64,
    #[serde(default)]
    pub(crate) subject: Option<String>,
    #[serde(default)]
    pub(crate) from_name: Option<String>,
    #[serde(default)]
    pub(crate) text: Option<String>,
    #[serde(default)]
    pub(crate) html: Option<String>,
}

fn one() -> f64 {
    1.0
}

/// `[ab]`: test then winner (with `test_share`), and the holdout (`holdout`, with or
/// without a test share).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAb {
    #[serde(default)]
    pub(crate) test_share: Option<f64>,
    #[serde(default)]
    pub(crate) holdout: Option<f64>,
    #[serde(default)]
    pub(crate) metric: crate::ab::Metric,
    #[serde(default = "four_hours")]
    pub(crate) wait: String,
    #[serde(default = "default_confidence")]
    pub(crate) confidence: f64,
    #[serde(default = "default_min_per_variant")]
    pub(crate) min_per_variant: i64,
    #[serde(default = "default_on_inconclusive")]
    pub(crate) on_inconclusive: String,
    #[serde(default = "five_minutes")]
    pub(crate) recheck_every: String,
    #[serde(default = "default_max_bounce_rate")]
    pub(crate) max_bounce_rate: f64,
    #[serde(default = "default_max_unsubscribe_rate")]
    pub(crate) max_unsubscribe_rate: f64,
    #[serde(default = "default_max_complaint_rate")]
    pub(crate) max_complaint_rate: f64,
    #[serde(default = "default_method")]
    pub(crate) method: String,
    #[serde(default = "default_min_lift")]
    pub(crate) min_lift: f64,
    #[serde(default = "default_mixture_sd")]
    pub(crate) mixture_sd: f64,
    #[serde(default = "default_on_veto")]
    pub(crate) on_veto: String,
}

fn default_method() -> String {
    "sequential".to_owned()
}

fn default_min_lift() -> f64 {
    Rules::default().min_lift
}

fn default_mixture_sd() -> f64 {
    Rules::default().mixture_sd
}

fn default_on_veto() -> String {
    "hold".to_owned()
}

fn four_hours() -> String {
    "4h".to_owned()
}

fn five_minutes() -> String {
    "5m".to_owned()
}

fn default_confidence() -> f64 {
    Rules::default().confidence
}

fn default_min_per_variant() -> i64 {
    i64::try_from(Rules::default().min_per_variant).unwrap_or(100)
}

fn default_on_inconclusive() -> String {
    "split".to_owned()
}

fn default_max_bounce_rate() -> f64 {
    Rules::default().max_bounce_rate
}

fn default_max_unsubscribe_rate() -> f64 {
    Rules::default().max_unsubscribe_rate
}

fn default_max_complaint_rate() -> f64 {
    Rules::default().max_complaint_rate
}

/// `[schedule]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSchedule {
    /// Absent: no editions (a one-off campaign, with a sending window).
    #[serde(default)]
    pub(crate) cron: Option<String>,
    /// Local-time window each recipient is sent in, like `Mon-Fri 09:00-17:00`.
    #[serde(default)]
    pub(crate) window: Option<String>,
    /// Local time each recipient is sent at, like `09:30`.
    #[serde(default)]
    pub(crate) send_at: Option<String>,
    /// The CSV column holding each recipient's IANA time zone.
    #[serde(default)]
    pub(crate) timezone_column: Option<String>,
    /// The zone of rows without one (default: `timezone`).
    #[serde(default)]
    pub(crate) default_timezone: Option<String>,
    #[serde(default = "utc")]
    pub(crate) timezone: String,
    #[serde(default = "six_hours")]
    pub(crate) catch_up: String,
}

fn utc() -> String {
    "UTC".to_owned()
}

fn six_hours() -> String {
    "6h".to_owned()
}

/// `[tracking]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTracking {
    pub(crate) base_url: String,
    #[serde(default)]
    pub(crate) key_file: Option<String>,
    #[serde(default)]
    pub(crate) key_env: Option<String>,
    #[serde(default = "yes")]
    pub(crate) opens: bool,
    #[serde(default = "yes")]
    pub(crate) clicks: bool,
    #[serde(default)]
    pub(crate) text_links: bool,
    #[serde(default)]
    pub(crate) unsubscribe_mailto: Option<String>,
}

fn yes() -> bool {
    true
}

/// `[campaign]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCampaign {
    pub(crate) id: String,
    pub(crate) from: String,
    #[serde(default)]
    pub(crate) reply_to: Option<String>,
    pub(crate) subject: String,
    #[serde(default)]
    pub(crate) text: Option<String>,
    #[serde(default)]
    pub(crate) html: Option<String>,
    pub(crate) recipients: String,
    #[serde(default = "default_priority")]
    pub(crate) priority: i64,
    /// The segment: which rows of the list are loaded (`super::Segment`).
    #[serde(default, rename = "where")]
    pub(crate) segment: Option<String>,
    /// The topic (issue 22): its one-click unsubscribe leaves this topic only.
    #[serde(default)]
    pub(crate) topic: Option<String>,
    /// The topic's display name on the preference page (default: the topic id).
    #[serde(default)]
    pub(crate) topic_name: Option<String>,
    /// What the one-click unsubscribe removes: `topic` (default with a topic) or `all`.
    #[serde(default)]
    pub(crate) unsubscribe: Option<String>,
    /// A public archive page of the campaign on the tracking server (`/a/<id>`).
    #[serde(default)]
    pub(crate) archive: bool,
    /// What each merge field shows on the archive page (default: empty).
    #[serde(default)]
    pub(crate) archive_fields: std::collections::BTreeMap<String, String>,
}

/// `[relay]` (one table) or `[[relay]]` (an array of tables).
#[derive(Debug)]
pub(crate) enum RawRelays {
    /// `[relay]`.
    One(Box<RawRelay>),
    /// `[[relay]]` entries, in file order.
    Many(Vec<RawRelay>),
}

impl<'de> Deserialize<'de> for RawRelays {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = RawRelays;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a [relay] table or [[relay]] entries")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<RawRelays, A::Error> {
                let one = RawRelay::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(RawRelays::One(Box::new(one)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<RawRelays, A::Error> {
                let many = Vec::<RawRelay>::deserialize(
                    serde::de::value::SeqAccessDeserializer::new(seq),
                )?;
                Ok(RawRelays::Many(many))
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

/// `[relay]`, or one `[[relay]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRelay {
    /// Absent: `host:port`.
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// Absent: 1.
    #[serde(default)]
    pub(crate) weight: Option<i64>,
    /// Absent: 0.
    #[serde(default)]
    pub(crate) priority: Option<i64>,
    /// Absent: 5 minutes.
    #[serde(default)]
    pub(crate) cooldown: Option<String>,
    pub(crate) host: String,
    #[serde(default = "default_port")]
    pub(crate) port: i64,
    /// Absent: chosen from the port. Spanned to name its line in errors.
    #[serde(default)]
    pub(crate) tls: Option<Spanned<TlsMode>>,
    /// Spanned to name its line in errors.
    #[serde(default)]
    pub(crate) username: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) password_env: Option<String>,
    #[serde(default)]
    pub(crate) password_file: Option<String>,
    /// Absent: `password`.
    #[serde(default)]
    pub(crate) auth: Option<RawRelayAuth>,
    #[serde(default)]
    pub(crate) token_file: Option<String>,
    #[serde(default)]
    pub(crate) token_env: Option<String>,
    #[serde(default)]
    pub(crate) token_command: Option<Vec<String>>,
    /// Absent: 50 minutes (with `token_command` only).
    #[serde(default)]
    pub(crate) token_lifetime: Option<String>,
    #[serde(default)]
    pub(crate) ca_file: Option<String>,
    /// Absent: the From domain.
    #[serde(default)]
    pub(crate) helo: Option<String>,
    #[serde(default = "default_connections")]
    pub(crate) connections: i64,
    #[serde(default)]
    pub(crate) max_per_second: Option<i64>,
    #[serde(default)]
    pub(crate) max_per_hour: Option<i64>,
    #[serde(default)]
    pub(crate) max_per_day: Option<i64>,
    #[serde(default)]
    pub(crate) max_messages_per_connection: Option<i64>,
    /// Absent: the operating system picks the local address.
    #[serde(default)]
    pub(crate) source_address: Option<String>,
}

/// `[relay] auth`: how Volley logs in to the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawRelayAuth {
    /// AUTH PLAIN or LOGIN with `password_file` / `password_env`.
    Password,
    /// AUTH XOAUTH2 with `token_file` / `token_env` / `token_command`.
    Xoauth2,
}

/// `[mx]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMx {
    /// Absent: 25.
    #[serde(default)]
    pub(crate) port: Option<i64>,
    /// Absent: the From domain.
    #[serde(default)]
    pub(crate) helo: Option<String>,
    /// Absent: opportunistic.
    #[serde(default)]
    pub(crate) tls: Option<MxTls>,
    #[serde(default)]
    pub(crate) ca_file: Option<String>,
    /// Absent: 1h.
    #[serde(default)]
    pub(crate) plain_after_tls_failure: Option<String>,
    /// Absent: true.
    #[serde(default)]
    pub(crate) mta_sts: Option<bool>,
    /// Absent: 443.
    #[serde(default)]
    pub(crate) mta_sts_port: Option<i64>,
    /// Absent: 30s.
    #[serde(default)]
    pub(crate) mta_sts_timeout: Option<String>,
    /// Absent: the operating system picks the local address.
    #[serde(default)]
    pub(crate) source_addresses: Option<Vec<super::source::RawSource>>,
    /// Absent: round-robin.
    #[serde(default)]
    pub(crate) source_pick: Option<super::source::SourcePick>,
}

/// `[dns]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDns {
    /// Absent: the system's resolver configuration.
    #[serde(default)]
    pub(crate) nameservers: Option<Vec<String>>,
    /// Absent: 5s.
    #[serde(default)]
    pub(crate) timeout: Option<String>,
    /// Absent: 2.
    #[serde(default)]
    pub(crate) attempts: Option<i64>,
}

/// `[timeouts]`: one duration per SMTP phase; each absent key keeps its default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeouts {
    #[serde(default)]
    pub(crate) connect: Option<String>,
    #[serde(default)]
    pub(crate) banner: Option<String>,
    #[serde(default)]
    pub(crate) ehlo: Option<String>,
    #[serde(default)]
    pub(crate) starttls: Option<String>,
    #[serde(default)]
    pub(crate) auth: Option<String>,
    #[serde(default)]
    pub(crate) mail_from: Option<String>,
    #[serde(default)]
    pub(crate) rcpt_to: Option<String>,
    #[serde(default)]
    pub(crate) data: Option<String>,
    #[serde(default)]
    pub(crate) data_end: Option<String>,
    #[serde(default)]
    pub(crate) rset: Option<String>,
    #[serde(default)]
    pub(crate) quit: Option<String>,
}

/// One `[shaping.*]` table; absent keys inherit from `[shaping.default]`, then the built-in
/// defaults.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawShaping {
    #[serde(default)]
    pub(crate) max_connections: Option<i64>,
    #[serde(default)]
    pub(crate) max_message_rate: Option<RawRate>,
    #[serde(default)]
    pub(crate) max_connection_rate: Option<RawRate>,
    #[serde(default)]
    pub(crate) max_messages_per_connection: Option<i64>,
    #[serde(default)]
    pub(crate) idle_timeout: Option<String>,
    #[serde(default)]
    pub(crate) tls: Option<MxTls>,
    #[serde(default)]
    pub(crate) throttle_replies: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) suspend_after: Option<i64>,
    #[serde(default)]
    pub(crate) suspend_window: Option<String>,
    #[serde(default)]
    pub(crate) suspend_for: Option<String>,
    #[serde(default)]
    pub(crate) block_breaker: Option<bool>,
    #[serde(default)]
    pub(crate) block_threshold: Option<i64>,
    #[serde(default)]
    pub(crate) block_window: Option<String>,
    #[serde(default)]
    pub(crate) block_pause: Option<String>,
    #[serde(default)]
    pub(crate) block_max_pause: Option<String>,
}

/// A rate as written: a number (per second) or `"N/unit"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawRate {
    /// Messages (or connections) per second.
    PerSecond(f64),
    /// `"100/s"`, `"6000/min"`, `"50000/h"`, `"1000000/day"`.
    Text(String),
}

/// One `[[dkim]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDkim {
    pub(crate) domain: String,
    pub(crate) selector: String,
    #[serde(default)]
    pub(crate) key_file: Option<String>,
    #[serde(default)]
    pub(crate) key_env: Option<String>,
}

/// `[retry]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetry {
    #[serde(default = "default_schedule")]
    pub(crate) schedule: Vec<String>,
    #[serde(default = "default_expire_after")]
    pub(crate) expire_after: String,
    #[serde(default = "default_jitter")]
    pub(crate) jitter: f64,
}

impl Default for RawRetry {
    fn default() -> Self {
        RawRetry {
            schedule: default_schedule(),
            expire_after: default_expire_after(),
            jitter: default_jitter(),
        }
    }
}

/// `[bounces]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBounces {
    #[serde(default)]
    pub(crate) domain: Option<String>,
    #[serde(default = "default_soft_limit")]
    pub(crate) soft_limit: i64,
    #[serde(default = "default_soft_window")]
    pub(crate) soft_window: String,
    #[serde(default = "default_soft_min_span")]
    pub(crate) soft_min_span: String,
    #[serde(default)]
    pub(crate) rules_file: Option<String>,
    #[serde(default)]
    pub(crate) max_bounce_rate: Option<RawShare>,
    #[serde(default)]
    pub(crate) max_complaint_rate: Option<RawShare>,
    #[serde(default)]
    pub(crate) rate_min_sample: Option<i64>,
}

/// A share as written: a fraction (`0.05`) or a percentage (`"5%"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawShare {
    /// A fraction of one.
    Fraction(f64),
    /// `"5%"`, `"0.3 %"`.
    Text(String),
}

impl Default for RawBounces {
    fn default() -> Self {
        RawBounces {
            domain: None,
            soft_limit: default_soft_limit(),
            soft_window: default_soft_window(),
            soft_min_span: default_soft_min_span(),
            rules_file: None,
            max_bounce_rate: None,
            max_complaint_rate: None,
            rate_min_sample: None,
        }
    }
}

fn default_soft_limit() -> i64 {
    3
}

fn default_soft_window() -> String {
    "30d".to_owned()
}

fn default_soft_min_span() -> String {
    "15d".to_owned()
}

fn default_priority() -> i64 {
    3
}

fn default_port() -> i64 {
    587
}

fn default_connections() -> i64 {
    4
}

fn default_schedule() -> Vec<String> {
    ["5m", "30m", "2h", "6h"].map(String::from).to_vec()
}

/// `[retry] jitter` when not given: ±10 %.
pub(crate) const DEFAULT_JITTER: f64 = 0.1;

fn default_jitter() -> f64 {
    DEFAULT_JITTER
}

fn default_expire_after() -> String {
    "3d".to_owned()
}
