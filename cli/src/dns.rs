//! `volley dns`: the engine's test DNS server as a process, so scripts and benchmarks can
//! point direct-to-MX delivery at a loopback zone instead of the real DNS.

use crate::args::DnsArgs;
use crate::{exit, ui};
use anyhow::Context;
use std::time::Duration;
use volley::nameserver::{NameServer, Zone};

pub(crate) async fn run(args: DnsArgs) -> anyhow::Result<u8> {
    let zone = Zone::from_file(&args.zone)?;
    let server = NameServer::start_on(args.bind, zone)
        .await
        .with_context(|| format!("starting the DNS server on {}", args.bind))?;
    ui::line(&format!("dns listening on {}", server.addr()));
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
    tracing::info!(queries = server.queries(), "dns server stopping");
    server.shutdown().await;
    Ok(exit::OK)
}
