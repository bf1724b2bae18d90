//! `[warmup]` (issue 23): defaults, the provider table with the file's overrides, and each
//! mistake named by its key.

use super::*;

use super::tests::load_minimal;

/// The minimal campaign with `section` appended (see [`load_minimal`]).
fn load(section: &str) -> Result<CampaignSettings, String> {
    load_minimal(section, "email\nann@example.com\n")
}

#[test]
fn an_empty_section_warms_the_from_domain_with_the_defaults() {
    assert!(load("").unwrap().warmup.is_none());
    let w = load("[warmup]").unwrap().warmup.unwrap();
    assert_eq!(w.key, "acme.example");
    assert_eq!(w.growth, DEFAULT_GROWTH);
    assert_eq!(w.min, DEFAULT_MIN);
    assert_eq!(w.timezone, chrono_tz::Tz::UTC);
    let names: Vec<&str> = w.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["gmail", "microsoft", "yahoo", "apple", "others"]);
    assert!(w
        .providers
        .iter()
        .all(|p| p.start == DEFAULT_START && p.max.is_none()));
    assert!(w
        .provider("gmail")
        .unwrap()
        .mx
        .contains(&"*.google.com".to_owned()));
}

#[test]
fn providers_are_overridden_and_added_by_the_file() {
    let w = load(
        "[warmup]\nkey = \"203.0.113.7\"\nstart = 20\nmax = 5000\ntimezone = \"Europe/Berlin\"\n\
         [warmup.providers.gmail]\nstart = 40\n\
         [warmup.providers.corp]\nmx = [\"*.Example.NET\"]\nstart = 25\nmax = 100\n",
    )
    .unwrap()
    .warmup
    .unwrap();
    assert_eq!(w.key, "203.0.113.7");
    assert_eq!(w.min, 10);
    assert_eq!(w.timezone, chrono_tz::Europe::Berlin);
    assert_eq!(
        w.providers[0].name, "corp",
        "the file's own providers first"
    );
    assert_eq!(w.providers[0].mx, ["*.example.net"]);
    assert_eq!((w.providers[0].start, w.providers[0].max), (25, Some(100)));
    let gmail = w.provider("gmail").unwrap();
    assert_eq!((gmail.start, gmail.max), (40, Some(5000)));
    assert!(!gmail.mx.is_empty(), "the built-in patterns stay");
    assert_eq!(w.provider("others").unwrap().start, 20);
}

#[test]
fn mistakes_name_their_key() {
    let cases = [
        ("[warmup]\nstart = 0", "warmup.start = 0 is out of range"),
        ("[warmup]\ngrowth = 1.0", "warmup.growth = \"1\" is invalid"),
        (
            "[warmup]\nmax_bounce_rate = 5",
            "warmup.max_bounce_rate = \"5\" is invalid",
        ),
        (
            "[warmup]\ntimezone = \"Mars/Olympus\"",
            "warmup.timezone = \"Mars/Olympus\"",
        ),
        ("[warmup]\nkey = \"  \"", "warmup.key must not be empty"),
        (
            "[warmup]\nstart = 50\nmin = 60",
            "warmup.min = \"60\" is invalid",
        ),
        (
            "[warmup]\nmin = 20\n[warmup.providers.gmail]\nstart = 15",
            "warmup.providers.gmail.start = \"15\"",
        ),
        (
            "[warmup]\nstart = 50\nmax = 50",
            "warmup.max = \"50\" is invalid",
        ),
        (
            "[warmup.providers.corp]\nstart = 5",
            "warmup.providers.corp.mx must not be empty",
        ),
        (
            "[warmup.providers.Big]\nmx = [\"x.example\"]",
            "warmup.providers.Big",
        ),
        (
            "[warmup.providers.corp]\nmx = [\"bad host\"]",
            "warmup.providers.corp.mx[0]",
        ),
        (
            "[warmup.providers.others]\nmx = [\"*.x.example\"]",
            "warmup.providers.others.mx does not apply",
        ),
        ("[warmup]\ncolour = 1", "unknown field `colour`"),
    ];
    for (section, wanted) in cases {
        let error = load(section).unwrap_err();
        assert!(error.contains(wanted), "{section}: {error}");
    }
}
