//! Recording provider events: each is tied to the message it concerns (its `Message-ID`: a
//! VERP token in the local part, else the store's Message-ID index) and applied as a DSN
//! would be (`ReportStore::apply_report`: bounced, delayed or complained, the address
//! suppressed when hard); one whose message is unknown still suppresses a hard bounce or a
//! complaint. A replayed event (same provider and event id, same recipient) changes nothing.

use serde::Serialize;
use utoipa::ToSchema;

use super::event::ProviderEvent;
use crate::bounce::{Action, BouncedRecipient, Classifier, Verp};
use crate::model::{Millis, Suppression, SuppressionReason};
use crate::store::{EventKind, MessageRef, OutcomePolicy, ReportEffect, Store, StoreError};

/// What one webhook request did, as answered to the provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Received {
    /// Bounce and complaint reports in the request (one per recipient).
    pub reports: u64,
    /// Recipients of known messages moved to `bounced`.
    pub bounced: u64,
    /// Delays noted.
    pub delayed: u64,
    /// Complaints noted (the address suppressed).
    pub complaints: u64,
    /// Addresses of unknown messages put on the suppression list (hard bounces and
    /// complaints).
    pub suppressed: u64,
    /// Reports about no known message that suppressed nothing (soft bounces, delays, or an
    /// address already suppressed).
    pub unmatched: u64,
    /// Reports seen before (a replay): nothing changed.
    pub duplicates: u64,
    /// Reports about recipients already bounced, or with an unusable address.
    pub unchanged: u64,
}

/// Ties provider events to recipients and records them.
#[derive(Debug, Clone)]
pub(crate) struct Applier {
    store: Store,
    classifier: Classifier,
    policy: OutcomePolicy,
    verp: Verp,
}

impl Applier {
    /// An applier on `store`, classifying with the built-in rules and the default policy.
    pub(crate) fn new(store: &Store) -> Result<Applier, StoreError> {
        Ok(Applier {
            verp: Verp::new(&store.secret()?, "bounces.invalid"),
            store: store.clone(),
            classifier: Classifier::builtin(),
            policy: OutcomePolicy::default(),
        })
    }

    /// Records `events` at `now`, remembers `once` (a namespace and a one-time value, see
    /// [`Applier::seen`]) and flushes the store: durable before the provider hears yes.
    /// Blocking: call it off the async workers.
    pub(crate) fn apply(
        &self,
        events: &[ProviderEvent],
        once: Option<(&str, &str)>,
        now: Millis,
    ) -> Result<Received, StoreError> {
        let mut received = Received::default();
        for event in events {
            self.apply_one(event, now, &mut received)?;
        }
        if let Some((namespace, value)) = once {
            self.remember(namespace, value)?;
        }
        self.store.flush_blocking()?;
        Ok(received)
    }

    /// Whether a one-time value (a Mailgun token) was used before, under `namespace`.
    pub(crate) fn seen(&self, namespace: &str, value: &str) -> Result<bool, StoreError> {
        self.store.is_ingested(&fingerprint(&[namespace, value]))
    }

    /// Remembers a one-time value (durable with the next flush).
    pub(crate) fn remember(&self, namespace: &str, value: &str) -> Result<(), StoreError> {
        self.store.mark_ingested(&fingerprint(&[namespace, value]))
    }

    fn apply_one(
        &self,
        event: &ProviderEvent,
        now: Millis,
        received: &mut Received,
    ) -> Result<(), StoreError> {
        received.reports += 1;
        let address = event.address.to_ascii_lowercase();
        let key = fingerprint(&[
            "provider-event",
            event.provider.as_str(),
            &event.event_id,
            &address,
        ]);
        if self.store.is_ingested(&key)? {
            received.duplicates += 1;
            return Ok(());
        }
        let source = format!(
            "{}:{} {}",
            event.provider.as_str(),
            event.event_id,
            event.provider_type
        );
        let Some(recipient) = event.classify(&self.classifier) else {
            received.unchanged += 1;
            self.store.mark_ingested(&key)?;
            return Ok(());
        };
        let reference = match &event.message_id {
            Some(id) => self.attribute(id)?,
            None => None,
        };
        match reference {
            Some(reference) => self.apply_known(&reference, &recipient, &source, now, received)?,
            None => self.apply_unknown(&recipient, &source, now, received)?,
        }
        self.store.mark_ingested(&key)
    }

    /// A report about a message of one of the store's campaigns: as a DSN's.
    fn apply_known(
        &self,
        reference: &MessageRef,
        recipient: &BouncedRecipient,
        source: &str,
        now: Millis,
        received: &mut Received,
    ) -> Result<(), StoreError> {
        let kind = match recipient.action {
            Action::Delayed => EventKind::Delay,
            Action::Complaint => EventKind::Complaint,
            _ => EventKind::Bounce,
        };
        let (effect, _) = self.store.apply_report(
            reference,
            kind,
            recipient.reply_record(),
            source,
            &self.policy,
            now,
        )?;
        let counter = match effect {
            ReportEffect::Bounced => &mut received.bounced,
            ReportEffect::Delayed => &mut received.delayed,
            ReportEffect::Complained => &mut received.complaints,
            ReportEffect::Unchanged => &mut received.unchanged,
        };
        *counter += 1;
        tracing::info!(
            campaign = %reference.campaign,
            source,
            category = %recipient.category,
            hard = recipient.hard,
            ?effect,
            "provider report applied"
        );
        Ok(())
    }

    /// A report about no known message: a hard bounce or a complaint still suppresses the
    /// address; anything else is only logged.
    fn apply_unknown(
        &self,
        recipient: &BouncedRecipient,
        source: &str,
        now: Millis,
        received: &mut Received,
    ) -> Result<(), StoreError> {
        let reply = recipient.reply_record();
        let reason = match recipient.action {
            Action::Complaint => Some(SuppressionReason::Complaint),
            Action::Failed if reply.hard => Some(SuppressionReason::HardBounce),
            _ => None,
        };
        let added = match reason {
            Some(reason) => {
                let entry = Suppression {
                    reason,
                    at: now,
                    campaign: None,
                    detail: format!("{source}: {}", reply.text),
                };
                self.store.suppress(&recipient.address, &entry)?
            }
            None => false,
        };
        if added {
            received.suppressed += 1;
        } else {
            received.unmatched += 1;
        }
        tracing::info!(
            source,
            category = %recipient.category,
            hard = recipient.hard,
            suppressed = added,
            "provider report about no known message"
        );
        Ok(())
    }

    /// The recipient a `Message-ID` points at: a VERP token in its local part, else the
    /// store's index of sent messages.
    fn attribute(&self, message_id: &str) -> Result<Option<MessageRef>, StoreError> {
        let local = message_id.split('@').next().unwrap_or_default();
        if let Some((number, seq)) = self.verp.decode(local) {
            if let Some(reference) = self.store.recipient_by_number(number, seq)? {
                return Ok(Some(reference));
            }
        }
        self.store.message(message_id)
    }
}

/// SHA-256 of the parts, each followed by a NUL: the key a replay is recognised by.
fn fingerprint(parts: &[&str]) -> Vec<u8> {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in parts {
        context.update(part.as_bytes());
        context.update(&[0]);
    }
    context.finish().as_ref().to_vec()
}
