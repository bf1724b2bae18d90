//! `volley init DIR`: a new campaign to start from: a commented campaign.toml, a sample list,
//! text and HTML templates, a fresh DKIM key (mode 0600), and the DNS records to publish.

use crate::args::InitArgs;
use crate::{exit, ui};
use anyhow::{bail, Context};
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub(crate) fn run(args: &InitArgs) -> anyhow::Result<u8> {
    let domain = args.domain.trim().to_ascii_lowercase();
    let from = args
        .from
        .clone()
        .unwrap_or_else(|| format!("News <news@{domain}>"));
    // RSA-2048 always, first: the big receivers do not verify Ed25519 signatures (RFC 8463).
    let mut keys = vec![NewKey::generate(&domain, &args.selector, false)?];
    if args.ed25519 {
        keys.push(NewKey::generate(
            &domain,
            &format!("{}-ed", args.selector),
            true,
        )?);
    }
    let mut files: Vec<(PathBuf, String, bool)> = vec![
        (
            "campaign.toml".into(),
            campaign_toml(&domain, &from, &keys),
            false,
        ),
        ("recipients.csv".into(), RECIPIENTS.to_owned(), false),
        ("templates/newsletter.txt".into(), TEXT.to_owned(), false),
        ("templates/newsletter.html".into(), HTML.to_owned(), false),
    ];
    files.extend(
        keys.iter()
            .map(|key| (key.file.clone().into(), key.pem.clone(), true)),
    );
    for (name, _, _) in &files {
        let path = args.dir.join(name);
        if path.exists() {
            bail!(
                "{} already exists: volley init never overwrites a file (choose another folder)",
                path.display()
            );
        }
    }
    for (name, content, secret) in &files {
        write_new(&args.dir.join(name), content, *secret)?;
    }
    let campaign = args.dir.join("campaign.toml");
    let described: Vec<String> = keys
        .iter()
        .map(|key| format!("a new {} DKIM key in {}", key.algorithm, key.file))
        .collect();
    ui::line(&format!(
        "wrote {} (with recipients.csv, templates/, and {}, mode 0600)",
        campaign.display(),
        described.join(" and ")
    ));
    ui::line("");
    ui::line("Publish these DNS TXT records:");
    for key in &keys {
        let record = key.key.dns_record()?;
        ui::line(&format!("{} TXT \"{record}\"", key.key.dns_name()));
    }
    ui::line(&format!(
        "{domain} TXT \"{}\"",
        volley::preflight::SUGGESTED_SPF
    ));
    ui::line(&format!(
        "_dmarc.{domain} TXT \"{}\"",
        volley::preflight::suggested_dmarc(&domain)
    ));
    ui::line("");
    ui::line(
        "The SPF record is a start: add ip4:<your sending address> or your provider's include:.",
    );
    ui::line(&format!(
        "Then: set VOLLEY_TRACKING_KEY (at least 16 bytes), edit the files, and run `volley check {}`.",
        campaign.display()
    ));
    Ok(exit::OK)
}

/// Writes a file that must not exist yet (folders created as needed); `secret` files are
/// readable by their owner only.
fn write_new(path: &Path, content: &str, secret: bool) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating the folder {}", parent.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(content.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A DKIM key made for the new campaign: its PEM, where it goes, and the loaded key.
struct NewKey {
    pem: String,
    file: String,
    algorithm: &'static str,
    key: volley::dkim::DkimKey,
}

impl NewKey {
    /// Generates an RSA-2048 key, or an Ed25519 one, for `selector._domainkey.domain`;
    /// checks the domain and selector and derives the record before anything is written.
    fn generate(domain: &str, selector: &str, ed25519: bool) -> anyhow::Result<NewKey> {
        let (pem, algorithm) = if ed25519 {
            (volley::dkim::generate_ed25519_pem()?, "Ed25519")
        } else {
            (volley::dkim::generate_rsa_2048_pem()?, "RSA-2048")
        };
        let key = volley::dkim::DkimKey::from_pem(domain, selector, &pem, "the new key")?;
        Ok(NewKey {
            pem,
            file: format!("dkim/{selector}.pem"),
            algorithm,
            key,
        })
    }

