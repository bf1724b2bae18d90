//! `volley serve` and A/B tests held for later (`on_inconclusive = "hold"`): once a verdict
//! held, it is taken again only when something it reads changed (an event arrived for the
//! campaign, so its [`AbMark`] differs, or its `[ab]` rules were edited) or when
//! `[ab] recheck_every` passed; what a check said is logged once, not at every look; and the
//! server sleeps until the next recheck instead of finding a decision always due.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::ab::Rules;
use crate::config::{AbSettings, OnInconclusive};
use crate::store::AbMark;

/// The last check of one held test: what it read, under which rules, and what it said.
struct Held<M> {
    mark: M,
    rules: Rules,
    on_inconclusive: OnInconclusive,
    next: DateTime<Utc>,
    said: String,
}

/// The held A/B tests of a server, by campaign id (an edition's for a scheduled campaign).
/// Generic over the mark only so the decision can be tested without a store.
pub(crate) struct HeldTests<M = AbMark> {
    held: HashMap<String, Held<M>>,
}

impl<M> Default for HeldTests<M> {
    fn default() -> Self {
        HeldTests {
            held: HashMap::new(),
        }
    }
}

impl<M: PartialEq> HeldTests<M> {
    /// Whether the verdict of `id` is to be taken at `now`: always when it did not hold last
    /// time; else when `mark` or the `[ab]` rules differ from last time, or when
    /// `recheck_every` has passed since.
    pub(crate) fn is_due(&self, id: &str, mark: &M, ab: &AbSettings, now: DateTime<Utc>) -> bool {
        self.held.get(id).is_none_or(|held| {
            held.mark != *mark
                || held.rules != ab.rules
                || held.on_inconclusive != ab.on_inconclusive
                || now >= held.next
        })
    }

    /// Notes that the check of `id` at `now`, on `mark`, kept the remainder held (or could
    /// not be made) and said `said`. Returns true when that is worth logging: the first time,
    /// or when it says something else than the last check did.
    pub(crate) fn checked(
        &mut self,
        id: &str,
        mark: M,
        ab: &AbSettings,
        now: DateTime<Utc>,
        said: &str,
    ) -> bool {
        let every = chrono::Duration::from_std(ab.recheck_every).unwrap_or(MAX_RECHECK);
        let next = now
            .checked_add_signed(every.min(MAX_RECHECK))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let news = self.held.get(id).is_none_or(|held| held.said != said);
        self.held.insert(
            id.to_owned(),
            Held {
                mark,
                rules: ab.rules.clone(),
                on_inconclusive: ab.on_inconclusive.clone(),
                next,
                said: said.to_owned(),
            },
        );
        news
    }

    /// Brings the next check of `id` forward to `until` when that is sooner (a sequential
    /// test is looked at again at the end of its wait even when nothing arrived).
    pub(crate) fn not_after(&mut self, id: &str, until: Option<DateTime<Utc>>) {
        if let (Some(held), Some(until)) = (self.held.get_mut(id), until) {
            held.next = held.next.min(until);
        }
    }

    /// Forgets `id`: it was decided, or is not (or no longer) waiting for a verdict.
    pub(crate) fn forget(&mut self, id: &str) {
        self.held.remove(id);
    }

    /// When the verdict of `id` is next taken at the latest, while it is held.
    pub(crate) fn next_check(&self, id: &str) -> Option<DateTime<Utc>> {
        self.held.get(id).map(|held| held.next)
    }
}

/// The longest recheck interval (a `recheck_every` too large for a date: about 100 years).
const MAX_RECHECK: chrono::Duration = chrono::Duration::days(36_500);

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The default `[ab] recheck_every`.
    const DEFAULT_RECHECK: Duration = Duration::from_secs(5 * 60);

    fn ab(recheck_every: Duration) -> AbSettings {
        AbSettings {
            test_share: 0.2,
            wait: Duration::from_secs(3600),
            rules: Rules::default(),
            on_inconclusive: OnInconclusive::Hold,
            on_veto: crate::config::OnVeto::Hold,
            recheck_every,
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn a_held_verdict_is_taken_again_only_after_an_event_or_the_interval() {
        let ab = ab(DEFAULT_RECHECK);
        let mut held: HeldTests<u64> = HeldTests::default();
        assert!(held.is_due("spring", &1, &ab, at(0)), "never checked");
        assert!(held.checked("spring", 1, &ab, at(0), "too few clicks"));
        assert_eq!(held.next_check("spring"), Some(at(300)));
        // Nothing arrived: not before five minutes, then again.
        for seconds in [0, 1, 60, 299] {
            assert!(!held.is_due("spring", &1, &ab, at(seconds)), "{seconds} s");
        }
        assert!(held.is_due("spring", &1, &ab, at(300)));
        assert!(held.is_due("spring", &1, &ab, at(3_600)));
        // An event arrived: at once.
        assert!(held.is_due("spring", &2, &ab, at(1)));
        // Another campaign knows nothing of this one.
        assert!(held.is_due("summer", &1, &ab, at(1)));
        assert_eq!(held.next_check("summer"), None);
    }

    #[test]
    fn edited_rules_are_a_reason_to_look_again() {
        let ab = ab(DEFAULT_RECHECK);
        let mut held: HeldTests<u64> = HeldTests::default();
        held.checked("spring", 1, &ab, at(0), "too few clicks");
        let mut split = ab.clone();
        split.on_inconclusive = OnInconclusive::Split;
        assert!(held.is_due("spring", &1, &split, at(1)));
        let mut stricter = ab.clone();
        stricter.rules.confidence = 0.99;
        assert!(held.is_due("spring", &1, &stricter, at(1)));
        let mut slower = ab.clone();
        slower.recheck_every = Duration::from_secs(3600);
        assert!(
            !held.is_due("spring", &1, &slower, at(1)),
            "the interval is not a rule of the verdict"
        );
    }

    #[test]
    fn the_same_verdict_is_said_once_and_a_new_one_again() {
        let ab = ab(Duration::from_secs(60));
        let mut held: HeldTests<u64> = HeldTests::default();
        let said: Vec<bool> = [
            (1, 0, "too few clicks"),
            (1, 60, "too few clicks"),
            (2, 70, "too few clicks"),
            (3, 80, "no difference yet"),
            (3, 140, "no difference yet"),
            (4, 150, "too few clicks"),
        ]
        .into_iter()
        .map(|(mark, seconds, reason)| held.checked("spring", mark, &ab, at(seconds), reason))
        .collect();
        assert_eq!(said, [true, false, false, true, false, true]);
        assert_eq!(held.next_check("spring"), Some(at(210)));
        held.forget("spring");
        assert_eq!(held.next_check("spring"), None);
        assert!(
            held.checked("spring", 4, &ab, at(160), "too few clicks"),
            "forgotten, then held again: said again"
        );
    }

    #[test]
    fn a_huge_interval_does_not_overflow() {
        let ab = ab(Duration::from_secs(u64::MAX));
        let mut held: HeldTests<u64> = HeldTests::default();
        held.checked("spring", 1, &ab, at(0), "too few clicks");
        assert_eq!(held.next_check("spring"), Some(at(0) + MAX_RECHECK));
        assert!(!held.is_due("spring", &1, &ab, at(86_400 * 365)));
        held.checked("spring", 1, &ab, DateTime::<Utc>::MAX_UTC, "too few clicks");
        assert_eq!(held.next_check("spring"), Some(DateTime::<Utc>::MAX_UTC));
    }
}
