//! Test harness: a campaign written into a temp dir, pointed at a fresh loopback sink.

pub mod direct;
pub mod logs;
pub mod outcomes;
pub mod policy_host;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;
use volley::runtime::{self, Campaign, SendOptions, SendReport};
use volley_testkit::campaign::{copy_dkim_keys, CampaignToml, Relay, QUICK_RETRY};
use volley_testkit::sink::{Sink, SinkConfig, SinkTls};
pub use volley_testkit::{arrivals, fixtures, LIMIT};

pub const USER: &str = "relay-user";
pub const PASSWORD: &str = "s3cret-relay-password";

/// The TXT records that publish the fixture DKIM keys.
pub fn dkim_records() -> Vec<(String, String)> {
    let read = |name: &str| {
        std::fs::read_to_string(fixtures().join("dkim").join(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    vec![
        ("rsa._domainkey.example.com".to_owned(), read("rsa2048.txt")),
        ("ed._domainkey.example.com".to_owned(), read("ed25519.txt")),
    ]
}

/// How a test campaign is set up.
pub struct Setup {
    pub tls: SinkTls,
    pub auth: bool,
    pub password: String,
    pub trust_sink: bool,
    pub extra_campaign: String,
    pub subject: String,
    pub retry: String,
    pub connections: usize,
    /// Extra TOML sections appended to the campaign file.
    pub sections: String,
    /// The sink's cap on simultaneous connections.
    pub max_connections: Option<u64>,
    /// The sink offers PIPELINING.
    pub pipelining: bool,
    /// The sink offers CHUNKING (BDAT).
    pub chunking: bool,
    /// Extra lines for the `[relay]` section.
    pub relay_extra: String,
    /// The sink waits this long before each batch of replies (a simulated round trip).
    pub reply_delay: Duration,
    /// The rest of the sink's configuration (scripts' delays, a broken STARTTLS, a slow
    /// banner); the fields above override it.
    pub sink: SinkConfig,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            tls: SinkTls::StartTls,
            auth: true,
            password: PASSWORD.to_owned(),
            trust_sink: true,
            extra_campaign: String::new(),
            subject: "Hello {{ first_name }}".to_owned(),
            retry: QUICK_RETRY.to_owned(),
            connections: 4,
            sections: String::new(),
            max_connections: None,
            pipelining: true,
            chunking: false,
            relay_extra: String::new(),
            reply_delay: Duration::ZERO,
            sink: SinkConfig::default(),
        }
    }
}

/// A campaign in a temp dir and the sink it sends to.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub sink: Sink,
}

impl Fixture {
    pub async fn new(setup: Setup, csv: &str) -> Fixture {
        let sink = Sink::start(SinkConfig {
            tls: setup.tls,
            auth: setup.auth.then(|| (USER.to_owned(), PASSWORD.to_owned())),
            max_connections: setup.max_connections,
            pipelining: setup.pipelining,
            chunking: setup.chunking,
            reply_delay: setup.reply_delay,
            ..setup.sink.clone()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let fixture = Fixture { dir, sink };
        fixture.write(&setup, csv);
        fixture
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Stops the relay (if it still runs) and starts it again on the same port with
    /// `config` and the same certificates; returns the stopped one, whose record of what
    /// it received stays readable.
    pub async fn restart_sink(&mut self, config: SinkConfig) -> Sink {
        self.sink.stop().await;
        let listener = tokio::net::TcpListener::bind(self.sink.addr())
            .await
            .unwrap();
        let ca = self.sink.ca().cloned();
        let revived = Sink::start_on(listener, config, ca).await.unwrap();
        std::mem::replace(&mut self.sink, revived)
    }

    pub fn campaign_file(&self) -> PathBuf {
        self.path("campaign.toml")
    }

    fn write(&self, setup: &Setup, csv: &str) {
        copy_dkim_keys(self.dir.path());
        std::fs::write(self.path("password.txt"), format!("{}\n", setup.password)).unwrap();
        if let Some(ca) = self.sink.ca_pem() {
            std::fs::write(self.path("ca.pem"), ca).unwrap();
        }
        std::fs::write(
            self.path("body.txt"),
            "Hi {{ first_name }},\nyour city is {{ city }}.\n.\nA line with a dot above.\n",
        )
        .unwrap();
        std::fs::write(
            self.path("body.html"),
            "<p>Hi {{ first_name }} from {{ city }}</p>",
        )
        .unwrap();
        std::fs::write(self.path("list.csv"), csv).unwrap();
        let tls = match setup.tls {
            SinkTls::None => "none",
            SinkTls::StartTls => "starttls",
            SinkTls::Implicit => "tls",
        };
        let mut relay = Relay::loopback(self.sink.addr().port())
            .tls(tls)
            .helo("sender.example.com")
            .connections(setup.connections)
            .line(&setup.relay_extra);
        if setup.auth {
            relay = relay.login(USER, "password.txt");
        }
        if setup.trust_sink && self.sink.ca_pem().is_some() {
            relay = relay.ca_file("ca.pem");
        }
        CampaignToml::new("test-campaign")
            .from("Example News <news@example.com>")
            .subject(&setup.subject)
            .html("body.html")
            .campaign_line(&setup.extra_campaign)
            .relay(relay)
            .dkim("ed", "ed.pem")
            .dkim("rsa", "rsa.pem")
            .retry(&setup.retry)
            .section(&setup.sections)
            .write(&self.campaign_file());
    }

    /// Rewrites the campaign id: a second campaign with the same list and the same store
    /// (the store is named after the campaign file, not the id).
    pub fn rename_campaign(&self, id: &str) {
        let toml = std::fs::read_to_string(self.campaign_file())
            .unwrap()
            .replace("id = \"test-campaign\"", &format!("id = \"{id}\""));
        std::fs::write(self.campaign_file(), toml).unwrap();
    }

    pub fn campaign(&self) -> Campaign {
        let settings = volley::config::load_campaign(&self.campaign_file(), None).unwrap();
        Campaign::prepare(settings).unwrap()
    }

    pub async fn send(&self) -> Result<SendReport, volley::Error> {
        let campaign = self.campaign();
        tokio::time::timeout(LIMIT, runtime::send(&campaign, SendOptions::default()))
            .await
            .expect("send finished in time")
    }
}

/// A CSV of `n` recipients `user{i}@d{i % domains}.example`, with name and city.
pub fn list(n: usize, domains: usize) -> String {
    let mut csv = String::from("email,first_name,city\n");
    for i in 0..n {
        writeln!(
            csv,
            "user{i}@d{}.example,Name{i},City{}",
            i % domains,
            i % 7
        )
        .unwrap();
    }
    csv
}
