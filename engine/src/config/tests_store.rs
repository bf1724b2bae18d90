//! `[store]` with a PostgreSQL `url` (and the serve file's `store`): the database keys, the
//! local folder, `--store postgresql://…`, errors naming the file and key, and passwords that
//! never show.

use super::*;
use crate::store::{PgTls, StoreLocation};

use super::tests::MINIMAL_CAMPAIGN as CAMPAIGN;

/// A campaign folder (templates, list, a password file and a CA file).
fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body.txt"), "Hello\n").unwrap();
    std::fs::write(dir.path().join("list.csv"), "email\nann@example.com\n").unwrap();
    std::fs::write(dir.path().join("pw.txt"), "s3cret-from-file\n").unwrap();
    std::fs::write(dir.path().join("ca.pem"), "not read here\n").unwrap();
    dir
}

/// Loads the campaign with `store` as its `[store]` body (and `--store` `cli`).
fn load(dir: &Path, store: &str, cli: Option<&str>) -> Result<CampaignSettings, ConfigError> {
    let file = dir.join("news.toml");
    std::fs::write(&file, format!("{CAMPAIGN}\n[store]\n{store}\n")).unwrap();
    load_campaign(&file, cli.map(Path::new))
}

/// The error of loading `store`, the folder shown as `DIR`.
fn error(store: &str) -> String {
    let dir = folder();
    let error = load(dir.path(), store, None).unwrap_err().to_string();
    error.replace(&dir.path().display().to_string(), "DIR")
}

#[test]
fn a_url_with_its_login_and_tls_keys_makes_a_database_store_with_a_local_folder() {
    let dir = folder();
    let settings = load(
        dir.path(),
        "url = \"postgresql://volley@127.0.0.1:5432/mail\"\npassword_file = \"pw.txt\"\n\
         tls = \"verify-full\"\nca_file = \"ca.pem\"",
        None,
    )
    .unwrap();
    let StoreLocation::Postgres {
        settings: pg,
        local,
    } = &settings.store
    else {
        panic!("not a database: {:?}", settings.store);
    };
    assert_eq!(pg.url, "postgresql://volley@127.0.0.1:5432/mail");
    assert_eq!(
        pg.password_file.as_deref(),
        Some(&*dir.path().join("pw.txt"))
    );
    assert_eq!(pg.tls, Some(PgTls::VerifyFull));
    assert_eq!(pg.ca_file.as_deref(), Some(&*dir.path().join("ca.pem")));
    // Local files (the bounce spool) go beside the campaign file, as a folder store would.
    assert_eq!(local.as_deref(), Some(&*dir.path().join("news.volley")));
    assert_eq!(settings.store.local_dir(), local.as_deref());
    assert!(settings.store.folder().is_none());

    let settings = load(
        dir.path(),
        "url = \"postgres://volley@db.internal/mail\"\npassword_env = \"PGPASS_VAR\"\n\
         local_dir = \"state\"",
        None,
    )
    .unwrap();
    assert_eq!(settings.store.local_dir(), Some(&*dir.path().join("state")));
    assert_eq!(
        settings.store.to_string(),
        "postgres://volley@db.internal/mail"
    );
}

