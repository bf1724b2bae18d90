//! Counters as the sled store keeps them (postcard, field by field): [`Counts`] gained
//! fields at its end since stores were first written (`holdout` and `cancelled`, then
//! `excluded`), so a record is read as the current layout and, when it is shorter, as each
//! layout before it in turn.

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

/// The counters as stores wrote them before `excluded` existed: [`CountsBefore`] and the
/// two fields that came next.
#[derive(Deserialize)]
struct CountsBeforeFields {
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
    holdout: u64,
    cancelled: u64,
}

/// The counters as stores wrote them before `waiting` existed: [`CountsBeforeFields`] and
/// `excluded`.
#[derive(Deserialize)]
struct CountsBeforeWaiting {
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
    holdout: u64,
    cancelled: u64,
    excluded: u64,
}

/// Decodes stored counters of any layout; `None` when the bytes are none of them.
pub(crate) fn decode(bytes: &[u8]) -> Option<Counts> {
    if let Ok(counts) = postcard::from_bytes::<Counts>(bytes) {
        return Some(counts);
    }
    if let Ok(old) = postcard::from_bytes::<CountsBeforeWaiting>(bytes) {
        return Some(Counts {
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
            holdout: old.holdout,
            cancelled: old.cancelled,
            excluded: old.excluded,
            waiting: 0,
        });
    }
    if let Ok(old) = postcard::from_bytes::<CountsBeforeFields>(bytes) {
        return Some(Counts {
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
            holdout: old.holdout,
            cancelled: old.cancelled,
            excluded: 0,
            waiting: 0,
        });
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
        ..Counts::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Old([u64; 10]);

    #[derive(serde::Serialize)]
    struct BeforeExcluded([u64; 12]);

    #[derive(serde::Serialize)]
    struct BeforeWaiting([u64; 13]);

    #[test]
    fn counters_written_before_waiting_read_with_none_waiting() {
        let bytes =
            postcard::to_stdvec(&BeforeWaiting([10, 1, 2, 3, 1, 1, 1, 1, 4, 5, 6, 7, 8])).unwrap();
        let counts = decode(&bytes).unwrap();
        assert_eq!((counts.total, counts.duplicate), (10, 5));
        assert_eq!((counts.cancelled, counts.excluded), (7, 8));
        assert_eq!(counts.waiting, 0);
    }

    #[test]
    fn counters_written_before_cancelled_read_with_none_cancelled() {
        let bytes = postcard::to_stdvec(&Old([10, 1, 2, 3, 1, 1, 1, 1, 4, 5])).unwrap();
        let counts = decode(&bytes).unwrap();
        assert_eq!(counts.total, 10);
        assert_eq!(counts.held, 1);
        assert_eq!(counts.duplicate, 5);
        assert_eq!(counts.cancelled, 0);
        assert_eq!(counts.excluded, 0);
    }

    #[test]
    fn counters_written_before_excluded_read_with_none_excluded() {
        let bytes =
            postcard::to_stdvec(&BeforeExcluded([10, 1, 2, 3, 1, 1, 1, 1, 4, 5, 6, 7])).unwrap();
        let counts = decode(&bytes).unwrap();
        assert_eq!((counts.total, counts.duplicate), (10, 5));
        assert_eq!((counts.holdout, counts.cancelled), (6, 7));
        assert_eq!(counts.excluded, 0);
    }

    #[test]
    fn counters_of_this_layout_round_trip() {
        let counts = Counts {
            total: 7,
            holdout: 2,
            cancelled: 3,
            excluded: 4,
            waiting: 5,
            ..Counts::default()
        };
        let bytes = postcard::to_stdvec(&counts).unwrap();
        assert_eq!(decode(&bytes), Some(counts));
        assert_eq!(decode(&[0xff]), None);
    }
}
