//! Loading the recipient list into the store, once per campaign.

use crate::ab::Assigner;
use crate::campaign::{Audience, Keep, RecipientReader, Row, RowError, SegmentFilter};
use crate::config::CampaignSettings;
use crate::model::{Assignment, Counts};
use crate::store::Store;
use crate::Error;
use std::path::Path;
use std::sync::Arc;

/// Row errors kept for the report; the rest are only counted (and logged).
pub(crate) const KEPT_ROW_ERRORS: usize = 1_000;

/// What loading found.
pub(crate) struct Loaded {
    pub(crate) counts: Counts,
    pub(crate) row_errors: Vec<RowError>,
}

/// Which valid rows of the list are loaded; a row left out is counted `excluded` (not an
/// error: it is simply not part of this send). Every rule that leaves rows out at load
/// (`[campaign] where`, `[audience]`) is a field here and a test in [`keeps`](Self::keeps).
#[derive(Debug, Clone, Default)]
pub(crate) struct RowFilter {
    /// `[campaign] where`, bound to the list's columns.
    pub(crate) segment: Option<SegmentFilter>,
    /// The `[audience]` rules, built from the store when the list loads.
    pub(crate) audience: Option<Arc<Audience>>,
}

impl RowFilter {
    /// The filter of a prepared campaign.
    pub(crate) fn of(campaign: &super::Campaign) -> RowFilter {
        RowFilter {
            segment: campaign.segment().cloned(),
            audience: None,
        }
    }

    /// This filter with the `[audience]` rules too (none kept when there are none).
    pub(crate) fn with_audience(self, audience: Audience) -> RowFilter {
        RowFilter {
            audience: (!audience.is_empty()).then(|| Arc::new(audience)),
            ..self
        }
    }

    /// Whether `row` is loaded: the segment matches it and no audience rule leaves it out.
    pub(crate) fn keeps(&self, row: &Row) -> bool {
        self.segment
            .as_ref()
            .is_none_or(|segment| segment.matches(&row.values))
            && self
                .audience
                .as_ref()
                .is_none_or(|audience| audience.keep(&row.email) == Keep::Keep)
    }
}

/// The assigner of a campaign with variants or a holdout (`None`: everyone gets the one
/// version).
pub(crate) fn assigner_for(settings: &CampaignSettings) -> Option<Assigner> {
    if settings.variants.len() < 2 && settings.holdout <= 0.0 {
        return None;
    }
    let weights: Vec<f64> = if settings.variants.is_empty() {
        vec![1.0]
    } else {
        settings.variants.iter().map(|v| v.weight).collect()
    };
    let assigner = Assigner::new(
        &settings.id,
        &weights,
        settings.ab.as_ref().map(|ab| ab.test_share),
    );
    Some(assigner.with_holdout(settings.holdout))
}

/// Streams the CSV into the store, each recipient with its A/B assignment. With an
/// assigner the list is read twice: once to see every domain's recipients (so each domain
/// is split evenly), once to load. Rows `filter` leaves out are neither observed nor
/// loaded, only counted (`excluded`). Blocking: run it off the async workers.
pub(crate) fn load_list(
    recipients: &Path,
    campaign: &str,
    store: &Store,
    mut assigner: Option<Assigner>,
    filter: &RowFilter,
    on_progress: &dyn Fn(u64),
) -> Result<Loaded, Error> {
    if let Some(assigner) = assigner.as_mut() {
        for row in RecipientReader::open(recipients)?.flatten() {
            if filter.keeps(&row) {
                assigner.observe(&row.domain, &row.email);
            }
        }
    }
    let reader = RecipientReader::open(recipients)?;
    let mut loader = store.start_load(campaign, reader.columns().to_vec())?;
    let (mut invalid, mut duplicate, mut excluded) = (0u64, 0u64, 0u64);
    let mut row_errors = Vec::new();
    for (n, row) in reader.enumerate() {
        match row {
            Ok(row) if !filter.keeps(&row) => {
                excluded += 1;
                tracing::debug!(
                    line = row.line,
                    "row left out by [campaign] where or [audience]"
                );
            }
            Ok(row) => {
                let assignment = match assigner.as_mut() {
                    Some(assigner) => assigner.assign(&row.domain, &row.email),
                    None => Assignment::Variant(0),
                };
                if !loader.add(&row.email, &row.domain, row.values, row.line, assignment)? {
                    duplicate += 1;
                    tracing::info!(line = row.line, address = %row.email, "duplicate recipient skipped");
                }
            }
            Err(error) => {
                invalid += 1;
                tracing::warn!(%error, "invalid row skipped");
                if row_errors.len() < KEPT_ROW_ERRORS {
                    row_errors.push(error);
                }
            }
        }
        if n % 10_000 == 9_999 {
            on_progress(loader.accepted());
        }
    }
    let result = loader.finish(invalid, duplicate, excluded)?;
    Ok(Loaded {
        counts: result.counts,
        row_errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::Segment;

    #[test]
    fn rows_the_segment_leaves_out_are_counted_excluded_not_invalid_nor_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("list.csv");
        std::fs::write(
            &list,
            "email,plan\na@x.example,pro\nb@x.example,free\nnot-an-address,pro\n\
             c@y.example,PRO\nd@y.example,\na@x.example,pro\n",
        )
        .unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let columns = ["email".to_owned(), "plan".to_owned()];
        let filter = RowFilter {
            segment: Some(
                Segment::parse("plan == 'pro'")
                    .unwrap()
                    .bind(&columns)
                    .unwrap(),
            ),
            audience: None,
        };
        let assigner = Some(Assigner::new("c", &[1.0, 1.0], None));
        let loaded = load_list(&list, "c", &store, assigner, &filter, &|_| {}).unwrap();
        let c = &loaded.counts;
        assert_eq!((c.total, c.pending), (2, 2), "{c:?}");
        assert_eq!((c.invalid, c.duplicate, c.excluded), (1, 1, 2), "{c:?}");
        assert_eq!(store.counts("c").unwrap(), Some(c.clone()));
    }
}
