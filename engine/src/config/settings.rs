//! Checked campaign settings: what `validate()` hands to the rest of the engine. Every value
//! here has passed its checks, relative paths are resolved against the campaign file's folder,
//! templates and the relay password have been read.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

pub use crate::dkim::KeySource;

/// A validated campaign, ready for the loader and the sender.
#[derive(Debug, Clone)]
pub struct CampaignSettings {
    /// The campaign file it came from.
    pub file: PathBuf,
    /// Campaign id (`[A-Za-z0-9._-]{1,64}`), the key of its state in the store.
    pub id: String,
    /// The From address; its domain is one of the `[[dkim]]` domains.
    pub from: Address,
    /// Optional Reply-To address.
    pub reply_to: Option<Address>,
    /// The subject template (inline MiniJinja source).
    pub subject: String,
    /// The plain-text body template, if any (at least one of `text` and `html` is set).
    pub text: Option<TemplateFile>,
    /// The HTML body template, if any.
    pub html: Option<TemplateFile>,
    /// The recipients CSV (resolved path; checked to exist at load time).
    pub recipients: PathBuf,
    /// The segment (`[campaign] where`): only the rows it matches are loaded; `None` loads
    /// every row. Parsed here; bound to the list's columns when the campaign is prepared.
    pub segment: Option<super::Segment>,
    /// Priority lane, 1 (most urgent) to 5; default 3.
    pub priority: u8,
    /// `[campaign] archive = true`: the tracking server shows the message at `/a/<id>`
    /// without personal data, each merge field replaced by its `[campaign] archive_fields`
    /// value (empty when not named). `None` (the default): no archive page.
    pub archive: Option<Vec<(String, String)>>,
    /// The relay to send through (the first of `relays`); `None` means direct to MX.
    pub relay: Option<RelaySettings>,
    /// Every relay (`[relay]`, or each `[[relay]]` entry in file order); empty means
    /// direct to MX.
    pub relays: Vec<RelaySettings>,
    /// DKIM signing entries; their domains are the authorised From domains.
    pub dkim: Vec<DkimSettings>,
    /// Retry schedule and expiry for deferred messages.
    pub retry: RetrySettings,
    /// The store: a sled folder (`[store] path`, default `<campaign file stem>.volley`
    /// beside the campaign file) or a PostgreSQL database (`[store] url`).
    pub store: crate::store::StoreLocation,
    /// Bounce handling: VERP return paths and suppression thresholds.
    pub bounces: BounceSettings,
    /// Direct-to-MX delivery settings (used when `relay` is `None`).
    pub mx: MxSettings,
    /// The resolver for MX and address lookups.
    pub dns: DnsSettings,
    /// SMTP timeouts per phase (`[timeouts]`), for the relay and MX hosts alike; the SMTP
    /// client's defaults (RFC 5321 §4.5.3.2) for absent keys.
    pub timeouts: crate::smtp::Timeouts,
    /// Per-destination limits and back-off.
    pub shaping: ShapingSettings,
    /// Open, click and one-click unsubscribe tracking, when `[tracking]` is set.
    pub tracking: Option<TrackingSettings>,
    /// When the campaign is a newsletter sent on a schedule, its cron and time zone.
    pub schedule: Option<ScheduleSettings>,
    /// When `[schedule]` sets `window` or `send_at`: each recipient is sent in their own
    /// local time (see [`SendWindow`](super::SendWindow)).
    pub window: Option<super::window::SendWindow>,
    /// Whether the secrets were read; settings loaded for reading only cannot send.
    pub secrets_read: bool,
    /// The A/B variants (`[[variant]]`), at least two when set; empty means one version.
    pub variants: Vec<VariantSettings>,
    /// Test-then-winner (`[ab]` with `test_share`); `None` with variants means the whole
    /// list is split.
    pub ab: Option<AbSettings>,
    /// Conversions and revenue (`[conversions]`): attribution window, currency, postback key.
    pub conversions: super::ConversionSettings,
    /// Who earlier campaigns leave out of the list at load (`[audience]`); empty: nobody.
    pub audience: super::AudienceSettings,
    /// `[warmup]`: daily ceilings per mailbox provider while a sender warms up.
    pub warmup: Option<super::WarmupSettings>,
    /// The share of the list held out of the send to measure lift (`[ab] holdout`, 0 ≤ h <
    /// 0.5; default 0, none), with or without variants and a test share. Held-out
    /// recipients are stored in the state `holdout`: never mailed, never tracked.
    pub holdout: f64,
    /// The campaign's topic (`[campaign] topic`, `topic_name`, `unsubscribe`); `None`: no
    /// topic, and its one-click unsubscribe leaves every mailing.
    pub topic: Option<crate::store::CampaignTopic>,
}

