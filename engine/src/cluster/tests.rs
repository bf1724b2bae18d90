//! Campaign documents: made from a campaign folder, they carry its templates and list header
//! but never a secret; materialised elsewhere they load with the normal loader; a node
//! lacking a secret is told which key and where; a tampered or hostile document is refused.

use super::*;
use crate::config::{load_campaign, load_campaign_in, CampaignSettings};
use crate::store::{PgSettings, StoreLocation};
use std::path::Path;

const PASSWORD: &str = "relay-secret-pw-4711";
const DB_PASSWORD: &str = "db-secret-pw-0815";

/// A campaign folder: templates, a list, a DKIM key, a relay password and a `[store]` with a
/// database password file. `extra` is appended to the campaign file.
fn campaign_folder(dir: &Path, extra: &str) -> CampaignSettings {
    volley_testkit::campaign::copy_dkim_keys(dir);
    std::fs::create_dir(dir.join("templates")).unwrap();
    std::fs::write(dir.join("templates/body.txt"), "Hello {{ name }}!\n").unwrap();
    std::fs::write(dir.join("templates/body.html"), "<p>Hello {{ name }}</p>\n").unwrap();
    std::fs::write(
        dir.join("list.csv"),
        "email,name\na@x.example,A\nb@y.example,B\n",
    )
    .unwrap();
    std::fs::write(dir.join("pw.txt"), PASSWORD).unwrap();
    std::fs::write(dir.join("db-pw.txt"), DB_PASSWORD).unwrap();
    let toml = format!(
        r#"[campaign]
id = "news"
from = "News <news@example.com>"
subject = "Hi {{{{ name }}}}"
text = "templates/body.txt"
html = "templates/body.html"
recipients = "list.csv"

[relay]
host = "127.0.0.1"
port = 2525
tls = "none"
username = "user"
password_file = "pw.txt"

[[dkim]]
domain = "example.com"
selector = "s1"
key_file = "rsa.pem"

[store]
url = "postgresql://volley@127.0.0.1:5/db"
password_file = "db-pw.txt"
{extra}"#
    );
    std::fs::write(dir.join("campaign.toml"), toml).unwrap();
    load_campaign(&dir.join("campaign.toml"), None).unwrap()
}

fn build(settings: &CampaignSettings) -> (CampaignDocument, Vec<DocumentFile>) {
    let text = std::fs::read_to_string(&settings.file).unwrap();
    CampaignDocument::build(settings, &text).unwrap()
}

fn node_store(local: &Path) -> StoreLocation {
    StoreLocation::Postgres {
        settings: PgSettings::new("postgresql://volley@127.0.0.1:5/db"),
        local: Some(local.to_owned()),
    }
}

#[test]
fn a_document_carries_templates_and_the_list_header_but_never_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let settings = campaign_folder(dir.path(), "");
    let (document, files) = build(&settings);
    let json = document.to_json();
    let key = std::fs::read_to_string(dir.path().join("rsa.pem")).unwrap();
    let key_line = key.lines().nth(1).unwrap();
    for secret in [PASSWORD, DB_PASSWORD, key_line] {
        assert!(!json.contains(secret), "{json}");
        assert!(files
            .iter()
            .all(|f| !String::from_utf8_lossy(&f.body).contains(secret)));
    }
    assert!(
        !document.campaign_toml.contains("[store]"),
        "{}",
        document.campaign_toml
    );
    let key_path = dir.path().join("rsa.pem");
    assert!(document
        .campaign_toml
        .contains(&key_path.display().to_string()));
    assert_eq!(document.id, "news");
    assert!(!document.scheduled);
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["00-body.txt", "01-body.html", "02-list.csv"]);
    // A one-off campaign's list is in the database: only its header travels.
    assert_eq!(files[2].body, b"email,name\n");
    let keys: Vec<&str> = document.secrets.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["relay.password_file", "dkim[0].key_file"]);
    assert_eq!(
        document.secrets[1].file.as_deref(),
        Some(key_path.as_path())
    );
    // The same campaign gives the same document.
    assert_eq!(build(&settings).0, document);
}

#[test]
fn relay_entries_carry_each_their_secret_by_index() {
    let dir = tempfile::tempdir().unwrap();
    campaign_folder(dir.path(), "");
    let path = dir.path().join("campaign.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("[relay]", "[[relay]]")
        .replace(
            "[[dkim]]",
            "[[relay]]\nhost = \"127.0.0.2\"\ntls = \"none\"\nusername = \"u2\"\n\
             password_file = \"pw.txt\"\n\n[[dkim]]",
        );
    std::fs::write(&path, text).unwrap();
    let settings = load_campaign(&path, None).unwrap();
    assert_eq!(settings.relays.len(), 2);
    let (document, _) = build(&settings);
    let keys: Vec<&str> = document.secrets.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "relay[0].password_file",
            "relay[1].password_file",
            "dkim[0].key_file"
        ]
    );
    let pw = dir.path().join("pw.txt").display().to_string();
    assert_eq!(document.campaign_toml.matches(&pw).count(), 2);
    assert!(!document.campaign_toml.contains(PASSWORD));
}

