//! `volley store upgrade`: a store written by the format-1 code (the fixture under
//! `fixtures/stores/format1`, made by volley before packed recipients) is refused with the
//! command to run, then upgraded, and reads as it did.

use crate::support::{run, text};
use std::path::Path;

/// Copies the fixture (store and the campaign files that made it) into `to`.
fn copy_fixture(to: &Path) {
    let from = volley_testkit::fixtures().join("stores/format1");
    std::fs::create_dir_all(to.join("store")).unwrap();
    for name in ["campaign.toml", "ab.toml", "list.csv", "ab.csv", "body.txt"] {
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    }
    for entry in std::fs::read_dir(from.join("store")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join("store").join(entry.file_name())).unwrap();
        }
    }
    let key = volley_testkit::fixtures().join("dkim/rsa2048.pem");
    std::fs::copy(key, to.join("rsa.pem")).unwrap();
}

#[test]
fn a_store_from_the_old_layout_is_refused_then_upgraded_and_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(dir.path());
    let store = dir.path().join("store");
    let store_arg = store.to_str().unwrap();
    let campaign = dir.path().join("campaign.toml");
    let campaign_arg = campaign.to_str().unwrap();

    let refused = run(&["suppress", "list", "--store", store_arg]);
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("format 1")
            && stderr.contains(&format!("volley store upgrade {store_arg}")),
        "says what to run: {stderr}"
    );

    let upgraded = run(&["store", "upgrade", store_arg]);
    let stdout = text(&upgraded.stdout);
    assert_eq!(
        upgraded.status.code(),
        Some(0),
        "{}",
        text(&upgraded.stderr)
    );
    assert!(stdout.contains("2 campaigns, 26 recipients"), "{stdout}");
    assert!(stdout.contains(&format!("{store_arg}.format1")), "{stdout}");
    assert!(dir.path().join("store.format1/conf").exists());

    let status = run(&["status", campaign_arg]);
    let shown = text(&status.stdout);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    for (state, count) in [
        ("delivered", 3),
        ("bounced", 1),
        ("deferred", 1),
        ("suppressed", 1),
    ] {
        assert!(
            shown
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [state, &count.to_string()]),
            "{state} {count}: {shown}"
        );
    }
    let held = run(&["status", dir.path().join("ab.toml").to_str().unwrap()]);
    assert!(
        text(&held.stdout)
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["held", "11"]),
        "{}",
        text(&held.stdout)
    );
    let list = run(&["suppress", "list", "--store", store_arg]);
    assert!(text(&list.stdout).contains("dave@c.example"));

    let again = run(&["store", "upgrade", store_arg]);
    assert_eq!(again.status.code(), Some(0));
    assert!(
        text(&again.stdout).contains("nothing to do"),
        "{}",
        text(&again.stdout)
    );
}