impl CampaignSettings {
    /// The files this campaign reads secrets from, each with the TOML key naming it:
    /// `relay.password_file` (`relay[N].password_file` with several relays),
    /// `relay.token_file`, `tracking.key_file`, `dkim[N].key_file`.
    /// Secrets from environment variables or commands are not listed.
    pub fn secret_files(&self) -> Vec<(String, PathBuf)> {
        let mut files = Vec::new();
        for (i, relay) in self.relays.iter().enumerate() {
            let entry = if self.relays.len() > 1 {
                format!("relay[{i}]")
            } else {
                "relay".to_owned()
            };
            if let Some(path) = &relay.password_file {
                files.push((format!("{entry}.password_file"), path.clone()));
            }
            if let RelayAuth::XOAuth2 {
                source: crate::config::TokenSource::File(path),
                ..
            } = &relay.auth
            {
                files.push((format!("{entry}.token_file"), path.clone()));
            }
        }
        if let Some(path) = self.tracking.as_ref().and_then(|t| t.key_file.as_ref()) {
            files.push(("tracking.key_file".to_owned(), path.clone()));
        }
        for (i, entry) in self.dkim.iter().enumerate() {
            if let KeySource::File(path) = &entry.key {
                files.push((format!("dkim[{i}].key_file"), path.clone()));
            }
        }
        files
    }

    /// The variant ids in order (`main` for a campaign without variants).
    pub fn variant_ids(&self) -> Vec<String> {
        if self.variants.is_empty() {
            return vec![MAIN_VARIANT.to_owned()];
        }
        self.variants.iter().map(|v| v.id.clone()).collect()
    }
}

/// The id of the single version of a campaign without `[[variant]]`s.
pub const MAIN_VARIANT: &str = "main";

/// One `[[variant]]`: what it changes from the campaign's message, and its weight.
#[derive(Debug, Clone)]
pub struct VariantSettings {
    /// The variant id (`[A-Za-z0-9_-]{1,32}`), unique in the campaign.
    pub id: String,
    /// Its weight in the split (positive).
    pub weight: f64,
    /// A subject template replacing the campaign's.
    pub subject: Option<String>,
    /// A display name replacing the From name.
    pub from_name: Option<String>,
    /// A text template replacing the campaign's.
    pub text: Option<TemplateFile>,
    /// An HTML template replacing the campaign's.
    pub html: Option<TemplateFile>,
}

/// `[ab]`: send a test share first, then the winner (or the fallback) to the rest.
#[derive(Debug, Clone)]
pub struct AbSettings {
    /// The share of the list that gets the test (0 < share < 1).
    pub test_share: f64,
    /// How long after the test share went out the verdict is taken.
    pub wait: Duration,
    /// The metric, confidence, smallest sample and veto limits of the verdict.
    pub rules: crate::ab::Rules,
    /// What the remainder gets when the verdict is inconclusive (at `wait` without a stop, or
    /// stopped for futility).
    pub on_inconclusive: OnInconclusive,
    /// What the remainder gets when a variant is vetoed by a guardrail (`[ab] on_veto`,
    /// default hold).
    pub on_veto: OnVeto,
    /// How often `volley serve` takes a held verdict again when no new event (delivery,
    /// bounce, open, click, unsubscribe, complaint) arrived for the campaign (`[ab]
    /// recheck_every`, default 5 min). New events are noticed at its next look.
    pub recheck_every: Duration,
}

/// `[ab] on_inconclusive`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnInconclusive {
    /// Split the remainder by the variants' weights.
    Split,
    /// Send the remainder this variant (its index).
    Variant(u8),
    /// Keep holding the remainder until a later send finds a winner (or the campaign file
    /// names another fallback).
    Hold,
}

