//! Loading the recipient list into the store, once per campaign.

use crate::ab::Assigner;
use crate::campaign::{Audience, Keep, RecipientReader, RowError};
use crate::config::CampaignSettings;
use crate::model::{Assignment, Counts};
use crate::store::Store;
use crate::Error;
use std::path::Path;

/// Row errors kept for the report; the rest are only counted (and logged).
pub(crate) const KEPT_ROW_ERRORS: usize = 1_000;

/// What loading found.
pub(crate) struct Loaded {
    pub(crate) counts: Counts,
    pub(crate) row_errors: Vec<RowError>,
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

/// Streams the CSV into the store, each recipient with its A/B assignment, leaving out the
/// rows `audience` excludes. With an assigner the list is read twice: once to see every
/// domain's recipients (so each domain is split evenly), once to load. Blocking: run it off
/// the async workers.
pub(crate) fn load_list(
    recipients: &Path,
    campaign: &str,
    store: &Store,
    (mut assigner, audience): (Option<Assigner>, &Audience),
    on_progress: &dyn Fn(u64),
) -> Result<Loaded, Error> {
    if let Some(assigner) = assigner.as_mut() {
        for row in RecipientReader::open(recipients)?.flatten() {
            if audience.keep(&row.email) == Keep::Keep {
                assigner.observe(&row.domain, &row.email);
            }
        }
    }
    // Rows the audience leaves out (the lead wires this into `Counts::excluded`).
    let mut excluded = 0u64;
    let reader = RecipientReader::open(recipients)?;
    let mut loader = store.start_load(campaign, reader.columns().to_vec())?;
    let (mut invalid, mut duplicate) = (0u64, 0u64);
    let mut row_errors = Vec::new();
    for (n, row) in reader.enumerate() {
        match row {
            Ok(row) if audience.keep(&row.email) != Keep::Keep => {
                excluded += 1;
                tracing::debug!(line = row.line, address = %row.email, "left out by [audience]");
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
    if !audience.is_empty() {
        tracing::info!(campaign, excluded, "rows left out by [audience]");
    }
    let result = loader.finish(invalid, duplicate)?;
    Ok(Loaded {
        counts: result.counts,
        row_errors,
    })
}
