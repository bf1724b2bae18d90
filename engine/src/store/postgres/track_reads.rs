//! Reading tracking data on PostgreSQL: a campaign's link table, its counters by variant,
//! its events, and its recipients by domain with who engaged (`tracking.rs` writes them).

use super::engine::{millis, ms, ts, PgEngine};
use super::tracking::{to_u64, track_counts};
use super::PgStoreError;
use crate::model::{Millis, TrackCounts};
use crate::store::{DomainTally, MachineReason, RecipientKey, TrackEvent, TrackKind, TrackingMeta};
use sqlx::Row;

/// A `track_kind` read back.
pub(super) fn parse_kind(text: &str) -> Option<TrackKind> {
    Some(match text {
        "open" => TrackKind::Open,
        "click" => TrackKind::Click,
        "unsubscribe" => TrackKind::Unsubscribe,
        _ => return None,
    })
}

/// A stored machine verdict read back.
pub(super) fn parse_machine(text: &str) -> Option<MachineReason> {
    Some(match text {
        "privacy_proxy" => MachineReason::PrivacyProxy,
        "scanner" => MachineReason::Scanner,
        "head_request" => MachineReason::HeadRequest,
        "too_soon" => MachineReason::TooSoon,
        "click_burst" => MachineReason::ClickBurst,
        _ => return None,
    })
}

/// A campaign's tracking events from a moment on, in time order, with the recipient's domain.
const SELECT_EVENTS: &str = concat!(
    "SELECT ",
    ms!("t.at"),
    ", t.kind::text, t.seq, coalesce(r.domain, ''), t.variant, t.link, t.machine ",
    "FROM track_events t LEFT JOIN recipients r ON r.campaign = t.campaign AND r.seq = t.seq ",
    "WHERE t.campaign = $1 AND t.at >= ",
    ts!(2),
    " ORDER BY t.at, t.id"
);

impl PgEngine {
    /// The campaign's link table and key fingerprint, if it is tracked.
    pub(super) async fn read_tracking_meta(
        &self,
        campaign: &str,
    ) -> Result<Option<TrackingMeta>, PgStoreError> {
        let row: Option<(Option<Vec<String>>, Option<String>)> = sqlx::query_as(
            "SELECT tracking_links, tracking_key_fingerprint FROM campaigns WHERE id = $1",
        )
        .bind(campaign)
        .fetch_optional(self.store.pool())
        .await
        .map_err(|e| self.failed(&format!("read the tracked links of {campaign}"), e))?;
        Ok(row.and_then(|(links, fingerprint)| {
            links.map(|links| TrackingMeta {
                links,
                key_fingerprint: fingerprint.unwrap_or_default(),
            })
        }))
    }

    /// A campaign's tracking counters by variant.
    pub(super) async fn read_tracking_counts(
        &self,
        number: i32,
    ) -> Result<Vec<(u8, TrackCounts)>, PgStoreError> {
        let rows = sqlx::query(
            "SELECT variant, opened, clicked, unsubscribed, opens, clicks, machine_opens, \
             machine_clicks FROM track_counts WHERE campaign = $1 ORDER BY variant",
        )
        .bind(number)
        .fetch_all(self.store.pool())
        .await
        .map_err(|e| self.failed("read the tracking counters", e))?;
        Ok(rows
            .iter()
            .map(|row| {
                let variant = u8::try_from(row.get::<i16, _>(0)).unwrap_or(0);
                (variant, track_counts(row, 1))
            })
            .collect())
    }

    /// A campaign's tracking events from `since` on.
    pub(super) async fn read_tracking_events(
        &self,
        number: i32,
        since: Millis,
    ) -> Result<Vec<TrackEvent>, PgStoreError> {
        let rows = sqlx::query(SELECT_EVENTS)
            .bind(number)
            .bind(millis(since))
            .fetch_all(self.store.pool())
            .await
            .map_err(|e| self.failed("read the tracking events", e))?;
        rows.iter()
            .map(|row| {
                let kind: String = row.get(1);
                let machine: Option<String> = row.get(6);
                Ok(TrackEvent {
                    at: to_u64(row.get(0)),
                    kind: parse_kind(&kind)
                        .ok_or_else(|| self.damaged(format!("tracking event: kind {kind:?}")))?,
                    key: RecipientKey {
                        domain: row.get(3),
                        seq: to_u64(row.get(2)),
                    },
                    variant: u8::try_from(row.get::<i16, _>(4)).unwrap_or(0),
                    link: row
                        .get::<Option<i16>, _>(5)
                        .and_then(|l| u16::try_from(l).ok()),
                    machine: machine.as_deref().and_then(parse_machine),
                })
            })
            .collect()
    }

    /// Every domain of a campaign with its recipients by state and who engaged.
    pub(super) async fn read_domain_tallies(
        &self,
        number: i32,
    ) -> Result<Vec<DomainTally>, PgStoreError> {
        let rows = sqlx::query(
            "SELECT r.domain, r.state::text, count(*), count(*) FILTER (WHERE g.opened), \
             count(*) FILTER (WHERE g.clicked) FROM recipients r \
             LEFT JOIN engagement g ON g.campaign = r.campaign AND g.seq = r.seq \
             WHERE r.campaign = $1 GROUP BY r.domain, r.state ORDER BY r.domain",
        )
        .bind(number)
        .fetch_all(self.store.pool())
        .await
        .map_err(|e| self.failed("count recipients by domain", e))?;
        let mut tallies: Vec<DomainTally> = Vec::new();
        for row in &rows {
            let domain: String = row.get(0);
            if tallies.last().is_none_or(|t| t.domain != domain) {
                tallies.push(DomainTally {
                    domain,
                    ..DomainTally::default()
                });
            }
            let Some(tally) = tallies.last_mut() else {
                continue;
            };
            let state: String = row.get(1);
            let state = super::load::parse_state(&state)
                .ok_or_else(|| self.damaged(format!("recipient record: state {state:?}")))?;
            let n = to_u64(row.get(2));
            *tally.counts.get_mut(state) += n;
            tally.counts.total += n;
            tally.opened += to_u64(row.get(3));
            tally.clicked += to_u64(row.get(4));
        }
        Ok(tallies)
    }
}
