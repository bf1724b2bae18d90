//! Key layout of the main sled tree (store formats 2 and 3, see `format`). One tree keeps every
//! multi-part update atomic (`apply_batch`): a state change, its queue or retry entry and the
//! campaign counters move together. Recipients are packed a batch of [`BATCH`] rows to a value
//! at load; what changes later lives in small per-(domain, batch) values.
//!
//! ```text
//! m <campaign>                                 → CampaignMeta (poisoned prefix, see `format`)
//! c <campaign>                                 → Counts
//! p <number:u32be> <batch:u32be>               → packed rows     written once at load (`packed`;
//!                                                in tree `packed` from format 3 on, see `format`)
//! w <number:u32be> <domain> 0 <batch:u32be>    → state words     one per row of that domain (`states`)
//! Q <number:u32be> <domain> 0 <batch:u32be>    → ()        that slice has pending rows (the queue)
//! H <number:u32be> <domain> 0 <batch:u32be>    → ()        that slice has rows held for an A/B winner
//! o <number:u32be> <seq:u64be>                 → Overlay   a recipient's attempt details, when any
//! t <campaign> 0 <due:u64be> <domain> 0 <seq>  → ()        retry index, by due time
//! i <message-id>                               → MessageRef  delivered message → recipient (unsigned ids)
//! e <campaign> 0 <at:u64be> <n:u64be>          → Event     bounce and complaint events
//! s <address>                                  → Suppression
//! b <address>                                  → SoftBounces
//! h <report fingerprint>                       → ()        reports already ingested
//! R <relay> 0 <minute:u64be>                   → u32be     messages sent to a relay that minute
//! L <campaign>                                 → TrackingMeta  tracked links, key fingerprint
//! y <campaign>                                 → ViewMeta  templates for "view in browser"
//! T <campaign> 0 <variant:u8>                  → TrackCounts   opens, clicks, unsubscribes
//! E <campaign> 0 <at:u64be> <id:u64be>         → TrackEvent    one open, click or unsubscribe
//! f <campaign> 0 <seq:u64be>                   → Engagement    what one recipient has done
//! D <campaign> 0 <seq:u64be>                   → DailyEvents   events stored for it today (cap)
//! a <campaign> 0 <at:u64be> <id:u64be>         → AttemptGroup  the outcomes recorded together
//! v <campaign> 0 <variant:u8>                  → Counts    recipients by state, per variant
//! A <campaign>                                 → AbRecord  test sent, remainder decided
//! x <campaign>                                 → ExportMark  events exported through when
//! X <campaign>                                 → archive   history kept by `volley gc`
//! G <campaign> 0 <relay name>                  → RelayTally  what a relay did for it (`relay_tallies`)
//! P <destination name>                         → u64be     learned messages per connection
//! k <destination name>                         → DestinationBlock  its policy block
//! W <webhook> 0 [<campaign>]                   → webhook registration and cursors (`webhooks`)
//! U <address> 0 <topic>                        → Suppression  the address left that topic (`topics`)
//! O <campaign>                                 → CampaignTopic  its topic and unsubscribe scope
//! Y <topic>                                    → display name   the known topics
//! N                                            → u32       next campaign number
//! S                                            → [u8; 32]  this store's token secret
//! V                                            → u32be     the store's format (see `format`)
//! ```
//! Campaign ids never contain a zero byte (the loader validates them); nor do domains.
//! Format 1 (read only by `upgrade`) kept one `r` record, `q` queue, `d` de-duplication and
//! `n` number key per recipient, `H` per held recipient, one `a` entry per outcome and
//! gc's `g` blocks.

use crate::store::RecipientKey;

