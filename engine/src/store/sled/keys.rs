//! Key layout of the single sled tree. One tree keeps every multi-part update atomic
//! (`apply_batch`): a record, its queue or retry entry and the campaign counters move together.
//!
//! ```text
//! m <campaign>                                 → CampaignMeta
//! c <campaign>                                 → Counts
//! r <campaign> 0 <domain> 0 <seq:u64be>        → RecipientRecord
//! q <campaign> 0 <domain> 0 <seq:u64be>        → ()        pending queue, grouped by domain
//! t <campaign> 0 <due:u64be> <domain> 0 <seq>  → ()        retry index, by due time
//! d <campaign> 0 <address>                     → ()        de-duplication
//! n <campaign number:u32be> <seq:u64be>        → domain    recipient by number (VERP tokens)
//! i <message-id>                               → MessageRef  delivered message → recipient
//! e <campaign> 0 <at:u64be> <n:u64be>          → Event     bounce and complaint events
//! s <address>                                  → Suppression
//! b <address>                                  → SoftBounces
//! h <report fingerprint>                       → ()        reports already ingested
//! R <relay> 0 <minute:u64be>                   → u32be     messages sent to a relay that minute
//! L <campaign>                                 → TrackingMeta  tracked links, key fingerprint
//! T <campaign> 0 <variant:u8>                  → TrackCounts   opens, clicks, unsubscribes
//! E <campaign> 0 <at:u64be> <id:u64be>         → TrackEvent    one open, click or unsubscribe
//! f <campaign> 0 <seq:u64be>                   → Engagement    what one recipient has done
//! D <campaign> 0 <seq:u64be>                   → DailyEvents   events stored for it today (cap)
//! a <campaign> 0 <at:u64be> <id:u64be>         → Attempt   one delivery outcome (attempt log)
//! v <campaign> 0 <variant:u8>                  → Counts    recipients by state, per variant
//! H <campaign> 0 <domain> 0 <seq:u64be>        → ()        held for an A/B test's winner
//! A <campaign>                                 → AbRecord  test sent, remainder decided
//! x <campaign>                                 → ExportMark  events exported through when
//! X <campaign>                                 → archive   history kept by `volley gc`
//! g <campaign number:u32be> <block:u64be>      → [Packed]  a collected campaign's recipients
//! P <destination name>                        → u64be     learned messages per connection
//! N                                            → u32       next campaign number
//! S                                            → [u8; 32]  this store's token secret
//! V                                            → u32be     the store's format (see `format`)
//! ```
//! Campaign ids never contain a zero byte (the loader validates them).

use crate::store::RecipientKey;

pub(crate) const META: u8 = b'm';
pub(crate) const COUNTS: u8 = b'c';
pub(crate) const RECORD: u8 = b'r';
pub(crate) const QUEUE: u8 = b'q';
pub(crate) const RETRY: u8 = b't';
pub(crate) const DEDUPE: u8 = b'd';
pub(crate) const BY_NUMBER: u8 = b'n';
pub(crate) const MESSAGE: u8 = b'i';
pub(crate) const EVENT: u8 = b'e';
pub(crate) const SUPPRESSED: u8 = b's';
pub(crate) const SOFT: u8 = b'b';
pub(crate) const INGESTED: u8 = b'h';
pub(crate) const RELAY_USAGE: u8 = b'R';
pub(crate) const TRACKING_META: u8 = b'L';
pub(crate) const TRACK_COUNTS: u8 = b'T';
pub(crate) const TRACK_EVENT: u8 = b'E';
pub(crate) const ENGAGEMENT: u8 = b'f';
pub(crate) const TRACK_DAILY: u8 = b'D';
pub(crate) const ATTEMPT: u8 = b'a';
pub(crate) const VARIANT_COUNTS: u8 = b'v';
pub(crate) const HELD: u8 = b'H';
pub(crate) const AB: u8 = b'A';
pub(crate) const EXPORT_MARK: u8 = b'x';
pub(crate) const ARCHIVE: u8 = b'X';
pub(crate) const PACKED: u8 = b'g';
pub(crate) const CONNECTION_LIMIT: u8 = b'P';
pub(crate) const NEXT_NUMBER: &[u8] = b"N";
pub(crate) const SECRET: &[u8] = b"S";
pub(crate) const FORMAT: &[u8] = b"V";

impl RecipientKey {
    /// `domain 0 seq` as stored after a prefix.
    fn suffix(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.domain.as_bytes());
        out.push(0);
        out.extend_from_slice(&self.seq.to_be_bytes());
    }

    /// Parses the `domain 0 seq` suffix of a key.
    pub(crate) fn from_suffix(bytes: &[u8]) -> Option<Self> {
        let zero = bytes.iter().position(|&b| b == 0)?;
        let domain = std::str::from_utf8(&bytes[..zero]).ok()?.to_owned();
        let seq = u64::from_be_bytes(bytes.get(zero + 1..zero + 9)?.try_into().ok()?);
        Some(Self { domain, seq })
    }
}

/// `tag campaign` (meta and counts).
pub(crate) fn campaign_key(tag: u8, campaign: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + campaign.len());
    key.push(tag);
    key.extend_from_slice(campaign.as_bytes());
    key
}

/// `tag campaign 0`: the prefix of every per-recipient key of a campaign.
pub(crate) fn prefix(tag: u8, campaign: &str) -> Vec<u8> {
    let mut key = campaign_key(tag, campaign);
    key.push(0);
    key
}

/// A record or queue key.
pub(crate) fn recipient_key(tag: u8, campaign: &str, key: &RecipientKey) -> Vec<u8> {
    let mut out = prefix(tag, campaign);
    key.suffix(&mut out);
    out
}

/// A retry-index key: due time first so a range scan yields what is due.
pub(crate) fn retry_key(campaign: &str, due: u64, key: &RecipientKey) -> Vec<u8> {
    let mut out = prefix(RETRY, campaign);
    out.extend_from_slice(&due.to_be_bytes());
    key.suffix(&mut out);
    out
}

/// Splits a retry-index key (after its prefix) into due time and recipient.
pub(crate) fn parse_retry_suffix(bytes: &[u8]) -> Option<(u64, RecipientKey)> {
    let due = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    Some((due, RecipientKey::from_suffix(bytes.get(8..)?)?))
}

/// A de-duplication key.
pub(crate) fn dedupe_key(campaign: &str, address: &str) -> Vec<u8> {
    let mut out = prefix(DEDUPE, campaign);
    out.extend_from_slice(address.as_bytes());
    out
}

/// `tag bytes`: keys of the store-wide sections (suppression, soft bounces, messages).
pub(crate) fn global_key(tag: u8, bytes: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + bytes.len());
    key.push(tag);
    key.extend_from_slice(bytes);
    key
}

/// A recipient-by-number key.
pub(crate) fn number_key(number: u32, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(13);
    key.push(BY_NUMBER);
    key.extend_from_slice(&number.to_be_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_by_domain_then_sequence() {
        let a = RecipientKey {
            domain: "a.example".into(),
            seq: 300,
        };
        let b = RecipientKey {
            domain: "b.example".into(),
            seq: 1,
        };
        let ka = recipient_key(QUEUE, "c1", &a);
        let kb = recipient_key(QUEUE, "c1", &b);
        assert!(ka < kb);
        let plen = prefix(QUEUE, "c1").len();
        assert_eq!(RecipientKey::from_suffix(&ka[plen..]), Some(a.clone()));
        let rk = retry_key("c1", 42, &a);
        assert_eq!(parse_retry_suffix(&rk[plen..]), Some((42, a)));
    }
}
