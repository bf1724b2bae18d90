//! Bounce intake: parse delivery status notifications and complaints, tie each to the
//! recipient it concerns (by VERP token, else by the returned Message-ID), and record it;
//! and the bounce report of a campaign (`volley bounces report`).

use crate::bounce::{self, Action, BounceReport, BouncedRecipient, Classifier, ReportKind, Verp};
use crate::config::CampaignSettings;
use crate::model::{now_millis, Category, RecipientState};
use crate::store::{EventKind, MessageRef, OutcomePolicy, ReportEffect, Store};
use crate::Error;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What an ingest run did.
#[derive(Debug, Clone, Default)]
pub struct IngestSummary {
    /// Messages read.
    pub messages: u64,
    /// Messages skipped because they were ingested before.
    pub already_ingested: u64,
    /// Messages that are not bounces or complaints.
    pub not_bounces: u64,
    /// Recipients newly bounced.
    pub bounced: u64,
    /// Delays noted.
    pub delayed: u64,
    /// Complaints noted (addresses suppressed).
    pub complaints: u64,
    /// Reports about recipients already bounced.
    pub unchanged: u64,
    /// What matched, one line per recipient.
    pub matched: Vec<String>,
    /// What did not match, and why.
    pub unmatched: Vec<String>,
}

/// Ties reports to recipients of the campaigns in one store.
pub struct Intake {
    store: Store,
    classifier: Classifier,
    policy: OutcomePolicy,
    verp: Verp,
    /// The campaign file's `[warmup]`: complaints count against its key.
    warmup: Option<crate::config::WarmupSettings>,
}

impl Intake {
    /// An intake for `store` with a campaign's `[bounces]` and `[retry]` settings (its rules
    /// file, soft-bounce limit), or the defaults for a bare store.
    pub fn open(store: &Store, settings: Option<&CampaignSettings>) -> Result<Self, Error> {
        match settings {
            Some(settings) => Ok(Intake {
                warmup: settings.warmup.clone(),
                ..Self::new(
                    store,
                    super::classifier_for(settings)?,
                    super::outcome_policy(settings),
                )?
            }),
            None => Self::new(store, Classifier::builtin(), OutcomePolicy::default()),
        }
    }

    /// An intake for `store`, classifying with `classifier`.
    pub fn new(
        store: &Store,
        classifier: Classifier,
        policy: OutcomePolicy,
    ) -> Result<Self, Error> {
        let verp = Verp::new(&store.secret()?, "bounces.invalid");
        Ok(Intake {
            store: store.clone(),
            classifier,
            policy,
            verp,
            warmup: None,
        })
    }

    /// Reads every message under `paths` (files, mboxes, Maildirs) and ingests it.
    pub fn ingest_paths(&self, paths: &[PathBuf]) -> Result<IngestSummary, Error> {
        let mut summary = IngestSummary::default();
        for path in paths {
            for message in bounce::read_messages(path)? {
                self.ingest_message(&message.source, &message.bytes, &mut summary)?;
            }
        }
        self.store.flush_blocking()?;
        Ok(summary)
    }

