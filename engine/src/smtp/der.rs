//! Just enough DER to tell a person about a certificate: its validity dates and whether it
//! is self-issued (issuer and subject the same). Used for pinned certificates, whose dates
//! are checked here (webpki only checks dates while building a chain), and to word refusals.
//! Never trusted for anything else: signatures and names are webpki's job.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a certificate says about itself, read from its `TBSCertificate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CertDates {
    /// Start of validity, seconds since the Unix epoch (may be negative before 1970).
    pub(crate) not_before: i64,
    /// End of validity, seconds since the Unix epoch.
    pub(crate) not_after: i64,
    /// Issuer and subject are the same name: a self-signed (or self-issued) certificate.
    pub(crate) self_issued: bool,
}

/// Reads validity and issuer/subject from a DER certificate; `None` when it is malformed.
pub(crate) fn read(cert: &[u8]) -> Option<CertDates> {
    let (cert, _) = expect(cert, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    let (tag, _, mut rest) = tlv(tbs)?;
    if tag == VERSION {
        let (_serial, after) = expect(rest, INTEGER)?;
        rest = after;
    } else if tag != INTEGER {
        return None;
    }
    let (_algorithm, rest) = expect(rest, SEQUENCE)?;
    let (issuer, rest) = expect(rest, SEQUENCE)?;
    let (validity, rest) = expect(rest, SEQUENCE)?;
    let (subject, _) = expect(rest, SEQUENCE)?;
    let (not_before, after) = time(validity)?;
    let (not_after, _) = time(after)?;
    Some(CertDates {
        not_before,
        not_after,
        self_issued: issuer == subject,
    })
}

/// A time in seconds since the Unix epoch as a [`SystemTime`].
pub(crate) fn system_time(seconds: i64) -> SystemTime {
    let magnitude = Duration::from_secs(seconds.unsigned_abs());
    if seconds >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xA0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// One tag-length-value: the tag, the content and what follows.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b))
    };
    if rest.len() < len {
        return None;
    }
    let (content, after) = rest.split_at(len);
    Some((tag, content, after))
}

/// The content of a TLV with tag `want`, and what follows it.
fn expect(input: &[u8], want: u8) -> Option<(&[u8], &[u8])> {
    let (tag, content, rest) = tlv(input)?;
    (tag == want).then_some((content, rest))
}

/// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as Unix seconds.
fn time(input: &[u8]) -> Option<(i64, &[u8])> {
    let (tag, content, rest) = tlv(input)?;
    let text = std::str::from_utf8(content).ok()?;
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest_digits) = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy: i32 = digits.get(..2)?.parse().ok()?;
            (
                if yy >= 50 { 1900 + yy } else { 2000 + yy },
                digits.get(2..)?,
            )
        }
        (GENERALIZED_TIME, 14) => (digits.get(..4)?.parse().ok()?, digits.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| -> Option<u32> { rest_digits.get(i..i + 2)?.parse().ok() };
    let date = chrono::NaiveDate::from_ymd_opt(year, field(0)?, field(2)?)?;
    let at = date.and_hms_opt(field(4)?, field(6)?, field(8)?)?;
    Some((at.and_utc().timestamp(), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dates_and_self_issued_from_an_rcgen_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["relay.test".to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2001, 2, 3);
        params.not_after = rcgen::date_time_ymd(2060, 7, 8);
        let cert = params.self_signed(&key).unwrap();
        let dates = read(cert.der()).unwrap();
        assert_eq!(dates.not_before, 981_158_400); // 2001-02-03T00:00:00Z
        assert_eq!(dates.not_after, 2_856_470_400); // 2060-07-08T00:00:00Z (GeneralizedTime)
        assert!(dates.self_issued);
    }

    #[test]
    fn malformed_input_is_none_not_a_panic() {
        assert_eq!(read(b""), None);
        assert_eq!(read(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]), None);
        assert_eq!(read(&[0x30, 0x03, 0x30, 0x01, 0x02]), None);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.test".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der();
        for len in 0..der.len() {
            assert_eq!(read(&der[..len]), None, "cut at {len}");
        }
    }
}