/// `[ab] on_veto`: what the remainder gets when a variant is significantly past a guardrail
/// limit. A veto names no winner; this is the campaign's explicit choice.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OnVeto {
    /// Keep holding the remainder (the default): someone decides.
    #[default]
    Hold,
    /// Split the remainder by the variants' weights, vetoed ones left out.
    Split,
    /// Send the remainder this variant (its index).
    Variant(u8),
    /// Send the remainder the variant with the best rate among those not vetoed (not a
    /// tested winner).
    BestRemaining,
}

/// `[schedule]`: each firing of `cron` in `timezone` is an edition, sent once to each
/// recipient of the list as it is at that moment.
#[derive(Debug, Clone)]
pub struct ScheduleSettings {
    /// The parsed expression.
    pub cron: croner::Cron,
    /// The expression as written (for messages).
    pub cron_text: String,
    /// The zone the expression is read in (daylight-saving changes included).
    pub timezone: chrono_tz::Tz,
    /// How late a missed firing may still be sent (the process was down at the time).
    pub catch_up: std::time::Duration,
}

/// `[tracking]`: where tracked links, the open pixel and the unsubscribe URL point, and the
/// key their tokens are signed with.
#[derive(Debug, Clone)]
pub struct TrackingSettings {
    /// The tracking server's public base URL (`https://t.acme.example`, no trailing slash).
    pub base_url: String,
    /// The HMAC key (from `key_file` or `key_env`, at least 16 bytes); `Debug` redacts it.
    pub key: SecretString,
    /// The file the key was read from (`key_file`, resolved), if not an environment variable.
    pub key_file: Option<PathBuf>,
    /// Add the open pixel; default true.
    pub opens: bool,
    /// Rewrite links for click tracking; default true.
    pub clicks: bool,
    /// Also rewrite the links of the text part; default false.
    pub text_links: bool,
    /// A mailto address added to `List-Unsubscribe` next to the one-click URL; default none.
    pub unsubscribe_mailto: Option<String>,
}

/// `[bounces]`: where bounces go and when failures suppress an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceSettings {
    /// The bounce domain: when set, each message's return path is
    /// `bounces+TOKEN@domain` (VERP); otherwise the From address.
    pub domain: Option<String>,
    /// Soft bounces within `soft_window` that suppress an address (default 3).
    pub soft_limit: u32,
    /// The window soft bounces are counted in (default 30 days).
    pub soft_window: Duration,
    /// How far apart the first and the last counted soft bounce must be before they
    /// suppress (default 15 days): a bad week at one receiver burns nobody.
    pub soft_min_span: Duration,
    /// Extra classification rules that extend or override the shipped ones.
    pub rules_file: Option<PathBuf>,
    /// The campaign-wide stop: the bounce and complaint rates past which a send stops
    /// (default: off).
    pub stop: StopLimits,
}

/// `[bounces] max_bounce_rate`, `max_complaint_rate` and `rate_min_sample`: the campaign-wide
/// stop. Both rates off by default.
#[derive(Debug, Clone, Copy, PartialEq)]
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

impl StopLimits {
    /// True when neither rate is limited.
    pub fn is_off(&self) -> bool {
        self.max_bounce_rate.is_none() && self.max_complaint_rate.is_none()
    }
}

impl Default for BounceSettings {
    fn default() -> Self {
        BounceSettings {
            domain: None,
            soft_limit: 3,
            soft_window: Duration::from_secs(30 * 86_400),
            soft_min_span: Duration::from_secs(15 * 86_400),
            rules_file: None,
            stop: StopLimits::default(),
        }
    }
}

/// A parsed mailbox: optional display name and a normalised address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Display name (`Acme News`), without quotes; never contains CR or LF.
    pub name: Option<String>,
    /// Normalised address (local part as written, domain lowercased ASCII).
    pub address: String,
    /// The address's domain (lowercase ASCII, punycode for IDNs).
    pub domain: String,
}

/// A template read from disk at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFile {
    /// The resolved path of the template file.
    pub path: PathBuf,
    /// The template's source text.
    pub source: String,
}

