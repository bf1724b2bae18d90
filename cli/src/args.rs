//! Command-line arguments (clap derive).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Volley: bulk and marketing email, delivered fast and politely.
#[derive(Debug, Parser)]
#[command(name = "volley", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    /// At the end, print where the time went: busy and wall time per stage (compose, render,
    /// MIME, DKIM signing, SMTP transactions, store writes and flushes).
    #[arg(long, global = true)]
    pub(crate) timings: bool,
    /// The command.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Send a campaign: load its list once, deliver to every pending recipient, retry what
    /// falls due. Safe to interrupt and re-run: a re-run resumes and never mails a delivered
    /// recipient again.
    ///
    /// Exit codes: 0 every recipient delivered and every row valid; 1 finished, but some rows
    /// were invalid or some recipients bounced, expired or stay deferred; 2 could not run
    /// (bad campaign, relay refused the login or certificate, store busy and not answering); 3
    /// the campaign (or edition) is already being sent by another volley process, nothing
    /// done; 130 interrupted (state saved, re-run to resume).
    ///
    /// A scheduled campaign (`[schedule]`) sends its due edition, or says that none is due
    /// and exits 0: run it from cron as often as you like.
    Send(SendArgs),
    /// Load a campaign's list into its store now, without sending: invalid rows and
    /// duplicates are reported, and a later `volley send` starts from the loaded list. Does
    /// nothing when the store has the list already.
    Load(LoadArgs),
    /// Send one message, rendered with one row's fields, to one address, and show the SMTP
    /// exchange. The store is not touched.
    TestSend(TestSendArgs),
    /// Show how many recipients of a campaign are in each state. Works while a send runs.
    Status(StatusArgs),
    /// Run a complete demo on loopback: a local SMTP server with STARTTLS and AUTH, a
    /// 10,000-recipient campaign over 100 domains with a fresh DKIM key, sent end to end
    /// (`--direct`: straight to MX hosts found through a loopback DNS server).
    Demo(DemoArgs),
    /// Bounces: ingest DSNs and complaints, parse them, listen for them, report them.
    #[command(subcommand)]
    Bounces(BouncesCommand),
    /// The suppression list: addresses that are never mailed again.
    #[command(subcommand)]
    Suppress(SuppressCommand),
    /// Run one long-running process that owns a store: it sends each scheduled campaign's
    /// editions when they fall due and every campaign's retries, serves tracking, receives
    /// bounces, and answers `volley status` and `volley send` for that store. SIGTERM or
    /// SIGINT: transactions in flight finish, state is flushed, exit 0.
    Serve(ServeArgs),
    /// Tracking: the server for open pixels, tracked links and one-click unsubscribe.
    #[command(subcommand)]
    Track(TrackCommand),
    /// Preflight: check what lands a new bulk sender in spam (the campaign loads and renders,
    /// DKIM keys match their DNS records, SPF, DMARC, one-click unsubscribe), as a table.
    ///
    /// Exit codes: 0 nothing failed (warnings allowed); 1 at least one check failed;
    /// 2 could not run.
    Check(CheckArgs),
    /// Before sending: how many rows the list has and, for each `[audience]` rule in order,
    /// how many rows it leaves out and how many remain. Reads the list and the store and
    /// changes nothing; refused while another volley process holds a sled store.
    ///
    /// Exit codes: 0 counted; 2 could not run (bad campaign, unknown campaign named by a
    /// rule, a resend that may not start yet, store busy).
    Audience(AudienceArgs),
    /// Start a campaign: write a commented campaign.toml, a sample list, templates and a new
    /// DKIM key into DIR, and print the DNS records to publish.
    Init(InitArgs),
    /// Export a campaign's events, one per line (JSON lines or CSV), oldest first: every
    /// delivery, deferral, bounce, expiry, suppression, open, click, unsubscribe and
    /// complaint. Works while a send, `volley serve` or a tracking server holds the store (the
    /// export then goes through that process).
    Events(EventsArgs),
    /// A campaign's report: totals, variants with their rates and intervals, the A/B verdict,
    /// the largest recipient domains, bounces by category and a timeline. Works while another
    /// process holds the store.
    Report(ReportArgs),
    /// A/B tests.
    #[command(subcommand)]
    Ab(AbCommand),
    /// Conversions: a shop's orders, counted for the campaign's variants (and holdout).
    #[command(subcommand)]
    Conversions(ConversionsCommand),
    /// Remove the per-recipient data of finished campaigns whose events were exported
    /// (`volley events`): merge fields, replies, the attempt log, bounce and tracking events.
    /// Counters, reports, the suppression list and each recipient's address, state and
    /// variant stay, so tracking links and one-click unsubscribe in mail already sent keep
    /// working. With the store free it is then rewritten so its files shrink; while another
    /// process holds it, that process collects and the files shrink at the next gc.
    Gc(GcArgs),
    /// The store as a whole: `copy` moves it to another engine (a sled folder ⇄ PostgreSQL),
    /// `upgrade` rewrites a store made by an older volley.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Run Volley's test SMTP server (used by scripts and benchmarks).
    #[command(hide = true)]
    Sink(SinkArgs),
    /// Run Volley's test DNS server on loopback, answering from a zone file (used by
    /// scripts and benchmarks for direct-to-MX delivery).
    #[command(hide = true)]
    Dns(DnsArgs),
}

