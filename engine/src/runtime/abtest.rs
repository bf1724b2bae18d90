//! Test then winner: once the test share has gone out and `[ab] wait` has passed, a send takes
//! the verdict and releases the held remainder with the winner (or the configured fallback).
//! Both moments are read from the send's [`Clock`](crate::model::Clock) (`SendOptions::clock`,
//! the server's clock under `volley serve`), so tests move the wait instead of sleeping it.

use super::Campaign;
use crate::ab::{Method, Reason, Stop, Verdict};
use crate::config::{CampaignSettings, OnInconclusive, OnVeto};
use crate::model::{add_duration, Millis};
use crate::report::{self, ReportSpec};
use crate::store::{AbDecision, AbRecord, Store};
use crate::Error;

/// Where a test-then-winner campaign stands after a send, for the send's report.
#[derive(Debug, Clone, PartialEq)]
pub struct AbProgress {
    /// Recipients still held back for the winner.
    pub held: u64,
    /// When the remainder is decided (epoch ms), once the test share has gone out.
    pub decide_after: Option<Millis>,
    /// What the remainder went to, once decided: (how, variant id, reason).
    pub decision: Option<(String, Option<String>, Reason)>,
    /// True when this send took the decision.
    pub decided_now: bool,
    /// When the verdict was inconclusive and `on_inconclusive = "hold"` kept the remainder.
    pub holding: Option<Reason>,
}

/// What one look at a test-then-winner campaign found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Look {
    /// Nothing to look at now: no `[ab]`, the test share is still going out, a fixed test
    /// before its wait, or the test was decided before (its remainder released again).
    NotDue,
    /// Decided now: the held remainder was released.
    Decided,
    /// Sequential, within `wait`, no stop yet: the test goes on (nothing recorded) until at
    /// most `until` (epoch ms), the end of the wait.
    Looking {
        /// Why there is no stop yet.
        reason: Reason,
        /// When the wait ends.
        until: Millis,
    },
    /// The remainder stays held, and the store records it (with the evidence).
    Held(Reason),
}

/// Before a send: looks at the test (see [`look`]). Returns true when it decided now, and why
/// it holds, if it does (the caller says so: a server says it once).
pub(crate) fn decide_if_due(
    settings: &CampaignSettings,
    store: &Store,
    now: Millis,
) -> Result<(bool, Option<Reason>), Error> {
    Ok(match look(settings, store, now)? {
        Look::Decided => (true, None),
        Look::Held(reason) => (false, Some(reason)),
        Look::NotDue | Look::Looking { .. } => (false, None),
    })
}

/// Takes the verdict (from the store's counters, see [`report::ab_verdict`]) once the test
/// share has gone out. Sequential (valid at every look): at any look, a winner, a futility
/// stop or a veto decides; at `wait` without a stop the verdict is inconclusive and
/// `on_inconclusive` applies. Fixed: one look, at `wait`. A decision releases the held
/// recipients (all of them, also after a crash midway: the decision is written first).
/// `hold` is recorded as a decision of its own (`how = "hold"`), so the fixed method, whose
/// one look is then taken, refuses to look again.
pub(crate) fn look(settings: &CampaignSettings, store: &Store, now: Millis) -> Result<Look, Error> {
    let Some(ab) = &settings.ab else {
        return Ok(Look::NotDue);
    };
    let id = settings.id.as_str();
    let record = store.ab_record(id)?;
    let held = record.decision.clone().filter(|d| d.how == HOLD);
    if let Some(decision) = record.decision.as_ref().filter(|d| d.how != HOLD) {
        // A decision taken before a crash: finish releasing with it.
        let choose = chooser(settings, decision);
        store.release_held(id, &choose)?;
        return Ok(Look::NotDue);
    }
    let Some(sent) = record.test_sent_at else {
        return Ok(Look::NotDue);
    };
    let until = add_duration(sent, ab.wait);
    let at_max = now >= until;
    if ab.rules.method == Method::Fixed {
        if !at_max {
            return Ok(Look::NotDue);
        }
        if let Some(held) = held {
            // The fixed test is valid for one look, and it was taken: do not peek again.
            tracing::debug!(
                campaign = id,
                "fixed A/B test: its one look held the remainder; not deciding again"
            );
            return Ok(Look::Held(held.reason));
        }
    }
    let spec = ReportSpec::for_campaign(settings, 0);
    let Some(verdict) = report::ab_verdict(store, &spec)? else {
        return Ok(Look::NotDue);
    };
    let choice = match (verdict.stop, &verdict.winner) {
        (Some(Stop::Winner), Some(winner)) => Some(("winner", index_of(settings, winner))),
        (Some(Stop::Vetoed), _) => on_veto(&ab.on_veto, settings, &verdict),
        (Some(Stop::Futility), _) => on_inconclusive(&ab.on_inconclusive),
        _ if at_max => on_inconclusive(&ab.on_inconclusive),
        _ => {
            return Ok(Look::Looking {
                reason: verdict.reason,
                until,
            })
        }
    };
    let Some((how, variant)) = choice else {
        return hold(store, id, record, now, verdict.reason);
    };
    release(settings, store, record, now, (how, variant), verdict.reason)?;
    Ok(Look::Decided)
}

/// The `how` of a recorded hold (the remainder stays held; not a final decision).
pub(crate) const HOLD: &str = "hold";

