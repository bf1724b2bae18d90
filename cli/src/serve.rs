//! `volley serve`: the long-running owner of a store.

use crate::args::ServeArgs;
use crate::{exit, ui};
use anyhow::Context;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use volley::runtime::{ServeOptions, Server};

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<u8> {
    let settings = volley::config::load_serve(&args.config)
        .with_context(|| format!("loading {}", args.config.display()))?;
    let store = settings.store.clone();
    let campaigns = settings.campaigns.len();
    let cancel = CancellationToken::new();
    tokio::spawn(crate::send::cancel_on_signal(cancel.clone()));
    let options = ServeOptions {
        tick: Duration::from_secs(args.tick.max(1)),
        node: args.node.clone(),
        ..ServeOptions::default()
    };
    let server = Server::open(settings, options, cancel)
        .await
        .with_context(|| format!("starting the server for {store}"))?;
    let mut parts = vec![format!("{campaigns} campaign(s)")];
    if let Some(node) = server.node_name() {
        parts.push(format!("node {node}"));
    }
    if let Some(addr) = server.tracking_addr() {
        parts.push(format!("tracking on http://{addr}"));
    }
    if let Some(addr) = server.bounces_addr() {
        parts.push(format!("bounces on smtp://{addr}"));
    }
    if let Some(addr) = server.api_addr() {
        parts.push(format!("api on http://{addr}"));
    }
    ui::line(&format!("serving {store}: {}", parts.join(", ")));
    server
        .run()
        .await
        .with_context(|| format!("serving {store}"))?;
    ui::line("stopped: state saved");
    Ok(exit::OK)
}
