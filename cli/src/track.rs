//! `volley track serve`: the tracking server, owning the store it records into.

use crate::args::{TrackCommand, TrackLimits};
use crate::{exit, ui};
use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use volley::config::{ServeSettings, ServeTracking, MIN_METRICS_TOKEN_BYTES};
use volley::runtime::{ServeOptions, Server};
use volley::tracking::{TokenKey, MIN_KEY_BYTES};

pub(crate) async fn run(command: TrackCommand) -> anyhow::Result<u8> {
    let TrackCommand::Serve {
        store,
        bind,
        key_file,
        key_env,
        seconds,
        limits,
        conversions,
    } = command;
    let postbacks = volley::tracking::Postbacks::default();
    for file in &conversions {
        let campaign = volley::config::load_campaign(file, Some(Path::new(&store)))
            .with_context(|| format!("reading {}", file.display()))?;
        if campaign.conversions.postback_secret.is_none() {
            anyhow::bail!(
                "{}: set [conversions] postback_secret_file or postback_secret_env to take its postbacks",
                file.display()
            );
        }
        volley::runtime::register_postbacks(&postbacks, &campaign);
    }
    let key = read_key(key_file.as_deref(), &key_env)?;
    let fingerprint = TokenKey::new(key.expose_secret().as_bytes()).fingerprint();
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
    let settings = ServeSettings {
        file: PathBuf::new(),
        store: volley::store::StoreLocation::parse(&store),
        campaigns: Vec::new(),
        tracking: Some(tracking(bind, key, limits)?),
        bounces: None,
        // A tracking server sends nothing: it takes no share of the cluster's work.
        cluster: volley::config::ClusterSettings {
            join: false,
            ..volley::config::ClusterSettings::default()
        },
        webhooks: Vec::new(),
        api: None,
        providers: volley::config::ProvidersSettings::default(),
    };
    let options = ServeOptions {
        postbacks,
        ..ServeOptions::default()
    };
    let server = Server::open(settings, options, cancel)
        .await
        .with_context(|| format!("starting the tracking server for {}", store.display()))?;
    ui::line(&format!(
        "tracking server for {} on http://{} (key {fingerprint})",
        store.display(),
        server.tracking_addr().unwrap_or(bind),
    ));
    server
        .run()
        .await
        .with_context(|| format!("serving tracking for {}", store.display()))?;
    Ok(exit::OK)
}

/// The key from `--key-file`, or else from the environment variable `key_env`.
fn read_key(file: Option<&std::path::Path>, key_env: &str) -> anyhow::Result<SecretString> {
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
    Ok(SecretString::from(secret))
}

/// The tracking server's settings from the command line.
fn tracking(
    bind: std::net::SocketAddr,
    key: SecretString,
    limits: TrackLimits,
) -> anyhow::Result<ServeTracking> {
    let mut tracking = ServeTracking::new(bind, key);
    tracking.header_timeout = limits.header_timeout.map(Into::into);
    tracking.idle_timeout = limits.idle_timeout.map(Into::into);
    tracking.max_connections = limits.max_connections.map(|n| n as usize);
    tracking.dedupe_window = limits.dedupe_window.map(Into::into);
    tracking.daily_cap = limits.daily_cap;
    tracking.too_soon = limits.too_soon.map(Into::into);
    for (flag, duration) in [
        ("--header-timeout", tracking.header_timeout),
        ("--idle-timeout", tracking.idle_timeout),
    ] {
        if duration.is_some_and(|d| d.is_zero()) {
            anyhow::bail!("{flag} must be longer than 0");
        }
    }
    let token = match (limits.metrics_token_file, limits.metrics_token_env) {
        (Some(path), _) => Some(
            std::fs::read_to_string(&path)
                .with_context(|| format!("reading the metrics token file {}", path.display()))?
                .trim()
                .to_owned(),
        ),
        (None, Some(var)) => Some(std::env::var(&var).map_err(|_| {
            anyhow::anyhow!("no metrics token: the environment variable {var} is not set")
        })?),
        (None, None) => None,
    };
    if let Some(token) = token {
        if token.len() < MIN_METRICS_TOKEN_BYTES {
            anyhow::bail!(
                "the metrics token must be at least {MIN_METRICS_TOKEN_BYTES} bytes long"
            );
        }
        tracking.metrics_token = Some(SecretString::from(token));
    }
    Ok(tracking)
}
