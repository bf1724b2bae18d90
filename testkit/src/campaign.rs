//! `CampaignToml`: the `campaign.toml` of a test, built field by field and written into the
//! test's folder, so the engine's and the binary's tests share one way to write a campaign
//! instead of a copy of the whole file per test.
//!
//! ```
//! use volley_testkit::campaign::{CampaignToml, Relay, QUICK_RETRY};
//!
//! let toml = CampaignToml::new("cli-test")
//!     .relay(Relay::loopback(2525).tls("starttls").login("user", "pw.txt").ca_file("ca.pem"))
//!     .dkim("rsa", "rsa.pem")
//!     .retry(QUICK_RETRY)
//!     .to_string();
//! assert!(toml.contains("[relay]\nhost = \"127.0.0.1\"\nport = 2525\ntls = \"starttls\"\n"));
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A `[retry]` for tests: one retry a second later, messages expire after an hour.
pub const QUICK_RETRY: &str = "schedule = [\"1s\"]\nexpire_after = \"1h\"";

/// The `[relay]` section: where a relayed campaign sends.
#[derive(Debug, Clone)]
pub struct Relay {
    host: String,
    port: u16,
    tls: String,
    helo: Option<String>,
    connections: Option<usize>,
    login: Option<(String, String)>,
    ca_file: Option<String>,
    lines: Vec<String>,
}

impl Relay {
    /// A relay at `127.0.0.1:port`, plain (`tls = "none"`), without login, helo or
    /// connection count (the engine's defaults apply).
    pub fn loopback(port: u16) -> Relay {
        Relay {
            host: "127.0.0.1".to_owned(),
            port,
            tls: "none".to_owned(),
            helo: None,
            connections: None,
            login: None,
            ca_file: None,
            lines: Vec::new(),
        }
    }

    /// `host`, for a name the relay's certificate does or does not cover.
    pub fn host(mut self, host: &str) -> Relay {
        self.host = host.to_owned();
        self
    }

    /// `tls`: `"none"`, `"starttls"` or `"tls"`.
    pub fn tls(mut self, tls: &str) -> Relay {
        self.tls = tls.to_owned();
        self
    }

    /// `helo`.
    pub fn helo(mut self, helo: &str) -> Relay {
        self.helo = Some(helo.to_owned());
        self
    }

    /// `connections`.
    pub fn connections(mut self, connections: usize) -> Relay {
        self.connections = Some(connections);
        self
    }

    /// `username` and `password_file`.
    pub fn login(mut self, username: &str, password_file: &str) -> Relay {
        self.login = Some((username.to_owned(), password_file.to_owned()));
        self
    }

    /// `ca_file`: the certificate (PEM) the relay's must chain to.
    pub fn ca_file(mut self, file: &str) -> Relay {
        self.ca_file = Some(file.to_owned());
        self
    }

    /// Any further `key = value` lines (`max_per_second = 20`); empty text adds nothing.
    pub fn line(mut self, line: &str) -> Relay {
        push_text(&mut self.lines, line);
        self
    }
}

impl fmt::Display for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[relay]")?;
        self.write_keys(f)
    }
}

impl Relay {
    /// The section's keys, without its header.
    fn write_keys(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "host = \"{}\"\nport = {}", self.host, self.port)?;
        writeln!(f, "tls = \"{}\"", self.tls)?;
        if let Some(helo) = &self.helo {
            writeln!(f, "helo = \"{helo}\"")?;
        }
        if let Some(connections) = self.connections {
            writeln!(f, "connections = {connections}")?;
        }
        if let Some((user, file)) = &self.login {
            writeln!(f, "username = \"{user}\"\npassword_file = \"{file}\"")?;
        }
        if let Some(ca) = &self.ca_file {
            writeln!(f, "ca_file = \"{ca}\"")?;
        }
        self.lines.iter().try_for_each(|l| writeln!(f, "{l}"))
    }
}

/// The `[mx]` section: a campaign delivered directly to each domain's MX hosts.
#[derive(Debug, Clone)]
pub struct Mx {
    port: u16,
    helo: String,
    ca_file: Option<String>,
    lines: Vec<String>,
}

impl Mx {
    /// MX hosts listening on `port` (instead of 25), greeted as `sender.example.com`.
    pub fn on_port(port: u16) -> Mx {
        Mx {
            port,
            helo: "sender.example.com".to_owned(),
            ca_file: None,
            lines: Vec::new(),
        }
    }