pub(crate) const META: u8 = b'm';
pub(crate) const COUNTS: u8 = b'c';
pub(crate) const PACKED_ROWS: u8 = b'p';
pub(crate) const STATES: u8 = b'w';
pub(crate) const QUEUED: u8 = b'Q';
pub(crate) const OVERLAY: u8 = b'o';
pub(crate) const RETRY: u8 = b't';
pub(crate) const MESSAGE: u8 = b'i';
pub(crate) const EVENT: u8 = b'e';
pub(crate) const SUPPRESSED: u8 = b's';
pub(crate) const SOFT: u8 = b'b';
pub(crate) const INGESTED: u8 = b'h';
pub(crate) const RELAY_USAGE: u8 = b'R';
pub(crate) const TRACKING_META: u8 = b'L';
pub(crate) const VIEW_META: u8 = b'y';
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
pub(crate) const CONNECTION_LIMIT: u8 = b'P';
/// `k <destination name>` → DestinationBlock: the policy block its breaker tripped on.
pub(crate) const DESTINATION_BLOCK: u8 = b'k';
pub(crate) const WEBHOOK: u8 = b'W';
/// `U <address> 0 <topic>` → Suppression: the address left that topic (issue 22).
pub(crate) const TOPIC_SUPPRESSED: u8 = b'U';
/// `O <campaign>` → CampaignTopic: the campaign's topic.
pub(crate) const CAMPAIGN_TOPIC: u8 = b'O';
/// `Y <topic>` → display name: the known topics.
pub(crate) const TOPIC: u8 = b'Y';
/// `K <key> 0 <provider> 0 <day>` → WarmupCounts: one warm-up day (issue 23).
pub(crate) const WARMUP: u8 = b'K';
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

/// A `tag campaign 0 domain 0 seq` key (the retry index's shape, for tests).
#[cfg(test)]
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

/// Rows per packed batch: recipient `seq` lives in batch `seq / BATCH` at row `seq % BATCH`.
pub(crate) const BATCH: u64 = 1_024;

/// `tag number`: the prefix of a campaign's packed, state, queue, held and overlay keys.
pub(crate) fn number_prefix(tag: u8, number: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(48);
    key.push(tag);
    key.extend_from_slice(&number.to_be_bytes());
    key
}

/// `p number batch`.
pub(crate) fn packed_key(number: u32, batch: u32) -> Vec<u8> {
    let mut key = number_prefix(PACKED_ROWS, number);
    key.extend_from_slice(&batch.to_be_bytes());
    key
}

/// `tag number domain 0`: where a domain's slices start.
pub(crate) fn domain_prefix(tag: u8, number: u32, domain: &str) -> Vec<u8> {
    let mut key = number_prefix(tag, number);
    key.extend_from_slice(domain.as_bytes());
    key.push(0);
    key
}

/// `tag number domain 0 batch` (tag `w`, `Q` or `H`).
pub(crate) fn slice_key(tag: u8, number: u32, domain: &str, batch: u32) -> Vec<u8> {
    let mut key = domain_prefix(tag, number, domain);
    key.extend_from_slice(&batch.to_be_bytes());
    key
}

/// Splits a slice key (after `tag number`) into domain and batch.
pub(crate) fn parse_slice_suffix(bytes: &[u8]) -> Option<(String, u32)> {
    let zero = bytes.iter().position(|&b| b == 0)?;
    let domain = std::str::from_utf8(&bytes[..zero]).ok()?.to_owned();
    let batch = u32::from_be_bytes(bytes.get(zero + 1..zero + 5)?.try_into().ok()?);
    Some((domain, batch))
}

/// `o number seq`.
pub(crate) fn overlay_key(number: u32, seq: u64) -> Vec<u8> {
    let mut key = number_prefix(OVERLAY, number);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The batch of recipient `seq` and its row in it.
pub(crate) fn batch_of(seq: u64) -> (u32, u16) {
    // invariant: BATCH fits a u16 and campaigns stay far below 2^32 batches (4 trillion rows).
    ((seq / BATCH) as u32, (seq % BATCH) as u16)
}

/// `tag bytes`: keys of the store-wide sections (suppression, soft bounces, messages).
pub(crate) fn global_key(tag: u8, bytes: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + bytes.len());
    key.push(tag);
    key.extend_from_slice(bytes);
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
        let ka = recipient_key(RETRY, "c1", &a);
        let kb = recipient_key(RETRY, "c1", &b);
        assert!(ka < kb);
        let plen = prefix(RETRY, "c1").len();
        assert_eq!(RecipientKey::from_suffix(&ka[plen..]), Some(a.clone()));
        let rk = retry_key("c1", 42, &a);
        assert_eq!(parse_retry_suffix(&rk[plen..]), Some((42, a)));
        let slice = slice_key(STATES, 7, "a.example", 3);
        assert!(slice < slice_key(STATES, 7, "a.example", 4));
        assert!(slice_key(STATES, 7, "a.example", u32::MAX) < slice_key(STATES, 7, "b.example", 0));
        assert_eq!(
            parse_slice_suffix(&slice[5..]),
            Some(("a.example".to_owned(), 3))
        );
        assert_eq!(batch_of(2_050), (2, 2));
    }
}