/// Where the campaign and its store are.
#[derive(Debug, Args)]
pub(crate) struct CampaignArgs {
    /// The campaign file (TOML).
    pub(crate) campaign: PathBuf,
    /// The store: a folder, or a PostgreSQL database `postgresql://user@host:port/db` (its
    /// password from `[store] password_file`/`password_env`, `PGPASSWORD` or ~/.pgpass).
    /// Default: the file's `[store]`, or `<campaign>.volley` beside the file.
    #[arg(long)]
    pub(crate) store: Option<PathBuf>,
}

/// Which campaign a reading command (status, report, events, ab decide) looks at.
#[derive(Debug, Args)]
pub(crate) struct ViewArgs {
    /// The campaign file (TOML); or, with `--store postgresql://…`, the id of a campaign
    /// published there (by `volley send` on that store): then nothing but the database's
    /// address is needed. An existing file always wins over an id.
    #[arg(value_name = "CAMPAIGN|ID")]
    pub(crate) campaign: PathBuf,
    /// The store: a folder, or a PostgreSQL database `postgresql://user@host:port/db` (its
    /// password from `[store] password_file`/`password_env`, `PGPASSWORD` or ~/.pgpass).
    /// Default: the file's `[store]`, or `<campaign>.volley` beside the file.
    #[arg(long)]
    pub(crate) store: Option<PathBuf>,
}

/// `volley serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The server file (TOML): `store`, `campaigns`, optional `[tracking]` and `[bounces]`.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: PathBuf,
    /// The longest pause between looks at the campaigns, in seconds.
    #[arg(long, default_value_t = 30, hide = true)]
    pub(crate) tick: u64,
    /// On a PostgreSQL store, this node's name in the cluster (over `[cluster] node`;
    /// default `<host>-<pid>`). A second live node with the same name is refused.
    #[arg(long, value_name = "NAME", value_parser = node_name)]
    pub(crate) node: Option<String>,
}

/// A node name: 1 to 63 letters, digits, '.', '_' or '-'.
fn node_name(text: &str) -> Result<String, String> {
    if volley::config::is_node_name(text) {
        Ok(text.to_owned())
    } else {
        Err("a node name is 1 to 63 letters, digits, '.', '_' or '-'".to_owned())
    }
}

/// `volley load`.
#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    #[command(flatten)]
    pub(crate) campaign: CampaignArgs,
}

/// `volley send`.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    pub(crate) campaign: CampaignArgs,
    /// Write the signed messages as .eml files into DIR instead of sending (store untouched).
    #[arg(long, value_name = "DIR")]
    pub(crate) dry_run: Option<PathBuf>,
    /// When only deferred recipients are left, wait for those due within this long before
    /// ending (e.g. "0s", "90s", "10m").
    #[arg(long, default_value = "1m", value_name = "DURATION")]
    pub(crate) linger: humantime::Duration,
    /// Never show a progress bar, even on a terminal.
    #[arg(long)]
    pub(crate) no_progress: bool,
}

/// `volley test-send`.
#[derive(Debug, Args)]
pub(crate) struct TestSendArgs {
    #[command(flatten)]
    pub(crate) campaign: CampaignArgs,
    /// The address to send to.
    #[arg(long)]
    pub(crate) to: String,
    /// Use the merge fields of this data row of the list (1 = the first).
    #[arg(long, default_value_t = 1)]
    pub(crate) row: usize,
    /// Send this A/B variant (default: the first).
    #[arg(long, value_name = "ID")]
    pub(crate) variant: Option<String>,
}

