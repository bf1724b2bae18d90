//! The module picture of `lib.rs` (its rooms and arrows), checked against every module's
//! `crate::` paths so the layering cannot rot silently:
//!
//! - every module of `src/` has a row, and uses nothing its row does not allow;
//! - the arrows point one way: no module reaches itself through others (no cycles);
//! - `runtime` is the only place that wires: nothing imports it (`preflight`, `compose` and
//!   the recorder included), and only it may import the command-level modules above the
//!   pipeline stages (`preflight`, `recorder`).
//! - the engine holds production code only: the test SMTP and DNS servers live in
//!   `volley-testkit`, which the engine takes for its tests only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What each module may use, besides itself.
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "runtime",
        &[
            "api",
            "ab",
            "campaign",
            "report",
            "dispatch",
            "cluster",
            "compose",
            "delivery",
            "bounce",
            "control",
            "tracking",
            "webhooks",
            "transactional",
            "metrics",
            "recurring",
            "recorder",
            "preflight",
            "cluster",
            "warmup",
            "store",
            "shaping",
            "config",
            "smtp",
            "model",
            "Error",
        ],
    ),
    (
        "api",
        &[
            "tracking",
            "control",
            "recurring",
            "transactional",
            "cluster",
            "report",
            "campaign",
            "bounce",
            "webhooks",
            "ab",
            "store",
            "config",
            "model",
        ],
    ),
    ("preflight", &["delivery", "config", "dkim"]),
    (
        "compose",
        &[
            "dispatch", "delivery", "bounce", "tracking", "store", "config", "dkim", "smtp",
            "model",
        ],
    ),
    (
        "recorder",
        &[
            "dispatch", "delivery", "shaping", "store", "metrics", "model",
        ],
    ),
    (
        "dispatch",
        &[
            "cluster", "delivery", "shaping", "warmup", "store", "config", "smtp", "model",
        ],
    ),
    ("warmup", &["store", "config", "model"]),
    ("cluster", &["config", "store", "model"]),
    (
        "delivery",
        &["smtp", "shaping", "bounce", "store", "config", "model"],
    ),
    ("shaping", &["config", "model"]),
    ("campaign", &["config", "store", "model"]),
    ("bounce", &["model"]),
    (
        "control",
        &["report", "webhooks", "warmup", "store", "model"],
    ),
    ("report", &["ab", "store", "config", "model"]),
    ("ab", &["model"]),
    ("store", &["model"]),
    ("tracking", &["store", "config", "metrics", "model"]),
    ("webhooks", &["recurring", "store", "config", "model"]),
    (
        "transactional",
        &["compose", "store", "config", "metrics", "model"],
    ),
    ("metrics", &[]),
    ("recurring", &["config"]),
    ("model", &[]),
    ("config", &["ab", "dkim", "smtp", "store"]),
    ("dkim", &[]),
    ("smtp", &[]),
];

/// Names under `crate::` that are not modules (the crate's error type).
const NOT_MODULES: &[&str] = &["Error"];

/// Only `runtime` may import these: they wire stages together or run a command.
const WIRING_ONLY: &[&str] = &["runtime", "preflight", "recorder"];

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn crate_paths(path: &Path, found: &mut BTreeSet<String>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            crate_paths(&entry.unwrap().path(), found);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        let text = std::fs::read_to_string(path).unwrap();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
}

fn allowed(module: &str) -> &'static [&'static str] {
    ALLOWED
        .iter()
        .find(|(name, _)| *name == module)
        .map_or(&[], |(_, allowed)| *allowed)
}

