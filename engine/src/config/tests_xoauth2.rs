//! `[relay] auth = "xoauth2"`: the token's source (`token_file`, `token_env`, `token_command`),
//! its lifetime, and every wrong combination refused naming the keys, never the token.

use secrecy::ExposeSecret as _;

use super::*;

use super::tests::MINIMAL_CAMPAIGN as CAMPAIGN;

/// Loads the campaign with a STARTTLS `[relay]` made of `lines`, in a folder holding a token
/// file `token.txt` and an executable `get-token` printing `tok-from-command`.
fn load(lines: &str) -> Result<CampaignSettings, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body.txt"), "Hello\n").unwrap();
    std::fs::write(dir.path().join("list.csv"), "email\nann@example.com\n").unwrap();
    std::fs::write(dir.path().join("token.txt"), "tok-from-file\n").unwrap();
    let script = dir.path().join("get-token");
    std::fs::write(&script, "#!/bin/sh\necho tok-from-command\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let text = format!("{CAMPAIGN}\n[relay]\nhost = \"smtp.office365.com\"\nport = 587\n{lines}\n");
    let path = dir.path().join("campaign.toml");
    std::fs::write(&path, &text).unwrap();
    load_campaign(&path, None).map_err(|e| {
        e.to_string()
            .replace(&dir.path().display().to_string(), "DIR")
    })
}

const XOAUTH2: &str = "username = \"news@acme.example\"\nauth = \"xoauth2\"\n";

#[test]
fn a_token_file_is_read_for_the_login() {
    let settings = load(&format!("{XOAUTH2}token_file = \"token.txt\"")).unwrap();
    let relay = settings.relay.unwrap();
    assert_eq!(relay.password.unwrap().expose_secret(), "tok-from-file");
    assert!(matches!(
        relay.auth,
        RelayAuth::XOAuth2 {
            source: TokenSource::File(_),
            lifetime: None
        }
    ));
    let listed: Vec<String> = load(&format!("{XOAUTH2}token_file = \"token.txt\""))
        .unwrap()
        .secret_files()
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(listed[0], "relay.token_file");
}

#[test]
fn a_token_command_runs_from_the_campaign_folder_and_gets_a_lifetime() {
    let settings = load(&format!(
        "{XOAUTH2}token_command = [\"./get-token\", \"--x\"]"
    ))
    .unwrap();
    let relay = settings.relay.unwrap();
    assert_eq!(relay.password.unwrap().expose_secret(), "tok-from-command");
    let RelayAuth::XOAuth2 { source, lifetime } = relay.auth else {
        panic!("not xoauth2");
    };
    assert_eq!(lifetime, Some(std::time::Duration::from_secs(50 * 60)));
    assert!(matches!(source, TokenSource::Command { argv, .. }
        if argv[0].ends_with("/get-token") && argv[1] == "--x"));
    let settings = load(&format!(
        "{XOAUTH2}token_command = [\"./get-token\"]\ntoken_lifetime = \"20m\""
    ))
    .unwrap();
    assert!(matches!(settings.relay.unwrap().auth,
        RelayAuth::XOAuth2 { lifetime: Some(l), .. } if l.as_secs() == 1200));
}

#[test]
fn password_is_the_default_and_takes_no_token_keys() {
    let settings = load("username = \"u\"\npassword_file = \"token.txt\"").unwrap();
    assert_eq!(settings.relay.unwrap().auth, RelayAuth::Password);
}

#[test]
fn wrong_combinations_are_refused_naming_the_keys() {
    let cases = [
        (XOAUTH2.to_owned(),
         "DIR/campaign.toml: relay.token_file, relay.token_env or relay.token_command is required: \
          relay.auth = \"xoauth2\" logs in with an access token"),
        (format!("{XOAUTH2}token_file = \"token.txt\"\ntoken_env = \"T\""),
         "DIR/campaign.toml: relay.token_file and relay.token_env are both set; use one of them"),
        (format!("{XOAUTH2}token_file = \"token.txt\"\npassword_file = \"token.txt\""),
         "DIR/campaign.toml: relay.password_file does not apply here: relay.auth = \"xoauth2\" \
          logs in with an access token (relay.token_file, relay.token_env or \
          relay.token_command), not a password"),
        ("auth = \"xoauth2\"\ntoken_file = \"token.txt\"".to_owned(),
         "DIR/campaign.toml: relay.username is required: relay.auth = \"xoauth2\" logs in as a \
          user (the mailbox the token is for)"),
        ("username = \"u\"\npassword_file = \"token.txt\"\ntoken_env = \"T\"".to_owned(),
         "DIR/campaign.toml: relay.token_env does not apply here: tokens are for relay.auth = \
          \"xoauth2\""),
        (format!("{XOAUTH2}token_file = \"token.txt\"\ntoken_lifetime = \"1h\""),
         "DIR/campaign.toml: relay.token_lifetime does not apply here: it applies to \
          relay.token_command only (a token file or variable is read again whenever the relay \
          refuses the token)"),
        (format!("{XOAUTH2}token_command = []"),
         "DIR/campaign.toml: relay.token_command = \"[]\" is invalid: the program and its \
          arguments, like [\"/usr/local/bin/get-token\", \"--user\", \"news\"]"),
        (format!("{XOAUTH2}token_command = [\"./get-token\"]\ntoken_lifetime = \"0s\""),
         "DIR/campaign.toml: relay.token_lifetime = \"0s\" is not a valid duration: it must be \
          longer than zero"),
        (format!("{XOAUTH2}token_env = \"VOLLEY_TEST_UNSET_TOKEN_VAR\""),
         "DIR/campaign.toml: relay.token_env: environment variable VOLLEY_TEST_UNSET_TOKEN_VAR \
          is not set, empty or not valid UTF-8"),
        (format!("{XOAUTH2}token_file = \"missing.txt\""),
         "DIR/campaign.toml: relay.token_file: cannot read DIR/missing.txt: No such file or \
          directory (os error 2)"),
        (format!("{XOAUTH2}token_command = [\"./missing-command\"]"),
         "DIR/campaign.toml: relay.token_command: cannot run DIR/missing-command: No such file \
          or directory (os error 2)"),
        ("auth = \"oauth\"".to_owned(), "unknown variant `oauth`"),
    ];
    for (lines, want) in cases {
        let err = load(&lines).unwrap_err();
        assert!(err.contains(want), "{lines}:\n got {err}\nwant {want}");
    }
}

#[test]
fn a_token_over_clear_text_to_another_machine_is_refused() {
    let err = load(&format!(
        "{XOAUTH2}token_file = \"token.txt\"\ntls = \"none\""
    ))
    .unwrap_err();
    assert!(
        err.contains("relay.username is set but relay.tls = \"none\""),
        "{err}"
    );
}

#[test]
fn a_bad_token_is_refused_without_showing_it() {
    let err = load(&format!(
        "{XOAUTH2}token_command = [\"echo\", \"two words\"]"
    ))
    .unwrap_err();
    assert_eq!(
        err,
        "DIR/campaign.toml: relay.token_command: the token holds a space, a control character \
         or non-ASCII text, which an OAuth 2.0 access token never does"
    );
}