/// `volley check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    pub(crate) campaign: CampaignArgs,
    /// The address mail leaves from when sending direct to MX, so SPF coverage can be checked.
    #[arg(long, value_name = "IP")]
    pub(crate) sending_ip: Option<std::net::IpAddr>,
    /// Print JSON: {"ok": bool, "checks": [{"name", "status", "detail"}]}.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `volley audience`.
#[derive(Debug, Args)]
pub(crate) struct AudienceArgs {
    #[command(flatten)]
    pub(crate) campaign: CampaignArgs,
    /// Print JSON: {"campaign", "rows", "rules": [{"rule", "removed", "remaining"}],
    /// "remaining"}.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `volley init`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// The folder to write into (created if needed; existing files are never overwritten).
    pub(crate) dir: PathBuf,
    /// The sending domain (From and DKIM).
    #[arg(long, default_value = "example.com")]
    pub(crate) domain: String,
    /// The From address (default: `News <news@DOMAIN>`).
    #[arg(long)]
    pub(crate) from: Option<String>,
    /// The DKIM selector: the key is published at SELECTOR._domainkey.DOMAIN.
    #[arg(long, default_value = "volley")]
    pub(crate) selector: String,
    /// Also generate an Ed25519 key (selector SELECTOR-ed), so each message is signed twice:
    /// RSA-2048 first (the key Gmail, Microsoft and Yahoo verify), then Ed25519 (RFC 8463).
    #[arg(long)]
    pub(crate) ed25519: bool,
    /// The key is RSA-2048 by default: accepted for scripts written when it was not.
    #[arg(long, hide = true)]
    pub(crate) rsa: bool,
}

/// `volley status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) campaign: ViewArgs,
    /// Print JSON: campaign, total, pending, delivered, deferred, bounced, expired,
    /// suppressed, invalid, duplicate, next_attempt (and, on a PostgreSQL store, the
    /// cluster's nodes).
    #[arg(long)]
    pub(crate) json: bool,
}

/// `volley events`.
#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    #[command(flatten)]
    pub(crate) campaign: ViewArgs,
    /// Only events at or after this time: an RFC 3339 time (e.g. "2024-05-01T12:00:00Z") or
    /// a duration back from now (e.g. "2h", "7d").
    #[arg(long, value_name = "TIME")]
    pub(crate) since: Option<String>,
    /// For a scheduled campaign: export this edition (as `volley gc` lists it, e.g.
    /// `newsletter.2024-05-06`) instead of the latest.
    #[arg(long, value_name = "ID")]
    pub(crate) edition: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = EventsFormat::Jsonl)]
    pub(crate) format: EventsFormat,
    /// Write to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
}

