//! Opens, clicks and unsubscribes on PostgreSQL: the link table (on `campaigns`), the events
//! (`track_events`), each recipient's engagement and daily cap (`engagement`) and the counters
//! per variant (`track_counts`). A group of tracked requests is one transaction: the
//! engagement and counter rows it touches are locked (in key order, so two nodes never
//! deadlock), changed by the rules every engine follows (`store/track_rules.rs`), and written
//! back as arrays.

use super::engine::{millis, ms, PgEngine};
use super::outcomes::suppress;
use super::queue::to_i64;
use super::PgStoreError;
use crate::model::{Millis, TrackCounts};
use crate::store::api::TrackingStore;
use crate::store::track_rules::{apply, refusal, unstored, DailyEvents, Engagement};
use crate::store::{
    DomainTally, MachineReason, StoreError, TrackEffect, TrackEvent, TrackInput, TrackKind,
    TrackingMeta,
};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};

/// A recipient of a campaign: (campaign number, sequence).
type Who = (i32, i64);

/// One stored event: campaign, at, kind, seq, variant, link, machine.
type EventRow = (
    i32,
    Millis,
    &'static str,
    i64,
    i16,
    Option<i16>,
    Option<&'static str>,
);

/// An `engagement` row: what the rules read and change, and the daily cap's count.
#[derive(Debug, Clone, Copy, Default)]
struct EngagementRow {
    rules: Engagement,
    cap: DailyEvents,
}

/// What one group of tracked requests reads and changes.
#[derive(Default)]
struct Group {
    engagements: BTreeMap<Who, EngagementRow>,
    counters: BTreeMap<(i32, i16), TrackCounts>,
    /// Stored events, in input order.
    events: Vec<EventRow>,
    /// Unsubscribes to put on the suppression list: (address, campaign id, at).
    unsubscribes: Vec<(String, String, Millis, Option<String>)>,
}

/// The name the schema's `track_kind` gives a kind of event.
pub(super) fn kind_name(kind: TrackKind) -> &'static str {
    match kind {
        TrackKind::Open => "open",
        TrackKind::Click => "click",
        TrackKind::Unsubscribe => "unsubscribe",
    }
}

pub(super) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Locks (creating them first) the engagement rows of the recipients, in key order.
const LOCK_ENGAGEMENT: &str = concat!(
    "SELECT g.campaign, g.seq, g.opened, g.clicked, g.unsubscribed, coalesce(",
    ms!("g.first_click_at"),
    ", 0), coalesce(",
    ms!("g.last_click_at"),
    ", 0), coalesce(g.last_link, 0::int2), g.cap_day, g.cap_events FROM engagement g ",
    "JOIN unnest($1::int4[], $2::int8[]) AS u(campaign, seq) ",
    "ON g.campaign = u.campaign AND g.seq = u.seq ORDER BY g.campaign, g.seq FOR UPDATE OF g"
);

/// Creates the engagement rows missing (the arrays sorted, so inserts lock in key order).
const CREATE_ENGAGEMENT: &str = "\
INSERT INTO engagement (campaign, seq)
SELECT * FROM unnest($1::int4[], $2::int8[]) ON CONFLICT DO NOTHING";

/// Creates the counter rows missing.
const CREATE_COUNTS: &str = "\
INSERT INTO track_counts (campaign, variant)
SELECT * FROM unnest($1::int4[], $2::int2[]) ON CONFLICT DO NOTHING";

/// Locks the counter rows of the touched variants, in key order.
const LOCK_COUNTS: &str = "\
SELECT t.campaign, t.variant, t.opened, t.clicked, t.unsubscribed, t.opens, t.clicks,
       t.machine_opens, t.machine_clicks
FROM track_counts t JOIN unnest($1::int4[], $2::int2[]) AS u(campaign, variant)
    ON t.campaign = u.campaign AND t.variant = u.variant
ORDER BY t.campaign, t.variant FOR UPDATE OF t";

/// Writes the engagement rows back.
const WRITE_ENGAGEMENT: &str = concat!(
    "UPDATE engagement g SET opened = u.opened, clicked = u.clicked, ",
    "unsubscribed = u.unsubscribed, ",
    "first_click_at = CASE WHEN u.first = 0 THEN NULL ELSE ",
    "timestamptz 'epoch' + u.first * interval '1 millisecond' END, ",
    "last_click_at = CASE WHEN u.last = 0 THEN NULL ELSE ",
    "timestamptz 'epoch' + u.last * interval '1 millisecond' END, ",
    "last_link = u.link, cap_day = u.day, cap_events = u.events ",
    "FROM unnest($1::int4[], $2::int8[], $3::bool[], $4::bool[], $5::bool[], $6::int8[], ",
    "$7::int8[], $8::int2[], $9::int4[], $10::int4[]) ",
    "AS u(campaign, seq, opened, clicked, unsubscribed, first, last, link, day, events) ",
    "WHERE g.campaign = u.campaign AND g.seq = u.seq"
);

