//! The circuit breaker on policy blocks: a receiver that starts answering Gmail's `550 5.7.1
//! … likely unsolicited mail` for one domain in the middle of a send. The other domain is
//! delivered in full; the blocked one's recipients are deferred (none bounced, none
//! suppressed), the report and `volley status` name the block and its reply, and once the
//! receiver takes mail again and the pause is over, the next send delivers them.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::direct::{mx_sink, Direct};
use crate::support::outcomes::Outcomes;
use crate::support::{self, Fixture, Setup};
use volley::model::{now_millis, Category, RecipientState, StopMetric};
use volley::runtime;
use volley::store::{ExportKind, Store};
use volley_testkit::sink::{PolicyBlock, SinkConfig, SinkTls};

const BLOCKED: &str = "d0.example";
/// Accepted messages (both domains) before the receiver starts blocking `d0.example`.
const BLOCK_AFTER: u64 = 6;
const THRESHOLD: u64 = 3;
/// The pause: short, so the test waits it out (on PostgreSQL due retries are read by the
/// database's clock, so a manual clock cannot move past it).
const PAUSE_SECS: u64 = 6;

/// `d0.example` on MX host mx0, `d1.example` on mx1: two destinations, one receiver (one
/// test SMTP server on both addresses) that starts blocking `d0.example`.
async fn blocking_receiver() -> Direct {
    let sink = SinkConfig {
        policy_block: Some(PolicyBlock::gmail(BLOCKED, BLOCK_AFTER)),
        ..mx_sink(SinkTls::None)
    };
    let direct = Direct::start(2, sink, |zone, hosts| {
        zone.mx("d0.example", 10, &hosts[0].0);
        zone.mx("d1.example", 10, &hosts[1].0);
    })
    .await;
    direct.write_campaign(
        &support::list(40, 2),
        "",
        &format!(
            "[shaping.default]\nblock_threshold = {THRESHOLD}\nblock_pause = \"{PAUSE_SECS}s\"\n"
        ),
    );
    direct
}