/// `volley store`.
#[derive(Debug, Subcommand)]
pub(crate) enum StoreCommand {
    /// Copy campaigns (recipients, states, attempts, replies, bounces, tracking, A/B records,
    /// export marks) and the store-wide records (suppression list, token secret, connection
    /// limits, relay usage, ingested reports) from one store into another: a sled folder to
    /// PostgreSQL or back. The source is only read. Refused while a send holds a sled store,
    /// and for a campaign the target has already.
    Copy(StoreCopyArgs),
    /// Rewrite a store made by an older volley in this version's format. The old store is
    /// kept as DIR.format1; safe to run again after a crash, and a no-op on a store that
    /// needs nothing. Stop anything using the store first.
    Upgrade {
        /// The store folder.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

/// `volley store copy`.
#[derive(Debug, Args)]
pub(crate) struct StoreCopyArgs {
    /// The source: a store folder, or a `postgresql://` address.
    #[arg(long, value_name = "DIR|URL")]
    pub(crate) from: PathBuf,
    /// The target: a `postgresql://` address, or a store folder (created when missing).
    #[arg(long, value_name = "URL|DIR")]
    pub(crate) to: PathBuf,
    /// Only this campaign (default: every campaign of the source).
    #[arg(long, value_name = "ID")]
    pub(crate) campaign: Option<String>,
}

/// `volley gc`.
#[derive(Debug, Args)]
pub(crate) struct GcArgs {
    /// Only this campaign (for a scheduled campaign, every edition); without it, every
    /// campaign in the store given by `--store`.
    pub(crate) campaign: Option<PathBuf>,
    /// The store: a folder or a `postgresql://` address (default: the campaign's).
    #[arg(long, required_unless_present = "campaign")]
    pub(crate) store: Option<PathBuf>,
    /// Collect finished campaigns even when their events were never exported (they are lost).
    #[arg(long)]
    pub(crate) force: bool,
    /// Say what would be collected; change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Forget a webhook removed from the serve file for good, so that the events it never
    /// had acknowledged no longer keep campaigns from being collected (repeatable).
    #[arg(long, value_name = "NAME")]
    pub(crate) forget_webhook: Vec<String>,
    /// Print JSON: campaigns [{campaign, outcome, …}], bytes_before, bytes_after, compacted.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `volley report`.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    #[command(flatten)]
    pub(crate) campaign: ViewArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub(crate) format: ReportFormat,
    /// Write to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// How many recipient domains to list (the rest are summed up as "other").
    #[arg(long, default_value_t = 10)]
    pub(crate) top: usize,
}

/// `volley report --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormat {
    /// Aligned text for the terminal.
    Table,
    /// The report's data as JSON.
    Json,
    /// One tidy table: section, item, metric, value.
    Csv,
    /// One self-contained HTML page with charts.
    Html,
}

/// `volley ab …`.
#[derive(Debug, Subcommand)]
pub(crate) enum AbCommand {
    /// The verdict of a campaign's A/B test on the numbers so far: per variant delivered,
    /// unique human opens and clicks, the rate with its Wilson interval and the probability
    /// of being best; the p-value; winner or inconclusive (with the sample still needed).
    /// Changes nothing: the next `volley send` after `[ab] wait` acts on it.
    Decide(AbDecideArgs),
}

/// `volley conversions …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConversionsCommand {
    /// Record orders from a CSV (`email`, `order_id`, `value`, optional `time` in RFC 3339
    /// and `currency`): each counts for the recipient's variant when placed within
    /// `[conversions] window` (default 7 days) of the delivery. Importing an order id again
    /// changes nothing; bad rows are reported with file, line and field and skipped (exit 1).
    Import(ConversionsImportArgs),
}

/// `volley conversions import`.
#[derive(Debug, Args)]
pub(crate) struct ConversionsImportArgs {
    #[command(flatten)]
    pub(crate) campaign: ViewArgs,
    /// The orders CSV.
    #[arg(value_name = "ORDERS.csv")]
    pub(crate) orders: PathBuf,
}

/// `volley ab decide`.
#[derive(Debug, Args)]
pub(crate) struct AbDecideArgs {
    #[command(flatten)]
    pub(crate) campaign: ViewArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `volley events --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum EventsFormat {
    /// One JSON object per line.
    Jsonl,
    /// CSV with a header row.
    Csv,
}

/// `volley demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Recipients in the demo list.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) recipients: usize,
    /// Receiving domains they are spread over.
    #[arg(long, default_value_t = 100)]
    pub(crate) domains: usize,
    /// Keep the demo files in DIR (default: a temporary folder, removed afterwards).
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// Body size of each message in bytes (roughly).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) body_bytes: usize,
    /// Deliver straight to MX hosts (answered by a loopback DNS server) instead of a relay.
    #[arg(long)]
    pub(crate) direct: bool,
}

/// `volley sink`.
#[derive(Debug, Args)]
pub(crate) struct SinkArgs {
    /// Address to listen on (loopback); give it several times to listen on several
    /// addresses sharing one state, e.g. `--bind 127.0.0.2:2525 --bind 127.0.0.3:2525`.
    #[arg(long, default_value = "127.0.0.1:2525", value_name = "ADDR")]
    pub(crate) bind: Vec<SocketAddr>,
    /// Accept at most N recipients per domain within any SECS seconds (e.g. `100/1`);
    /// past it a RCPT gets `421 4.7.0` and the connection closes.
    #[arg(long, value_name = "N/SECS", value_parser = crate::sink::parse_rate_limit)]
    pub(crate) rate_limit: Option<volley_testkit::sink::RateLimit>,
    /// Offer STARTTLS, answer it 220, then break the TLS handshake.
    #[arg(long)]
    pub(crate) broken_starttls: bool,
    /// TLS mode.
    #[arg(long, value_enum, default_value_t = SinkTlsArg::Starttls)]
    pub(crate) tls: SinkTlsArg,
    /// Write the CA certificate clients must trust to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) ca_out: Option<PathBuf>,
    /// Require AUTH with USER:PASSWORD.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub(crate) auth: Option<String>,
    /// Keep only envelopes and sizes, not message bodies.
    #[arg(long)]
    pub(crate) no_bodies: bool,
    /// Offer CHUNKING (BDAT).
    #[arg(long)]
    pub(crate) chunking: bool,
    /// On exit, write the recipient of every accepted message to FILE, one per line.
    #[arg(long, value_name = "FILE")]
    pub(crate) log_recipients: Option<PathBuf>,
    /// On exit, write what the server counted to FILE as JSON: messages, recipients,
    /// connections, tls_connections (connections that carried mail over TLS),
    /// first_to_last_seconds and messages_per_second (first accepted message to last).
    #[arg(long, value_name = "FILE")]
    pub(crate) stats_json: Option<PathBuf>,
    /// Milliseconds to wait before every reply (simulated round-trip time).
    #[arg(long, default_value_t = 0)]
    pub(crate) delay_ms: u64,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long)]
    pub(crate) seconds: Option<u64>,
}

