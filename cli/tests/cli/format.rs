//! The store's format key as a user meets it: a store written by a newer volley is refused by
//! name, with what to do, and left untouched.

use crate::support::{run, text};

/// The sled tree and key the engine keeps its format under (`engine/src/store/sled/format.rs`).
const TREE: &str = "campaigns";
const FORMAT_KEY: &[u8] = b"V";

#[test]
fn a_store_from_a_newer_volley_is_refused_by_name_and_left_alone() {
    if crate::support::sled_only(
        "format::a_store_from_a_newer_volley_is_refused_by_name_and_left_alone",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store_arg = store.to_str().unwrap();
    let made = run(&["suppress", "list", "--store", store_arg]);
    assert_eq!(made.status.code(), Some(0), "{}", text(&made.stderr));
    {
        let db = sled::open(&store).unwrap();
        let tree = db.open_tree(TREE).unwrap();
        let format = tree
            .get(FORMAT_KEY)
            .unwrap()
            .expect("a new store records its format");
        assert_eq!(format.as_ref(), 3u32.to_be_bytes());
        tree.insert(FORMAT_KEY, &999u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let refused = run(&["suppress", "list", "--store", store_arg]);
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(store_arg), "names the store: {stderr}");
    assert!(
        stderr.contains("format 999") && stderr.contains("newer version of volley"),
        "{stderr}"
    );
    let db = sled::open(&store).unwrap();
    let tree = db.open_tree(TREE).unwrap();
    assert_eq!(
        tree.get(FORMAT_KEY).unwrap().unwrap().as_ref(),
        999u32.to_be_bytes(),
        "left untouched"
    );
}
