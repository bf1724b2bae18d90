//! The warm-up gate in the scheduler (`[warmup]`): before a campaign's recipients of a domain
//! are taken, the day's allowance of the domain's provider is reserved in the store (what is
//! left below the ceiling, at most the room the destination has); once it is used up, the
//! provider's recipients are not taken at all: they stay pending (no attempt, nothing
//! recorded) until the next day of the warm-up's zone. Outcomes of the messages sent are
//! counted into the day they were reserved on, for the next day's ceiling.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{Scheduler, Settled};
use crate::config::WarmupSettings;
use crate::delivery::Route;
use crate::model::{Category, Millis, Outcome, ReplyRecord};
use crate::store::{RecipientKey, Store, StoreError, StoredRecipient, WarmupTally};
use crate::warmup::{day_start, plan, today, ProviderTable};

/// Recipients held back by a provider's used-up ceiling at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmupHeld {
    /// The warm-up key.
    pub key: String,
    /// The provider.
    pub provider: String,
    /// Today's ceiling.
    pub ceiling: u32,
    /// Sent against it today.
    pub sent: u32,
    /// Recipients of the run's campaigns still pending in the provider's domains.
    pub held: u64,
    /// When the next day (and its allowance) begins (epoch milliseconds).
    pub until: Millis,
}

/// One key's state for the current day.
struct KeyDay {
    settings: Arc<WarmupSettings>,
    table: ProviderTable,
    day: i64,
    /// Today's ceiling per provider (`None`: its warm-up is done).
    ceilings: HashMap<String, Option<u32>>,
    /// Providers whose allowance is used up today.
    exhausted: HashSet<String>,
}

/// Where a reserved message is counted.
type DayOf = (String, String, i64);

/// The gate's state: per key, the day's ceilings; the messages in flight with the day they
/// were reserved on; the providers of the domains seen.
#[derive(Default)]
pub(super) struct WarmupGate {
    keys: HashMap<String, KeyDay>,
    flight: HashMap<(usize, RecipientKey), DayOf>,
    providers: HashMap<(String, String), String>,
}

/// What a reservation granted, to note what was sent of it.
pub(super) struct Granted {
    day: DayOf,
    /// Messages granted.
    pub(super) count: usize,
}

impl WarmupGate {
    /// The key's day at `now`, read (again) from the store when the day changed.
    fn key_day(
        &mut self,
        store: &Store,
        settings: &Arc<WarmupSettings>,
        now: Millis,
    ) -> Result<&mut KeyDay, StoreError> {
        let day = today(settings.timezone, now);
        let stale = self.keys.get(&settings.key).is_none_or(|k| k.day != day);
        if stale {
            let days = store.warmup_days(Some(&settings.key))?;
            let ceilings = plan(settings, &days, day)
                .into_iter()
                .map(|p| (p.provider, p.ceiling.limit))
                .collect();
            let existing = self.keys.get(&settings.key).map(|k| k.settings.clone());
            let settings = existing.unwrap_or_else(|| settings.clone());
            let table = ProviderTable::new(&settings);
            self.keys.insert(
                settings.key.clone(),
                KeyDay {
                    settings,
                    table,
                    day,
                    ceilings,
                    exhausted: HashSet::new(),
                },
            );
        }
        // invariant: inserted above when absent
        self.keys
            .get_mut(&settings.key)
            .ok_or_else(|| StoreError::Transfer {
                path: store.path().to_owned(),
                detail: "warm-up state lost".into(),
            })
    }

    /// The provider of `domain` under `settings`, whose mail goes by `route`.
    fn provider(&mut self, settings: &WarmupSettings, domain: &str, route: &Route) -> String {
        let cache = (settings.key.clone(), domain.to_owned());
        if let Some(found) = self.providers.get(&cache) {
            return found.clone();
        }
        let hosts: Vec<String> = match route {
            Route::Mx { hosts, .. } => hosts.iter().map(|h| h.name.clone()).collect(),
            Route::Relay(..) => Vec::new(),
        };
        let table = ProviderTable::new(settings);
        let provider = self
            .keys
            .get(&settings.key)
            .map_or(&table, |k| &k.table)
            .classify(domain, &hosts)
            .to_owned();
        self.providers.insert(cache, provider.clone());
        provider
    }

