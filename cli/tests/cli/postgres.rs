//! The `volley` binary on a PostgreSQL store named in the campaign file (`[store] url` with
//! `password_file`), whatever `VOLLEY_TEST_STORE` says: send, status and report through the
//! real binary, checked independently with PostgreSQL's own client (`psql` on the analysts'
//! view `campaign_recipients`); a second send of the campaign while one runs is refused;
//! bad `[store]` keys are named with the file, and the password never shows.

use crate::support::{list, output_of, psql, text, Fixture, PASSWORD};
use volley_testkit::postgres::TempCluster;

/// The cluster's password in a private file, and the `[store]` table naming database `db`.
fn store_table(cluster: &TempCluster, dir: &std::path::Path, db: &str) -> String {
    let url = cluster
        .create_database(db)
        .unwrap_or_else(|e| panic!("{e}"));
    let url = url.replace(&format!(":{}@", cluster.password()), "@");
    let file = dir.join("db-password");
    std::fs::write(&file, cluster.password()).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    format!("[store]\nurl = \"{url}\"\npassword_file = \"db-password\"\nlocal_dir = \"local\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_status_and_report_on_postgresql_agree_with_psql() {
    let cluster = TempCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let mut csv = list(40);
    csv.push_str("bounce-550@d1.example,Bounced\n");
    let mut fixture = Fixture::new(&csv, PASSWORD).await;
    let table = store_table(&cluster, fixture.dir.path(), "cli_pg");
    fixture.add_to_campaign(&table);
    let campaign = fixture.campaign();

    let send = output_of(&["send", &campaign, "--no-progress"], &[]).await;
    let said = format!("{}{}", text(&send.stdout), text(&send.stderr));
    assert_eq!(send.status.code(), Some(1), "a bounce → exit 1: {said}");
    assert!(said.contains("delivered 40"), "{said}");
    assert_eq!(fixture.sink.count(), 40);

    let status = output_of(&["status", &campaign, "--json"], &[]).await;
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["delivered"], 40, "{json}");
    assert_eq!(json["bounced"], 1, "{json}");
    assert!(
        json["running_pid"].is_null(),
        "read from the database: {json}"
    );

    let report = output_of(&["report", &campaign, "--format", "json"], &[]).await;
    assert_eq!(report.status.code(), Some(0), "{}", text(&report.stderr));
    let report_text = text(&report.stdout);
    assert!(report_text.contains("\"delivered\": 40"), "{report_text}");

    let states = psql(
        &cluster,
        "cli_pg",
        "SELECT state || '=' || count(*) FROM campaign_recipients \
         WHERE campaign_id = 'cli-test' GROUP BY state ORDER BY 1",
    );
    assert_eq!(states, "bounced=1\ndelivered=40", "{states}");
    let code = psql(
        &cluster,
        "cli_pg",
        "SELECT last_code FROM campaign_recipients WHERE email = 'bounce-550@d1.example'",
    );
    assert_eq!(code, "550");

    for output in [&send, &status, &report] {
        for stream in [&output.stdout, &output.stderr] {
            assert!(
                !text(stream).contains(cluster.password()),
                "{}",
                text(stream)
            );
        }
    }
    // The local folder holds only local files (the send lock), no store.
    let local: Vec<String> = std::fs::read_dir(fixture.path("local"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(local, ["send-cli-test.lock"]);
    assert!(!fixture.path("campaign.volley").exists());
}

#[test]
fn a_store_url_with_a_password_in_a_campaign_file_is_refused_by_key_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body.txt"), "Hi\n").unwrap();
    std::fs::write(dir.path().join("list.csv"), "email\na@example.com\n").unwrap();
    volley_testkit::campaign::copy_dkim_keys(dir.path());
    let file = volley_testkit::campaign::CampaignToml::new("pw")
        .dkim("rsa", "rsa.pem")
        .section("[store]\nurl = \"postgresql://volley:file-s3cret@127.0.0.1:1/mail\"")
        .to_string();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, file).unwrap();
    let path = path.display().to_string();
    for args in [
        vec!["status", path.as_str()],
        vec!["send", path.as_str(), "--no-progress"],
    ] {
        let output = crate::support::run(&args);
        let said = format!("{}{}", text(&output.stdout), text(&output.stderr));
        assert_eq!(output.status.code(), Some(2), "{said}");
        assert!(
            said.contains(
                "c.toml: store.url = \"postgresql://volley@127.0.0.1:1/mail\" is invalid"
            ),
            "{said}"
        );
        assert!(said.contains("store.password_file"), "{said}");
        assert!(!said.contains("file-s3cret"), "{said}");
    }
}
