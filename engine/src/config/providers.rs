//! The `[providers.*]` sections of the `volley serve` file: how the bounce and complaint
//! webhooks of sending providers (Amazon SES via SNS, SendGrid, Mailgun, Postmark) are
//! authenticated. Key material is read here, at load time, from files (or, for shared
//! secrets, environment variables): nothing is fetched at run time and no secret is written
//! in the serve file itself.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, SubjectPublicKeyInfoDer};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::secret_file::warn_if_loose;
use super::validate::Ctx;
use super::ConfigError;

/// The shortest Mailgun signing key or Postmark password accepted, in bytes.
pub const MIN_PROVIDER_SECRET_BYTES: usize = 16;

/// The providers whose webhooks `volley serve` accepts; a provider left out is not served
/// (its path answers 404).
#[derive(Debug, Clone, Default)]
pub struct ProvidersSettings {
    /// `[providers.ses]`: Amazon SES notifications delivered by SNS.
    pub ses: Option<SesSettings>,
    /// `[providers.sendgrid]`: SendGrid's signed Event Webhook.
    pub sendgrid: Option<SendgridSettings>,
    /// `[providers.mailgun]`: Mailgun's signed webhooks.
    pub mailgun: Option<MailgunSettings>,
    /// `[providers.postmark]`: Postmark's webhooks behind HTTP basic authentication.
    pub postmark: Option<PostmarkSettings>,
}

/// `[providers.ses]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SesSettings {
    /// The public keys (DER `SubjectPublicKeyInfo`) of the certificates in `cert_file`: the
    /// SNS signing certificate(s) a notification's signature must verify against. Several
    /// may be given while AWS rotates its certificate.
    pub signing_keys: Vec<Vec<u8>>,
    /// `topic_arns`: the SNS topics accepted (at least one); any other is refused.
    pub topic_arns: Vec<String>,
}

/// `[providers.sendgrid]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendgridSettings {
    /// The Event Webhook's verification key (ECDSA P-256), DER `SubjectPublicKeyInfo`, from
    /// `public_key_file` (the base64 text SendGrid shows, or a PEM `PUBLIC KEY`).
    pub public_key: Vec<u8>,
}

/// `[providers.mailgun]`, checked.
#[derive(Debug, Clone)]
pub struct MailgunSettings {
    /// The HTTP webhook signing key, from `signing_key_file` or `signing_key_env`.
    pub signing_key: SecretString,
}

/// `[providers.postmark]`, checked.
#[derive(Debug, Clone)]
pub struct PostmarkSettings {
    /// `user`: the basic-auth user name put in the webhook URL.
    pub user: String,
    /// The basic-auth password, from `password_file` or `password_env`.
    pub password: SecretString,
}