/// Writes the counter rows back.
const WRITE_COUNTS: &str = "\
UPDATE track_counts t SET opened = u.opened, clicked = u.clicked,
    unsubscribed = u.unsubscribed, opens = u.opens, clicks = u.clicks,
    machine_opens = u.machine_opens, machine_clicks = u.machine_clicks
FROM unnest($1::int4[], $2::int2[], $3::int8[], $4::int8[], $5::int8[], $6::int8[],
            $7::int8[], $8::int8[], $9::int8[])
    AS u(campaign, variant, opened, clicked, unsubscribed, opens, clicks, machine_opens,
         machine_clicks)
WHERE t.campaign = u.campaign AND t.variant = u.variant";

/// Appends the stored events (identities given in array order: the events' order).
const INSERT_EVENTS: &str = "\
INSERT INTO track_events (campaign, at, kind, seq, variant, link, machine)
SELECT u.campaign, timestamptz 'epoch' + u.at * interval '1 millisecond',
       u.kind::track_kind, u.seq, u.variant, u.link, u.machine
FROM unnest($1::int4[], $2::int8[], $3::text[], $4::int8[], $5::int2[], $6::int2[],
            $7::text[]) WITH ORDINALITY AS u(campaign, at, kind, seq, variant, link, machine, n)
ORDER BY u.n";

impl PgEngine {
    /// The campaign numbers of the campaigns named in `inputs` (unknown ones left out).
    async fn numbers_of(
        &self,
        inputs: &[TrackInput],
    ) -> Result<HashMap<String, i32>, PgStoreError> {
        let mut ids: Vec<&str> = inputs.iter().map(|i| i.campaign.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let rows: Vec<(String, i32)> =
            sqlx::query_as("SELECT id, number FROM campaigns WHERE id = ANY($1)")
                .bind(&ids)
                .fetch_all(self.store.pool())
                .await
                .map_err(|e| self.failed("find the tracked campaigns", e))?;
        Ok(rows.into_iter().collect())
    }

    /// See [`TrackingStore::record_tracking_capped`]. Inputs for a campaign that is not in
    /// the store change nothing (`stored: false`).
    async fn track(
        &self,
        inputs: &[TrackInput],
        daily_cap: u32,
    ) -> Result<Vec<TrackEffect>, PgStoreError> {
        let numbers = self.numbers_of(inputs).await?;
        let what = "record tracked requests";
        let fail = |e| self.failed(what, e);
        let mut tx = self.store.pool().begin().await.map_err(fail)?;
        let mut group = lock_group(&mut tx, inputs, &numbers).await.map_err(fail)?;
        let effects = inputs
            .iter()
            .map(|input| match numbers.get(&input.campaign) {
                Some(number) => group.apply(*number, input, daily_cap),
                None => unstored(input.machine),
            })
            .collect();
        group.write(&mut tx).await.map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(effects)
    }
}

/// Locks and reads the engagement and counter rows the inputs touch.
async fn lock_group(
    conn: &mut PgConnection,
    inputs: &[TrackInput],
    numbers: &HashMap<String, i32>,
) -> Result<Group, sqlx::Error> {
    let mut who: Vec<Who> = Vec::new();
    let mut variants: Vec<(i32, i16)> = Vec::new();
    for input in inputs {
        if let Some(number) = numbers.get(&input.campaign) {
            who.push((*number, to_i64(input.key.seq)));
            variants.push((*number, i16::from(input.variant)));
        }
    }
    who.sort_unstable();
    who.dedup();
    variants.sort_unstable();
    variants.dedup();
    let mut group = Group::default();
    let (campaigns, seqs): (Vec<i32>, Vec<i64>) = who.into_iter().unzip();
    for sql in [CREATE_ENGAGEMENT, LOCK_ENGAGEMENT] {
        let rows = sqlx::query(sql)
            .bind(&campaigns)
            .bind(&seqs)
            .fetch_all(&mut *conn)
            .await?;
        for row in &rows {
            group
                .engagements
                .insert((row.get(0), row.get(1)), engagement(row));
        }
    }
    let (campaigns, variants): (Vec<i32>, Vec<i16>) = variants.into_iter().unzip();
    for sql in [CREATE_COUNTS, LOCK_COUNTS] {
        let rows = sqlx::query(sql)
            .bind(&campaigns)
            .bind(&variants)
            .fetch_all(&mut *conn)
            .await?;
        for row in &rows {
            group
                .counters
                .insert((row.get(0), row.get(1)), track_counts(row, 2));
        }
    }
    Ok(group)
}

/// An `engagement` row (as `LOCK_ENGAGEMENT` selects it).
fn engagement(row: &PgRow) -> EngagementRow {
    let rules = Engagement {
        opened: row.get(2),
        clicked: row.get(3),
        unsubscribed: row.get(4),
        first_click_at: to_u64(row.get(5)),
        last_click_at: to_u64(row.get(6)),
        last_link: u16::try_from(row.get::<i16, _>(7)).unwrap_or(0),
    };
    let cap = DailyEvents {
        day: u32::try_from(row.get::<i32, _>(8)).unwrap_or(0),
        events: u32::try_from(row.get::<i32, _>(9)).unwrap_or(0),
    };
    EngagementRow { rules, cap }
}

/// Seven `track_counts` columns from `first` on.
pub(super) fn track_counts(row: &PgRow, first: usize) -> TrackCounts {
    let n = |i: usize| to_u64(row.get(first + i));
    TrackCounts {
        opened: n(0),
        clicked: n(1),
        unsubscribed: n(2),
        opens: n(3),
        clicks: n(4),
        machine_opens: n(5),
        machine_clicks: n(6),
    }
}

impl Group {
    /// Applies one input of a known campaign (same rules as the sled engine).
    fn apply(&mut self, number: i32, input: &TrackInput, daily_cap: u32) -> TrackEffect {
        let who = (number, to_i64(input.key.seq));
        let mut engagement = self.engagements.get(&who).copied().unwrap_or_default();
        let cap = &mut engagement.cap;
        let count = || Ok::<_, std::convert::Infallible>(cap.count(input.at));
        if let Ok(Some(refused)) = refusal(input, &engagement.rules, daily_cap, count) {
            self.engagements.insert(who, engagement);
            return refused;
        }
        let counts_id = (number, i16::from(input.variant));
        let mut counts = self.counters.get(&counts_id).copied().unwrap_or_default();
        let effect = apply(input, &mut engagement.rules, &mut counts);
        if input.kind == TrackKind::Unsubscribe && effect.first {
            let address = input.address.clone();
            self.unsubscribes.push((
                address,
                input.campaign.clone(),
                input.at,
                input.topic.clone(),
            ));
        }
        self.events.push((
            number,
            input.at,
            kind_name(input.kind),
            who.1,
            i16::from(input.variant),
            input.link.map(|l| i16::try_from(l).unwrap_or(i16::MAX)),
            effect.machine.map(MachineReason::as_str),
        ));
        self.engagements.insert(who, engagement);
        self.counters.insert(counts_id, counts);
        effect
    }

