//! A full disk mid-send (a file-size limit set on the running `volley send`, as a quota or a
//! full filesystem would): a clear error, the send stops by itself, and a re-run after the
//! limit is lifted delivers everyone, nobody lost.

use crate::support::{arrivals, list, output_of, text, Fixture, PASSWORD};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_mid_send_stops_with_a_clear_error_and_a_rerun_loses_nobody() {
    if crate::support::sled_only(
        "disk::a_full_disk_mid_send_stops_with_a_clear_error_and_a_rerun_loses_nobody",
    ) {
        return;
    }
    let recipients = 600;
    let fixture = Fixture::new(&list(recipients), PASSWORD).await;
    let mut send = fixture.spawn_send(true);
    fixture.wait_for_arrivals(50, &mut send).await;

    // From now on every write past the first 4 KB of any file fails with EFBIG.
    let pid = rustix::process::Pid::from_raw(i32::try_from(send.id()).unwrap()).unwrap();
    let limit = rustix::process::Rlimit {
        current: Some(4096),
        maximum: Some(4096),
    };
    rustix::process::prlimit(Some(pid), rustix::process::Resource::Fsize, limit).unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    while send.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the send did not stop by itself");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let output = send.wait_with_output().unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("campaign.volley")
            && last.contains("the disk is full or a file-size limit")
            && last.contains("run the same command again"),
        "{last}"
    );
    // The process has exited: whatever arrived is all it sent.
    let arrived = fixture.sink.count();
    assert!(arrived < recipients, "stopped before the end: {arrived}");

    let campaign = fixture.campaign();
    let rerun = output_of(&["send", &campaign, "--no-progress"], &[]).await;
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun.stderr));
    let seen = arrivals(&fixture.sink);
    assert_eq!(seen.len(), recipients, "everyone received the campaign");
    let duplicates = seen.values().sum::<usize>() - recipients;
    eprintln!("full disk at {arrived} of {recipients} arrivals: duplicates {duplicates}");
    assert!(
        duplicates <= arrived,
        "only what the stopped run had sent but not recorded goes twice: {duplicates}"
    );
}