    /// `ca_file`: the certificate (PEM) the MX hosts' must chain to.
    pub fn ca_file(mut self, file: &str) -> Mx {
        self.ca_file = Some(file.to_owned());
        self
    }

    /// Any further `key = value` lines (`tls = "required"`); empty text adds nothing.
    pub fn line(mut self, line: &str) -> Mx {
        push_text(&mut self.lines, line);
        self
    }
}

impl fmt::Display for Mx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[mx]\nport = {}\nhelo = \"{}\"", self.port, self.helo)?;
        if let Some(ca) = &self.ca_file {
            writeln!(f, "ca_file = \"{ca}\"")?;
        }
        self.lines.iter().try_for_each(|l| writeln!(f, "{l}"))
    }
}

#[derive(Debug, Clone)]
enum Route {
    Relay(Relay),
    Relays(Vec<Relay>),
    Mx(Mx),
}

/// A test campaign file. `CampaignToml::new(id)` is `From: News <news@example.com>`,
/// subject `Hi {{ name }}`, text part `body.txt`, recipients `list.csv`, no route, no DKIM
/// key and no `[retry]`; each setter replaces or adds one piece. `Display` renders the TOML.
#[derive(Debug, Clone)]
pub struct CampaignToml {
    id: String,
    from: String,
    subject: String,
    text: Option<String>,
    html: Option<String>,
    recipients: String,
    campaign_lines: Vec<String>,
    route: Option<Route>,
    dns: Option<SocketAddr>,
    dkim: Vec<(String, String)>,
    retry: Option<String>,
    sections: Vec<String>,
}

impl CampaignToml {
    /// A campaign with the id `id` and the defaults above.
    pub fn new(id: &str) -> CampaignToml {
        CampaignToml {
            id: id.to_owned(),
            from: "News <news@example.com>".to_owned(),
            subject: "Hi {{ name }}".to_owned(),
            text: Some("body.txt".to_owned()),
            html: None,
            recipients: "list.csv".to_owned(),
            campaign_lines: Vec::new(),
            route: None,
            dns: None,
            dkim: Vec::new(),
            retry: None,
            sections: Vec::new(),
        }
    }

    /// `[campaign] id`.
    pub fn id(mut self, id: &str) -> CampaignToml {
        self.id = id.to_owned();
        self
    }

    /// `[campaign] from`.
    pub fn from(mut self, from: &str) -> CampaignToml {
        self.from = from.to_owned();
        self
    }

    /// `[campaign] subject` (a template).
    pub fn subject(mut self, subject: &str) -> CampaignToml {
        self.subject = subject.to_owned();
        self
    }

    /// `[campaign] text`: the text template file.
    pub fn text(mut self, file: &str) -> CampaignToml {
        self.text = Some(file.to_owned());
        self
    }

    /// No `[campaign] text`: a campaign with an HTML part only (set one with
    /// [`CampaignToml::html`]).
    pub fn no_text(mut self) -> CampaignToml {
        self.text = None;
        self
    }

    /// `[campaign] html`: the HTML template file.
    pub fn html(mut self, file: &str) -> CampaignToml {
        self.html = Some(file.to_owned());
        self
    }

    /// `[campaign] recipients`: the CSV file.
    pub fn recipients(mut self, file: &str) -> CampaignToml {
        self.recipients = file.to_owned();
        self
    }

    /// Further `[campaign]` lines (`reply_to = "…"`, `priority = 1`); empty text adds nothing.
    pub fn campaign_line(mut self, line: &str) -> CampaignToml {
        push_text(&mut self.campaign_lines, line);
        self
    }

    /// Send through `relay` (replacing any route set before).
    pub fn relay(mut self, relay: Relay) -> CampaignToml {
        self.route = Some(Route::Relay(relay));
        self
    }

    /// Send through several relays, one `[[relay]]` entry each, in this order (replacing
    /// any route set before); per-entry keys (`name`, `weight`, `priority`, `cooldown`) go
    /// in with [`Relay::line`].
    pub fn relays(mut self, relays: Vec<Relay>) -> CampaignToml {
        self.route = Some(Route::Relays(relays));
        self
    }

    /// Deliver directly to MX hosts (replacing any route set before).
    pub fn mx(mut self, mx: Mx) -> CampaignToml {
        self.route = Some(Route::Mx(mx));
        self
    }

    /// `[dns]`: ask only the name server at `addr`, once, waiting one second at most.
    pub fn dns(mut self, addr: SocketAddr) -> CampaignToml {
        self.dns = Some(addr);
        self
    }

