//! Reading recipients and the queue, and finding a recipient by number: the read side of
//! [`QueueStore`] and [`OutcomeStore`] on PostgreSQL.
//!
//! Pending reads are plain reads in key order, as on sled. Claiming work for several nodes
//! (`FOR UPDATE SKIP LOCKED` on `recipients.lease_*`) needs a claim/release step the interface
//! does not have yet (issue 19); until then one node sends a campaign at a time.

use super::engine::{millis, ms, ts, PgEngine};
use super::PgStoreError;
use crate::model::{DestinationBlock, Millis, RecipientState, ReplyRecord};
use crate::store::api::QueueStore;
use crate::store::{RecipientKey, RecipientRecord, StoreError, StoredRecipient};
use sqlx::postgres::PgRow;
use sqlx::Row;

/// `SELECT` of the columns [`decode`] reads, in order, `FROM recipients WHERE campaign = $1`
/// followed by the rest of the statement.
macro_rules! select {
    ($($rest:expr),*) => {
        concat!(
            "SELECT seq, domain, email, line, fields, state::text, variant, attempts, ",
            ms!("first_attempt"),
            ", ",
            ms!("next_attempt"),
            ", last_reply::text FROM recipients WHERE campaign = $1 "
            $(, $rest)*
        )
    };
}
pub(super) use select;

/// One `recipients` row (selected by `select!`) as the interface's value.
pub(super) fn decode(engine: &PgEngine, row: &PgRow) -> Result<StoredRecipient, PgStoreError> {
    let state: String = row.get(5);
    let state = super::load::parse_state(&state).ok_or_else(|| damaged(engine, "state"))?;
    let last_reply = match row.get::<Option<String>, _>(10) {
        Some(text) => {
            Some(serde_json::from_str::<ReplyRecord>(&text).map_err(|_| damaged(engine, "reply"))?)
        }
        None => None,
    };
    let to_u64 = |n: Option<i64>| n.and_then(|n| u64::try_from(n).ok());
    Ok(StoredRecipient {
        key: RecipientKey {
            domain: row.get(1),
            seq: to_u64(Some(row.get(0))).unwrap_or(0),
        },
        record: RecipientRecord {
            email: row.get(2),
            values: row.get(4),
            line: to_u64(Some(row.get(3))).unwrap_or(0),
            state,
            attempts: u32::try_from(row.get::<i32, _>(7)).unwrap_or(0),
            first_attempt: to_u64(row.get(8)),
            next_attempt: to_u64(row.get(9)),
            last_reply,
            variant: u8::try_from(row.get::<i16, _>(6)).unwrap_or(0),
        },
    })
}

fn damaged(engine: &PgEngine, what: &str) -> PgStoreError {
    engine.damaged(format!("recipient record: unreadable {what}"))
}

/// The name the schema's `recipient_state` gives a state.
pub(super) fn state_name(state: RecipientState) -> &'static str {
    match state {
        RecipientState::Pending => "pending",
        RecipientState::Deferred => "deferred",
        RecipientState::Delivered => "delivered",
        RecipientState::Bounced => "bounced",
        RecipientState::Expired => "expired",
        RecipientState::Suppressed => "suppressed",
        RecipientState::Held => "held",
        RecipientState::Cancelled => "cancelled",
        RecipientState::Holdout => "holdout",
        RecipientState::Waiting => "waiting",
    }
}

pub(super) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The earliest next attempt of a deferred or waiting recipient.
const NEXT_DUE: &str = concat!(
    "SELECT ",
    ms!("min(next_attempt)"),
    " FROM recipients WHERE campaign = $1 AND state IN ('deferred', 'waiting')"
);

/// The earliest window opening of a waiting recipient.
const NEXT_WINDOW: &str = concat!(
    "SELECT ",
    ms!("min(next_attempt)"),
    " FROM recipients WHERE campaign = $1 AND state = 'waiting'"
);

impl PgEngine {
    /// The value of `sql` (one of the `NEXT_*` queries) for `campaign`.
    fn earliest(&self, campaign: &str, sql: &'static str) -> Result<Option<Millis>, StoreError> {
        let Some(number) = self.run(self.number(campaign))? else {
            return Ok(None);
        };
        let due: Option<i64> = self.run(async {
            sqlx::query_scalar(sql)
                .bind(number)
                .fetch_one(self.store.pool())
                .await
                .map_err(|e| self.failed("read the next retry", e))
        })?;
        Ok(due.and_then(|n| u64::try_from(n).ok()))
    }
}

/// The domains with pending recipients, one index probe per domain (a "loose index scan"
/// over `recipients_pending`) rather than a read of every pending recipient.
const PENDING_DOMAINS: &str = "\
WITH RECURSIVE d(domain) AS (
    (SELECT domain FROM recipients WHERE campaign = $1 AND state = 'pending'
     ORDER BY domain LIMIT 1)
    UNION ALL
    SELECT (SELECT r.domain FROM recipients r
            WHERE r.campaign = $1 AND r.state = 'pending' AND r.domain > d.domain
            ORDER BY r.domain LIMIT 1)
    FROM d WHERE d.domain IS NOT NULL
)
SELECT domain FROM d WHERE domain IS NOT NULL";

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PgEngine {
    /// Runs a recipients query bound by `bind` and decodes its rows.
    fn recipients_where<'q>(
        &self,
        what: &str,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        self.run(async {
            let rows = query
                .fetch_all(self.store.pool())
                .await
                .map_err(|e| self.failed(what, e))?;
            rows.iter().map(|row| decode(self, row)).collect()
        })
    }
}