#[test]
fn modules_only_use_what_the_picture_allows() {
    let mut problems = Vec::new();
    for (module, allowed) in ALLOWED {
        let mut found = BTreeSet::new();
        let dir = src().join(module);
        if dir.is_dir() {
            crate_paths(&dir, &mut found);
        } else {
            crate_paths(&src().join(format!("{module}.rs")), &mut found);
        }
        for name in found {
            if name != *module && !allowed.contains(&name.as_str()) {
                problems.push(format!("{module} uses crate::{name}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "outside the dependency picture in lib.rs: {problems:?}"
    );
}

/// The names in the `[dependencies]` table of the engine's Cargo.toml.
fn normal_dependencies() -> Vec<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut in_table = false;
    let mut names = Vec::new();
    for line in text.lines() {
        if line.starts_with('[') {
            in_table = line == "[dependencies]";
        } else if in_table {
            if let Some(name) = line.split(['.', '=', ' ']).next().filter(|n| !n.is_empty()) {
                names.push(name.to_owned());
            }
        }
    }
    names
}

#[test]
fn test_only_crates_stay_out_of_the_engines_normal_dependencies() {
    let names = normal_dependencies();
    assert!(names.contains(&"tokio".to_owned()), "parsed: {names:?}");
    for test_only in ["volley-testkit", "rcgen", "hickory-proto"] {
        assert!(
            !names.iter().any(|n| n == test_only),
            "{test_only} is for tests only: it belongs in [dev-dependencies]"
        );
    }
}

#[test]
fn every_module_has_a_place_in_the_picture() {
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if ["lib", "error"].contains(&name.as_str()) {
            continue;
        }
        if !ALLOWED.iter().any(|(module, _)| *module == name) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "modules without a row in ALLOWED: {missing:?}"
    );
    for test_server in ["sink", "nameserver"] {
        assert!(
            !src().join(test_server).exists() && allowed(test_server).is_empty(),
            "{test_server} belongs in volley-testkit"
        );
    }
}

#[test]
fn the_arrows_point_one_way() {
    // Depth-first search over the allowed arrows; a module met again on the current path
    // closes a cycle.
    fn visit<'a>(
        module: &'a str,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        cycles: &mut Vec<String>,
    ) {
        if let Some(start) = path.iter().position(|m| *m == module) {
            cycles.push(format!("{} -> {module}", path[start..].join(" -> ")));
            return;
        }
        if !done.insert(module) {
            return;
        }
        path.push(module);
        for next in allowed(module) {
            if !NOT_MODULES.contains(next) {
                visit(next, path, done, cycles);
            }
        }
        path.pop();
    }
    let (mut done, mut cycles) = (BTreeSet::new(), Vec::new());
    for (module, _) in ALLOWED {
        visit(module, &mut Vec::new(), &mut done, &mut cycles);
    }
    assert!(cycles.is_empty(), "cycles in the picture: {cycles:?}");
}

#[test]
fn only_the_runtime_wires() {
    let mut users: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (module, allowed) in ALLOWED {
        for used in allowed.iter().filter(|u| WIRING_ONLY.contains(u)) {
            users.entry(used).or_default().push(module);
        }
    }
    let wrong: Vec<String> = users
        .iter()
        .flat_map(|(used, by)| {
            by.iter()
                .filter(|m| **m != "runtime")
                .map(move |m| format!("{m} may use {used}"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "only runtime may use {WIRING_ONLY:?}: {wrong:?}"
    );
    assert!(
        !allowed("runtime").contains(&"runtime"),
        "nothing imports runtime"
    );
}

/// Every `.rs` file under `dir`, except under the folders in `skip`.
fn rust_files(dir: &Path, skip: &[&Path], out: &mut Vec<std::path::PathBuf>) {
    if skip.contains(&dir) {
        return;
    }
    if dir.is_dir() {
        for entry in std::fs::read_dir(dir).unwrap() {
            rust_files(&entry.unwrap().path(), skip, out);
        }
    } else if dir.extension().is_some_and(|e| e == "rs") {
        out.push(dir.to_owned());
    }
}

#[test]
fn only_the_store_knows_which_engine_is_behind_it() {
    // Everything else talks to the store's interface: no sled type and no path into an
    // engine's module, in the engine, the CLI, the benches or the test kit.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let store = root.join("engine/src/store");
    let mut files = Vec::new();
    for dir in [
        "engine/src",
        "engine/tests",
        "cli/src",
        "cli/tests",
        "benches",
        "testkit",
    ] {
        rust_files(&root.join(dir), &[store.as_path()], &mut files);
    }
    assert!(files.len() > 50, "found only {} files", files.len());
    let mut problems = Vec::new();
    for file in &files {
        // This check itself, and the one test that forges a store written by a newer
        // Volley: only raw sled can write the future format key it must find refused.
        if file.ends_with("tests/it/layering.rs") || file.ends_with("cli/tests/cli/format.rs") {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for needle in ["sled::", "store::sled"] {
            if text.contains(needle) {
                problems.push(format!("{} names {needle}", file.display()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "engine details outside store/: {problems:?}"
    );
}