    /// A `[[dkim]]` key for `example.com` under `selector`, read from `key_file`.
    pub fn dkim(mut self, selector: &str, key_file: &str) -> CampaignToml {
        self.dkim.push((selector.to_owned(), key_file.to_owned()));
        self
    }

    /// The body of `[retry]` (such as [`QUICK_RETRY`]).
    pub fn retry(mut self, body: &str) -> CampaignToml {
        self.retry = Some(body.to_owned());
        self
    }

    /// Whole sections appended at the end (`[schedule]`, `[[variant]]`, `[tracking]`…);
    /// empty text adds nothing.
    pub fn section(mut self, toml: &str) -> CampaignToml {
        push_text(&mut self.sections, toml);
        self
    }

    /// Writes the TOML to `path` (panics on failure: a test helper) and returns `path`.
    /// On PostgreSQL (`VOLLEY_TEST_STORE=postgres`, see [`crate::store`]) the store is the
    /// database standing for the folder sled would use (`[store] path`, or `<stem>.volley`).
    pub fn write(&self, path: &Path) -> PathBuf {
        let text = if crate::store::is_postgres() {
            self.on_postgres(path)
        } else {
            self.to_string()
        };
        if let Err(e) = std::fs::write(path, text) {
            panic!("writing {}: {e}", path.display());
        }
        path.to_owned()
    }

    /// The TOML with its `[store]` (given or default) pointing at a test database; a
    /// `[store]` naming a database itself (`url`) is kept.
    fn on_postgres(&self, path: &Path) -> String {
        let mut toml = self.clone();
        let given = toml
            .sections
            .iter()
            .position(|s| s.trim_start().starts_with("[store]"));
        if given.is_some_and(|i| toml.sections[i].contains("url")) {
            return toml.to_string();
        }
        let folder = match given.map(|i| toml.sections.remove(i)) {
            Some(section) => store_path(&section),
            None => {
                let stem = path.file_stem().map_or_else(
                    || "campaign".to_owned(),
                    |s| s.to_string_lossy().into_owned(),
                );
                format!("{stem}.volley")
            }
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        format!(
            "{toml}
{}",
            crate::store::store_table(dir, &folder)
        )
    }
}

/// The `path = "…"` of a `[store]` section (panics without one: a test helper).
fn store_path(section: &str) -> String {
    section
        .lines()
        .find_map(|line| {
            let value = line.trim().strip_prefix("path")?.trim().strip_prefix('=')?;
            Some(value.trim().trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| panic!("a [store] section without path: {section}"))
}

impl fmt::Display for CampaignToml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "[campaign]\nid = \"{}\"\nfrom = \"{}\"",
            self.id, self.from
        )?;
        writeln!(f, "subject = \"{}\"", self.subject)?;
        if let Some(text) = &self.text {
            writeln!(f, "text = \"{text}\"")?;
        }
        if let Some(html) = &self.html {
            writeln!(f, "html = \"{html}\"")?;
        }
        writeln!(f, "recipients = \"{}\"", self.recipients)?;
        self.campaign_lines
            .iter()
            .try_for_each(|l| writeln!(f, "{l}"))?;
        match &self.route {
            Some(Route::Relay(relay)) => write!(f, "\n{relay}")?,
            Some(Route::Relays(relays)) => {
                for relay in relays {
                    writeln!(f, "\n[[relay]]")?;
                    relay.write_keys(f)?;
                }
            }
            Some(Route::Mx(mx)) => write!(f, "\n{mx}")?,
            None => {}
        }
        if let Some(dns) = self.dns {
            writeln!(
                f,
                "\n[dns]\nnameservers = [\"{dns}\"]\ntimeout = \"1s\"\nattempts = 1"
            )?;
        }
        for (selector, key_file) in &self.dkim {
            writeln!(f, "\n[[dkim]]\ndomain = \"example.com\"")?;
            writeln!(f, "selector = \"{selector}\"\nkey_file = \"{key_file}\"")?;
        }
        if let Some(retry) = &self.retry {
            writeln!(f, "\n[retry]\n{retry}")?;
        }
        self.sections.iter().try_for_each(|s| write!(f, "\n{s}\n"))
    }
}

/// Copies the fixture DKIM keys into `dir` as `rsa.pem` (RSA-2048) and `ed.pem` (Ed25519),
/// the names [`CampaignToml::dkim`] callers use (panics on failure: a test helper).
pub fn copy_dkim_keys(dir: &Path) {
    let keys = crate::fixtures().join("dkim");
    for (from, to) in [("rsa2048.pem", "rsa.pem"), ("ed25519.pem", "ed.pem")] {
        if let Err(e) = std::fs::copy(keys.join(from), dir.join(to)) {
            panic!("copying {from} into {}: {e}", dir.display());
        }
    }
}