#[test]
fn a_scheduled_campaign_carries_its_whole_list() {
    let dir = tempfile::tempdir().unwrap();
    let settings = campaign_folder(dir.path(), "\n[schedule]\ncron = \"0 6 * * 1\"\n");
    let (document, files) = build(&settings);
    assert!(document.scheduled);
    let list = files.iter().find(|f| f.name.ends_with("list.csv")).unwrap();
    assert_eq!(
        list.body,
        std::fs::read(dir.path().join("list.csv")).unwrap()
    );
}

#[test]
fn a_materialised_document_loads_on_another_node_with_its_own_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let settings = campaign_folder(dir.path(), "");
    let (document, files) = build(&settings);
    let json = document.to_json();
    let document = CampaignDocument::from_json("news", &json).unwrap();

    let node = tempfile::tempdir().unwrap();
    let file = materialise(&document, &files, node.path()).unwrap();
    assert_eq!(file, node.path().join("cluster/news/campaign.toml"));
    assert!(is_materialised(&file));
    assert!(!is_materialised(&settings.file));
    let loaded = load_campaign_in(&file, &node_store(node.path())).unwrap();
    assert_eq!(loaded.id, "news");
    assert_eq!(loaded.text.as_ref().unwrap().source, "Hello {{ name }}!\n");
    assert_eq!(
        loaded.dkim[0].key,
        crate::config::KeySource::File(dir.path().join("rsa.pem"))
    );
    assert_eq!(loaded.store.local_dir(), Some(node.path()));
    check_secrets(&document, "n1").unwrap();

    // The same document again is left as it is; a changed one replaces the folder.
    let stamp = node.path().join("cluster/news/stamp");
    std::fs::write(&stamp, "").unwrap();
    materialise(&document, &files, node.path()).unwrap();
    assert!(stamp.exists());
    std::fs::write(
        dir.path().join("templates/body.txt"),
        "Changed {{ name }}\n",
    )
    .unwrap();
    let (changed, changed_files) = build(&settings);
    assert_ne!(changed.digest, document.digest);
    let file = materialise(&changed, &changed_files, node.path()).unwrap();
    assert!(!stamp.exists());
    let loaded = load_campaign_in(&file, &node_store(node.path())).unwrap();
    assert_eq!(loaded.text.unwrap().source, "Changed {{ name }}\n");
}

#[test]
fn a_node_lacking_a_secret_is_told_which_key_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let settings = campaign_folder(dir.path(), "");
    let (document, _) = build(&settings);
    std::fs::remove_file(dir.path().join("rsa.pem")).unwrap();
    let error = check_secrets(&document, "node-b").unwrap_err().to_string();
    let expected = format!(
        "node node-b cannot send campaign news: dkim[0].key_file {}: not found",
        dir.path().join("rsa.pem").display()
    );
    assert_eq!(error, expected);

    let mut by_env = document.clone();
    by_env.secrets = vec![SecretRef {
        key: "relay.password_env".to_owned(),
        file: None,
        env: Some("VOLLEY_TEST_UNSET_PASSWORD_VAR".to_owned()),
    }];
    let error = check_secrets(&by_env, "node-b").unwrap_err().to_string();
    assert_eq!(
        error,
        "node node-b cannot send campaign news: relay.password_env VOLLEY_TEST_UNSET_PASSWORD_VAR: not set"
    );
}

#[test]
fn tampered_or_hostile_documents_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let settings = campaign_folder(dir.path(), "");
    let (document, files) = build(&settings);
    let node = tempfile::tempdir().unwrap();
    let refused = |document: &CampaignDocument, files: &[DocumentFile]| match materialise(
        document,
        files,
        node.path(),
    ) {
        Err(ClusterError::BadDocument { problem, .. }) => problem,
        other => panic!("{other:?}"),
    };
    let mut tampered = files.clone();
    tampered[0].body = b"Evil {{ name }}".to_vec();
    assert_eq!(refused(&document, &tampered), DocumentProblem::Digest);
    assert_eq!(
        refused(&document, &files[1..]),
        DocumentProblem::MissingFile("00-body.txt".to_owned())
    );
    let mut escaping = document.clone();
    escaping.files[0] = "../../etc/cron.d/x".to_owned();
    assert!(matches!(
        refused(&escaping, &files),
        DocumentProblem::FileName(_)
    ));
    let mut bad_id = document.clone();
    bad_id.id = "../news".to_owned();
    assert!(matches!(refused(&bad_id, &files), DocumentProblem::Id(_)));
    assert!(!node.path().join("etc").exists());

    let newer = document.to_json().replace("\"format\":1", "\"format\":9");
    assert!(matches!(
        CampaignDocument::from_json("news", &newer),
        Err(ClusterError::BadDocument {
            problem: DocumentProblem::Format { found: 9, .. },
            ..
        })
    ));
    assert!(matches!(
        CampaignDocument::from_json("news", "{not json"),
        Err(ClusterError::BadDocument {
            problem: DocumentProblem::Json(_),
            ..
        })
    ));
}
