//! `volley track serve`: the tracking server, owning the store it records into.

use crate::args::TrackCommand;
use crate::{exit, ui};
use anyhow::Context;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use volley::tracking::{TokenKey, MIN_KEY_BYTES};

pub(crate) async fn run(command: TrackCommand) -> anyhow::Result<u8> {
    let TrackCommand::Serve {
        store,
        bind,
        key_file,
        key_env,
        seconds,
    } = command;
    let key = read_key(key_file.as_deref(), &key_env)?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("listening on {bind}"))?;
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        match seconds {
            Some(seconds) => {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(seconds)) => {}
                    () = crate::send::cancel_on_signal(stop.clone()) => {}
                }
            }
            None => crate::send::cancel_on_signal(stop.clone()).await,
        }
        stop.cancel();
    });
    let service = volley::runtime::TrackService::open(&store, key.clone(), cancel)
        .with_context(|| format!("opening the store {}", store.display()))?;
    ui::line(&format!(
        "tracking server for {} on http://{} (key {})",
        store.display(),
        listener.local_addr().unwrap_or(bind),
        key.fingerprint()
    ));
    service
        .serve(listener)
        .await
        .with_context(|| format!("serving tracking for {}", store.display()))?;
    Ok(exit::OK)
}

/// The key from `--key-file`, or else from the environment variable `key_env`.
fn read_key(file: Option<&std::path::Path>, key_env: &str) -> anyhow::Result<TokenKey> {
    let secret = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the tracking key file {}", path.display()))?;
            text.trim_end_matches(['\r', '\n']).to_owned()
        }
        None => std::env::var(key_env).map_err(|_| {
            anyhow::anyhow!("no tracking key: give --key-file FILE or set {key_env}")
        })?,
    };
    if secret.len() < MIN_KEY_BYTES {
        anyhow::bail!("the tracking key must be at least {MIN_KEY_BYTES} bytes long");
    }
    Ok(TokenKey::new(secret.as_bytes()))
}
