//! One-off commands that never touch the store: `--dry-run` (write signed `.eml` files) and
//! `test-send` (one message to one address, with a transcript).

use super::Campaign;
use crate::campaign::{RecipientReader, RowError};
use crate::delivery::{
    connect_relay, open_direct, reply_record, DeliveryError, MxResolver, RelayDialError,
};
use crate::model::ReplyRecord;
use crate::shaping::ShapingPolicy;
use crate::smtp::{self, Envelope};
use crate::Error;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What a dry run wrote.
#[derive(Debug, Clone)]
pub struct DryRunReport {
    /// The folder the messages went to.
    pub dir: PathBuf,
    /// Messages written.
    pub written: u64,
    /// Rows skipped as duplicates.
    pub duplicate: u64,
    /// Valid rows left out by `[campaign] where` (no message written).
    pub excluded: u64,
    /// Invalid rows (the first ones; all are counted in `invalid`).
    pub row_errors: Vec<RowError>,
    /// Invalid rows in all.
    pub invalid: u64,
    /// Recipients in the holdout (`[ab] holdout`): no message written, as none is sent.
    pub holdout: u64,
}

/// Renders and signs every message of the list into `dir` as `.eml` files, sending nothing.
pub fn dry_run(campaign: &Campaign, dir: &Path) -> Result<DryRunReport, Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_owned(),
        source,
    })?;
    let reader = RecipientReader::open(&campaign.settings.recipients)?;
    let mut report = DryRunReport {
        dir: dir.to_owned(),
        written: 0,
        duplicate: 0,
        excluded: 0,
        row_errors: Vec::new(),
        invalid: 0,
        holdout: 0,
    };
    let mut assigner = dry_run_assigner(campaign);
    let filter = super::load::RowFilter::of(campaign);
    let mut seen = HashSet::new();
    for row in reader {
        let row = match row {
            Ok(row) if !filter.keeps(&row) => {
                report.excluded += 1;
                continue;
            }
            Ok(row) => row,
            Err(error) => {
                report.invalid += 1;
                if report.row_errors.len() < super::load::KEPT_ROW_ERRORS {
                    report.row_errors.push(error);
                }
                continue;
            }
        };
        if !seen.insert(row.email.clone()) {
            report.duplicate += 1;
            continue;
        }
        let variant = match assigner.as_mut().map(|a| a.assign(&row.domain, &row.email)) {
            Some(
                crate::model::Assignment::Variant(v)
                | crate::model::Assignment::Held { fallback: v },
            ) => v,
            Some(crate::model::Assignment::Holdout) => {
                report.holdout += 1;
                continue;
            }
            None => 0,
        };
        let composed =
            campaign
                .messages
                .compose(&row.email, &row.values, (0, variant, row.line), None)?;
        let path = dir.join(format!(
            "{:06}-{}.eml",
            report.written + 1,
            file_name(&row.email)
        ));
        std::fs::write(&path, &composed.bytes).map_err(|source| Error::Io { path, source })?;
        report.written += 1;
    }
    Ok(report)
}

/// The A/B assigner of a dry run, for a campaign with variants or a holdout: it sees the
/// whole list first, as the loader does, so each row gets the variant (or the holdout) a
/// send would give it.
fn dry_run_assigner(campaign: &Campaign) -> Option<crate::ab::Assigner> {
    super::load::assigner_for(&campaign.settings).map(|_| {
        let weights: Vec<f64> = campaign
            .settings
            .variants
            .iter()
            .map(|v| v.weight)
            .collect();
        let mut assigner = crate::ab::Assigner::new(campaign.id(), &weights, None)
            .with_holdout(campaign.settings.holdout);
        let filter = super::load::RowFilter::of(campaign);
        if let Ok(list) = RecipientReader::open(&campaign.settings.recipients) {
            for row in list.flatten().filter(|row| filter.keeps(row)) {
                assigner.observe(&row.domain, &row.email);
            }
        }
        assigner
    })
}