#[test]
fn store_on_the_command_line_may_be_an_address_and_keeps_the_files_login_keys() {
    let dir = folder();
    let url = "postgresql://volley:cli-s3cret@127.0.0.1:5433/other";
    let settings = load(dir.path(), "path = \"here.volley\"", Some(url)).unwrap();
    assert!(settings.store.is_postgres());
    assert_eq!(
        settings.store.to_string(),
        "postgresql://volley@127.0.0.1:5433/other"
    );
    let settings = load(
        dir.path(),
        "url = \"postgresql://a@127.0.0.1/db\"\npassword_env = \"V\"",
        Some(url),
    )
    .unwrap();
    let StoreLocation::Postgres { settings: pg, .. } = &settings.store else {
        panic!("not a database");
    };
    assert_eq!(pg.password_env.as_deref(), Some("V"));
    // A folder on the command line wins over the file's database.
    let settings = load(
        dir.path(),
        "url = \"postgresql://a@127.0.0.1/db\"",
        Some("/tmp/x.volley"),
    )
    .unwrap();
    assert_eq!(settings.store.folder(), Some(Path::new("/tmp/x.volley")));
    let error = load(dir.path(), "", Some("postgresql://u:cli-s3cret@h:port/db"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("--store = \"postgresql://u@h:port/db\" is not a valid PostgreSQL address"),
        "{error}"
    );
    assert!(!error.contains("cli-s3cret"), "{error}");
}

#[test]
fn bad_store_keys_name_the_file_and_the_key_and_never_a_password() {
    let cases = [
        (
            "url = \"postgresql://a@h/db\"\npath = \"x.volley\"",
            "DIR/news.toml: store.url and store.path are both set; use one of them",
        ),
        (
            "url = \"postgresql://volley:s3cret@h/db\"",
            "DIR/news.toml: store.url = \"postgresql://volley@h/db\" is invalid: an address \
             without a password: put the password in a file named by store.password_file, or \
             in a variable named by store.password_env",
        ),
        (
            "url = \"postgresql://h/db?password=s3cret\"",
            "DIR/news.toml: store.url = \"postgresql://h/db?password=<redacted>\" is invalid: \
             an address without a password: put the password in a file named by \
             store.password_file, or in a variable named by store.password_env",
        ),
        (
            "url = \"mysql://h/db\"",
            "DIR/news.toml: store.url = \"mysql://h/db\" is invalid: a PostgreSQL address like \
             postgresql://user@host:5432/database (a folder goes in store.path)",
        ),
        (
            "url = \"postgresql://a@h:notaport/db\"",
            "DIR/news.toml: store.url = \"postgresql://a@h:notaport/db\" is not a valid \
             PostgreSQL address: ",
        ),
        ("url = \" \"", "DIR/news.toml: store.url must not be empty"),
        (
            "url = \"postgresql://a@h/db\"\ntls = \"strict\"",
            "DIR/news.toml: store.tls = \"strict\" is invalid: disable, prefer, require or \
             verify-full",
        ),
        (
            "url = \"postgresql://a@h/db\"\npassword_file = \"pw.txt\"\npassword_env = \"V\"",
            "DIR/news.toml: store.password_file and store.password_env are both set; use one \
             of them",
        ),
        (
            "path = \"x.volley\"\ntls = \"require\"",
            "DIR/news.toml: store.tls does not apply here: it applies to a PostgreSQL store \
             (store.url) only",
        ),
        (
            "password_env = \"V\"",
            "DIR/news.toml: store.password_env does not apply here: it applies to a \
             PostgreSQL store (store.url) only",
        ),
    ];
    for (store, want) in cases {
        let got = error(store);
        assert!(got.starts_with(want), "{store}:\n{got}\n{want}");
        assert!(!got.contains("s3cret"), "{got}");
    }
    let got = error("url = \"postgresql://a@h/db\"\npassword_file = \"missing.txt\"");
    assert!(
        got.starts_with("DIR/news.toml: store.password_file: cannot read DIR/missing.txt"),
        "{got}"
    );
    let got = error("url = \"postgresql://a@h/db\"\nca_file = \"nope.pem\"");
    assert!(
        got.starts_with("DIR/news.toml: store.ca_file: cannot read DIR/nope.pem"),
        "{got}"
    );
    let got = error("url = \"postgresql://a@h/db\"\nuser = \"x\"");
    assert!(got.contains("unknown field `user`"), "{got}");
}

#[test]
fn a_serve_file_names_a_database_as_text_or_as_a_table() {
    let dir = folder();
    let serve = dir.path().join("node.toml");
    let load = |text: &str| {
        std::fs::write(&serve, text).unwrap();
        load_serve(&serve)
    };
    let settings = load("store = \"postgresql://volley@127.0.0.1/mail\"\n").unwrap();
    assert!(settings.store.is_postgres());
    assert_eq!(
        settings.store.local_dir(),
        Some(&*dir.path().join("node.volley"))
    );
    let settings = load(
        "[store]\nurl = \"postgresql://volley@127.0.0.1/mail\"\npassword_file = \"pw.txt\"\n\
         local_dir = \"spool-here\"\n\n[bounces]\nbind = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    assert_eq!(
        settings.bounces.unwrap().spool,
        dir.path().join("spool-here/bounce-spool")
    );
    let settings = load("store = \"s.volley\"\n").unwrap();
    assert_eq!(settings.store.folder(), Some(&*dir.path().join("s.volley")));
    for (text, want) in [
        (
            "store = \"postgresql://volley:s3cret@127.0.0.1/mail\"\n",
            "store.url = \"postgresql://volley@127.0.0.1/mail\" is invalid: an address without a password",
        ),
        ("[store]\nurl = \"postgresql://a@h/db\"\nhost = \"x\"\n", "unknown field `host`"),
        ("store = 3\n", "a folder, a postgresql:// address or a [store] table"),
    ] {
        let error = load(text).unwrap_err().to_string();
        assert!(error.contains(want), "{text}: {error}");
        assert!(error.contains("node.toml"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
    }
}