    /// The `[[dkim]]` entry naming this key.
    fn entry(&self, domain: &str) -> String {
        let (note, comment) = if self.algorithm == "RSA-2048" {
            (
                "RSA-2048, the signature Gmail, Microsoft and Yahoo verify",
                "# or key_env = \"VOLLEY_DKIM_KEY\"; keep it private (mode 0600)",
            )
        } else {
            (
                "Ed25519 (RFC 8463), a second signature",
                "# keep it private (mode 0600)",
            )
        };
        let key_file = format!("key_file = \"{}\"", self.file);
        format!(
            "[[dkim]]                                 # {note}; publish its TXT record\n\
             domain = \"{domain}\"\n\
             selector = \"{selector}\"\n\
             {key_file:<40} {comment}\n",
            selector = self.key.selector(),
        )
    }
}

fn campaign_toml(domain: &str, from: &str, keys: &[NewKey]) -> String {
    let dkim: Vec<String> = keys.iter().map(|key| key.entry(domain)).collect();
    let dkim = dkim.join("\n");
    let from = from.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        r#"# A Volley campaign. Relative paths resolve against this file's folder.
# Check it before the first send:   volley check campaign.toml
# Try one message:                  volley test-send campaign.toml --to you@{domain}
# Send:                             volley send campaign.toml

[campaign]
id = "first-newsletter"                  # letters, digits, . _ - (the store keys on it)
from = "{from}"                          # its domain needs a [[dkim]] entry below
# reply_to = "help@{domain}"
subject = "News for you, {{{{ first_name }}}}"   # a template, like the bodies
text = "templates/newsletter.txt"
html = "templates/newsletter.html"
recipients = "recipients.csv"            # a CSV with an email column; other columns are merge fields

# Without [relay], Volley delivers straight to each recipient domain's MX hosts.
# To send through your provider instead, uncomment and fill in:
# [relay]
# host = "smtp.provider.example"
# port = 587                             # 587/25/2525: STARTTLS; 465: implicit TLS
# username = "your-login"
# password_env = "VOLLEY_SMTP_PASSWORD"  # or password_file = "secret.txt"; never written anywhere
# connections = 4
# max_per_hour = 10000                   # your provider's caps, if any

{dkim}
[tracking]                               # opens, clicks and one-click unsubscribe (List-Unsubscribe,
                                         # required by Gmail and Yahoo for bulk mail)
base_url = "https://t.{domain}"          # where `volley track serve` is reachable (behind HTTPS)
key_env = "VOLLEY_TRACKING_KEY"          # at least 16 bytes; or key_file = "tracking.key"
opens = true
clicks = true
# unsubscribe_mailto = "unsubscribe@{domain}"

[bounces]
# domain = "bounces.{domain}"            # VERP return paths bounces+TOKEN@…; give it MX and SPF records
soft_limit = 3                           # soft bounces within soft_window that suppress an address,
soft_window = "30d"
soft_min_span = "15d"                    #   the last at least this long after the first

[retry]
schedule = ["5m", "30m", "2h", "6h"]     # the last step repeats until expiry
expire_after = "3d"

# [dns]
# nameservers = ["127.0.0.1:5353"]       # default: the system's resolvers

# [shaping.default]                      # politeness per receiving domain
# max_connections = 10
# max_message_rate = "100/s"
"#
    )
}

const RECIPIENTS: &str = "email,first_name\n\
ada@example.com,Ada\n\
grace@example.org,Grace\n\
alan@example.net,Alan\n";

const TEXT: &str = "Hello {{ first_name }},\n\
\n\
Here is what is new this month.\n\
\n\
Read more: https://www.example.com/news\n\
\n\
--\n\
You get this because you subscribed. Unsubscribe: {{ unsubscribe_url }}\n";

const HTML: &str = r#"<!doctype html>
<html>
  <body>
    <p>Hello {{ first_name }},</p>
    <p>Here is what is new this month.</p>
    <p><a href="https://www.example.com/news">Read more</a></p>
    <hr>
    <p style="font-size:small">You get this because you subscribed.
      <a href="{{ unsubscribe_url }}" data-volley-notrack>Unsubscribe</a></p>
  </body>
</html>
"#;