/// `volley dns`.
#[derive(Debug, Args)]
pub(crate) struct DnsArgs {
    /// Address to answer on, UDP and TCP (loopback; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:5353")]
    pub(crate) bind: SocketAddr,
    /// The zone file to answer from (format: see the engine's `nameserver` module docs).
    #[arg(long, value_name = "FILE")]
    pub(crate) zone: PathBuf,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long)]
    pub(crate) seconds: Option<u64>,
}

/// `volley sink --tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SinkTlsArg {
    /// Plain text only.
    None,
    /// STARTTLS offered.
    Starttls,
    /// Implicit TLS.
    Tls,
}

/// Which store a command works on: `--campaign FILE` (its store and its `[bounces]`
/// settings) or `--store DIR`.
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// A campaign file: use its store and its `[bounces]` settings.
    #[arg(long, value_name = "FILE", required_unless_present = "store")]
    pub(crate) campaign: Option<PathBuf>,
    /// A store: a folder or a `postgresql://` address (default settings).
    #[arg(long, value_name = "DIR|URL")]
    pub(crate) store: Option<PathBuf>,
}

/// The bounce receiver's limits, timeouts, spool and STARTTLS for `volley bounces listen`.
#[derive(Debug, Args)]
pub(crate) struct ListenArgs {
    /// The largest message accepted, in bytes (larger: 552 5.3.4).
    #[arg(long, default_value_t = 10 * 1024 * 1024, value_name = "BYTES")]
    pub(crate) max_message_size: u64,
    /// Recipients per transaction (more: 452 4.5.3).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub(crate) max_recipients: usize,
    /// Sessions at once (more: 421 4.7.0).
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub(crate) max_connections: usize,
    /// Sessions at once from one client address (more: 421 4.7.0).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub(crate) max_connections_per_ip: usize,
    /// The longest wait for each command line (e.g. "5m", "30s").
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub(crate) command_timeout: humantime::Duration,
    /// The longest wait for each block of DATA.
    #[arg(long, default_value = "3m", value_name = "DURATION")]
    pub(crate) data_block_timeout: humantime::Duration,
    /// The longest a session may last.
    #[arg(long, default_value = "30m", value_name = "DURATION")]
    pub(crate) session_timeout: humantime::Duration,
    /// The spool folder (default: `bounce-spool` in the store folder; required with a
    /// `--store postgresql://…`, which has no folder).
    #[arg(long, value_name = "DIR")]
    pub(crate) spool: Option<PathBuf>,
    /// Offer STARTTLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
}

