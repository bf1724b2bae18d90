//! The one-way dependency picture of `lib.rs`, checked against every module's `crate::` paths,
//! so the layering cannot rot silently; and the engine holds production code only: the test
//! SMTP and DNS servers live in `volley-testkit`, which the engine takes for its tests only.

use std::collections::BTreeSet;
use std::path::Path;

/// What each module may use, besides itself.
const ALLOWED: &[(&str, &[&str])] = &[
    ("preflight", &["runtime", "delivery", "config", "dkim"]),
    (
        "runtime",
        &[
            "ab",
            "campaign",
            "report",
            "scheduler",
            "compose",
            "delivery",
            "bounce",
            "control",
            "tracking",
            "schedule",
            "store",
            "shaping",
            "config",
            "dkim",
            "smtp",
            "model",
            "Error",
        ],
    ),
    (
        "scheduler",
        &["delivery", "shaping", "store", "config", "smtp", "model"],
    ),
    (
        "delivery",
        &["smtp", "shaping", "bounce", "store", "config", "model"],
    ),
    ("shaping", &["config", "model"]),
    ("campaign", &["config"]),
    ("compose", &["dkim"]),
    ("bounce", &["model"]),
    ("control", &["report", "store", "model"]),
    ("report", &["ab", "store", "config", "model"]),
    ("ab", &["model"]),
    ("store", &["model"]),
    ("tracking", &["store", "model"]),
    ("schedule", &["config"]),
    ("model", &[]),
    ("config", &["ab"]),
    ("dkim", &[]),
    ("smtp", &[]),
];

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

#[test]
fn modules_only_use_what_the_picture_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut problems = Vec::new();
    for (module, allowed) in ALLOWED {
        let mut found = BTreeSet::new();
        let dir = src.join(module);
        if dir.is_dir() {
            crate_paths(&dir, &mut found);
        } else {
            crate_paths(&src.join(format!("{module}.rs")), &mut found);
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

/// The modules in `src/` (folders and `name.rs` files, `lib.rs` and `error.rs` aside).
fn modules(src: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() || path.extension().is_some_and(|e| e == "rs") {
            found.insert(name);
        }
    }
    found.remove("lib");
    found.remove("error");
    found
}

#[test]
fn every_module_is_in_the_picture_and_no_test_server_is_among_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let pictured: BTreeSet<String> = ALLOWED.iter().map(|(m, _)| (*m).to_owned()).collect();
    assert_eq!(
        modules(&src),
        pictured,
        "src/ and the picture in lib.rs differ"
    );
    for test_server in ["sink", "nameserver"] {
        assert!(
            !pictured.contains(test_server),
            "{test_server} belongs in volley-testkit"
        );
    }
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
