//! `volley sink`: the engine's test SMTP server as a process, for scripts and benchmarks.

use crate::args::{SinkArgs, SinkTlsArg};
use crate::words::numbers;
use crate::{exit, ui};
use anyhow::Context;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use volley_testkit::sink::{RateLimit, Sink, SinkConfig, SinkTls, ThrottleReply};

/// Parses `--rate-limit N/SECS` (`100/1`, `5/0.5`): N recipients per domain within SECS
/// seconds, answered with 421 past it.
pub(crate) fn parse_rate_limit(text: &str) -> Result<RateLimit, String> {
    let (messages, secs) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not N/SECS (e.g. 100/1)"))?;
    let messages = messages
        .trim()
        .parse::<u32>()
        .map_err(|e| format!("{messages:?} is not a whole number of recipients: {e}"))?;
    let per = secs
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{secs:?} is not a positive number of seconds"))?;
    Ok(RateLimit {
        messages,
        per,
        reply: ThrottleReply::Close421,
    })
}

/// Binds every `--bind` address, refusing any that is not loopback.
async fn listeners(binds: &[SocketAddr]) -> anyhow::Result<Vec<TcpListener>> {
    let mut listeners = Vec::with_capacity(binds.len());
    for bind in binds {
        if !bind.ip().is_loopback() {
            anyhow::bail!("--bind {bind}: the test server only listens on loopback addresses");
        }
        let listener = TcpListener::bind(bind)
            .await
            .with_context(|| format!("listening on {bind}"))?;
        listeners.push(listener);
    }
    Ok(listeners)
}

pub(crate) async fn run(args: SinkArgs) -> anyhow::Result<u8> {
    let auth = match &args.auth {
        Some(pair) => {
            let (user, password) = pair.split_once(':').context("--auth takes USER:PASSWORD")?;
            Some((user.to_owned(), password.to_owned()))
        }
        None => None,
    };
    let config = SinkConfig {
        tls: match args.tls {
            SinkTlsArg::None => SinkTls::None,
            SinkTlsArg::Starttls => SinkTls::StartTls,
            SinkTlsArg::Tls => SinkTls::Implicit,
        },
        auth,
        keep_bodies: !args.no_bodies,
        chunking: args.chunking,
        reply_delay: Duration::from_millis(args.delay_ms),
        rate_limit: args.rate_limit,
        broken_starttls: args.broken_starttls,
        ..SinkConfig::default()
    };
    let sink = Sink::start_on_many(listeners(&args.bind).await?, config, None).await?;
    if let (Some(path), Some(pem)) = (&args.ca_out, sink.ca_pem()) {
        std::fs::write(path, pem).with_context(|| format!("writing {}", path.display()))?;
    }
    for addr in sink.addrs() {
        ui::line(&format!("sink listening on {addr}"));
    }
    crate::until_stopped(args.seconds).await;
    let stats = sink.stats();
    let counted = Counted::of(&sink.received());
    ui::line(&format!(
        "sink received {} over {} (max {} at once, {} carried mail over TLS), {} throttled; first to last message {:.3} s ({:.0} messages/s)",
        numbers::counted(stats.messages as u64, "message", "messages"),
        numbers::counted(stats.connections_total as u64, "connection", "connections"),
        stats.max_concurrent_connections,
        counted.tls_connections,
        stats.throttled,
        counted.first_to_last_seconds,
        counted.messages_per_second()
    ));
    if let Some(path) = &args.stats_json {
        let json = serde_json::json!({
            "messages": counted.messages,
            "recipients": counted.recipients,
            "connections": stats.connections_total,
            "tls_connections": counted.tls_connections,
            "first_to_last_seconds": counted.first_to_last_seconds,
            "messages_per_second": counted.messages_per_second(),
        });
        std::fs::write(path, format!("{json}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.log_recipients {
        let mut lines = String::new();
        for message in sink.received() {
            for rcpt in message.rcpt_to {
                lines.push_str(&rcpt);
                lines.push('\n');
            }
        }
        std::fs::write(path, lines).with_context(|| format!("writing {}", path.display()))?;
    }
    sink.shutdown().await;
    Ok(exit::OK)
}

/// What the server itself counted, for benchmarks: the independent side of a throughput figure.
#[derive(Debug, Default, PartialEq)]
struct Counted {
    messages: u64,
    recipients: u64,
    tls_connections: u64,
    first_to_last_seconds: f64,
}

impl Counted {
    fn of(received: &[volley_testkit::sink::Received]) -> Counted {
        let first = received.iter().map(|r| r.at).min();
        let last = received.iter().map(|r| r.at).max();
        let tls: std::collections::HashSet<u64> = received
            .iter()
            .filter(|r| r.tls)
            .map(|r| r.connection)
            .collect();
        Counted {
            messages: received.len() as u64,
            recipients: received.iter().map(|r| r.rcpt_to.len() as u64).sum(),
            tls_connections: tls.len() as u64,
            first_to_last_seconds: match (first, last) {
                (Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
                _ => 0.0,
            },
        }
    }

    /// Messages after the first over the first-to-last span (0 when under two messages).
    fn messages_per_second(&self) -> f64 {
        if self.messages < 2 || self.first_to_last_seconds <= 0.0 {
            return 0.0;
        }
        (self.messages - 1) as f64 / self.first_to_last_seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_reads_n_per_seconds() {
        let limit = parse_rate_limit("100/1").unwrap();
        assert_eq!(limit.messages, 100);
        assert_eq!(limit.per, Duration::from_secs(1));
        assert_eq!(limit.reply, ThrottleReply::Close421);
        assert_eq!(
            parse_rate_limit("5/0.25").unwrap().per,
            Duration::from_millis(250)
        );
        for bad in ["100", "x/1", "100/0", "100/-1", "100/soon", "-1/1"] {
            assert!(parse_rate_limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts_are_first_to_last_and_tls_by_connection() {
        let start = std::time::Instant::now();
        let message = |ms: u64, tls: bool, connection: u64| volley_testkit::sink::Received {
            mail_from: String::new(),
            rcpt_to: vec!["a@b.example".into(), "c@b.example".into()],
            data: Vec::new(),
            size: 0,
            tls,
            auth_user: None,
            at: start + Duration::from_millis(ms),
            connection,
            peer: None,
            helo: "client.test".into(),
        };
        let counted = Counted::of(&[
            message(500, true, 1),
            message(0, true, 1),
            message(2_500, true, 2),
            message(1_000, false, 3),
        ]);
        assert_eq!(counted.messages, 4);
        assert_eq!(counted.recipients, 8);
        assert_eq!(counted.tls_connections, 2);
        assert!((counted.first_to_last_seconds - 2.5).abs() < 1e-9);
        assert!((counted.messages_per_second() - 1.2).abs() < 1e-9);
        assert_eq!(Counted::of(&[]).messages_per_second(), 0.0);
    }
}
