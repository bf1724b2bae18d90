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
async fn test_send_proofs_the_variant_asked_for() {
    let mut fixture = Fixture::new(&list(3), PASSWORD).await;
    fixture.add_to_campaign(
        "[[variant]]\nid = \"plain\"\n\n[[variant]]\nid = \"bold\"\nsubject = \"BIG NEWS {{ name }}\"",
    );
    let campaign = fixture.campaign();
    let sent = tokio::task::spawn_blocking(move || {
        let to = ["--to", "me@inbox.example"];
        let bold = run(&[&["test-send", &campaign, "--variant", "bold"][..], &to].concat());
        let unknown = run(&[&["test-send", &campaign, "--variant", "huge"][..], &to].concat());
        (bold, unknown)
    })
    .await
    .unwrap();
    assert_eq!(sent.0.status.code(), Some(0), "{}", text(&sent.0.stderr));
    let received = fixture.sink.received();
    assert_eq!(received.len(), 1);
    let data = String::from_utf8_lossy(&received[0].data);
    assert!(data.contains("Subject: BIG NEWS Name0"), "{data}");
    assert!(data.contains(":bold:volley:example.com"), "{data}");
    let stderr = text(&sent.1.stderr);
    assert_eq!(sent.1.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no variant \"huge\" (its variants: plain, bold)"),
        "{stderr}"
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
    for command in [
        "send",
        "test-send",
        "status",
        "demo",
        "check",
        "init",
        "events",
        "serve",
        "report",
        "ab",
    ] {
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

#[test]
fn dns_refuses_a_bad_zone_file_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.zone");
    std::fs::write(
        &path,
        "d1.example MX 10 mx1.example\nmx1.example A 999.0.0.1\n",
    )
    .unwrap();
    let output = run(&[
        "dns",
        "--bind",
        "127.0.0.1:0",
        "--zone",
        path.to_str().unwrap(),
    ]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad.zone line 2"), "{stderr}");
    assert!(stderr.contains("999.0.0.1"), "{stderr}");
}

#[test]
fn dns_prints_its_address_and_answers_from_the_zone_file() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.zone");
    std::fs::write(&path, "mx1.example A 127.0.0.2\n").unwrap();
    let mut child = crate::support::volley()
        .args(["dns", "--bind", "127.0.0.1:0", "--zone"])
        .arg(&path)
        .args(["--seconds", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    let addr: std::net::SocketAddr = line
        .trim()
        .strip_prefix("dns listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .parse()
        .unwrap();

    // A hand-made query for mx1.example A (id 0x4242), so the test needs no DNS library.
    let mut query = vec![0x42, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    query.extend_from_slice(b"\x03mx1\x07example\x00\x00\x01\x00\x01");
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    socket.send_to(&query, addr).unwrap();
    let mut reply = [0; 512];
    let len = socket.recv(&mut reply).unwrap();
    let reply = &reply[..len];
    assert_eq!(reply[..2], [0x42, 0x42], "the id is echoed");
    assert_eq!(reply[3] & 0x0f, 0, "NOERROR");
    assert_eq!(reply[6..8], [0, 1], "one answer");
    assert_eq!(reply[len - 4..], [127, 0, 0, 2]);

    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "stops by itself after --seconds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_fills_the_store_without_sending_and_send_starts_from_it() {
    let csv = format!("{}not-an-address,Bad\nuser0@d0.example,Again\n", list(20));
    let fixture = Fixture::new(&csv, PASSWORD).await;
    let volley = |args: &'static [&'static str]| {
        let campaign = fixture.campaign();
        tokio::task::spawn_blocking(move || {
            let mut all = vec![args[0], campaign.as_str()];
            all.extend_from_slice(&args[1..]);
            run(&all)
        })
    };
    let output = volley(&["load"]).await.unwrap();
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "campaign cli-test: loaded 20 recipients (1 invalid row, 1 duplicate skipped, 0 suppressed)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("nothing was sent"), "{stdout}");
    assert!(stderr.contains("list.csv line 22"), "{stderr}");
    assert!(fixture.sink.received().is_empty(), "load sent mail");

    let output = volley(&["status", "--json"]).await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (json["total"].clone(), json["pending"].clone()),
        (20.into(), 20.into())
    );

    let output = volley(&["load"]).await.unwrap();
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("the store has its list already (20 recipients); nothing was read"),
        "{stdout}"
    );

    let output = volley(&["send", "--no-progress"]).await.unwrap();
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("delivered 20"),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert_eq!(fixture.sink.received().len(), 20);
}
