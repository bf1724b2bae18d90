//! The `[timeouts]` section: one SMTP timeout per session phase, for the relay and MX hosts
//! alike. Each key is a duration (`"30s"`, `"2m"`); an absent key keeps its default.

use std::time::Duration;

use super::error::ConfigError;
use super::raw::RawTimeouts;
use super::validate::{parse_duration, Ctx};
use crate::smtp::Timeouts;

/// Checks `[timeouts]`, naming `timeouts.<phase>` in any error.
pub(crate) fn validate_timeouts(ctx: &Ctx, raw: &RawTimeouts) -> Result<Timeouts, ConfigError> {
    let base = Timeouts::default();
    let phase = |key: &str, value: &Option<String>, default: Duration| match value {
        Some(value) => parse_duration(ctx, &format!("timeouts.{key}"), value),
        None => Ok(default),
    };
    Ok(Timeouts {
        connect: phase("connect", &raw.connect, base.connect)?,
        banner: phase("banner", &raw.banner, base.banner)?,
        ehlo: phase("ehlo", &raw.ehlo, base.ehlo)?,
        starttls: phase("starttls", &raw.starttls, base.starttls)?,
        auth: phase("auth", &raw.auth, base.auth)?,
        mail_from: phase("mail_from", &raw.mail_from, base.mail_from)?,
        rcpt_to: phase("rcpt_to", &raw.rcpt_to, base.rcpt_to)?,
        data: phase("data", &raw.data, base.data)?,
        data_end: phase("data_end", &raw.data_end, base.data_end)?,
        rset: phase("rset", &raw.rset, base.rset)?,
        quit: phase("quit", &raw.quit, base.quit)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn ctx() -> Ctx {
        Ctx::new(Path::new("campaign.toml"))
    }

    #[test]
    fn absent_keys_keep_their_defaults() {
        let checked = validate_timeouts(&ctx(), &RawTimeouts::default()).unwrap();
        assert_eq!(checked, Timeouts::default());
        assert_eq!(checked.banner, Duration::from_secs(60));
        assert_eq!(checked.data_end, Duration::from_secs(600));
    }

    #[test]
    fn given_keys_are_parsed_and_the_rest_kept() {
        let raw = RawTimeouts {
            banner: Some("500ms".to_owned()),
            data_end: Some("2m".to_owned()),
            ..RawTimeouts::default()
        };
        let checked = validate_timeouts(&ctx(), &raw).unwrap();
        assert_eq!(checked.banner, Duration::from_millis(500));
        assert_eq!(checked.data_end, Duration::from_secs(120));
        assert_eq!(checked.connect, Timeouts::default().connect);
    }

    #[test]
    fn a_bad_duration_names_its_key() {
        for (raw, key) in [
            (
                RawTimeouts {
                    rcpt_to: Some("soon".to_owned()),
                    ..RawTimeouts::default()
                },
                "timeouts.rcpt_to = \"soon\"",
            ),
            (
                RawTimeouts {
                    quit: Some("0s".to_owned()),
                    ..RawTimeouts::default()
                },
                "timeouts.quit = \"0s\"",
            ),
        ] {
            let error = validate_timeouts(&ctx(), &raw).unwrap_err().to_string();
            assert!(error.contains(key), "{error}");
        }
    }
}