    /// Ingests one message; ingesting the same bytes twice changes nothing.
    pub fn ingest_message(
        &self,
        source: &str,
        bytes: &[u8],
        summary: &mut IngestSummary,
    ) -> Result<(), Error> {
        summary.messages += 1;
        let fingerprint = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
        if self.store.is_ingested(fingerprint.as_ref())? {
            summary.already_ingested += 1;
            return Ok(());
        }
        let report = bounce::parse_message(bytes, &self.classifier);
        if report.kind == ReportKind::NotABounce || report.recipients.is_empty() {
            summary.not_bounces += 1;
            summary
                .unmatched
                .push(format!("{source}: not a bounce or complaint"));
            self.store.mark_ingested(fingerprint.as_ref())?;
            return Ok(());
        }
        let Some((reference, how)) = self.attribute(&report)? else {
            summary.unmatched.push(format!(
                "{source}: {} for {} matches no recipient (no valid VERP token, Message-ID {})",
                kind_word(&report),
                report
                    .recipients
                    .iter()
                    .map(|r| r.address.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                report
                    .original_message_id
                    .as_deref()
                    .map_or("absent".to_owned(), |id| format!("<{id}> unknown")),
            ));
            self.store.mark_ingested(fingerprint.as_ref())?;
            return Ok(());
        };
        let recipient = pick_recipient(&report, &self.store, &reference)?;
        if let Some(recipient) = recipient {
            self.apply(source, &reference, recipient, how, summary)?;
        }
        self.store.mark_ingested(fingerprint.as_ref())?;
        Ok(())
    }

    fn apply(
        &self,
        source: &str,
        reference: &MessageRef,
        recipient: &BouncedRecipient,
        how: &str,
        summary: &mut IngestSummary,
    ) -> Result<(), Error> {
        let kind = match recipient.action {
            Action::Failed => EventKind::Bounce,
            Action::Delayed => EventKind::Delay,
            Action::Complaint => EventKind::Complaint,
            Action::Delivered | Action::Relayed | Action::Expanded => return Ok(()),
        };
        let reply = recipient.reply_record();
        let (effect, address) =
            self.store
                .apply_report(reference, kind, reply, source, &self.policy, now_millis())?;
        if effect == ReportEffect::Complained {
            self.count_complaint(address.as_deref())?;
        }
        let counter = match effect {
            ReportEffect::Bounced => &mut summary.bounced,
            ReportEffect::Delayed => &mut summary.delayed,
            ReportEffect::Complained => &mut summary.complaints,
            ReportEffect::Unchanged => &mut summary.unchanged,
        };
        *counter += 1;
        summary.matched.push(format!(
            "{source}: {} {} of campaign {} ({}, {}{}) via {how}",
            address.unwrap_or_default(),
            match effect {
                ReportEffect::Bounced => "bounced",
                ReportEffect::Delayed => "delayed",
                ReportEffect::Complained => "complained",
                ReportEffect::Unchanged => "already bounced",
            },
            reference.campaign,
            recipient.category,
            if recipient.hard { "hard" } else { "soft" },
            recipient
                .status
                .as_deref()
                .map(|s| format!(", {s}"))
                .unwrap_or_default(),
        ));
        Ok(())
    }

    /// Counts a complaint into today's warm-up of the campaign file's key, under the
    /// provider of the recipient's domain (no MX lookup here: the domain lists decide).
    fn count_complaint(&self, address: Option<&str>) -> Result<(), Error> {
        let (Some(warmup), Some(address)) = (&self.warmup, address) else {
            return Ok(());
        };
        let domain = address.rsplit('@').next().unwrap_or(address);
        let table = crate::warmup::ProviderTable::new(warmup);
        let provider = table.classify(domain, &[]);
        let day = crate::warmup::today(warmup.timezone, now_millis());
        let tally = crate::store::WarmupTally {
            complaints: 1,
            ..Default::default()
        };
        self.store
            .warmup_record(&warmup.key, provider, day, &tally)?;
        Ok(())
    }

    /// Finds the recipient a report is about: VERP token first, then the returned Message-ID.
    fn attribute(
        &self,
        report: &BounceReport,
    ) -> Result<Option<(MessageRef, &'static str)>, Error> {
        // The bounce's own recipients first; then the returned original's Return-Path, where a
        // complaint report (ARF) keeps the VERP address.
        let returned = report
            .original_headers
            .iter()
            .filter(|(name, _)| name == "return-path")
            .map(|(_, value)| value);
        for address in report.to_addresses.iter().chain(returned) {
            if let Some((number, seq)) = self.verp.decode(address) {
                if let Some(reference) = self.store.recipient_by_number(number, seq)? {
                    return Ok(Some((reference, "VERP token")));
                }
            }
        }
        if let Some(id) = &report.original_message_id {
            let local = id.split('@').next().unwrap_or("");
            if let Some((number, seq)) = self.verp.decode(local) {
                if let Some(reference) = self.store.recipient_by_number(number, seq)? {
                    return Ok(Some((reference, "Message-ID")));
                }
            }
            if let Some(reference) = self.store.message(id)? {
                return Ok(Some((reference, "Message-ID")));
            }
        }
        Ok(None)
    }
}

/// Hears what each flushed batch of received bounces did.
pub type IngestReport = Box<dyn FnMut(&IngestSummary) + Send>;

/// What the bounce receiver's ingest thread hands each spooled message to: an [`Intake`],
/// flushed to the store once per batch.
pub struct StoreIngest {
    intake: Intake,
    summary: IngestSummary,
    report: Option<IngestReport>,
}

impl StoreIngest {
    /// Records into `intake`'s store; `report` hears what each flushed batch did (the CLI
    /// prints it; `volley serve` logs it either way).
    pub fn new(intake: Intake, report: Option<IngestReport>) -> Self {
        StoreIngest {
            intake,
            summary: IngestSummary::default(),
            report,
        }
    }
}

impl crate::bounce::receiver::Ingest for StoreIngest {
    type Error = Error;

    fn ingest(&mut self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        self.intake
            .ingest_message(&format!("smtp:{name}"), bytes, &mut self.summary)
    }