/// The configuration file of `volley serve`: one store and the campaigns it serves.
#[derive(Debug, Clone)]
pub struct ServeToml {
    store: String,
    campaigns: Vec<String>,
}

impl ServeToml {
    /// A server on the store folder `store` (relative to the file), serving no campaign yet.
    pub fn new(store: &str) -> ServeToml {
        ServeToml {
            store: store.to_owned(),
            campaigns: Vec::new(),
        }
    }

    /// Serves the campaign file `file` too.
    pub fn campaign(mut self, file: &str) -> ServeToml {
        self.campaigns.push(file.to_owned());
        self
    }

    /// Writes the TOML to `path` (panics on failure: a test helper) and returns `path`. On
    /// PostgreSQL the store is the database standing for the folder (see [`crate::store`]).
    pub fn write(&self, path: &Path) -> PathBuf {
        let text = if crate::store::is_postgres() {
            let campaigns: Vec<String> =
                self.campaigns.iter().map(|c| format!("\"{c}\"")).collect();
            let dir = path.parent().unwrap_or(Path::new("."));
            format!(
                "campaigns = [{}]\n\n{}",
                campaigns.join(", "),
                crate::store::store_table(dir, &self.store)
            )
        } else {
            self.to_string()
        };
        if let Err(e) = std::fs::write(path, text) {
            panic!("writing {}: {e}", path.display());
        }
        path.to_owned()
    }
}

impl fmt::Display for ServeToml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let campaigns: Vec<String> = self.campaigns.iter().map(|c| format!("\"{c}\"")).collect();
        writeln!(f, "store = \"{}\"", self.store)?;
        writeln!(f, "campaigns = [{}]", campaigns.join(", "))
    }
}

fn push_text(lines: &mut Vec<String>, text: &str) {
    if !text.trim().is_empty() {
        lines.push(text.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relayed_campaign_renders_every_section_once() {
        let toml = CampaignToml::new("t")
            .campaign_line("reply_to = \"help@example.com\"")
            .relay(
                Relay::loopback(25)
                    .tls("tls")
                    .helo("h.example")
                    .connections(3)
                    .line("max_per_second = 20"),
            )
            .dkim("ed", "ed.pem")
            .dkim("rsa", "rsa.pem")
            .retry(QUICK_RETRY)
            .section("[schedule]\ncron = \"0 9 * * MON\"")
            .to_string();
        assert_eq!(
            toml,
            "[campaign]\nid = \"t\"\nfrom = \"News <news@example.com>\"\n\
             subject = \"Hi {{ name }}\"\ntext = \"body.txt\"\nrecipients = \"list.csv\"\n\
             reply_to = \"help@example.com\"\n\n\
             [relay]\nhost = \"127.0.0.1\"\nport = 25\ntls = \"tls\"\nhelo = \"h.example\"\n\
             connections = 3\nmax_per_second = 20\n\n\
             [[dkim]]\ndomain = \"example.com\"\nselector = \"ed\"\nkey_file = \"ed.pem\"\n\n\
             [[dkim]]\ndomain = \"example.com\"\nselector = \"rsa\"\nkey_file = \"rsa.pem\"\n\n\
             [retry]\nschedule = [\"1s\"]\nexpire_after = \"1h\"\n\n\
             [schedule]\ncron = \"0 9 * * MON\"\n"
        );
    }

    #[test]
    fn a_serve_file_names_its_store_and_campaigns() {
        let toml = ServeToml::new("s.volley")
            .campaign("a.toml")
            .campaign("b.toml");
        assert_eq!(
            toml.to_string(),
            "store = \"s.volley\"\ncampaigns = [\"a.toml\", \"b.toml\"]\n"
        );
    }

    #[test]
    fn a_direct_campaign_names_its_mx_port_and_name_server() {
        let dns: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        let toml = CampaignToml::new("d")
            .mx(Mx::on_port(2525).ca_file("ca.pem").line(""))
            .dns(dns)
            .to_string();
        assert!(toml.contains(
            "\n[mx]\nport = 2525\nhelo = \"sender.example.com\"\nca_file = \"ca.pem\"\n\n[dns]\n\
             nameservers = [\"127.0.0.1:5353\"]\ntimeout = \"1s\"\nattempts = 1\n"
        ));
        assert!(!toml.contains("[relay]"));
    }
}
