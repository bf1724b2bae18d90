//! The one-way dependency picture of `lib.rs`, checked against every module's `crate::` paths,
//! so the layering cannot rot silently.

use std::collections::BTreeSet;
use std::path::Path;

/// What each module may use, besides itself.
const ALLOWED: &[(&str, &[&str])] = &[
    ("preflight", &["delivery", "config", "dkim"]),
    (
        "runtime",
        &[
            "ab",
            "campaign",
            "report",
            "dispatch",
            "compose",
            "delivery",
            "bounce",
            "control",
            "tracking",
            "recurring",
            "sink",
            "store",
            "shaping",
            "config",
            "dkim",
            "smtp",
            "model",
            "preflight",
            "Error",
        ],
    ),
    (
        "dispatch",
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
    ("recurring", &["config"]),
    ("model", &[]),
    ("config", &["ab", "dkim", "smtp"]),
    ("dkim", &[]),
    ("smtp", &[]),
    ("sink", &[]),
    ("nameserver", &[]),
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
