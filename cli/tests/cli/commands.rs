//! Each command's visible behaviour: output, JSON and exit codes.

use crate::support::{list, run, text, Fixture, PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_then_status_json_reports_every_state() {
    let csv = format!(
        "{}not-an-address,Bad\nbounce-x@d1.example,Bouncy\n",
        list(30)
    );
    let fixture = Fixture::new(&csv, PASSWORD).await;
    let campaign = fixture.campaign();
    let output = tokio::task::spawn_blocking(move || run(&["send", &campaign, "--no-progress"]))
        .await
        .unwrap();
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "invalid row and bounce → exit 1\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("list.csv line 32"),
        "invalid row named with its line: {stderr}"
    );
    assert!(stdout.contains("delivered 30"), "{stdout}");

    let campaign = fixture.campaign();
    let output = tokio::task::spawn_blocking(move || run(&["status", &campaign, "--json"]))
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["campaign"], "cli-test");
    for (key, value) in [
        ("total", 31),
        ("pending", 0),
        ("delivered", 30),
        ("deferred", 0),
        ("bounced", 1),
        ("expired", 0),
        ("invalid", 1),
        ("duplicate", 0),
    ] {
        assert_eq!(json[key], value, "{key} in {json}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_exits_2_with_a_clear_message_and_no_secret() {
    let fixture = Fixture::new(&list(3), "wrong-password-xyz").await;
    let campaign = fixture.campaign();
    let output = tokio::task::spawn_blocking(move || run(&["send", &campaign]))
        .await
        .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("535") && stderr.to_lowercase().contains("auth"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("wrong-password-xyz") && !stderr.contains(PASSWORD),
        "{stderr}"
    );
    assert_eq!(fixture.sink.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_send_shows_the_transcript_without_the_password() {
    let fixture = Fixture::new(&list(3), PASSWORD).await;
    let campaign = fixture.campaign();
    let output = tokio::task::spawn_blocking(move || {
        run(&[
            "test-send",
            &campaign,
            "--to",
            "me@inbox.example",
            "--row",
            "2",
        ])
    })
    .await
    .unwrap();
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains("STARTTLS") && stdout.contains("MAIL FROM:<news@example.com>"),
        "{stdout}"
    );
    assert!(stdout.contains("accepted"), "{stdout}");
    assert!(!stdout.contains(PASSWORD), "{stdout}");
    let received = fixture.sink.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_to, ["me@inbox.example"]);
    assert!(String::from_utf8_lossy(&received[0].data).contains("Hello Name1!"));
    assert!(
        !fixture.path("campaign.volley").exists(),
        "test-send leaves the store alone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_writes_signed_eml_files_and_sends_nothing() {
    let fixture = Fixture::new(&list(5), PASSWORD).await;
    let campaign = fixture.campaign();
    let out = fixture.path("out").display().to_string();
    let output = tokio::task::spawn_blocking(move || run(&["send", &campaign, "--dry-run", &out]))
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let files: Vec<_> = std::fs::read_dir(fixture.path("out")).unwrap().collect();
    assert_eq!(files.len(), 5);
    let first = std::fs::read_to_string(fixture.path("out/000001-user0@d0.example.eml")).unwrap();
    assert!(first.starts_with("DKIM-Signature:"), "{first}");
    assert_eq!(fixture.sink.count(), 0);
}

#[test]
fn every_command_has_help() {
    for command in ["send", "test-send", "status", "demo"] {
        let output = run(&[command, "--help"]);
        assert_eq!(output.status.code(), Some(0));
        assert!(text(&output.stdout).contains("Usage: volley"), "{command}");
    }
    let send_help = text(&run(&["send", "--help"]).stdout);
    assert!(send_help.contains("Exit codes"), "{send_help}");
}

#[test]
fn a_bad_campaign_file_names_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[campaign]\nid = \"x\"\ncolour = \"blue\"\n").unwrap();
    let output = run(&["send", path.to_str().unwrap()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains("colour") && stderr.contains("line 3"),
        "{stderr}"
    );
}
