//! `volley dns`: the engine's test DNS server as a process, so scripts and benchmarks can
//! point direct-to-MX delivery at a loopback zone instead of the real DNS.

use crate::args::DnsArgs;
use crate::{exit, ui};
use anyhow::Context;
use volley_testkit::nameserver::{NameServer, Zone};

pub(crate) async fn run(args: DnsArgs) -> anyhow::Result<u8> {
    let zone = Zone::from_file(&args.zone)?;
    let server = NameServer::start_on(args.bind, zone)
        .await
        .with_context(|| format!("starting the DNS server on {}", args.bind))?;
    ui::line(&format!("dns listening on {}", server.addr()));
    crate::until_stopped(args.seconds).await;
    tracing::info!(queries = server.queries(), "dns server stopping");
    server.shutdown().await;
    Ok(exit::OK)
}
