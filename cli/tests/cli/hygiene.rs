//! Bounce and suppression commands as a user runs them.

use crate::support::{run, text};
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
    assert_eq!(recipient["category"], "invalid_recipient");
    assert_eq!(recipient["hard"], true);
}
