//! `[ab] holdout`: with or without variants and a test share, its range, and the keys an
//! `[ab]` without `test_share` refuses, each error naming the file and key.

use super::*;

use super::tests::MINIMAL_CAMPAIGN as CAMPAIGN;

const VARIANTS: &str = "\n[[variant]]\nid = \"A\"\n\n[[variant]]\nid = \"B\"\n";

/// Loads the minimal campaign plus `extra`; errors with the folder shown as `DIR`.
fn load(extra: &str) -> Result<CampaignSettings, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body.txt"), "Hello\n").unwrap();
    std::fs::write(dir.path().join("list.csv"), "email\nann@example.com\n").unwrap();
    let file = dir.path().join("news.toml");
    std::fs::write(&file, format!("{CAMPAIGN}{extra}")).unwrap();
    load_campaign(&file, None).map_err(|e| {
        e.to_string()
            .replace(&dir.path().display().to_string(), "DIR")
    })
}

#[test]
fn a_holdout_loads_with_or_without_variants_and_a_test_share() {
    assert_eq!(load("").unwrap().holdout, 0.0);
    let alone = load("\n[ab]\nholdout = 0.05\n").unwrap();
    assert_eq!(alone.holdout, 0.05);
    assert!(alone.ab.is_none() && alone.variants.is_empty());
    let split = load(&format!("{VARIANTS}\n[ab]\nholdout = 0.1\n")).unwrap();
    assert_eq!(split.holdout, 0.1);
    assert!(split.ab.is_none(), "no test_share: the whole rest is split");
    let test = load(&format!(
        "{VARIANTS}\n[ab]\ntest_share = 0.2\nholdout = 0.05\nmetric = \"opens\"\n"
    ))
    .unwrap();
    assert_eq!(test.holdout, 0.05);
    assert_eq!(test.ab.unwrap().test_share, 0.2);
    assert_eq!(load("\n[ab]\nholdout = 0\n").unwrap().holdout, 0.0);
}

#[test]
fn bad_holdouts_name_their_key() {
    let cases = [
        (
            "\n[ab]\nholdout = 0.5\n".to_owned(),
            "DIR/news.toml: ab.holdout = \"0.5\" is invalid: a share from 0 up to (not \
             including) 0.5, such as 0.05",
        ),
        (
            "\n[ab]\nholdout = -0.1\n".to_owned(),
            "DIR/news.toml: ab.holdout = \"-0.1\" is invalid",
        ),
        (
            format!("{VARIANTS}\n[ab]\ntest_share = 0.7\nholdout = 0.3\n"),
            "DIR/news.toml: ab.test_share = \"0.7\" is invalid",
        ),
        (
            "\n[ab]\nholdout = 0.1\nmetric = \"opens\"\n".to_owned(),
            "DIR/news.toml: ab.metric does not apply here: without ab.test_share",
        ),
        (
            format!("{VARIANTS}\n[ab]\nholdout = 0.1\nwait = \"1h\"\n"),
            "DIR/news.toml: ab.wait does not apply here",
        ),
        (
            "\n[ab]\nmetric = \"opens\"\n".to_owned(),
            "DIR/news.toml: ab.test_share is required",
        ),
        (
            "\n[ab]\ntest_share = 0.2\nholdout = 0.1\n".to_owned(),
            "DIR/news.toml: variant is required",
        ),
    ];
    for (extra, want) in cases {
        let error = load(&extra).unwrap_err();
        assert!(error.starts_with(want), "for {extra:?}:\n{error}");
    }
}
