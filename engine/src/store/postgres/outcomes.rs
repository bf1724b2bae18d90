//! Recording delivery outcomes on PostgreSQL: one transaction locks the recipients concerned
//! (`FOR UPDATE`, in sequence order so two writers never deadlock), moves their state as the
//! sled engine does (same rules: `sled::outcomes::apply_outcome`), appends the attempt log,
//! shifts the counters, indexes Message-IDs and keeps the suppression list, all committed at
//! once: durable when it returns.

use super::engine::{millis, ms, ts, PgEngine};
use super::queue::{decode, select, state_name, to_i64};
use super::PgStoreError;
use crate::model::{Counts, Millis, RecipientState, ReplyRecord, SuppressionPolicy};
use crate::store::sled::outcomes::{apply_outcome, is_signed};
use crate::store::{OutcomePolicy, OutcomeUpdate, StoredRecipient};
use sqlx::postgres::PgConnection;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The writes one group of outcomes makes, gathered before they are sent as arrays.
#[derive(Default)]
struct Writes {
    /// The attempt log: one entry per recorded outcome.
    log_seqs: Vec<i64>,
    log_states: Vec<&'static str>,
    log_replies: Vec<String>,
    /// The recipients rows: one per recipient, its final values.
    seqs: Vec<i64>,
    states: Vec<&'static str>,
    attempts: Vec<i32>,
    first: Vec<Option<i64>>,
    next: Vec<Option<i64>>,
    replies: Vec<String>,
    counts: CountDeltas,
    messages: Vec<(String, i64)>,
    delivered: Vec<String>,
    failed: Vec<(String, ReplyRecord)>,
}

impl PgEngine {
    /// See [`crate::store::api::OutcomeStore::record_outcomes`].
    pub(super) async fn record(
        &self,
        (number, campaign): (i32, &str),
        policy: &OutcomePolicy,
        updates: &[OutcomeUpdate],
        now: Millis,
    ) -> Result<Counts, PgStoreError> {
        let what = format!("record outcomes of campaign {campaign}");
        let mut tx = self
            .store
            .pool()
            .begin()
            .await
            .map_err(|e| self.failed(&what, e))?;
        let mut seqs: Vec<i64> = updates.iter().map(|u| to_i64(u.key.seq)).collect();
        seqs.sort_unstable();
        seqs.dedup();
        let sql = select!("AND seq = ANY($2) ORDER BY seq FOR UPDATE");
        let rows = sqlx::query(sql)
            .bind(number)
            .bind(&seqs)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.failed(&what, e))?;
        let mut records: HashMap<u64, StoredRecipient> = HashMap::new();
        for row in &rows {
            let stored = decode(self, row)?;
            records.insert(stored.key.seq, stored);
        }
        let writes = gather(&mut records, policy, updates, now);
        self.write(&mut tx, number, &writes, now)
            .await
            .map_err(|e| self.failed(&what, e))?;
        // Hard bounces go on the list in one statement; soft ones are counted one by one.
        let (hard, soft): (Vec<_>, Vec<_>) = writes.failed.iter().partition(|(_, r)| r.hard);
        suppress_hard(&mut tx, campaign, &hard, now)
            .await
            .map_err(|e| self.failed(&what, e))?;
        for (address, reply) in soft {
            self.note_failure(&mut tx, campaign, address, reply, &policy.suppression, now)
                .await
                .map_err(|e| self.failed(&what, e))?;
        }
        tx.commit().await.map_err(|e| self.failed(&what, e))?;
        self.read_counts(number).await
    }

    /// Sends the gathered writes as one statement (one round trip): the recipients, the
    /// attempt log, the counters, the Message-ID index and the soft-bounce counts.
    async fn write(
        &self,
        conn: &mut PgConnection,
        number: i32,
        w: &Writes,
        now: Millis,
    ) -> Result<(), sqlx::Error> {
        if w.seqs.is_empty() {
            return Ok(()); // nothing changed (outcomes recorded already): no statement
        }
        let (mut variants, mut states, mut deltas) = (Vec::new(), Vec::new(), Vec::new());
        for ((variant, state), delta) in w.counts.iter().filter(|(_, d)| **d != 0) {
            variants.push(*variant);
            states.push(*state);
            deltas.push(*delta);
        }
        let (ids, seqs): (Vec<&str>, Vec<i64>) = w
            .messages
            .iter()
            .map(|(id, seq)| (id.as_str(), *seq))
            .unzip();
        sqlx::query(WRITE_GROUP)
            .bind(number)
            .bind(&w.seqs)
            .bind(&w.states)
            .bind(&w.attempts)
            .bind(&w.first)
            .bind(&w.next)
            .bind(&w.replies)
            .bind(millis(now))
            .bind(&w.log_seqs)
            .bind(&w.log_states)
            .bind(&w.log_replies)
            .bind(&variants)
            .bind(&states)
            .bind(&deltas)
            .bind(&ids)
            .bind(&seqs)
            .bind(&w.delivered)
            .execute(&mut *conn)
            .await
            .map(|_| ())
    }

    /// A bounce or expiry: a hard one suppresses the address at once, soft ones count
    /// towards the policy (the same rules as the sled engine).
    pub(super) async fn note_failure(
        &self,
        conn: &mut PgConnection,
        campaign: &str,
        address: &str,
        reply: &ReplyRecord,
        policy: &SuppressionPolicy,
        now: Millis,
    ) -> Result<(), sqlx::Error> {
        if reply.hard {
            return suppress(
                conn,
                address,
                "hard_bounce",
                campaign,
                &reply.to_string(),
                now,
            )
            .await;
        }
        let window = crate::model::add_duration(0, policy.soft_window);
        let min_span = crate::model::add_duration(0, policy.soft_min_span);
        let sql = concat!(
            "SELECT count, ",
            ms!("first_at"),
            " FROM soft_bounces WHERE address = $1 FOR UPDATE"
        );
        let current: Option<(i32, i64)> = sqlx::query_as(sql)
            .bind(address)
            .fetch_optional(&mut *conn)
            .await?;
        let (count, first_at) = match current {
            Some((count, first))
                if now.saturating_sub(u64::try_from(first).unwrap_or(0)) <= window =>
            {
                (count.saturating_add(1), u64::try_from(first).unwrap_or(0))
            }
            _ => (1, now),
        };
        let upsert = concat!(
            "INSERT INTO soft_bounces (address, count, first_at) VALUES ($1, $2, ",
            ts!(3),
            ") ON CONFLICT (address) DO UPDATE SET count = excluded.count, \
             first_at = excluded.first_at"
        );
        sqlx::query(upsert)
            .bind(address)
            .bind(count)
            .bind(millis(first_at))
            .execute(&mut *conn)
            .await?;
        let limit = i32::try_from(policy.soft_limit).unwrap_or(i32::MAX);
        if count >= limit && now.saturating_sub(first_at) >= min_span {
            let detail = format!("{count} soft bounces, the last: {reply}");
            suppress(conn, address, "soft_bounces", campaign, &detail, now).await?;
        }
        Ok(())
    }
}