/// Records that the remainder stays held, with the verdict's reason (rewritten only when the
/// reason changed), and says so.
fn hold(
    store: &Store,
    id: &str,
    mut record: AbRecord,
    now: Millis,
    reason: Reason,
) -> Result<Look, Error> {
    if record.decision.as_ref().is_none_or(|d| d.reason != reason) {
        record.decision = Some(AbDecision {
            at: now,
            how: HOLD.to_owned(),
            variant: None,
            reason: reason.clone(),
            released: 0,
        });
        store.set_ab_record(id, &record)?;
        store.flush_blocking()?;
    }
    Ok(Look::Held(reason))
}

/// Records the decision, then releases the held remainder with it.
fn release(
    settings: &CampaignSettings,
    store: &Store,
    mut record: AbRecord,
    now: Millis,
    (how, variant): (&str, Option<u8>),
    reason: Reason,
) -> Result<(), Error> {
    let id = settings.id.as_str();
    let decision = AbDecision {
        at: now,
        how: how.to_owned(),
        variant,
        reason,
        released: 0,
    };
    record.decision = Some(decision.clone());
    store.set_ab_record(id, &record)?;
    store.flush_blocking()?;
    let released = store.release_held(id, &chooser(settings, &decision))?;
    if let Some(decision) = record.decision.as_mut() {
        decision.released = released;
    }
    store.set_ab_record(id, &record)?;
    tracing::info!(campaign = id, how, released, reason = ?decision.reason, "A/B test decided");
    Ok(())
}

/// The index of variant `wanted`.
fn index_of(settings: &CampaignSettings, wanted: &str) -> Option<u8> {
    settings
        .variants
        .iter()
        .position(|v| v.id == wanted)
        .and_then(|i| u8::try_from(i).ok())
}

/// What `on_inconclusive` gives: (how, variant), or `None` to hold.
fn on_inconclusive(on: &OnInconclusive) -> Option<(&'static str, Option<u8>)> {
    match on {
        OnInconclusive::Split => Some(("split", None)),
        OnInconclusive::Variant(index) => Some(("variant", Some(*index))),
        OnInconclusive::Hold => None,
    }
}

/// What `on_veto` gives: (how, variant), or `None` to hold. `best_remaining` takes the
/// highest rate among the variants not vetoed (holds when every one is).
fn on_veto(
    on: &OnVeto,
    settings: &CampaignSettings,
    verdict: &Verdict,
) -> Option<(&'static str, Option<u8>)> {
    match on {
        OnVeto::Hold => None,
        OnVeto::Split => Some(("split", None)),
        OnVeto::Variant(index) => Some(("variant", Some(*index))),
        OnVeto::BestRemaining => verdict
            .variants
            .iter()
            .filter(|v| v.exceeded.is_empty())
            .max_by(|a, b| a.rate.total_cmp(&b.rate))
            .and_then(|best| index_of(settings, &best.id))
            .map(|index| ("best_remaining", Some(index))),
    }
}

/// The variant each held recipient gets under `decision`: its variant, or for a split the
/// one it would have had, except that a vetoed variant's share goes to the others.
fn chooser(settings: &CampaignSettings, decision: &AbDecision) -> impl Fn(u8) -> u8 {
    let fixed = decision.variant;
    let vetoed: Vec<&str> = match &decision.reason {
        Reason::Vetoed { vetoed } => vetoed.iter().map(|v| v.id.as_str()).collect(),
        _ => Vec::new(),
    };
    let allowed: Vec<u8> = settings
        .variants
        .iter()
        .enumerate()
        .filter(|(_, v)| !vetoed.contains(&v.id.as_str()))
        .filter_map(|(i, _)| u8::try_from(i).ok())
        .collect();
    move |fallback| match fixed {
        Some(variant) => variant,
        None if allowed.is_empty() || allowed.contains(&fallback) => fallback,
        None => allowed
            .get(usize::from(fallback) % allowed.len())
            .copied()
            .unwrap_or(fallback),
    }
}

/// After a send: notes when the test share had all gone out (no first attempt left), and
/// says where the test stands.
pub(crate) fn after_send(
    campaign: &Campaign,
    store: &Store,
    interrupted: bool,
    decided_now: bool,
    holding: Option<Reason>,
    now: Millis,
) -> Result<Option<AbProgress>, Error> {
    let Some(ab) = &campaign.settings.ab else {
        return Ok(None);
    };
    let id = campaign.id();
    let counts = store.counts(id)?.unwrap_or_default();
    let mut record = store.ab_record(id)?;
    if record.test_sent_at.is_none() && counts.pending == 0 && !interrupted {
        record.test_sent_at = Some(now);
        store.set_ab_record(id, &record)?;
    }
    let variant_id = |index: Option<u8>| {
        index
            .and_then(|i| campaign.settings.variants.get(usize::from(i)))
            .map(|v| v.id.clone())
    };
    let (decision, held) = match record.decision {
        Some(d) if d.how == HOLD => (None, Some(d.reason)),
        Some(d) => (Some(d), None),
        None => (None, None),
    };
    Ok(Some(AbProgress {
        held: counts.held,
        decide_after: match (&decision, &held, record.test_sent_at) {
            (None, None, Some(sent)) => Some(add_duration(sent, ab.wait)),
            _ => None,
        },
        decision: decision.map(|d| (d.how, variant_id(d.variant), d.reason)),
        decided_now,
        holding: holding.or(held),
    }))
}