    /// Reserves up to `want` messages of `domain`'s provider for today; `None` when the
    /// provider has no ceiling (any more).
    pub(super) fn reserve(
        &mut self,
        store: &Store,
        settings: &Arc<WarmupSettings>,
        (domain, route): (&str, &Route),
        want: usize,
        now: Millis,
    ) -> Result<Option<Granted>, StoreError> {
        let provider = self.provider(settings, domain, route);
        let key_day = self.key_day(store, settings, now)?;
        let Some(Some(ceiling)) = key_day.ceilings.get(&provider).copied() else {
            return Ok(None);
        };
        let day = (settings.key.clone(), provider.clone(), key_day.day);
        if key_day.exhausted.contains(&provider) {
            return Ok(Some(Granted { day, count: 0 }));
        }
        let want = u32::try_from(want).unwrap_or(u32::MAX);
        let granted = store.warmup_reserve(&settings.key, &provider, key_day.day, ceiling, want)?;
        if granted < want {
            key_day.exhausted.insert(provider);
        }
        Ok(Some(Granted {
            day,
            count: granted as usize,
        }))
    }

    /// Notes the messages sent out of `granted` (to count their outcomes) and hands back
    /// what was not used.
    pub(super) fn sent(
        &mut self,
        store: &Store,
        campaign: usize,
        granted: Granted,
        recipients: &[StoredRecipient],
    ) -> Result<(), StoreError> {
        for recipient in recipients {
            self.flight
                .insert((campaign, recipient.key.clone()), granted.day.clone());
        }
        let unused = granted.count.saturating_sub(recipients.len());
        if unused > 0 {
            let (key, provider, day) = &granted.day;
            if let Some(k) = self.keys.get_mut(key) {
                k.exhausted.remove(provider);
            }
            let tally = WarmupTally {
                released: u32::try_from(unused).unwrap_or(u32::MAX),
                ..WarmupTally::default()
            };
            store.warmup_record(key, provider, *day, &tally)?;
        }
        Ok(())
    }

    /// Until when `domain`'s provider has no allowance left (the next day's start), when it
    /// has none today.
    pub(super) fn blocked_until(
        &mut self,
        settings: &WarmupSettings,
        (domain, route): (&str, &Route),
        now: Millis,
    ) -> Option<Millis> {
        let provider = self.provider(settings, domain, route);
        let key_day = self.keys.get(&settings.key)?;
        let day = today(settings.timezone, now);
        (key_day.day == day && key_day.exhausted.contains(&provider))
            .then(|| day_start(settings.timezone, day + 1))
    }

    /// Counts the outcomes of reserved messages in `group` into their days.
    pub(super) fn settled(&mut self, store: &Store, group: &[Settled]) -> Result<(), StoreError> {
        let mut tallies: HashMap<DayOf, WarmupTally> = HashMap::new();
        for item in group {
            let (campaign, key) = item.recipient();
            let Some(day) = self.flight.remove(&(campaign, key.clone())) else {
                continue;
            };
            let tally = tallies.entry(day.clone()).or_default();
            match item {
                Settled::Outcome { update, .. } => count(tally, &update.outcome),
                Settled::Released { .. } => tally.released += 1,
            }
            if tally.released > 0 {
                // Handed back: the provider may have room again today.
                if let Some(k) = self.keys.get_mut(&day.0) {
                    k.exhausted.remove(&day.1);
                }
            }
        }
        for ((key, provider, day), tally) in tallies {
            store.warmup_record(&key, &provider, day, &tally)?;
        }
        Ok(())
    }

    /// Providers used up today under `settings`' key, with their ceiling and sent count.
    fn used_up(&self, key: &str) -> Vec<(String, u32, i64)> {
        let Some(k) = self.keys.get(key) else {
            return Vec::new();
        };
        k.exhausted
            .iter()
            .filter_map(|p| match k.ceilings.get(p) {
                Some(Some(ceiling)) => Some((p.clone(), *ceiling, k.day)),
                _ => None,
            })
            .collect()
    }
}