/// How to reach the relay and log in to it.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Its name in logs, status and reports (`name`); default `host:port`.
    pub name: String,
    /// Its share of the traffic among the relays of its priority (`weight`); default 1.
    pub weight: u32,
    /// Its failover order (`priority`): lower is preferred, like an MX preference; default 0.
    pub priority: u32,
    /// How long it is taken out after refusing the login, failing TLS or staying out of
    /// reach (`cooldown`); default 5 minutes.
    pub cooldown: std::time::Duration,
    /// Relay host name or IP address.
    pub host: String,
    /// Relay port; default 587.
    pub port: u16,
    /// TLS mode; default `Tls` on port 465, `StartTls` otherwise.
    pub tls: TlsMode,
    /// Login name for SMTP AUTH, if any.
    pub username: Option<String>,
    /// Password for SMTP AUTH, or with [`RelayAuth::XOAuth2`] the access token as first
    /// fetched (set whenever `username` is); `Debug` prints it redacted.
    pub password: Option<SecretString>,
    /// How Volley logs in: a password (default) or an OAuth 2.0 token (`auth = "xoauth2"`).
    pub auth: RelayAuth,
    /// The file the password was read from (`password_file`, resolved), if not an
    /// environment variable.
    pub password_file: Option<PathBuf>,
    /// An extra PEM trust root for the relay's certificate (resolved path).
    pub ca_file: Option<PathBuf>,
    /// Name sent in EHLO; default the From address's domain.
    pub helo: String,
    /// Parallel connections to the relay, 1 to 100; default 4.
    pub connections: usize,
    /// The provider's cap on messages per second; default none.
    pub max_per_second: Option<u32>,
    /// The provider's cap on messages in any 60 minutes, honoured across runs; default none.
    pub max_per_hour: Option<u32>,
    /// The provider's cap on messages in any 24 hours, honoured across runs; default none.
    pub max_per_day: Option<u32>,
    /// Messages sent on one connection before it is closed and a new one opened; default
    /// no limit.
    pub max_messages_per_connection: Option<u64>,
    /// The local address connections to the relay leave from; default none (the operating
    /// system picks).
    pub source_address: Option<std::net::IpAddr>,
}

/// `[relay] auth`: how Volley logs in to the relay.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RelayAuth {
    /// `auth = "password"` (the default): AUTH PLAIN or LOGIN with the password.
    #[default]
    Password,
    /// `auth = "xoauth2"`: AUTH XOAUTH2 with an access token (Microsoft 365, Gmail), fetched
    /// again from `source` when the relay refuses it.
    XOAuth2 {
        /// `token_file`, `token_env` or `token_command`.
        source: crate::config::TokenSource,
        /// `token_lifetime` (default 50 minutes): with `token_command`, a token older than
        /// this is fetched anew before the next login. `None` for a file or a variable.
        lifetime: Option<std::time::Duration>,
    },
}

/// `[mx]`: how Volley talks to recipients' mail servers when there is no relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxSettings {
    /// The SMTP port of MX hosts; default 25 (tests point it at a loopback server).
    pub port: u16,
    /// Name sent in EHLO; default the From address's domain. It should match the sending
    /// address's reverse DNS.
    pub helo: String,
    /// TLS policy for every destination without its own `[shaping.*] tls`; default
    /// [`MxTls::Opportunistic`].
    pub tls: MxTls,
    /// Extra PEM trust roots for destinations whose TLS is `required` (resolved path).
    pub ca_file: Option<PathBuf>,
    /// How long a host whose STARTTLS handshake failed is sent to in plain text (in
    /// opportunistic mode only) before TLS is tried again; default 1 hour.
    pub plain_after_tls_failure: Duration,
    /// Honour recipient domains' MTA-STS policies (RFC 8461); default true.
    pub mta_sts: bool,
    /// The HTTPS port policies are fetched from; default 443 (tests point it at a loopback
    /// server).
    pub mta_sts_port: u16,
    /// The longest one policy fetch may take; default 30 seconds.
    pub mta_sts_timeout: Duration,
    /// The local addresses connections to MX hosts leave from, each with its EHLO name;
    /// default none (the operating system picks, and [`MxSettings::helo`] is said).
    pub source_addresses: Vec<super::SourceAddress>,
    /// How a connection's address is chosen among `source_addresses`; default round-robin.
    pub source_pick: super::SourcePick,
}