/// Each address's state, by domain.
fn states_by_domain(outcomes: &Outcomes) -> BTreeMap<String, Vec<(String, RecipientState)>> {
    let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for (email, (state, _)) in &outcomes.states {
        let domain = email.rsplit_once('@').unwrap().1.to_owned();
        out.entry(domain).or_default().push((email.clone(), *state));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_starts_blocking_one_domain_trips_its_breaker_and_nobody_is_bounced() {
    let direct = blocking_receiver().await;
    let report = direct.send_with_linger(Duration::ZERO).await;

    // The other domain went in full; nobody was bounced or suppressed.
    let c = &report.counts;
    assert_eq!((c.bounced, c.suppressed, c.pending), (0, 0, 0), "{c:?}");
    assert_eq!(c.delivered + c.deferred, 40, "{c:?}");
    let campaign = direct.campaign();
    let location = &campaign.settings().store;
    let outcomes = Outcomes::read_at(location, "direct");
    let by_domain = states_by_domain(&outcomes);
    assert!(
        by_domain["d1.example"]
            .iter()
            .all(|(_, s)| *s == RecipientState::Delivered),
        "{:?}",
        by_domain["d1.example"]
    );
    let held: Vec<&String> = by_domain[BLOCKED]
        .iter()
        .filter(|(_, s)| *s == RecipientState::Deferred)
        .map(|(email, _)| email)
        .collect();
    assert!(
        by_domain[BLOCKED]
            .iter()
            .all(|(_, s)| matches!(s, RecipientState::Delivered | RecipientState::Deferred)),
        "{:?}",
        by_domain[BLOCKED]
    );
    assert!(held.len() >= 14, "{} held", held.len());
    // Those the receiver refused were deferred with its reply (soft, a spam verdict); the
    // others were held back without a try, and say why (the block and its reply). A refused
    // one whose retry fell due during the pause says so too.
    let mut refused = 0;
    for email in &held {
        for (kind, reply) in &outcomes.history[*email] {
            let reply = reply.as_ref().unwrap();
            assert_eq!(*kind, ExportKind::Deferred, "{email}: {reply}");
            if reply.code == Some(550) {
                refused += 1;
                assert_eq!(reply.category, Some(Category::Spam), "{reply}");
                assert!(!reply.hard, "{reply}");
                assert!(reply.text.contains("likely unsolicited mail"), "{reply}");
            }
        }
        let last = outcomes.reply(email);
        assert!(
            last.code == Some(550)
                || (last.text.contains("mx0.sink.test is suspended until")
                    && last.text.contains("likely unsolicited mail")),
            "{email}: {last}"
        );
    }
    assert!(refused as u64 >= THRESHOLD, "{refused} refused");
    // The breaker stopped the sending: the receiver saw few refusals, not one per recipient.
    let stats = direct.sink.stats();
    assert!(stats.policy_blocked >= THRESHOLD, "{stats:?}");
    assert!(
        (stats.policy_blocked as usize) < held.len(),
        "{} refusals for {} held",
        stats.policy_blocked,
        held.len()
    );
    let store = Store::open_at(location).unwrap();
    for email in &held {
        assert!(store.suppression(email).unwrap().is_none(), "{email}");
    }
    drop(store);

    // The send, the report and the status name the block and its reply.
    let blocked = report
        .blocked
        .iter()
        .find(|b| b.why == "policy block")
        .unwrap_or_else(|| panic!("{:?}", report.blocked));
    assert_eq!(blocked.destination, "mx0.sink.test");
    assert_eq!(report.blocks.len(), 1, "{:?}", report.blocks);
    let shown = runtime::report(campaign.settings(), 10).await.unwrap();
    assert_eq!(shown.blocks.len(), 1, "{:?}", shown.blocks);
    let block = &shown.blocks[0];
    assert_eq!(block.destination, "mx0.sink.test");
    assert_eq!(block.category, Category::Spam);
    assert_eq!(block.trips, 1);
    assert!(block.replies >= THRESHOLD, "{block:?}");
    assert!(block.first_reply.text.contains("likely unsolicited mail"));
    assert_eq!(block.first_reply.enhanced.as_deref(), Some("5.7.1"));
    assert_eq!(
        block.paused_until,
        block.tripped_at + PAUSE_SECS * 1_000,
        "{block:?}"
    );
    assert_eq!(block.lifted_at, None);
    assert_eq!(block.campaigns, ["direct"]);
    let status = runtime::status(campaign.settings()).await.unwrap();
    assert_eq!(status.blocks, shown.blocks);
    let json = status.to_json();
    assert_eq!(json["blocks"][0]["destination"], "mx0.sink.test");
    assert!(json["blocks"][0]["last_reply"]
        .as_str()
        .unwrap()
        .starts_with("550 5.7.1 [192.0.2.1] Our system has detected"));

    // A send within the pause leaves the destination alone.
    if now_millis() + 2_000 < block.paused_until {
        let before = direct.sink.stats().policy_blocked;
        let again = direct.send_with_linger(Duration::ZERO).await;
        assert_eq!(again.counts.bounced, 0);
        assert_eq!(again.attempts, 0, "nothing tried during the pause");
        assert_eq!(direct.sink.stats().policy_blocked, before);
    }

    // The receiver takes mail again; once the pause is over the next send probes the
    // destination and delivers everyone held back.
    direct.sink.lift_block();
    let left = Duration::from_millis(block.paused_until.saturating_sub(now_millis()) + 200);
    tokio::time::sleep(left).await;
    let last = direct.send().await.unwrap();
    let c = &last.counts;
    assert_eq!((c.delivered, c.bounced, c.deferred), (40, 0, 0), "{c:?}");
    assert!(direct.arrivals().values().all(|&n| n == 1));
    let lifted = runtime::report(campaign.settings(), 10).await.unwrap();
    assert!(lifted.blocks[0].lifted_at.is_some(), "{:?}", lifted.blocks);
}

/// The campaign-wide stop: a relay that knows almost nobody on the list (`550 5.1.1` for
/// three recipients in four) passes `[bounces] max_bounce_rate` after the minimum sample;
/// the send stops with the rest unsent, `volley status` says why, and the next send does not
/// start while the rate stays over its limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounce_rate_past_its_limit_stops_the_campaign_with_the_rest_unsent() {
    let mut csv = String::from("email,first_name,city\n");
    for i in 0..400 {
        let local = if i % 4 == 0 { "ok" } else { "bounce" };
        csv.push_str(&format!("{local}-{i}@d{}.example,N{i},C\n", i % 3));
    }
    let setup = Setup {
        sections: "[bounces]\nmax_bounce_rate = \"20%\"\nrate_min_sample = 40\n".to_owned(),
        connections: 1,
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, &csv).await;
    let report = fixture.send().await.unwrap();
    let stop = report.stopped.expect("the campaign stopped");
    assert_eq!(stop.metric, StopMetric::BounceRate);
    assert!(stop.rate > 0.2 && stop.sample >= 40, "{stop:?}");
    assert_eq!(stop.limit, 0.2);
    assert!(!report.interrupted);
    let c = &report.counts;
    assert!(c.pending > 200, "most of the list stays unsent: {c:?}");
    assert_eq!(
        c.delivered + c.bounced + c.pending + c.deferred,
        400,
        "{c:?}"
    );

    let campaign = fixture.campaign();
    let status = runtime::status(campaign.settings()).await.unwrap();
    let shown = status.stopped.expect("status says the campaign is stopped");
    assert_eq!(shown.metric, StopMetric::BounceRate);
    assert_eq!(
        status.to_json()["stopped"]["limit"],
        "bounces.max_bounce_rate"
    );

    // Still over the limit: the next send stops before its first attempt.
    let arrived = fixture.sink.count();
    let again = fixture.send().await.unwrap();
    assert!(again.stopped.is_some());
    assert_eq!(again.attempts, 0);
    assert_eq!(again.counts.pending, c.pending);
    assert_eq!(fixture.sink.count(), arrived);
}
