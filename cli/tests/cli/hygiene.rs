//! Bounce and suppression commands as a user runs them.

use crate::support::{run, text, volley};
use std::path::Path;

#[test]
fn suppress_add_list_remove_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store").display().to_string();
    let added = run(&[
        "suppress",
        "add",
        "--store",
        &store,
        "Someone@Example.COM",
        "--note",
        "asked by phone",
    ]);
    assert_eq!(added.status.code(), Some(0), "{}", text(&added.stderr));
    assert!(text(&added.stdout).contains("suppressed"));
    let list = run(&["suppress", "list", "--store", &store]);
    let listed = text(&list.stdout);
    assert!(
        listed.starts_with("email,reason,at,campaign,detail"),
        "{listed}"
    );
    assert!(listed.contains("Someone@example.com,manual"), "{listed}");
    assert!(listed.contains("asked by phone"), "{listed}");
    let bad = run(&["suppress", "add", "--store", &store, "not-an-address"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("not-an-address"),
        "{}",
        text(&bad.stderr)
    );
    let removed = run(&[
        "suppress",
        "remove",
        "--store",
        &store,
        "someone@example.com",
    ]);
    assert_eq!(
        removed.status.code(),
        Some(1),
        "the local part's case matters: not the same address"
    );
    let removed = run(&[
        "suppress",
        "remove",
        "--store",
        &store,
        "Someone@example.com",
    ]);
    assert_eq!(removed.status.code(), Some(0));
    let out = dir.path().join("out.csv");
    let export = run(&[
        "suppress",
        "export",
        "--store",
        &store,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(export.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap().lines().count(),
        1,
        "only the header left"
    );
}

#[test]
fn bounces_parse_prints_json_per_message() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/dsn/postfix-user-unknown.eml");
    let output = run(&["bounces", "parse", "--json", fixture.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let json: serde_json::Value =
        serde_json::from_str(text(&output.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(json["kind"], "dsn");
    assert!(json["file"]
        .as_str()
        .unwrap()
        .ends_with("postfix-user-unknown.eml"));
    let recipient = &json["recipients"][0];
    assert_eq!(recipient["action"], "failed");
    assert_eq!(recipient["status"], "5.1.1");
    assert_eq!(recipient["category"], "user_unknown");
    assert_eq!(recipient["hard"], true);
}

/// The whole story from the command line: a campaign with a bounce domain goes out, a bounce
/// for one recipient arrives at `volley bounces listen` over SMTP days later, the recipient is
/// bounced and suppressed, and the report shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounce_received_by_listen_bounces_and_suppresses_its_recipient() {
    use crate::support::{list, Fixture, PASSWORD};
    let mut fixture = Fixture::new(&list(3), PASSWORD).await;
    fixture.add_to_campaign("[bounces]\ndomain = \"bounce.example.com\"");
    let campaign = fixture.campaign();
    let c = campaign.clone();
    let sent = tokio::task::spawn_blocking(move || run(&["send", &c, "--no-progress"]))
        .await
        .unwrap();
    assert_eq!(sent.status.code(), Some(0), "{}", text(&sent.stderr));
    let message = fixture
        .sink
        .received()
        .into_iter()
        .find(|m| m.rcpt_to == ["user1@d1.example"])
        .unwrap();
    let return_path = message.mail_from.clone();
    assert!(return_path.starts_with("bounces+"), "{return_path}");

    // Listening on a port of its own choosing until told to stop (not for a set time a slow
    // machine might use up before the bounce arrives); its first line says where.
    let mut listener = volley()
        .args(["bounces", "listen", "--campaign", &campaign])
        .args(["--bind", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = listener.stdout.take().unwrap();
    let (first_line, lines) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut said = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let line = line.unwrap();
            if said.is_empty() {
                let _ = first_line.send(line.clone());
            }
            said.push_str(&line);
            said.push('\n');
        }
        said
    });
    let banner =
        tokio::task::spawn_blocking(move || lines.recv_timeout(std::time::Duration::from_secs(60)))
            .await
            .unwrap()
            .expect("the listener said where it listens");
    let port: u16 = banner
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no port in {banner:?}"));
    let dsn = format!(
        "From: MAILER-DAEMON@mx.d1.example\r\nTo: {return_path}\r\nSubject: Undelivered Mail Returned to Sender\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n\
Reporting-MTA: dns; mx.d1.example\r\n\r\nFinal-Recipient: rfc822; user1@d1.example\r\nAction: failed\r\n\
Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <user1@d1.example>: Recipient address rejected: User unknown\r\n\r\n--b--\r\n"
    );
    // Deliver the bounce to the listener as the receiving MX would.
    let tls = volley::smtp::tls_client_config(None).unwrap();
    let mut config = volley::smtp::SessionConfig::new("127.0.0.1", port, tls);
    config.security = volley::smtp::Security::None;
    let mut session = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        volley::smtp::connect(&config),
    )
    .await
    .expect("connected in time")
    .unwrap();
    let envelope = volley::smtp::Envelope {
        mail_from: String::new(),
        rcpt_to: vec![message.mail_from.clone()],
    };
    let transaction = session.send(&envelope, dsn.as_bytes()).await.unwrap();
    assert!(transaction.accepted(), "{transaction:?}");
    let _ = session.quit().await;
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &listener.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let listened = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::task::spawn_blocking(move || listener.wait_with_output()),
    )
    .await
    .expect("the listener stopped in time")
    .unwrap()
    .unwrap();
    assert_eq!(
        listened.status.code(),
        Some(0),
        "{}",
        text(&listened.stderr)
    );
    let said = reader.join().unwrap();
    assert!(
        said.contains("user1@d1.example bounced") && said.contains("VERP"),
        "{said}{}",
        text(&listened.stderr)
    );

    let c = campaign.clone();
    let status = tokio::task::spawn_blocking(move || run(&["status", &c, "--json"]))
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        (json["delivered"].as_u64(), json["bounced"].as_u64()),
        (Some(2), Some(1)),
        "{json}"
    );
    let c = campaign.clone();
    let listed = tokio::task::spawn_blocking(move || run(&["suppress", "list", "--campaign", &c]))
        .await
        .unwrap();
    assert!(
        text(&listed.stdout).contains("user1@d1.example,hard_bounce"),
        "{}",
        text(&listed.stdout)
    );
    let c = campaign.clone();
    let report = tokio::task::spawn_blocking(move || run(&["bounces", "report", &c, "--json"]))
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(json["by_category"]["user_unknown"], 1, "{json}");
}

#[test]
fn a_postgresql_store_that_cannot_be_reached_is_named_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let output = volley()
        .current_dir(dir.path())
        .args([
            "suppress",
            "list",
            "--store",
            // Nothing listens on port 1 of the loopback: refused at once.
            "postgresql://volley:s3cret-pw@127.0.0.1:1/mail",
        ])
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("postgresql://volley@127.0.0.1:1/mail")
            && stderr.contains("could not connect"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("s3cret-pw"),
        "the password stays secret: {stderr}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no folder made of the address"
    );
}