/// TLS policy towards an MX host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum MxTls {
    /// STARTTLS when offered, without requiring a trusted certificate; plain text when not
    /// offered, or after a failed handshake (`"opportunistic"`, the default).
    Opportunistic,
    /// STARTTLS must be offered and the certificate must be valid for the MX host name
    /// (`"required"`); otherwise the message is deferred.
    Required,
    /// TLS from the first byte, certificate verified (`"implicit"`; for MX hosts that listen
    /// with implicit TLS only, such as test setups).
    Implicit,
    /// Never TLS (`"none"`).
    None,
}

impl MxTls {
    /// The word used in the campaign file.
    pub fn as_str(self) -> &'static str {
        match self {
            MxTls::Opportunistic => "opportunistic",
            MxTls::Required => "required",
            MxTls::Implicit => "implicit",
            MxTls::None => "none",
        }
    }
}

/// `[dns]`: where MX, A and AAAA lookups go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSettings {
    /// Name servers (`ip:port`, port 53 when not given); `None` uses the system's
    /// configuration (`/etc/resolv.conf`).
    pub nameservers: Option<Vec<std::net::SocketAddr>>,
    /// Time allowed for one query; default 5 s.
    pub timeout: Duration,
    /// Tries per query before a lookup fails (and the recipients are deferred); default 2.
    pub attempts: usize,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            nameservers: None,
            timeout: Duration::from_secs(5),
            attempts: 2,
        }
    }
}

/// A rate: `count` events per `per`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Events allowed per period (may be fractional when written per second, e.g. 0.5).
    pub count: f64,
    /// The period.
    pub per: Duration,
}

impl Rate {
    /// The rate in events per second.
    pub fn per_second(&self) -> f64 {
        self.count / self.per.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "min",
            3600 => "h",
            86_400 => "day",
            _ => return write!(f, "{}/{}", self.count, humantime::format_duration(self.per)),
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// `[shaping.*]`: limits and back-off for each destination (a recipient domain, or every
/// domain served by the same MX hosts).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShapingSettings {
    /// `[shaping.default]` over the built-in defaults: what a destination without its own
    /// entry gets.
    pub default: ShapingRule,
    /// `[shaping."<domain or MX suffix>"]` entries, each completed from the default, in file
    /// order. A recipient domain equal to a key uses that entry; otherwise the longest key
    /// that an MX host name ends with.
    pub rules: Vec<(String, ShapingRule)>,
    /// `[shaping.global]`: caps over all destinations together.
    pub global: GlobalLimits,
}

/// The limits and back-off of one destination.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapingRule {
    /// Connections open at once; default 10.
    pub max_connections: usize,
    /// Messages per period; default no limit (adaptive back-off still applies).
    pub max_message_rate: Option<Rate>,
    /// New connections per period; default no limit.
    pub max_connection_rate: Option<Rate>,
    /// Messages on one connection before it is closed (a new one may open); default 100.
    pub max_messages_per_connection: u64,
    /// How long an idle connection stays open waiting for more messages; default 5 s.
    pub idle_timeout: Duration,
    /// TLS policy; default `[mx] tls`.
    pub tls: Option<MxTls>,
    /// Reply texts (case-insensitive substrings) that mean "slow down", on top of 421 and
    /// the replies classified as throttling; default none.
    pub throttle_replies: Vec<String>,
    /// Throttling replies within `suspend_window` that suspend the destination; default 5.
    pub suspend_after: u32,
    /// The window throttling replies are counted in; default 1 minute.
    pub suspend_window: Duration,
    /// How long a suspended destination gets no messages; default 10 minutes.
    pub suspend_for: Duration,
    /// The circuit breaker on policy blocks: replies saying the sender is blocked are
    /// counted, and recipients they refuse are deferred, not bounced; default on.
    pub block_breaker: bool,
    /// Distinct recipients refused by a policy block within `block_window` that trip the
    /// breaker (the destination is suspended); default 5.
    pub block_threshold: u32,
    /// The window block replies are counted in; default 10 minutes.
    pub block_window: Duration,
    /// How long a tripped destination is suspended; default 1 hour. A probe after it that is
    /// blocked again doubles it, up to `block_max_pause`.
    pub block_pause: Duration,
    /// The longest suspension doubling reaches; default 8 hours.
    pub block_max_pause: Duration,
}