/// Applies each outcome to its (locked) record and gathers the writes; outcomes for unknown
/// recipients or recipients in a final state are ignored.
fn gather(
    records: &mut HashMap<u64, StoredRecipient>,
    policy: &OutcomePolicy,
    updates: &[OutcomeUpdate],
    now: Millis,
) -> Writes {
    let mut w = Writes::default();
    let mut changed: BTreeSet<u64> = BTreeSet::new();
    for update in updates {
        let Some(stored) = records
            .get_mut(&update.key.seq)
            .filter(|s| s.key.domain == update.key.domain)
        else {
            continue;
        };
        let record = &mut stored.record;
        if record.state.is_final() {
            continue;
        }
        let before = record.state;
        apply_outcome(record, &update.outcome, &policy.retry, now);
        let variant = i16::from(record.variant);
        *w.counts.entry((variant, state_name(before))).or_default() -= 1;
        *w.counts
            .entry((variant, state_name(record.state)))
            .or_default() += 1;
        let reply = update.outcome.reply();
        match record.state {
            RecipientState::Delivered => {
                w.delivered.push(record.email.clone());
                if let Some(id) = update.message_id.as_deref().filter(|id| !is_signed(id)) {
                    w.messages.push((id.to_owned(), to_i64(update.key.seq)));
                }
            }
            RecipientState::Bounced | RecipientState::Expired => {
                w.failed.push((record.email.clone(), reply.clone()));
            }
            _ => {}
        }
        changed.insert(update.key.seq);
        if record.state == RecipientState::Waiting {
            continue; // not an attempt: no entry in the attempt log
        }
        w.log_seqs.push(to_i64(update.key.seq));
        w.log_states.push(state_name(record.state));
        w.log_replies.push(json(reply));
    }
    for seq in &changed {
        let Some(stored) = records.get(seq) else {
            continue;
        };
        let record = &stored.record;
        w.seqs.push(to_i64(*seq));
        w.states.push(state_name(record.state));
        w.attempts
            .push(i32::try_from(record.attempts).unwrap_or(i32::MAX));
        w.first.push(record.first_attempt.map(millis));
        w.next.push(record.next_attempt.map(millis));
        w.replies.push(
            record
                .last_reply
                .as_ref()
                .map_or_else(|| "null".to_owned(), json),
        );
    }
    w
}

