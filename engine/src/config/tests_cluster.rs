//! `[cluster]` in the serve file: the node name and lease time, checked with the file and
//! key named.

use super::*;
use std::time::Duration;

fn serve(body: &str) -> Result<ServeSettings, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serve.toml");
    std::fs::write(&path, body).unwrap();
    load_serve(&path)
}

const PG: &str = "store = \"postgresql://volley@127.0.0.1:5432/volley\"\n";

#[test]
fn the_cluster_section_names_the_node_and_its_lease() {
    let settings = serve(&format!("{PG}[cluster]\nnode = \"a-1\"\nlease = \"5s\"\n")).unwrap();
    assert_eq!(settings.cluster.node.as_deref(), Some("a-1"));
    assert_eq!(settings.cluster.lease, Duration::from_secs(5));
    let defaults = serve(PG).unwrap();
    assert_eq!(defaults.cluster, ClusterSettings::default());
    assert_eq!(defaults.cluster.lease, Duration::from_secs(15));
}

#[test]
fn bad_cluster_keys_are_named_with_the_file() {
    for (body, key) in [
        (format!("{PG}[cluster]\nnode = \"a b\"\n"), "cluster.node"),
        (format!("{PG}[cluster]\nnode = \"\"\n"), "cluster.node"),
        (
            format!("{PG}[cluster]\nlease = \"10ms\"\n"),
            "cluster.lease",
        ),
        (
            format!("{PG}[cluster]\nlease = \"soon\"\n"),
            "cluster.lease",
        ),
        (format!("{PG}[cluster]\nnodes = \"a\"\n"), "nodes"),
        (
            "store = \"folder\"\n[cluster]\nnode = \"a\"\n".to_owned(),
            "cluster",
        ),
    ] {
        let error = serve(&body).unwrap_err().to_string();
        assert!(error.contains("serve.toml"), "{body}: {error}");
        assert!(error.contains(key), "{body}: {error}");
    }
}