impl Default for ShapingRule {
    fn default() -> Self {
        ShapingRule {
            max_connections: 10,
            max_message_rate: None,
            max_connection_rate: None,
            max_messages_per_connection: 100,
            idle_timeout: Duration::from_secs(5),
            tls: None,
            throttle_replies: Vec::new(),
            suspend_after: 5,
            suspend_window: Duration::from_secs(60),
            suspend_for: Duration::from_secs(600),
            block_breaker: true,
            block_threshold: 5,
            block_window: Duration::from_secs(600),
            block_pause: Duration::from_secs(3_600),
            block_max_pause: Duration::from_secs(8 * 3_600),
        }
    }
}

/// `[shaping.global]`: caps over every destination together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GlobalLimits {
    /// Connections open at once over all destinations; default 500.
    pub max_connections: usize,
    /// Messages per period over all destinations; default no limit.
    pub max_message_rate: Option<Rate>,
}

impl Default for GlobalLimits {
    fn default() -> Self {
        GlobalLimits {
            max_connections: 500,
            max_message_rate: None,
        }
    }
}

/// How TLS is used on an SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TlsMode {
    /// Plain text, no TLS at all (`"none"`).
    None,
    /// Plain connect, then STARTTLS, which is required (`"starttls"`).
    StartTls,
    /// Implicit TLS from the first byte (`"tls"`, port 465).
    Tls,
}

/// One DKIM signing identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimSettings {
    /// Signing domain (`d=`), lowercase ASCII.
    pub domain: String,
    /// Selector (`s=`).
    pub selector: String,
    /// Where the private key comes from; it is read and parsed by `dkim`, not here.
    pub key: KeySource,
}

impl DkimSettings {
    /// Loads this entry's private key from its file or environment variable; a key file that
    /// group or others may read is warned about (once per process).
    pub fn load_key(&self) -> Result<crate::dkim::DkimKey, crate::dkim::DkimError> {
        if let KeySource::File(path) = &self.key {
            let what = format!("dkim key {}._domainkey.{}", self.selector, self.domain);
            super::warn_if_loose(&what, path);
        }
        crate::dkim::DkimKey::load(&self.domain, &self.selector, &self.key)
    }
}

/// When to retry a deferred message and when to give up.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySettings {
    /// Waits before retry 1, 2, …; the last one repeats. Default 5m, 30m, 2h, 6h.
    pub schedule: Vec<Duration>,
    /// Time after the first attempt at which a still-deferred message expires. Default 3 days.
    pub expire_after: Duration,
    /// Each wait is spread by up to this fraction either way (`[retry] jitter`, 0 to 0.5).
    /// Default 0.1 (±10 %).
    pub jitter: f64,
}

impl RetrySettings {
    /// The wait before retry number `attempt` (1 = the first retry). The last interval of
    /// the schedule repeats for later attempts; attempt 0 is treated as 1. An empty schedule
    /// (only possible when built by hand) gives zero.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        self.schedule
            .get(index)
            .or_else(|| self.schedule.last())
            .copied()
            .unwrap_or_default()
    }
}

impl Default for RetrySettings {
    /// 5m, 30m, 2h, 6h, expiring after 3 days.
    fn default() -> Self {
        let min = |m: u64| Duration::from_secs(m * 60);
        RetrySettings {
            schedule: vec![min(5), min(30), min(120), min(360)],
            expire_after: Duration::from_secs(3 * 24 * 3600),
            jitter: super::raw::DEFAULT_JITTER,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_after_walks_the_schedule_then_repeats_the_last() {
        let retry = RetrySettings::default();
        let min = |m: u64| Duration::from_secs(m * 60);
        let cases = [
            (0, min(5)),
            (1, min(5)),
            (2, min(30)),
            (3, min(120)),
            (4, min(360)),
            (5, min(360)),
            (u32::MAX, min(360)),
        ];
        for (attempt, want) in cases {
            assert_eq!(retry.delay_after(attempt), want, "attempt {attempt}");
        }
    }

    #[test]
    fn empty_schedule_gives_zero() {
        let retry = RetrySettings {
            schedule: vec![],
            expire_after: Duration::from_secs(1),
            jitter: 0.0,
        };
        assert_eq!(retry.delay_after(1), Duration::ZERO);
    }
}
