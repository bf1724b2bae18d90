//! `[mx] mta_sts`, `mta_sts_port` and `mta_sts_timeout`: defaults, values and errors.

use std::time::Duration;

use super::tests::Scratch;

#[test]
fn mta_sts_is_on_by_default_on_port_443_with_a_30_second_fetch() {
    let settings = Scratch::new().load_with("").unwrap();
    assert!(settings.mx.mta_sts);
    assert_eq!(settings.mx.mta_sts_port, 443);
    assert_eq!(settings.mx.mta_sts_timeout, Duration::from_secs(30));
}

#[test]
fn mta_sts_keys_parse_and_bad_values_are_named() {
    let s = Scratch::new();
    let extra = "[mx]\nmta_sts = false\nmta_sts_port = 8443\nmta_sts_timeout = \"5s\"\n";
    let settings = s.load_with(extra).unwrap();
    assert!(!settings.mx.mta_sts);
    assert_eq!(settings.mx.mta_sts_port, 8443);
    assert_eq!(settings.mx.mta_sts_timeout, Duration::from_secs(5));
    for (extra, want) in [
        (
            "[mx]\nmta_sts_port = 0\n",
            "mx.mta_sts_port = 0 is out of range (1 to 65535)",
        ),
        ("[mx]\nmta_sts_timeout = \"soon\"\n", "mx.mta_sts_timeout"),
        ("[mx]\nmta_sts = \"yes\"\n", "expected a boolean"),
    ] {
        let error = s.load_with(extra).unwrap_err().to_string();
        assert!(error.contains(want), "{extra}: {error}");
    }
}
