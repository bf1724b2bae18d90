use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;

use crate::config::{load_serve, ConfigError, ServeSettings};

/// The provider test keys (`fixtures/providers/keys/make.sh` made them with openssl).
fn keys() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/providers/keys")
}

/// A serve file with `providers` appended, in a temp folder holding the test keys and a
/// secret file; loaded, with errors' folder shown as `DIR`.
fn load(providers: &str) -> Result<ServeSettings, String> {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "sns-signing.pem",
        "sendgrid.pub",
        "sendgrid.pub.pem",
        "sns-signing.key",
    ] {
        std::fs::copy(keys().join(name), dir.path().join(name)).unwrap();
    }
    std::fs::write(dir.path().join("mailgun.key"), "key-0123456789abcdef0123\n").unwrap();
    std::fs::write(dir.path().join("short.key"), "short\n").unwrap();
    std::fs::write(
        dir.path().join("tokens.toml"),
        format!(
            "[[token]]\nname = \"crm\"\nscopes = [\"read\"]\nsha256 = \"{}\"\n",
            "0".repeat(64)
        ),
    )
    .unwrap();
    let serve = dir.path().join("volley.toml");
    let api = if providers.is_empty() || providers.starts_with("#no-api") {
        ""
    } else {
        "[api]\nbind = \"127.0.0.1:0\"\ntokens_file = \"tokens.toml\"\n"
    };
    std::fs::write(&serve, format!("store = \"s\"\n{api}{providers}")).unwrap();
    load_serve(&serve).map_err(|e: ConfigError| {
        e.to_string()
            .replace(&dir.path().display().to_string(), "DIR")
    })
}

const SES: &str = "[providers.ses]\ncert_file = \"sns-signing.pem\"\n\
                   topic_arns = [\"arn:aws:sns:us-east-1:123456789012:ses-bounces\"]\n";

#[test]
fn no_providers_section_serves_none() {
    let settings = load("").unwrap();
    let p = settings.providers;
    assert!(p.ses.is_none() && p.sendgrid.is_none() && p.mailgun.is_none() && p.postmark.is_none());
}

#[test]
fn every_provider_is_read() {
    let settings = load(&format!(
        "{SES}[providers.sendgrid]\npublic_key_file = \"sendgrid.pub\"\n\
         [providers.mailgun]\nsigning_key_file = \"mailgun.key\"\n\
         [providers.postmark]\nuser = \"postmark\"\npassword_file = \"mailgun.key\"\n"
    ))
    .unwrap();
    let p = settings.providers;
    let ses = p.ses.unwrap();
    assert_eq!(ses.signing_keys.len(), 1);
    assert_eq!(
        ses.topic_arns,
        ["arn:aws:sns:us-east-1:123456789012:ses-bounces"]
    );
    assert!(!p.sendgrid.unwrap().public_key.is_empty());
    assert_eq!(
        p.mailgun.unwrap().signing_key.expose_secret(),
        "key-0123456789abcdef0123"
    );
    let postmark = p.postmark.unwrap();
    assert_eq!(postmark.user, "postmark");
    assert_eq!(
        postmark.password.expose_secret(),
        "key-0123456789abcdef0123"
    );
}

#[test]
fn a_pem_public_key_does_as_well_as_sendgrids_base64() {
    let pem = load("[providers.sendgrid]\npublic_key_file = \"sendgrid.pub.pem\"\n").unwrap();
    let b64 = load("[providers.sendgrid]\npublic_key_file = \"sendgrid.pub\"\n").unwrap();
    assert_eq!(
        pem.providers.sendgrid.unwrap().public_key,
        b64.providers.sendgrid.unwrap().public_key
    );
}

#[test]
fn a_secret_may_come_from_the_environment() {
    std::env::set_var("VOLLEY_TEST_MAILGUN_KEY", "env-key-0123456789abcdef");
    let settings =
        load("[providers.mailgun]\nsigning_key_env = \"VOLLEY_TEST_MAILGUN_KEY\"\n").unwrap();
    assert_eq!(
        settings
            .providers
            .mailgun
            .unwrap()
            .signing_key
            .expose_secret(),
        "env-key-0123456789abcdef"
    );
}

