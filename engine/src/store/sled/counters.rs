//! Counters as the sled store keeps them (postcard, field by field): [`Counts`] gained
//! fields at its end since stores were first written (`holdout`, `cancelled`), so a record
//! is read as the current layout and, when it is shorter, as the layout before them.

use serde::Deserialize;

use crate::model::Counts;

/// The counters as stores wrote them before `holdout` and `cancelled` existed.
#[derive(Deserialize)]
struct CountsBefore {
    total: u64,
    pending: u64,
    deferred: u64,
    delivered: u64,
    bounced: u64,
    expired: u64,
    suppressed: u64,
    held: u64,
    invalid: u64,
    duplicate: u64,
}

/// Decodes stored counters of either layout; `None` when the bytes are neither.
pub(crate) fn decode(bytes: &[u8]) -> Option<Counts> {
    if let Ok(counts) = postcard::from_bytes::<Counts>(bytes) {
        return Some(counts);
    }
    let old = postcard::from_bytes::<CountsBefore>(bytes).ok()?;
    Some(Counts {
        total: old.total,
        pending: old.pending,
        deferred: old.deferred,
        delivered: old.delivered,
        bounced: old.bounced,
        expired: old.expired,
        suppressed: old.suppressed,
        held: old.held,
        invalid: old.invalid,
        duplicate: old.duplicate,
        holdout: 0,
        cancelled: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Old([u64; 10]);

    #[test]
    fn counters_written_before_cancelled_read_with_none_cancelled() {
        let bytes = postcard::to_stdvec(&Old([10, 1, 2, 3, 1, 1, 1, 1, 4, 5])).unwrap();
        let counts = decode(&bytes).unwrap();
        assert_eq!(counts.total, 10);
        assert_eq!(counts.held, 1);
        assert_eq!(counts.duplicate, 5);
        assert_eq!(counts.cancelled, 0);
    }

    #[test]
    fn counters_of_this_layout_round_trip() {
        let counts = Counts {
            total: 7,
            holdout: 2,
            cancelled: 3,
            ..Counts::default()
        };
        let bytes = postcard::to_stdvec(&counts).unwrap();
        assert_eq!(decode(&bytes), Some(counts));
        assert_eq!(decode(&[0xff]), None);
    }
}