/// Counter deltas by (variant, state), as [`shift_counts`] applies them.
pub(super) type CountDeltas = BTreeMap<(i16, &'static str), i64>;

/// Shifts the campaign's `state_counts` by `deltas` (zero deltas left out).
pub(super) async fn shift_counts(
    conn: &mut PgConnection,
    number: i32,
    deltas: &CountDeltas,
) -> Result<(), sqlx::Error> {
    let (mut variants, mut states, mut values) = (Vec::new(), Vec::new(), Vec::new());
    for ((variant, state), delta) in deltas.iter().filter(|(_, d)| **d != 0) {
        variants.push(*variant);
        states.push(*state);
        values.push(*delta);
    }
    if variants.is_empty() {
        return Ok(());
    }
    sqlx::query(SHIFT_COUNTS)
        .bind(number)
        .bind(&variants)
        .bind(&states)
        .bind(&values)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Puts the hard-bounced addresses on the suppression list (those not there already).
async fn suppress_hard(
    conn: &mut PgConnection,
    campaign: &str,
    bounced: &[&(String, ReplyRecord)],
    now: Millis,
) -> Result<(), sqlx::Error> {
    if bounced.is_empty() {
        return Ok(());
    }
    let (addresses, details): (Vec<&str>, Vec<String>) = bounced
        .iter()
        .map(|(address, reply)| (address.as_str(), reply.to_string()))
        .unzip();
    let sql = concat!(
        "INSERT INTO suppressions (address, reason, at, campaign, detail) ",
        "SELECT u.address, 'hard_bounce', ",
        ts!(3),
        ", $4, u.detail FROM unnest($1::text[], $2::text[]) AS u(address, detail) ",
        "ON CONFLICT (address) DO NOTHING"
    );
    sqlx::query(sql)
        .bind(&addresses)
        .bind(&details)
        .bind(millis(now))
        .bind(campaign)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Adds `address` to the suppression list unless it is there already.
pub(super) async fn suppress(
    conn: &mut PgConnection,
    address: &str,
    reason: &str,
    campaign: &str,
    detail: &str,
    now: Millis,
) -> Result<(), sqlx::Error> {
    let sql = concat!(
        "INSERT INTO suppressions (address, reason, at, campaign, detail) \
         VALUES ($1, $2::text::suppression_reason, ",
        ts!(3),
        ", $4, $5) ON CONFLICT (address) DO NOTHING"
    );
    sqlx::query(sql)
        .bind(address)
        .bind(reason)
        .bind(millis(now))
        .bind(campaign)
        .bind(detail)
        .execute(conn)
        .await
        .map(|_| ())
}

/// A reply as the JSON the schema keeps.
pub(super) fn json(reply: &ReplyRecord) -> String {
    serde_json::to_string(reply).unwrap_or_else(|_| "null".to_owned())
}

/// A group's writes in one statement (data-modifying CTEs, each on its own table): each
/// recipient's new state, attempts, times and last reply ($2-$7); one attempt-log entry
/// per recorded outcome ($8-$11); the counters shifted in this connection's slot ($12-$14,
/// as [`SHIFT_COUNTS`]); the Message-IDs of delivered messages that do not name their
/// recipient themselves ($15-$16); the soft-bounce counts of delivered addresses reset ($17).
const WRITE_GROUP: &str = concat!(
    "WITH updated AS (",
    "UPDATE recipients r SET state = u.state::recipient_state, attempts = u.attempts, ",
    "first_attempt = timestamptz 'epoch' + u.first * interval '1 millisecond', ",
    "next_attempt = timestamptz 'epoch' + u.next * interval '1 millisecond', ",
    "last_reply = NULLIF(u.reply, 'null')::jsonb ",
    "FROM unnest($2::int8[], $3::text[], $4::int4[], $5::int8[], $6::int8[], $7::text[]) ",
    "AS u(seq, state, attempts, first, next, reply) ",
    "WHERE r.campaign = $1 AND r.seq = u.seq RETURNING 1), ",
    "logged AS (INSERT INTO attempts (campaign, at, seq, state, reply) SELECT $1, ",
    ts!(8),
    ", u.seq, u.state::recipient_state, u.reply::jsonb ",
    "FROM unnest($9::int8[], $10::text[], $11::text[]) AS u(seq, state, reply) RETURNING 1), ",
    "counted AS (INSERT INTO state_counts (campaign, variant, state, slot, recipients) ",
    "SELECT $1, u.variant, u.state::recipient_state, (pg_backend_pid() % 16)::int2, u.delta ",
    "FROM unnest($12::int2[], $13::text[], $14::int8[]) AS u(variant, state, delta) ",
    "ON CONFLICT (campaign, variant, state, slot) ",
    "DO UPDATE SET recipients = state_counts.recipients + excluded.recipients RETURNING 1), ",
    "indexed AS (INSERT INTO messages (message_id, campaign, seq) ",
    "SELECT u.id, $1, u.seq FROM unnest($15::text[], $16::int8[]) AS u(id, seq) ",
    "ON CONFLICT (message_id) DO UPDATE SET campaign = excluded.campaign, seq = excluded.seq ",
    "RETURNING 1), ",
    "cleared AS (DELETE FROM soft_bounces WHERE address = ANY($17::text[]) RETURNING 1) ",
    "SELECT 1"
);

/// The counters, shifted by the deltas per variant and state, in the slot of this
/// connection (migration 0002: concurrent writers do not queue on the same rows).
const SHIFT_COUNTS: &str = "\
INSERT INTO state_counts (campaign, variant, state, slot, recipients)
SELECT $1, u.variant, u.state::recipient_state, (pg_backend_pid() % 16)::int2, u.delta
FROM unnest($2::int2[], $3::text[], $4::int8[]) AS u(variant, state, delta)
ON CONFLICT (campaign, variant, state, slot)
DO UPDATE SET recipients = state_counts.recipients + excluded.recipients";
