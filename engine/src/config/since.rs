//! Points in time given on the command line (`volley events --since`): an RFC 3339 time or a
//! duration back from now, in the same duration syntax as the campaign file. Times are epoch
//! milliseconds (the store's clock unit); `config` stays a leaf, so they are plain `u64`s.

use super::ConfigError;
use std::time::UNIX_EPOCH;

/// Parses `value`, given as `option`, into epoch milliseconds: an RFC 3339 time
/// (`2024-05-01T12:00:00Z`; without an offset it is UTC) or a duration back from `now`
/// (`30m`, `2h`, `7d`). The error names the option and the value.
pub fn parse_since(option: &str, value: &str, now: u64) -> Result<u64, ConfigError> {
    let trimmed = value.trim();
    if let Ok(time) = humantime::parse_rfc3339_weak(trimmed) {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        return Ok(u64::try_from(since.as_millis()).unwrap_or(u64::MAX));
    }
    match humantime::parse_duration(trimmed) {
        Ok(ago) => Ok(now.saturating_sub(u64::try_from(ago.as_millis()).unwrap_or(u64::MAX))),
        Err(_) => Err(ConfigError::BadTime {
            option: option.to_owned(),
            value: value.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_back_from_now() {
        let now = 1_714_564_800_000; // 2024-05-01T12:00:00Z
        for (value, expected) in [
            ("2024-05-01T12:00:00Z", now),
            ("2024-05-01T12:00:00.250Z", now + 250),
            ("2024-05-01 12:00:00", now),
            ("2h", now - 7_200_000),
            (" 7d ", now - 7 * 86_400_000),
            ("90s", now - 90_000),
        ] {
            assert_eq!(
                parse_since("--since", value, now).unwrap(),
                expected,
                "{value}"
            );
        }
    }

    #[test]
    fn a_bad_value_names_the_option_and_the_value() {
        let error = parse_since("--since", "yesterday", 0)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--since") && error.contains("\"yesterday\""),
            "{error}"
        );
        assert!(parse_since("--since", "", 0).is_err());
    }
}
