//! `volley sink`: the engine's test SMTP server as a process, for scripts and benchmarks.

use crate::args::{SinkArgs, SinkTlsArg};
use crate::{exit, ui};
use anyhow::Context;
use std::time::Duration;
use volley::sink::{Sink, SinkConfig, SinkTls};

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
        ..SinkConfig::default()
    };
    if !args.bind.ip().is_loopback() {
        anyhow::bail!(
            "--bind {}: the test server only listens on loopback addresses",
            args.bind
        );
    }
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("listening on {}", args.bind))?;
    let sink = Sink::start_on(listener, config, None).await?;
    if let (Some(path), Some(pem)) = (&args.ca_out, sink.ca_pem()) {
        std::fs::write(path, pem).with_context(|| format!("writing {}", path.display()))?;
    }
    ui::line(&format!("sink listening on {}", sink.addr()));
    let stop = async {
        match args.seconds {
            Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    #[cfg(unix)]
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            () = stop => {}
            _ = term.recv() => {}
        }
        Ok::<_, std::io::Error>(())
    };
    let _ = stop.await;
    let stats = sink.stats();
    ui::line(&format!(
        "sink received {} messages over {} connections (max {} at once)",
        stats.messages, stats.connections_total, stats.max_concurrent_connections
    ));
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