    fn flush(&mut self) -> Result<(), Error> {
        self.intake.store.flush_blocking()?;
        let summary = std::mem::take(&mut self.summary);
        if summary.messages > 0 {
            tracing::info!(
                messages = summary.messages,
                bounced = summary.bounced,
                delayed = summary.delayed,
                complaints = summary.complaints,
                unmatched = summary.unmatched.len(),
                "bounces received"
            );
            if let Some(report) = &mut self.report {
                report(&summary);
            }
        }
        Ok(())
    }
}

/// Starts the bounce receiver on `listener`, recording into `store` with a campaign's
/// `[bounces]` and `[retry]` settings (or the defaults), until `cancel` fires.
pub fn receive_bounces(
    listener: tokio::net::TcpListener,
    config: crate::bounce::receiver::ReceiverConfig,
    store: &Store,
    settings: Option<&CampaignSettings>,
    report: Option<IngestReport>,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<crate::bounce::receiver::Receiver, Error> {
    let intake = Intake::open(store, settings)?;
    let ingest = StoreIngest::new(intake, report);
    Ok(crate::bounce::receiver::Receiver::start(
        listener, config, ingest, cancel,
    )?)
}

/// The receiver's configuration for the `volley serve` file's `[bounces]`: its limits and
/// timeouts, spool folder, and STARTTLS material loaded from the PEM files.
pub fn receiver_config(
    settings: &crate::config::BounceListenSettings,
) -> Result<crate::bounce::receiver::ReceiverConfig, Error> {
    let tls = match &settings.tls {
        Some((cert, key)) => Some(crate::bounce::receiver::tls::server_config(cert, key)?),
        None => None,
    };
    Ok(crate::bounce::receiver::ReceiverConfig {
        max_message_size: settings.max_message_size,
        max_recipients: settings.max_recipients,
        max_connections: settings.max_connections,
        max_connections_per_ip: settings.max_connections_per_ip,
        command_timeout: settings.command_timeout,
        data_block_timeout: settings.data_block_timeout,
        session_timeout: settings.session_timeout,
        spool: settings.spool.clone(),
        tls,
        ..crate::bounce::receiver::ReceiverConfig::default()
    })
}

/// The recipient block that concerns the attributed recipient: the one with its address, or
/// the first one that says something (VERP ties a report to one recipient whatever its blocks).
fn pick_recipient<'r>(
    report: &'r BounceReport,
    store: &Store,
    reference: &MessageRef,
) -> Result<Option<&'r BouncedRecipient>, Error> {
    let address = store
        .recipient(&reference.campaign, &reference.key)?
        .map(|record| record.email.to_ascii_lowercase());
    let by_address = report.recipients.iter().find(|r| {
        let wanted = address.as_deref();
        Some(r.address.to_ascii_lowercase().as_str()) == wanted
            || r.original_recipient
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref()
                == wanted
    });
    Ok(by_address.or_else(|| report.recipients.first()))
}

fn kind_word(report: &BounceReport) -> &'static str {
    match report.kind {
        ReportKind::Complaint => "complaint",
        _ => "bounce",
    }
}

/// Bounces of one campaign, by category, by domain, hard and soft.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BounceSummary {
    /// The campaign id.
    pub campaign: String,
    /// Recipients bounced (synchronously or by a later report).
    pub bounced: u64,
    /// Of those, hard bounces.
    pub hard: u64,
    /// Of those, soft bounces.
    pub soft: u64,
    /// Delays reported by DSNs.
    pub delayed: u64,
    /// Complaints received.
    pub complaints: u64,
    /// Bounces per category.
    pub by_category: BTreeMap<Category, u64>,
    /// Bounces per recipient domain, most first.
    pub by_domain: Vec<(String, u64)>,
}

/// Summarises the bounces of `campaign` from the store.
pub fn bounce_summary(store: &Store, campaign: &str) -> Result<BounceSummary, Error> {
    if store.counts(campaign)?.is_none() {
        return Err(Error::NotLoaded {
            campaign: campaign.to_owned(),
            store: store.path().to_owned(),
        });
    }
    let mut summary = BounceSummary {
        campaign: campaign.to_owned(),
        ..BounceSummary::default()
    };
    let mut domains: BTreeMap<String, u64> = BTreeMap::new();
    for recipient in store.recipients_in(campaign, RecipientState::Bounced)? {
        summary.bounced += 1;
        let reply = recipient.record.last_reply.as_ref();
        if reply.is_some_and(|r| r.hard) {
            summary.hard += 1;
        } else {
            summary.soft += 1;
        }
        let category = reply.and_then(|r| r.category).unwrap_or(Category::Other);
        *summary.by_category.entry(category).or_default() += 1;
        *domains.entry(recipient.key.domain).or_default() += 1;
    }
    for event in store.events(campaign)? {
        match event.kind {
            EventKind::Delay => summary.delayed += 1,
            EventKind::Complaint => summary.complaints += 1,
            EventKind::Bounce => {}
        }
    }
    let mut by_domain: Vec<_> = domains.into_iter().collect();
    by_domain.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    summary.by_domain = by_domain;
    Ok(summary)
}