/// `[providers]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProviders {
    #[serde(default)]
    ses: Option<RawSes>,
    #[serde(default)]
    sendgrid: Option<RawSendgrid>,
    #[serde(default)]
    mailgun: Option<RawMailgun>,
    #[serde(default)]
    postmark: Option<RawPostmark>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSes {
    cert_file: String,
    topic_arns: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSendgrid {
    public_key_file: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMailgun {
    #[serde(default)]
    signing_key_file: Option<String>,
    #[serde(default)]
    signing_key_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPostmark {
    user: String,
    #[serde(default)]
    password_file: Option<String>,
    #[serde(default)]
    password_env: Option<String>,
}

/// Checks `[providers]`, reading every key, certificate and secret it names.
pub(crate) fn validate_providers(
    ctx: &Ctx,
    raw: &RawProviders,
) -> Result<ProvidersSettings, ConfigError> {
    Ok(ProvidersSettings {
        ses: raw.ses.as_ref().map(|r| ses(ctx, r)).transpose()?,
        sendgrid: raw
            .sendgrid
            .as_ref()
            .map(|r| sendgrid(ctx, r))
            .transpose()?,
        mailgun: raw.mailgun.as_ref().map(|r| mailgun(ctx, r)).transpose()?,
        postmark: raw
            .postmark
            .as_ref()
            .map(|r| postmark(ctx, r))
            .transpose()?,
    })
}

fn ses(ctx: &Ctx, raw: &RawSes) -> Result<SesSettings, ConfigError> {
    const KEY: &str = "providers.ses.cert_file";
    const EXPECTED: &str =
        "a PEM file of the SNS signing certificate(s) (-----BEGIN CERTIFICATE-----), RSA keys";
    let path = ctx.path(KEY, &raw.cert_file)?;
    let pem = std::fs::read(&path).map_err(|e| ctx.file_error(KEY, &path, e))?;
    let shown = path.display().to_string();
    let signing_keys = rsa_certificate_keys(&pem).ok_or_else(|| ctx.bad(KEY, &shown, EXPECTED))?;
    if raw.topic_arns.is_empty() {
        return Err(ConfigError::Missing {
            file: ctx.file.clone(),
            key: "providers.ses.topic_arns".to_owned(),
            why: "only notifications of the listed SNS topics are accepted",
        });
    }
    let mut topic_arns = Vec::with_capacity(raw.topic_arns.len());
    for (i, arn) in raw.topic_arns.iter().enumerate() {
        let key = format!("providers.ses.topic_arns[{i}]");
        let arn = ctx.non_empty(&key, arn)?;
        if !arn.starts_with("arn:") || arn.split(':').count() != 6 {
            return Err(ctx.bad(
                &key,
                arn,
                "an SNS topic ARN, like arn:aws:sns:us-east-1:123456789012:ses-bounces",
            ));
        }
        topic_arns.push(arn.to_owned());
    }
    Ok(SesSettings {
        signing_keys,
        topic_arns,
    })
}

fn sendgrid(ctx: &Ctx, raw: &RawSendgrid) -> Result<SendgridSettings, ConfigError> {
    const KEY: &str = "providers.sendgrid.public_key_file";
    const EXPECTED: &str =
        "SendGrid's verification key: its base64 text or a PEM PUBLIC KEY (ECDSA P-256)";
    let path = ctx.path(KEY, &raw.public_key_file)?;
    let text = std::fs::read(&path).map_err(|e| ctx.file_error(KEY, &path, e))?;
    let public_key = p256_public_key(&text)
        .ok_or_else(|| ctx.bad(KEY, &path.display().to_string(), EXPECTED))?;
    Ok(SendgridSettings { public_key })
}

/// The public keys (DER `SubjectPublicKeyInfo`) of the RSA certificates in a PEM file; `None`
/// when it holds none, or anything that is not an RSA certificate.
pub(crate) fn rsa_certificate_keys(pem: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut keys = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.ok()?;
        let parsed = webpki::EndEntityCert::try_from(&cert).ok()?;
        let spki = parsed.subject_public_key_info().as_ref().to_vec();
        aws_lc_rs::signature::ParsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            &spki,
        )
        .ok()?;
        keys.push(spki);
    }
    (!keys.is_empty()).then_some(keys)
}

/// An ECDSA P-256 public key (DER `SubjectPublicKeyInfo`) from a PEM `PUBLIC KEY` or the
/// bare base64 of its DER (as SendGrid shows it).
pub(crate) fn p256_public_key(text: &[u8]) -> Option<Vec<u8>> {
    let der = match SubjectPublicKeyInfoDer::from_pem_slice(text) {
        Ok(der) => der.as_ref().to_vec(),
        Err(_) => {
            let compact: Vec<u8> = text
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .ok()?
        }
    };
    aws_lc_rs::signature::ParsedPublicKey::new(&aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1, &der)
        .ok()?;
    Some(der)
}

fn mailgun(ctx: &Ctx, raw: &RawMailgun) -> Result<MailgunSettings, ConfigError> {
    let signing_key = secret(
        ctx,
        ("providers.mailgun.signing_key_file", &raw.signing_key_file),
        ("providers.mailgun.signing_key_env", &raw.signing_key_env),
        "Mailgun's webhooks are checked with its HTTP webhook signing key",
    )?;
    Ok(MailgunSettings { signing_key })
}

fn postmark(ctx: &Ctx, raw: &RawPostmark) -> Result<PostmarkSettings, ConfigError> {
    let user = ctx.non_empty("providers.postmark.user", &raw.user)?;
    if user.contains(':') || user.chars().any(char::is_control) {
        return Err(ctx.bad(
            "providers.postmark.user",
            user,
            "a user name without ':' or control characters",
        ));
    }
    let password = secret(
        ctx,
        ("providers.postmark.password_file", &raw.password_file),
        ("providers.postmark.password_env", &raw.password_env),
        "Postmark's webhooks carry HTTP basic credentials",
    )?;
    Ok(PostmarkSettings {
        user: user.to_owned(),
        password,
    })
}

/// A shared secret from a file (trailing line breaks dropped; warned about when group or
/// others may read it) or an environment variable: exactly one of the two keys, at least
/// [`MIN_PROVIDER_SECRET_BYTES`] long.
fn secret(
    ctx: &Ctx,
    (file_key, file): (&str, &Option<String>),
    (env_key, env): (&str, &Option<String>),
    why: &'static str,
) -> Result<SecretString, ConfigError> {
    let text = match (file, env) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Conflict {
                file: ctx.file.clone(),
                key: file_key.to_owned(),
                other: env_key.to_owned(),
            })
        }
        (None, None) => {
            return Err(ConfigError::Missing {
                file: ctx.file.clone(),
                key: format!("{file_key} or {env_key}"),
                why,
            })
        }
        (Some(value), None) => read_secret_file(ctx, file_key, &ctx.path(file_key, value)?)?,
        (None, Some(var)) => {
            let var = ctx.non_empty(env_key, var)?;
            std::env::var(var).map_err(|_| ConfigError::EnvVar {
                file: ctx.file.clone(),
                key: env_key.to_owned(),
                var: var.to_owned(),
            })?
        }
    };
    let secret = SecretString::from(text);
    if secret.expose_secret().len() < MIN_PROVIDER_SECRET_BYTES {
        let key = if file.is_some() { file_key } else { env_key };
        return Err(ConfigError::WeakKey {
            file: ctx.file.clone(),
            key: key.to_owned(),
            min: MIN_PROVIDER_SECRET_BYTES,
        });
    }
    Ok(secret)
}

fn read_secret_file(ctx: &Ctx, key: &str, path: &Path) -> Result<String, ConfigError> {
    warn_if_loose(key, path);
    let mut text = std::fs::read_to_string(path).map_err(|e| ctx.file_error(key, path, e))?;
    let kept = text.trim_end_matches(['\r', '\n']).len();
    text.truncate(kept);
    Ok(text)
}

#[cfg(test)]
mod tests;