    /// Writes everything back: a few array statements.
    async fn write(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let mut e = EngagementColumns::default();
        for ((campaign, seq), g) in &self.engagements {
            e.push(*campaign, *seq, g);
        }
        e.write(&mut *conn).await?;
        let mut c: (Vec<i32>, Vec<i16>, [Vec<i64>; 7]) = Default::default();
        for ((campaign, variant), t) in &self.counters {
            c.0.push(*campaign);
            c.1.push(*variant);
            let values = [
                t.opened,
                t.clicked,
                t.unsubscribed,
                t.opens,
                t.clicks,
                t.machine_opens,
                t.machine_clicks,
            ];
            for (column, value) in c.2.iter_mut().zip(values) {
                column.push(i64::try_from(value).unwrap_or(i64::MAX));
            }
        }
        let mut query = sqlx::query(WRITE_COUNTS).bind(&c.0).bind(&c.1);
        for column in &c.2 {
            query = query.bind(column);
        }
        query.execute(&mut *conn).await?;
        self.write_events(&mut *conn).await?;
        for (address, campaign, at, topic) in &self.unsubscribes {
            let detail = "one-click unsubscribe";
            match topic {
                Some(topic) => {
                    let who = (address.as_str(), topic.as_str());
                    super::topics::suppress_topic(&mut *conn, who, campaign, detail, *at).await?
                }
                None => suppress(&mut *conn, address, "unsubscribe", campaign, detail, *at).await?,
            }
        }
        Ok(())
    }

