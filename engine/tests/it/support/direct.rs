//! Direct-to-MX harness: test SMTP servers on several loopback addresses sharing one port
//! (MX hosts), a loopback DNS server whose zone points recipient domains at them, and a
//! campaign without `[relay]` whose `[dns]` and `[mx]` point at both.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use tokio::net::TcpListener;
use volley::runtime::{self, Campaign, SendOptions, SendReport};
use volley_testkit::campaign::{copy_dkim_keys, CampaignToml, Mx, QUICK_RETRY};
use volley_testkit::nameserver::{NameServer, Zone};
use volley_testkit::sink::{Sink, SinkConfig, SinkTls};

use super::LIMIT;

/// MX hosts (one test SMTP server listening on `127.0.0.10`, `.11`…, one shared port and one
/// shared record of what arrived), the DNS server and the campaign folder.
pub struct Direct {
    pub dir: tempfile::TempDir,
    pub sink: Sink,
    pub dns: NameServer,
    pub port: u16,
}

/// Binds `127.0.0.<first>..` on one shared free port, one listener per address.
async fn listeners(count: u8) -> (u16, Vec<(Ipv4Addr, TcpListener)>) {
    'retry: for _ in 0..20 {
        let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let mut bound = Vec::new();
        for n in 0..count {
            let ip = Ipv4Addr::new(127, 0, 0, 10 + n);
            match TcpListener::bind(SocketAddr::from((ip, port))).await {
                Ok(listener) => bound.push((ip, listener)),
                Err(_) => continue 'retry,
            }
        }
        return (port, bound);
    }
    panic!("no free port shared by the loopback addresses");
}

impl Direct {
    /// `count` MX hosts `mx<i>.sink.test` served by a sink configured as `sink`, and a zone built
    /// by `zone` (which gets the host names and addresses to point domains at).
    pub async fn start(
        count: u8,
        sink: SinkConfig,
        zone: impl FnOnce(&mut Zone, &[(String, Ipv4Addr)]),
    ) -> Direct {
        let (port, bound) = listeners(count).await;
        let hosts: Vec<(String, Ipv4Addr)> = bound
            .iter()
            .enumerate()
            .map(|(i, (ip, _))| (format!("mx{i}.sink.test"), *ip))
            .collect();
        let listeners = bound.into_iter().map(|(_, l)| l).collect();
        let sink = Sink::start_on_many(listeners, sink, None).await.unwrap();
        let mut records = Zone::new();
        for (name, ip) in &hosts {
            records.a(name, *ip);
        }
        zone(&mut records, &hosts);
        let dns = NameServer::start(records).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        if let Some(ca) = sink.ca_pem() {
            std::fs::write(dir.path().join("ca.pem"), ca).unwrap();
        } else {
            std::fs::write(
                dir.path().join("ca.pem"),
                volley_testkit::sink::TestCa::generate().unwrap().ca_pem(),
            )
            .unwrap();
        }
        Direct {
            dir,
            sink,
            dns,
            port,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Stops the MX hosts (if they still run) and starts them again on the same addresses
    /// with `config` and the same certificates; returns the stopped sink, whose record of
    /// what it received stays readable.
    pub async fn restart_sink(&mut self, config: SinkConfig) -> Sink {
        self.sink.stop().await;
        let mut listeners = Vec::new();
        for addr in self.sink.addrs() {
            listeners.push(TcpListener::bind(addr).await.unwrap());
        }
        let ca = self.sink.ca().cloned();
        let revived = Sink::start_on_many(listeners, config, ca).await.unwrap();
        std::mem::replace(&mut self.sink, revived)
    }

    /// Writes a campaign for `csv` with `mx_extra` lines in `[mx]` and `sections` appended
    /// (TOML: `[shaping.*]`…).
    pub fn write_campaign(&self, csv: &str, mx_extra: &str, sections: &str) {
        let dir = self.dir.path();
        copy_dkim_keys(dir);
        std::fs::write(
            dir.join("body.txt"),
            "Hi {{ first_name }},\nyour city is {{ city }}.\n.\nA line with a dot above.\n",
        )
        .unwrap();
        std::fs::write(dir.join("list.csv"), csv).unwrap();
        CampaignToml::new("direct")
            .from("Example News <news@example.com>")
            .subject("Hello {{ first_name }}")
            .mx(Mx::on_port(self.port).ca_file("ca.pem").line(mx_extra))
            .dns(self.dns.addr())
            .dkim("ed", "ed.pem")
            .dkim("rsa", "rsa.pem")
            .retry(QUICK_RETRY)
            .section(sections)
            .write(&dir.join("campaign.toml"));
    }

    pub fn campaign(&self) -> Campaign {
        let settings = volley::config::load_campaign(&self.path("campaign.toml"), None).unwrap();
        Campaign::prepare(settings).unwrap()
    }

    pub async fn send(&self) -> Result<SendReport, volley::Error> {
        let campaign = self.campaign();
        tokio::time::timeout(LIMIT, runtime::send(&campaign, SendOptions::default()))
            .await
            .expect("send finished in time")
    }

    /// Sends with `linger` instead of the default.
    pub async fn send_with_linger(&self, linger: std::time::Duration) -> SendReport {
        let options = SendOptions {
            linger,
            ..SendOptions::default()
        };
        tokio::time::timeout(LIMIT, runtime::send(&self.campaign(), options))
            .await
            .expect("send finished in time")
            .unwrap()
    }

    /// How many times each address arrived.
    pub fn arrivals(&self) -> std::collections::HashMap<String, usize> {
        super::arrivals(&self.sink)
    }
}

/// A sink configuration with this TLS mode (no AUTH: MX hosts take mail from anyone).
pub fn mx_sink(tls: SinkTls) -> SinkConfig {
    SinkConfig {
        tls,
        ..SinkConfig::default()
    }
}
