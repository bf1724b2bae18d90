//! `[mx] source_addresses` and `source_pick`, `[relay] source_address`: both entry forms,
//! defaults and errors naming the entry.

use super::tests::Scratch;
use super::{SourceAddress, SourcePick};

fn source(ip: &str, helo: &str) -> SourceAddress {
    SourceAddress {
        address: ip.parse().unwrap(),
        helo: helo.to_owned(),
    }
}

#[test]
fn no_source_addresses_by_default() {
    let settings = Scratch::new().load_with("").unwrap();
    assert!(settings.mx.source_addresses.is_empty());
    assert_eq!(settings.mx.source_pick, SourcePick::RoundRobin);
}

#[test]
fn strings_and_tables_mix_and_take_the_mx_helo_by_default() {
    let extra = r#"[mx]
helo = "mta.acme.example"
source_addresses = [
  "192.0.2.10",
  { address = "192.0.2.11", helo = "mta2.acme.example" },
  { address = "2001:db8::10" },
  "[2001:db8::11]",
]
source_pick = "pinned"
"#;
    let settings = Scratch::new().load_with(extra).unwrap();
    assert_eq!(
        settings.mx.source_addresses,
        [
            source("192.0.2.10", "mta.acme.example"),
            source("192.0.2.11", "mta2.acme.example"),
            source("2001:db8::10", "mta.acme.example"),
            source("2001:db8::11", "mta.acme.example"),
        ]
    );
    assert_eq!(settings.mx.source_pick, SourcePick::Pinned);
    // Without [mx] helo, the From domain is every entry's default name.
    let settings = Scratch::new()
        .load_with("[mx]\nsource_addresses = [\"127.0.0.2\"]\n")
        .unwrap();
    assert_eq!(settings.mx.source_addresses[0].helo, "acme.example");
}

#[test]
fn bad_entries_are_named() {
    let s = Scratch::new();
    for (extra, want) in [
        (
            "[mx]\nsource_addresses = [\"192.0.2.10\", \"mta.example\"]\n",
            "mx.source_addresses[1] = \"mta.example\" is invalid: an IPv4 or IPv6 address",
        ),
        (
            "[mx]\nsource_addresses = [{ address = \"300.1.1.1\" }]\n",
            "mx.source_addresses[0].address = \"300.1.1.1\" is invalid",
        ),
        (
            "[mx]\nsource_addresses = [{ address = \"192.0.2.1\", helo = \"a b\" }]\n",
            "mx.source_addresses[0].helo = \"a b\" is invalid",
        ),
        (
            "[mx]\nsource_addresses = [\"0.0.0.0\"]\n",
            "mx.source_addresses[0] = \"0.0.0.0\" is invalid: a specific address",
        ),
        (
            "[mx]\nsource_addresses = [\"192.0.2.1\", \"192.0.2.1\"]\n",
            "mx.source_addresses[1] = \"192.0.2.1\" is invalid: an address not listed before",
        ),
        (
            "[mx]\nsource_addresses = []\n",
            "mx.source_addresses = \"[]\" is invalid: at least one address",
        ),
        (
            "[mx]\nsource_addresses = [{ address = \"192.0.2.1\", name = \"x\" }]\n",
            "unknown field `name`",
        ),
        (
            "[mx]\nsource_addresses = [7]\n",
            "an IP address, or a table",
        ),
        ("[mx]\nsource_pick = \"random\"\n", "round-robin"),
    ] {
        let error = s.load_with(extra).unwrap_err().to_string();
        assert!(error.contains(want), "{extra}: {error}");
    }
}

#[test]
fn the_relay_takes_one_source_address() {
    let relay = "[relay]\nhost = \"127.0.0.1\"\nport = 2525\ntls = \"none\"\n";
    let s = Scratch::new();
    let settings = s
        .load_with(&format!("{relay}source_address = \"127.0.0.2\"\n"))
        .unwrap();
    let address = settings.relay.unwrap().source_address;
    assert_eq!(address, Some("127.0.0.2".parse().unwrap()));
    let error = s
        .load_with(&format!("{relay}source_address = \"here\"\n"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("relay.source_address = \"here\""), "{error}");
}