/// Adds one outcome to `tally`.
fn count(tally: &mut WarmupTally, outcome: &Outcome) {
    let policy = |reply: &ReplyRecord| {
        matches!(
            reply.category,
            Some(Category::Blocked | Category::PolicyBlock | Category::Spam)
        )
    };
    match outcome {
        Outcome::Delivered { .. } => tally.delivered += 1,
        Outcome::Deferred { reply } | Outcome::Expired { reply } => {
            if policy(reply) {
                tally.blocked += 1;
            } else if reply.category == Some(Category::Throttled) {
                tally.throttled += 1;
            } else {
                tally.deferred += 1;
            }
        }
        Outcome::Bounced { reply } => {
            if policy(reply) {
                tally.blocked += 1;
            } else if reply.hard {
                tally.bounced += 1;
            } else {
                tally.deferred += 1;
            }
        }
        // Not sent after all: held by its window or by a policy block's pause.
        Outcome::Suppressed { .. }
        | Outcome::Cancelled { .. }
        | Outcome::Waiting { .. }
        | Outcome::Postponed { .. } => {
            tally.released += 1;
        }
    }
}

impl Scheduler {
    /// The warm-up of campaign `position` and the route of destination `id`, when the
    /// campaign has a warm-up.
    fn warm(&self, position: usize, id: usize) -> Option<(Arc<WarmupSettings>, Route)> {
        let settings = self.feeds.get(position)?.warmup.clone()?;
        let destination = self.routing.destinations.get(id)?;
        Some((settings, destination.route.clone()))
    }

    /// Reserves today's allowance for up to `room` recipients of `domain` (at destination
    /// `id`) of campaign `position`; `None` when it has no ceiling.
    pub(super) fn warmup_reserve(
        &mut self,
        position: usize,
        domain: &str,
        id: usize,
        room: usize,
    ) -> Result<Option<Granted>, StoreError> {
        let Some((settings, route)) = self.warm(position, id) else {
            return Ok(None);
        };
        let now = self.clock.now_millis();
        self.warmup
            .reserve(&self.store, &settings, (domain, &route), room, now)
    }

    /// Until when campaign `position` cannot send to `domain` (at destination `id`) because
    /// its provider's allowance is used up today.
    pub(super) fn warmup_blocked(
        &mut self,
        position: usize,
        domain: &str,
        id: usize,
    ) -> Option<Millis> {
        let (settings, route) = self.warm(position, id)?;
        let now = self.clock.now_millis();
        self.warmup.blocked_until(&settings, (domain, &route), now)
    }

    /// At the end of a run: the recipients held back per key and provider (also kept in the
    /// store as the day's `held`).
    pub(super) fn warmup_summary(&mut self) -> Result<Vec<WarmupHeld>, StoreError> {
        let mut out: Vec<WarmupHeld> = Vec::new();
        let now = self.clock.now_millis();
        for position in 0..self.feeds.len() {
            let Some(settings) = self.feeds[position].warmup.clone() else {
                continue;
            };
            let used_up = self.warmup.used_up(&settings.key);
            if used_up.is_empty() {
                continue;
            }
            let tallies = self.store.domain_tallies(&self.feeds[position].id)?;
            for tally in tallies.iter().filter(|t| t.counts.pending > 0) {
                let super::RouteState::Routed(id) = self.routing.route(&tally.domain) else {
                    continue;
                };
                let Some(route) = self.routing.destinations.get(id).map(|d| d.route.clone()) else {
                    continue;
                };
                let provider = self.warmup.provider(&settings, &tally.domain, &route);
                let Some((_, ceiling, day)) = used_up.iter().find(|(p, _, _)| *p == provider)
                else {
                    continue;
                };
                let until = day_start(settings.timezone, day + 1);
                match out
                    .iter_mut()
                    .find(|h| h.key == settings.key && h.provider == provider)
                {
                    Some(held) => held.held += tally.counts.pending,
                    None => out.push(WarmupHeld {
                        key: settings.key.clone(),
                        provider,
                        ceiling: *ceiling,
                        sent: 0,
                        held: tally.counts.pending,
                        until,
                    }),
                }
            }
        }
        for held in &mut out {
            let day = today(
                self.warmup
                    .keys
                    .get(&held.key)
                    .map_or(chrono_tz::Tz::UTC, |k| k.settings.timezone),
                now,
            );
            let count = u32::try_from(held.held).unwrap_or(u32::MAX);
            self.store
                .warmup_set_held(&held.key, &held.provider, day, count)?;
            held.sent = self
                .store
                .warmup_days(Some(&held.key))?
                .iter()
                .find(|d| d.provider == held.provider && d.day == day)
                .map_or(0, |d| d.sent);
        }
        out.sort_by(|a, b| (&a.key, &a.provider).cmp(&(&b.key, &b.provider)));
        Ok(out)
    }
}