/// `volley bounces …`.
#[derive(Debug, Subcommand)]
pub(crate) enum BouncesCommand {
    /// Read DSNs and complaint reports (.eml files, mbox files, Maildir folders) and record
    /// each against the recipient it concerns (by VERP token, else by Message-ID).
    /// Ingesting the same message twice changes nothing.
    Ingest {
        #[command(flatten)]
        store: StoreArgs,
        /// Files, mboxes or Maildir folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Parse bounce messages and show what they say, touching no store.
    Parse {
        /// Message files (or mboxes, Maildir folders).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// One JSON object per message.
        #[arg(long)]
        json: bool,
    },
    /// Receive bounces over SMTP (for the bounce domain's MX) and ingest them as they arrive.
    Listen {
        #[command(flatten)]
        store: StoreArgs,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:2526")]
        bind: SocketAddr,
        /// Stop after this many seconds (default: until interrupted).
        #[arg(long)]
        seconds: Option<u64>,
        #[command(flatten)]
        limits: ListenArgs,
    },
    /// Bounces of a campaign by category, by domain, hard and soft.
    Report {
        /// The campaign file.
        campaign: PathBuf,
        /// The store: a folder or a `postgresql://` address (default: the campaign's).
        #[arg(long)]
        store: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `volley track …`.
#[derive(Debug, Subcommand)]
pub(crate) enum TrackCommand {
    /// Serve the tracking URLs for the campaigns of a store (open pixel, links, one-click
    /// unsubscribe, /healthz, and /metrics with a token). It owns the store while it runs: `volley send` on
    /// that store hands its campaign over to it, `volley status` asks it.
    Serve {
        /// The store the campaigns were sent from: a folder or a `postgresql://` address.
        #[arg(long, value_name = "DIR|URL")]
        store: PathBuf,
        /// Address to listen on (put an HTTPS reverse proxy in front for the public URL).
        #[arg(long, default_value = "127.0.0.1:8025")]
        bind: SocketAddr,
        /// The tracking key file (the campaigns' `[tracking] key_file`).
        #[arg(long, value_name = "FILE", conflicts_with = "key_env")]
        key_file: Option<PathBuf>,
        /// The environment variable holding the tracking key.
        #[arg(long, value_name = "VAR", default_value = "VOLLEY_TRACKING_KEY")]
        key_env: String,
        /// Stop after this many seconds (default: until interrupted).
        #[arg(long)]
        seconds: Option<u64>,
        #[command(flatten)]
        limits: TrackLimits,
        /// Take signed conversion postbacks (`POST /conversions/<campaign id>`) for this
        /// campaign, whose `[conversions] postback_secret_file`/`postback_secret_env` signs
        /// them; repeat for more campaigns.
        #[arg(long = "conversions", value_name = "CAMPAIGN.toml")]
        conversions: Vec<PathBuf>,
    },
}

/// What `volley track serve` bounds, and who may read `/metrics`.
#[derive(Debug, clap::Args)]
pub(crate) struct TrackLimits {
    /// Serve `/metrics` to requests with `Authorization: Bearer TOKEN`, TOKEN read from this
    /// file (at least 16 bytes). Without a token, `/metrics` is not served.
    #[arg(long, value_name = "FILE", conflicts_with = "metrics_token_env")]
    pub(crate) metrics_token_file: Option<PathBuf>,
    /// The same, TOKEN read from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub(crate) metrics_token_env: Option<String>,
    /// Time a client has to send a request's line and headers [default: 10s].
    #[arg(long, value_name = "DURATION")]
    pub(crate) header_timeout: Option<humantime::Duration>,
    /// Close a connection that sends and reads nothing for this long [default: 60s].
    #[arg(long, value_name = "DURATION")]
    pub(crate) idle_timeout: Option<humantime::Duration>,
    /// Connections served at once; more wait [default: 1024].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) max_connections: Option<u32>,
    /// Store a repeated request (same token, same human/machine verdict) once within this
    /// window; 0 stores every one [default: 10m].
    #[arg(long, value_name = "DURATION")]
    pub(crate) dedupe_window: Option<humantime::Duration>,
    /// Store at most this many events per recipient per UTC day [default: 100].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) daily_cap: Option<u32>,
    /// Count an open this soon after delivery as fetched on arrival (a machine's), not read;
    /// 0s judges opens by their user agent only [default: 5s].
    #[arg(long, value_name = "DURATION")]
    pub(crate) too_soon: Option<humantime::Duration>,
}

/// `volley suppress …`.
#[derive(Debug, Subcommand)]
pub(crate) enum SuppressCommand {
    /// List suppressed addresses (CSV).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Suppress an address by hand.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        /// The address.
        address: String,
        /// Suppress it for this topic only (default: for every campaign).
        #[arg(long, value_name = "TOPIC")]
        topic: Option<String>,
        /// A note kept with it.
        #[arg(long, default_value = "added by hand")]
        note: String,
    },
    /// Remove an address from the list.
    Remove {
        #[command(flatten)]
        store: StoreArgs,
        /// The address.
        address: String,
        /// Remove its entry for this topic (default: its global entry).
        #[arg(long, value_name = "TOPIC")]
        topic: Option<String>,
    },
    /// Import a CSV with an `email` column (optional `reason`, `detail`, `topic`).
    Import {
        #[command(flatten)]
        store: StoreArgs,
        /// The CSV file.
        file: PathBuf,
    },
    /// Export the list as CSV (email, reason, at, campaign, detail, topic).
    Export {
        #[command(flatten)]
        store: StoreArgs,
        /// Write to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}
