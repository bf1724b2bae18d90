//! Test then winner: once the test share has gone out and `[ab] wait` has passed, a send takes
//! the verdict and releases the held remainder with the winner (or the configured fallback).
//! Both moments are read from the send's [`Clock`](crate::model::Clock) (`SendOptions::clock`,
//! the server's clock under `volley serve`), so tests move the wait instead of sleeping it.

use super::Campaign;
use crate::ab::{Reason, VerdictKind};
use crate::config::{CampaignSettings, OnInconclusive};
use crate::model::{add_duration, Millis};
use crate::report::{self, ReportSpec};
use crate::store::{AbDecision, Store};
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

/// Before a send: when the test share went out at least `wait` ago, takes the verdict (from
/// the store's counters, see [`report::ab_verdict`]) and releases the held recipients (all of
/// them, also after a crash midway: the decision is written first). Returns true when it
/// decided now, and why it holds, if it does (the caller says so: a server says it once).
pub(crate) fn decide_if_due(
    settings: &CampaignSettings,
    store: &Store,
    now: Millis,
) -> Result<(bool, Option<Reason>), Error> {
    let Some(ab) = &settings.ab else {
        return Ok((false, None));
    };
    let id = settings.id.as_str();
    let mut record = store.ab_record(id)?;
    if let Some(decision) = &record.decision {
        // A decision taken before a crash: finish releasing with it.
        let variant = decision.variant;
        store.release_held(id, &|fallback| variant.unwrap_or(fallback))?;
        return Ok((false, None));
    }
    let Some(sent) = record.test_sent_at else {
        return Ok((false, None));
    };
    if now < add_duration(sent, ab.wait) {
        return Ok((false, None));
    }
    let spec = ReportSpec::for_campaign(settings, 0);
    let Some(verdict) = report::ab_verdict(store, &spec)? else {
        return Ok((false, None));
    };
    let index_of = |wanted: &str| {
        settings
            .variants
            .iter()
            .position(|v| v.id == wanted)
            .and_then(|i| u8::try_from(i).ok())
    };
    let (how, variant) = match (verdict.verdict, &verdict.winner, &ab.on_inconclusive) {
        (VerdictKind::Winner, Some(winner), _) => ("winner", index_of(winner)),
        (_, _, OnInconclusive::Split) => ("split", None),
        (_, _, OnInconclusive::Variant(index)) => ("variant", Some(*index)),
        (_, _, OnInconclusive::Hold) => return Ok((false, Some(verdict.reason))),
    };
    record.decision = Some(AbDecision {
        at: now,
        how: how.to_owned(),
        variant,
        reason: verdict.reason.clone(),
        released: 0,
    });
    store.set_ab_record(id, &record)?;
    store.flush_blocking()?;
    let released = store.release_held(id, &|fallback| variant.unwrap_or(fallback))?;
    if let Some(decision) = record.decision.as_mut() {
        decision.released = released;
    }
    store.set_ab_record(id, &record)?;
    tracing::info!(campaign = id, how, released, reason = ?verdict.reason, "A/B test decided");
    Ok((true, None))
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
    Ok(Some(AbProgress {
        held: counts.held,
        decide_after: match (&record.decision, record.test_sent_at) {
            (None, Some(sent)) => Some(add_duration(sent, ab.wait)),
            _ => None,
        },
        decision: record
            .decision
            .map(|d| (d.how, variant_id(d.variant), d.reason)),
        decided_now,
        holding,
    }))
}
