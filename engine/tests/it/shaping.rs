//! Politeness and priorities: relay caps that hold across runs, and an urgent campaign that
//! overtakes a running bulk one on the same destination.

use crate::support::{self, Fixture, Setup, LIMIT};
use std::time::Duration;
use volley::control::{self, Request, Response};
use volley::runtime::{self, SendOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hourly_relay_cap_pauses_the_send_and_holds_across_runs() {
    let setup = Setup {
        relay_extra: "max_per_hour = 5".into(),
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, &support::list(8, 2)).await;
    let report = fixture.send().await.unwrap();
    assert_eq!(report.counts.delivered, 5, "{:?}", report.counts);
    assert_eq!(report.counts.pending, 3, "the rest waits, untouched");
    let pause = report.paused.expect("the report says the cap was reached");
    assert_eq!((pause.cap, pause.limit), ("relay.max_per_hour", 5));
    assert!(pause.resume_at > volley::model::now_millis());
    // A second run within the hour sends nothing more: the cap counts the first run.
    let again = fixture.send().await.unwrap();
    assert_eq!(again.counts.delivered, 5);
    assert!(again.paused.is_some());
    assert_eq!(fixture.sink.count(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_second_relay_cap_paces_the_send() {
    let setup = Setup {
        relay_extra: "max_per_second = 20".into(),
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, &support::list(40, 4)).await;
    let started = std::time::Instant::now();
    let report = fixture.send().await.unwrap();
    assert_eq!(report.counts.delivered, 40);
    // 40 messages at 20 a second (a burst of 2 allowed): well over a second and a half.
    assert!(
        started.elapsed() >= Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
}

/// A bulk campaign is running on one relay connection; an urgent one (priority 1) is handed
/// to the running send for the same relay. Its messages go ahead of the bulk ones still
/// waiting; the bulk campaign resumes afterwards and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_urgent_campaign_overtakes_bulk_traffic_to_the_same_destination() {
    let setup = Setup {
        connections: 1,
        reply_delay: Duration::from_millis(4),
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, &support::list(400, 4)).await;
    let mut urgent_csv = String::from("email,first_name,city\n");
    for i in 0..20 {
        urgent_csv.push_str(&format!("urgent{i}@u.example,U{i},X\n"));
    }
    std::fs::write(fixture.path("urgent.csv"), urgent_csv).unwrap();
    let bulk_toml = std::fs::read_to_string(fixture.campaign_file()).unwrap();
    let urgent_toml = bulk_toml
        .replace("id = \"test-campaign\"", "id = \"urgent\"\npriority = 1")
        .replace("recipients = \"list.csv\"", "recipients = \"urgent.csv\"");
    std::fs::write(fixture.path("urgent.toml"), urgent_toml).unwrap();

    let campaign = fixture.campaign();
    let bulk = tokio::spawn(async move {
        tokio::time::timeout(LIMIT, runtime::send(&campaign, SendOptions::default())).await
    });
    fixture.sink.wait_for(50, LIMIT).await.unwrap();
    let store = fixture.path("campaign.volley");
    let reply = control::request(
        &store,
        &Request::Submit {
            campaign_file: fixture.path("urgent.toml"),
        },
    )
    .await
    .unwrap();
    assert!(
        matches!(&reply, Response::Submitted { campaign, priority: 1, .. } if campaign == "urgent"),
        "{reply:?}"
    );
    let report = bulk.await.unwrap().unwrap().unwrap();
    assert_eq!(report.counts.delivered, 400, "the bulk campaign completes");

    let received = fixture.sink.received();
    let urgent_at: Vec<usize> = received
        .iter()
        .enumerate()
        .filter(|(_, m)| m.rcpt_to[0].starts_with("urgent"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(urgent_at.len(), 20, "every urgent message arrived once");
    let (first, last) = (urgent_at[0], urgent_at[19]);
    let bulk_between = (first..=last).filter(|i| !urgent_at.contains(i)).count();
    assert!(
        bulk_between <= 2,
        "bulk messages paused while urgent ones went: {bulk_between} bulk between urgent {first}..{last}"
    );
    assert!(last < 390, "urgent ones did not wait for the bulk campaign: last at {last}");
    let store = volley::store::Store::open(&store).unwrap();
    let urgent = store.counts("urgent").unwrap().unwrap();
    assert_eq!(urgent.delivered, 20);
}
