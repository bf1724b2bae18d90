//! Counters as the sled store keeps them (postcard, field by field): [`Counts`] gained
//! fields at its end since stores were first written (`holdout` and `cancelled`, then
//! `excluded`, then `waiting`), so a record is read as the current layout and, when it is
//! shorter, as the layout before it with the same number of fields.

use crate::model::Counts;

/// How many fields [`Counts`] has: all `u64`, stored in declaration order.
const FIELDS: usize = 14;

/// How many fields each earlier layout had, newest first: before `waiting`, before
/// `excluded`, and before `holdout` and `cancelled`.
const OLDER_LAYOUTS: [usize; 3] = [13, 12, 10];

/// Decodes stored counters of any layout; `None` when the bytes are none of them.
///
/// An older record is the leading fields of today's layout, so it is read as a run of
/// postcard varints, padded with zeros to today's field count and decoded as [`Counts`].
pub(crate) fn decode(bytes: &[u8]) -> Option<Counts> {
    if let Ok(counts) = postcard::from_bytes::<Counts>(bytes) {
        return Some(counts);
    }
    let mut fields = [0u64; FIELDS];
    let mut read = 0;
    let mut rest = bytes;
    while !rest.is_empty() {
        let slot = fields.get_mut(read)?;
        let (value, tail) = postcard::take_from_bytes::<u64>(rest).ok()?;
        *slot = value;
        read += 1;
        rest = tail;
    }
    if !OLDER_LAYOUTS.contains(&read) {
        return None;
    }
    postcard::from_bytes(&postcard::to_stdvec(&fields).ok()?).ok()
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
    fn field_count_is_that_of_counts() {
        // Every zero is one varint byte.
        assert_eq!(
            postcard::to_stdvec(&Counts::default()).unwrap().len(),
            FIELDS
        );
    }

    #[test]
    fn records_of_no_known_layout_are_refused() {
        let bytes = postcard::to_stdvec(&[1u64; 11]).unwrap();
        assert_eq!(decode(&bytes), None);
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