#[test]
fn bad_values_name_file_and_key() {
    let cases = [
        (
            "[providers.ses]\ncert_file = \"sns-signing.key\"\ntopic_arns = [\"arn:aws:sns:r:1:t\"]\n",
            "DIR/volley.toml: providers.ses.cert_file = \"DIR/sns-signing.key\" is invalid: a PEM file of the SNS signing certificate(s) (-----BEGIN CERTIFICATE-----), RSA keys",
        ),
        (
            "[providers.ses]\ncert_file = \"missing.pem\"\ntopic_arns = [\"arn:aws:sns:r:1:t\"]\n",
            "DIR/volley.toml: providers.ses.cert_file: cannot read DIR/missing.pem: No such file or directory (os error 2)",
        ),
        (
            "[providers.ses]\ncert_file = \"sns-signing.pem\"\ntopic_arns = []\n",
            "DIR/volley.toml: providers.ses.topic_arns is required: only notifications of the listed SNS topics are accepted",
        ),
        (
            "[providers.ses]\ncert_file = \"sns-signing.pem\"\ntopic_arns = [\"ses-bounces\"]\n",
            "DIR/volley.toml: providers.ses.topic_arns[0] = \"ses-bounces\" is invalid: an SNS topic ARN, like arn:aws:sns:us-east-1:123456789012:ses-bounces",
        ),
        (
            "[providers.sendgrid]\npublic_key_file = \"sns-signing.pem\"\n",
            "DIR/volley.toml: providers.sendgrid.public_key_file = \"DIR/sns-signing.pem\" is invalid: SendGrid's verification key: its base64 text or a PEM PUBLIC KEY (ECDSA P-256)",
        ),
        (
            "[providers.mailgun]\n",
            "DIR/volley.toml: providers.mailgun.signing_key_file or providers.mailgun.signing_key_env is required: Mailgun's webhooks are checked with its HTTP webhook signing key",
        ),
        (
            "[providers.mailgun]\nsigning_key_file = \"short.key\"\n",
            "DIR/volley.toml: providers.mailgun.signing_key_file: the key must be at least 16 bytes long",
        ),
        (
            "[providers.mailgun]\nsigning_key_env = \"VOLLEY_TEST_UNSET_VARIABLE\"\n",
            "DIR/volley.toml: providers.mailgun.signing_key_env: environment variable VOLLEY_TEST_UNSET_VARIABLE is not set, empty or not valid UTF-8",
        ),
        (
            "[providers.postmark]\nuser = \"a:b\"\npassword_file = \"mailgun.key\"\n",
            "DIR/volley.toml: providers.postmark.user = \"a:b\" is invalid: a user name without ':' or control characters",
        ),
        (
            "[providers.postmark]\nuser = \"p\"\npassword_file = \"mailgun.key\"\npassword_env = \"X\"\n",
            "DIR/volley.toml: providers.postmark.password_file and providers.postmark.password_env are both set; use one of them",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(load(text).unwrap_err(), expected, "for {text}");
    }
}

#[test]
fn an_unknown_provider_or_key_is_refused_with_its_line() {
    let error = load("[providers.sparkpost]\nkey = \"x\"\n").unwrap_err();
    assert!(error.starts_with("DIR/volley.toml line 5"), "{error}");
    assert!(error.contains("sparkpost"), "{error}");
    let error = load(&format!("{SES}cert_url = \"https://x\"\n")).unwrap_err();
    assert!(error.contains("cert_url"), "{error}");
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let settings = load(
        "[providers.mailgun]\nsigning_key_file = \"mailgun.key\"\n\
         [providers.postmark]\nuser = \"postmark\"\npassword_file = \"mailgun.key\"\n",
    )
    .unwrap();
    let shown = format!("{:?}", settings.providers);
    assert!(!shown.contains("0123456789abcdef"), "{shown}");
}

#[test]
fn providers_need_the_api_listener() {
    let error = load(&format!("#no-api\n{SES}")).unwrap_err();
    assert_eq!(
        error,
        "DIR/volley.toml: api is required: provider webhooks ([providers.*]) are served on the API listener"
    );
}
