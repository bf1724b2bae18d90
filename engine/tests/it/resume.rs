//! Re-running a campaign resumes: the list is not loaded twice and nobody delivered is mailed
//! again.

use crate::support::{self, Fixture, Setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_run_loads_nothing_and_sends_nothing_twice() {
    let fixture = Fixture::new(Setup::default(), &support::list(100, 5)).await;
    let first = fixture.send().await.unwrap();
    assert!(first.loaded_now);
    assert_eq!(first.counts.delivered, 100);

    // The list grows after the first run: a re-run does not reload it.
    let mut csv = support::list(100, 5);
    csv.push_str("late@new.example,Late,Nowhere\n");
    std::fs::write(fixture.path("list.csv"), csv).unwrap();

    let second = fixture.send().await.unwrap();
    assert!(!second.loaded_now);
    assert_eq!(second.attempts, 0);
    assert_eq!(second.counts.total, 100);
    let arrivals = support::arrivals(&fixture.sink);
    assert_eq!(arrivals.len(), 100);
    assert!(arrivals.values().all(|&n| n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_recipients_not_yet_due_are_reported_with_their_time() {
    let setup = Setup {
        retry: "schedule = [\"2h\"]\nexpire_after = \"1d\"".into(),
        ..Setup::default()
    };
    let csv = "email,first_name,city\nok@a.example,A,X\ndefer-me@a.example,B,X\n";
    let fixture = Fixture::new(setup, csv).await;
    let report = fixture.send().await.unwrap();
    assert_eq!((report.counts.delivered, report.counts.deferred), (1, 1));
    let due = report.next_due.unwrap();
    let now = volley::model::now_millis();
    assert!(
        due > now + 3_500_000 && due <= now + 7_920_000,
        "due in about 2h (± the 10 % retry jitter)"
    );
    let status = volley::runtime::status(fixture.campaign().settings())
        .await
        .unwrap();
    assert_eq!(status.counts.deferred, 1);
    assert_eq!(status.next_due, Some(due));
}