/// An address as a file name: anything but letters, digits and `@.-_+` becomes `_`.
fn file_name(address: &str) -> String {
    address
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@.-_+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What a test send did.
#[derive(Debug, Clone)]
pub struct TestSendReport {
    /// The address it went to.
    pub to: String,
    /// The CSV line whose fields were used.
    pub line: u64,
    /// The final reply for the recipient.
    pub reply: ReplyRecord,
    /// True when the server accepted the message.
    pub accepted: bool,
    /// The SMTP exchange, credentials and body left out.
    pub transcript: Vec<String>,
}

/// Sends one message, rendered with data row `row` (1-based) of the list as A/B variant
/// `variant` (default: the first), to `to` through the relay (or straight to its domain's MX
/// hosts without one); the store is not touched.
pub async fn test_send(
    campaign: &Campaign,
    to: &str,
    row: usize,
    variant: Option<&str>,
) -> Result<TestSendReport, Error> {
    let (to, _) = crate::campaign::normalize_address(to).map_err(|error| Error::BadAddress {
        address: to.to_owned(),
        reason: error.to_string(),
    })?;
    let index = match variant {
        Some(id) => campaign.variant_index(id)?,
        None => 0,
    };
    let rendered = render_version(campaign, row, Some(&to), index)?;
    let mut session = match campaign.settings.relay {
        Some(_) => {
            let (config, _) = campaign.relay_session(true)?;
            let token = campaign.relay_token();
            match connect_relay(&config, token.as_deref()).await {
                Ok(session) => session,
                Err(RelayDialError::Smtp(error)) if error.is_configuration() => {
                    return Err(
                        DeliveryError::relay_refused(&config.host, config.port, error).into(),
                    )
                }
                Err(RelayDialError::Smtp(error)) => return Err(error.into()),
                Err(RelayDialError::Token(source)) => {
                    return Err(DeliveryError::Token {
                        host: config.host.clone(),
                        port: config.port,
                        source,
                    }
                    .into())
                }
            }
        }
        None => open_direct_for(campaign, &to).await?,
    };
    let envelope = Envelope {
        mail_from: campaign.settings.from.address.clone(),
        rcpt_to: vec![to.clone()],
    };
    let transaction = session.send(&envelope, &rendered.bytes).await?;
    let decided = transaction.outcome_for(0).clone();
    let mut transcript = session.take_transcript();
    if session.is_usable() {
        let _ = session.quit().await;
    }
    transcript.retain(|line| !line.is_empty());
    Ok(TestSendReport {
        to,
        line: rendered.line,
        accepted: decided.is_positive(),
        reply: reply_record(&decided),
        transcript,
    })
}

/// A session straight to the MX of `to`'s domain, recording its transcript.
async fn open_direct_for(campaign: &Campaign, to: &str) -> Result<smtp::Session, Error> {
    let settings = &campaign.settings;
    let domain = to.rsplit_once('@').map_or(to, |(_, d)| d);
    let mut mx = super::plan::mx_connect(settings, MxResolver::new(&settings.dns)?)?;
    mx.record_transcript = true;
    let rule = ShapingPolicy::new(settings.shaping.clone());
    let tls = rule.rule_for(domain, &[]).1.tls.unwrap_or(settings.mx.tls);
    let sts = super::plan::mta_sts(settings, &mx);
    open_direct(domain, tls, &mx, sts.as_ref())
        .await
        .map_err(|reason| Error::Direct {
            domain: domain.to_owned(),
            reason,
        })
}

/// One message rendered from one row of the list.
#[derive(Debug, Clone)]
pub struct RenderedRow {
    /// The CSV line whose fields were used.
    pub line: u64,
    /// The message, signed.
    pub bytes: Vec<u8>,
}

/// Renders and signs the message for valid data row `row` (1-based) of the list, addressed
/// to `to` instead of the row's own address when given.
pub fn render_row(campaign: &Campaign, row: usize, to: Option<&str>) -> Result<RenderedRow, Error> {
    render_version(campaign, row, to, 0)
}

/// [`render_row`] as A/B variant `variant` (an index).
fn render_version(
    campaign: &Campaign,
    row: usize,
    to: Option<&str>,
    variant: u8,
) -> Result<RenderedRow, Error> {
    let reader = RecipientReader::open(&campaign.settings.recipients)?;
    let found = reader
        .filter_map(Result::ok)
        .nth(row.saturating_sub(1))
        .ok_or_else(|| Error::NoSuchRow {
            recipients: campaign.settings.recipients.clone(),
            row,
        })?;
    let to = to.unwrap_or(&found.email);
    let composed = campaign
        .messages
        .compose(to, &found.values, (0, variant, found.line), None)?;
    Ok(RenderedRow {
        line: found.line,
        bytes: composed.bytes,
    })
}