impl QueueStore for PgEngine {
    fn recipient(
        &self,
        campaign: &str,
        key: &RecipientKey,
    ) -> Result<Option<RecipientRecord>, StoreError> {
        let Some(number) = self.run(self.number(campaign))? else {
            return Ok(None);
        };
        let query = sqlx::query(select!("AND seq = $2 AND domain = $3"))
            .bind(number)
            .bind(to_i64(key.seq))
            .bind(&key.domain);
        Ok(self
            .recipients_where("read a recipient", query)?
            .pop()
            .map(|r| r.record))
    }

    fn pending(
        &self,
        campaign: &str,
        after: Option<&RecipientKey>,
        limit_: usize,
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        // An unknown campaign has nothing queued (as on sled).
        let Some(number) = self.run(self.number(campaign))? else {
            return Ok(Vec::new());
        };
        let (domain, seq) = after.map_or(("", -1), |k| (k.domain.as_str(), to_i64(k.seq)));
        let query = sqlx::query(select!(
            "AND state = 'pending' AND (domain, seq) > ($2, $3) ORDER BY domain, seq LIMIT $4"
        ))
        .bind(number)
        .bind(domain)
        .bind(seq)
        .bind(limit(limit_));
        self.recipients_where("read the pending queue", query)
    }

    fn pending_domains(&self, campaign: &str) -> Result<Vec<String>, StoreError> {
        // An unknown campaign has nothing queued (as on sled).
        let Some(number) = self.run(self.number(campaign))? else {
            return Ok(Vec::new());
        };
        self.run(async {
            sqlx::query_scalar(PENDING_DOMAINS)
                .bind(number)
                .fetch_all(self.store.pool())
                .await
                .map_err(|e| self.failed("read the pending domains", e))
        })
    }

    fn pending_in(
        &self,
        campaign: &str,
        domain: &str,
        after: Option<u64>,
        limit_: usize,
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        // An unknown campaign has nothing queued (as on sled).
        let Some(number) = self.run(self.number(campaign))? else {
            return Ok(Vec::new());
        };
        let query = sqlx::query(select!(
            "AND state = 'pending' AND domain = $2 AND seq > $3 ORDER BY seq LIMIT $4"
        ))
        .bind(number)
        .bind(domain)
        .bind(after.map_or(-1, to_i64))
        .bind(limit(limit_));
        self.recipients_where("read a domain's pending queue", query)
    }

    fn due(
        &self,
        campaign: &str,
        now: Millis,
        limit_: usize,
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        // An unknown campaign has nothing queued (as on sled).
        let Some(number) = self.run(self.number(campaign))? else {
            return Ok(Vec::new());
        };
        let query = sqlx::query(select!(
            "AND state IN ('deferred', 'waiting') AND next_attempt <= ",
            ts!(2),
            " ORDER BY next_attempt, seq LIMIT $3"
        ))
        .bind(number)
        .bind(millis(now))
        .bind(limit(limit_));
        self.recipients_where("read the due retries", query)
    }

    fn due_in_domains(
        &self,
        campaign: &str,
        domains: &[String],
        now: Millis,
        limit_: usize,
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        if domains.is_empty() {
            return Ok(Vec::new());
        }
        let Some(number) = self.run(self.number(campaign))? else {
            return Ok(Vec::new());
        };
        let query = sqlx::query(select!(
            "AND state IN ('deferred', 'waiting') AND next_attempt <= ",
            ts!(2),
            " AND domain = ANY($4) ORDER BY next_attempt, seq LIMIT $3"
        ))
        .bind(number)
        .bind(millis(now))
        .bind(limit(limit_))
        .bind(domains);
        self.recipients_where("read the due retries of leased domains", query)
    }

    fn next_due(&self, campaign: &str) -> Result<Option<Millis>, StoreError> {
        self.earliest(campaign, NEXT_DUE)
    }

    fn next_window(&self, campaign: &str) -> Result<Option<Millis>, StoreError> {
        self.earliest(campaign, NEXT_WINDOW)
    }

    fn recipients_in(
        &self,
        campaign: &str,
        state: RecipientState,
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        // An unknown campaign has nothing queued (as on sled).
        let Some(number) = self.run(self.number(campaign))? else {
            return Ok(Vec::new());
        };
        let query = sqlx::query(select!(
            "AND state = $2::text::recipient_state ORDER BY domain, seq"
        ))
        .bind(number)
        .bind(state_name(state));
        self.recipients_where("read recipients by state", query)
    }

    fn set_connection_limit(&self, name: &str, messages: u64) -> Result<(), StoreError> {
        self.put_connection_limit(name, messages)
    }

    fn connection_limits(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.read_connection_limits()
    }

    fn set_destination_block(&self, block: &DestinationBlock) -> Result<(), StoreError> {
        self.put_destination_block(block)
    }

    fn destination_blocks(&self) -> Result<Vec<DestinationBlock>, StoreError> {
        self.read_destination_blocks()
    }

    fn relay_usage(&self, relay: &str, since_minute: u64) -> Result<Vec<(u64, u32)>, StoreError> {
        self.read_relay_usage(relay, since_minute)
    }

    fn set_relay_usage(
        &self,
        relay: &str,
        minutes: &[(u64, u32)],
        keep_since: u64,
    ) -> Result<(), StoreError> {
        self.put_relay_usage(relay, minutes, keep_since)
    }

    fn add_relay_tallies(
        &self,
        campaign: &str,
        tallies: &[crate::store::RelayTally],
    ) -> Result<(), StoreError> {
        self.put_relay_tallies(campaign, tallies)
    }

    fn relay_tallies(&self, campaign: &str) -> Result<Vec<crate::store::RelayTally>, StoreError> {
        self.read_relay_tallies(campaign)
    }
}
