//! A relay's hourly and daily caps on a store shared by several processes (issue 19): each
//! process sends out of reservations of the caps counted at once in the shared
//! `relay_usage` (one reservation at a time per relay across the cluster), topped up about
//! every second while it sends and the unsent rest given back when the run ends. So the
//! nodes together never send past a cap; a node whose reservation ran out pauses for a
//! second and asks again.

use crate::model::now_millis;
use crate::recorder::RelayUsage;
use crate::shaping::SHARE_RETRY;
use crate::store::{RelayQuota, Store, StoreError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Keeps `usage`'s reservation topped up until `stop`, then gives the unsent rest back. No
/// task on a store without a cluster (one process counts alone).
pub(crate) fn spawn(
    store: &Store,
    usage: &RelayUsage,
    stop: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    store.cluster()?;
    let (store, usage) = (store.clone(), usage.clone());
    Some(tokio::spawn(async move {
        loop {
            let (s, u) = (store.clone(), usage.clone());
            match super::blocking("relay quota", move || top_up(&s, &u)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, "could not reserve relay quota"),
                Err(error) => tracing::warn!(%error, "could not reserve relay quota"),
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(Duration::from_millis(SHARE_RETRY / 2)) => {}
            }
        }
        let returned = super::blocking("relay quota", move || give_back(&store, &usage)).await;
        if let Ok(Err(error)) = returned {
            tracing::warn!(%error, "could not give unsent relay quota back");
        }
    }))
}

/// The caps of `usage` as a reservation at the current minute.
fn quota(usage: &RelayUsage) -> RelayQuota {
    let caps = usage
        .budget
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .caps();
    RelayQuota {
        per_hour: caps.per_hour,
        per_day: caps.per_day,
        minute: now_millis() / 60_000,
        give_back: 0,
        back_minute: 0,
    }
}

/// Reserves what the budget wants, when it wants any.
fn top_up(store: &Store, usage: &RelayUsage) -> Result<(), StoreError> {
    let Some(cluster) = store.cluster() else {
        return Ok(());
    };
    let want = usage
        .budget
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .wanted();
    if want == 0 {
        return Ok(());
    }
    let quota = quota(usage);
    let granted = cluster.reserve_relay(&usage.key, quota, want)?;
    // Short of what was wanted: a cap is near, so the shared counts say until when.
    let shared = if granted < want {
        let since = quota.minute.saturating_sub(24 * 60);
        Some(store.relay_usage(&usage.key, since)?)
    } else {
        None
    };
    let mut budget = usage.budget.lock().unwrap_or_else(|p| p.into_inner());
    budget.reserved(granted, quota.minute);
    if let Some(shared) = shared {
        budget.sync(shared);
    }
    Ok(())
}

/// Gives the unsent rest of the reservation back.
fn give_back(store: &Store, usage: &RelayUsage) -> Result<(), StoreError> {
    let Some(cluster) = store.cluster() else {
        return Ok(());
    };
    let (unsent, minute) = usage
        .budget
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take_unsent();
    if unsent == 0 {
        return Ok(());
    }
    let quota = RelayQuota {
        give_back: unsent,
        back_minute: minute,
        ..quota(usage)
    };
    cluster.reserve_relay(&usage.key, quota, 0).map(|_| ())
}