    /// Appends the stored events in one statement.
    async fn write_events(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let mut columns: (Vec<i32>, Vec<i64>, Vec<&str>, Vec<i64>) = Default::default();
        let mut more: (Vec<i16>, Vec<Option<i16>>, Vec<Option<&str>>) = Default::default();
        for (campaign, at, kind, seq, variant, link, machine) in &self.events {
            columns.0.push(*campaign);
            columns.1.push(millis(*at));
            columns.2.push(kind);
            columns.3.push(*seq);
            more.0.push(*variant);
            more.1.push(*link);
            more.2.push(*machine);
        }
        sqlx::query(INSERT_EVENTS)
            .bind(&columns.0)
            .bind(&columns.1)
            .bind(&columns.2)
            .bind(&columns.3)
            .bind(&more.0)
            .bind(&more.1)
            .bind(&more.2)
            .execute(conn)
            .await
            .map(|_| ())
    }
}

/// The engagement rows as columns, for `WRITE_ENGAGEMENT`.
#[derive(Default)]
struct EngagementColumns {
    campaigns: Vec<i32>,
    seqs: Vec<i64>,
    flags: [Vec<bool>; 3],
    times: [Vec<i64>; 2],
    links: Vec<i16>,
    cap: [Vec<i32>; 2],
}

impl EngagementColumns {
    fn push(&mut self, campaign: i32, seq: i64, row: &EngagementRow) {
        let (g, cap) = (&row.rules, &row.cap);
        self.campaigns.push(campaign);
        self.seqs.push(seq);
        for (column, value) in self
            .flags
            .iter_mut()
            .zip([g.opened, g.clicked, g.unsubscribed])
        {
            column.push(value);
        }
        self.times[0].push(millis(g.first_click_at));
        self.times[1].push(millis(g.last_click_at));
        self.links
            .push(i16::try_from(g.last_link).unwrap_or(i16::MAX));
        self.cap[0].push(i32::try_from(cap.day).unwrap_or(i32::MAX));
        self.cap[1].push(i32::try_from(cap.events).unwrap_or(i32::MAX));
    }

    async fn write(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query(WRITE_ENGAGEMENT)
            .bind(&self.campaigns)
            .bind(&self.seqs)
            .bind(&self.flags[0])
            .bind(&self.flags[1])
            .bind(&self.flags[2])
            .bind(&self.times[0])
            .bind(&self.times[1])
            .bind(&self.links)
            .bind(&self.cap[0])
            .bind(&self.cap[1])
            .execute(conn)
            .await
            .map(|_| ())
    }
}

impl TrackingStore for PgEngine {
    fn tracking_meta(&self, campaign: &str) -> Result<Option<TrackingMeta>, StoreError> {
        self.run(self.read_tracking_meta(campaign))
    }

    fn set_tracking_meta(&self, campaign: &str, meta: &TrackingMeta) -> Result<(), StoreError> {
        let number = self.known(campaign)?;
        let set: u64 = self.run(async {
            sqlx::query(
                "UPDATE campaigns SET tracking_links = $2, tracking_key_fingerprint = $3 \
                 WHERE number = $1 AND tracking_links IS NULL",
            )
            .bind(number)
            .bind(&meta.links)
            .bind(&meta.key_fingerprint)
            .execute(self.store.pool())
            .await
            .map(|done| done.rows_affected())
            .map_err(|e| self.failed(&format!("store the tracked links of {campaign}"), e))
        })?;
        if set == 1 {
            return Ok(());
        }
        match self.tracking_meta(campaign)? {
            Some(existing) if existing == *meta => Ok(()),
            _ => Err(StoreError::TrackingChanged {
                campaign: campaign.to_owned(),
                path: self.path_buf(),
            }),
        }
    }

    fn view_meta(&self, campaign: &str) -> Result<Option<crate::store::ViewMeta>, StoreError> {
        self.read_view_meta(campaign)
    }

    fn set_view_meta(
        &self,
        campaign: &str,
        meta: &crate::store::ViewMeta,
    ) -> Result<(), StoreError> {
        self.write_view_meta(campaign, meta)
    }

    fn tracking_counts(&self, campaign: &str) -> Result<Vec<(u8, TrackCounts)>, StoreError> {
        match self.run(self.number(campaign))? {
            Some(number) => self.run(self.read_tracking_counts(number)),
            None => Ok(Vec::new()),
        }
    }

    fn tracking_totals(&self, campaign: &str) -> Result<TrackCounts, StoreError> {
        let mut total = TrackCounts::default();
        for (_, counts) in self.tracking_counts(campaign)? {
            total.add(&counts);
        }
        Ok(total)
    }

    fn tracking_events(
        &self,
        campaign: &str,
        since: Millis,
    ) -> Result<Vec<TrackEvent>, StoreError> {
        match self.run(self.number(campaign))? {
            Some(number) => self.run(self.read_tracking_events(number, since)),
            None => Ok(Vec::new()),
        }
    }

    fn record_tracking(&self, inputs: &[TrackInput]) -> Result<Vec<TrackEffect>, StoreError> {
        self.record_tracking_capped(inputs, u32::MAX)
    }

    fn record_tracking_capped(
        &self,
        inputs: &[TrackInput],
        daily_cap: u32,
    ) -> Result<Vec<TrackEffect>, StoreError> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        self.run(self.track(inputs, daily_cap))
    }

    fn domain_tallies(&self, campaign: &str) -> Result<Vec<DomainTally>, StoreError> {
        match self.run(self.number(campaign))? {
            Some(number) => self.run(self.read_domain_tallies(number)),
            None => Ok(Vec::new()),
        }
    }
}
