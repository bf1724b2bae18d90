//! Which store engine the end-to-end tests run on: `VOLLEY_TEST_STORE=sled` (the default) or
//! `VOLLEY_TEST_STORE=postgres`. On PostgreSQL, every store folder a test would use (a
//! campaign's `<stem>.volley`, a `[store] path`, a serve file's `store`, a `--store DIR`)
//! stands for its own fresh database of one throwaway cluster per test binary
//! ([`crate::postgres::TempCluster`], stopped and removed when the binary ends). The same
//! folder always maps to the same database, so a serve file and a campaign that share a
//! folder on sled share a database here.
//!
//! Like `assert!`, these helpers panic when something goes wrong (the cluster cannot start,
//! an unknown engine is asked for): the test that called them fails, loudly.

use crate::postgres::TempCluster;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The environment variable choosing the engine.
pub const ENGINE_VAR: &str = "VOLLEY_TEST_STORE";

/// The store engine the tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The embedded default: a folder.
    Sled,
    /// A database of the test binary's throwaway cluster.
    Postgres,
}

/// The engine `VOLLEY_TEST_STORE` asks for (`sled` when unset; panics on anything else).
pub fn engine() -> Engine {
    match std::env::var(ENGINE_VAR).as_deref() {
        Err(_) | Ok("" | "sled") => Engine::Sled,
        Ok("postgres" | "postgresql") => Engine::Postgres,
        Ok(other) => panic!("{ENGINE_VAR}={other}: use sled or postgres"),
    }
}

/// Whether the tests run on PostgreSQL.
pub fn is_postgres() -> bool {
    engine() == Engine::Postgres
}

/// The cluster of this test binary, its password file and the databases made so far.
struct Shared {
    cluster: TempCluster,
    password_file: PathBuf,
    databases: Mutex<HashMap<PathBuf, String>>,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let cluster = TempCluster::start().unwrap_or_else(|e| {
            panic!("{ENGINE_VAR}=postgres: cannot start a throwaway PostgreSQL cluster: {e}")
        });
        if let Err(e) = cluster.stop_when_gone(std::process::id()) {
            panic!("{ENGINE_VAR}=postgres: {e}");
        }
        // In the cluster's folder: removed with it.
        let password_file = cluster.folder().join("client-password");
        write_private(&password_file, cluster.password());
        Shared {
            cluster,
            password_file,
            databases: Mutex::new(HashMap::new()),
        }
    })
}

fn write_private(path: &Path, text: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        panic!("writing {}: {e}", path.display());
    }
}

/// The URL (without its password) of the database standing for the store folder `folder`,
/// created on first use. PostgreSQL only.
pub fn database_for(folder: &Path) -> String {
    let shared = shared();
    let key = absolute(folder);
    let mut databases = shared
        .databases
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(url) = databases.get(&key) {
        return url.clone();
    }
    let name = format!("t{}", databases.len() + 1);
    if let Err(e) = shared.cluster.create_database(&name) {
        panic!("creating the test database {name}: {e}");
    }
    let url = format!(
        "postgresql://{}@127.0.0.1:{}/{name}",
        crate::postgres::SUPERUSER,
        shared.cluster.port()
    );
    databases.insert(key, url.clone());
    url
}

/// The file holding the test cluster's password (mode 0600). PostgreSQL only.
pub fn password_file() -> &'static Path {
    &shared().password_file
}

/// The test cluster's password, for the `PGPASSWORD` of the commands a test runs.
/// PostgreSQL only.
pub fn password() -> &'static str {
    shared().cluster.password()
}

/// The `[store]` table for a store that sled would keep in `folder`: on sled, `path` (as
/// written, relative to the file's folder `dir`); on PostgreSQL, the database standing for
/// it with its password file, the local folder being `folder`.
pub fn store_table(dir: &Path, folder: &str) -> String {
    match engine() {
        Engine::Sled => format!("[store]\npath = \"{folder}\"\n"),
        Engine::Postgres => format!(
            "[store]\nurl = \"{}\"\npassword_file = \"{}\"\nlocal_dir = \"{folder}\"\n",
            database_for(&dir.join(folder)),
            password_file().display()
        ),
    }
}

/// What to give `--store` for the store sled would keep in `folder`: the folder, or the
/// database's URL (its password comes from `PGPASSWORD`: see [`command_env`]).
pub fn store_arg(folder: &Path) -> String {
    match engine() {
        Engine::Sled => folder.display().to_string(),
        Engine::Postgres => database_for(folder),
    }
}

/// The environment every `volley` a test runs needs: on PostgreSQL, `PGPASSWORD` (for
/// `--store postgresql://…`); nothing on sled.
pub fn command_env() -> Vec<(&'static str, String)> {
    match engine() {
        Engine::Sled => Vec::new(),
        Engine::Postgres => vec![("PGPASSWORD", password().to_owned())],
    }
}

/// `path` made absolute against the working folder (without touching the disk), so the
/// same folder written two ways maps to one database.
fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
