//! The tracking server of `volley serve` and `volley track serve`, built from its settings:
//! limits left unset keep the tracking server's defaults.

use crate::config::ServeTracking;
use crate::store::Store;
use crate::tracking::{TokenKey, TrackingLimits, TrackingServer};

/// A tracking server for `store` with `key`, within the limits of `settings`.
pub(super) fn server(store: Store, key: TokenKey, settings: &ServeTracking) -> TrackingServer {
    let mut limits = TrackingLimits::default();
    if let Some(timeout) = settings.header_timeout {
        limits.header_timeout = timeout;
    }
    if let Some(timeout) = settings.idle_timeout {
        limits.idle_timeout = timeout;
    }
    if let Some(max) = settings.max_connections {
        limits.max_connections = max;
    }
    if let Some(window) = settings.dedupe_window {
        limits.dedupe_window = window;
    }
    if let Some(cap) = settings.daily_cap {
        limits.daily_cap = cap;
    }
    let mut server = TrackingServer::new(store, key).limits(limits);
    if let Some(window) = settings.too_soon {
        server = server.too_soon(window);
    }
    match &settings.metrics_token {
        Some(token) => server.metrics_token(token.clone()),
        None => server,
    }
}
