//! The compose stage: one thread per core checks the suppression list, renders, builds and
//! signs each message, and queues it for delivery with its return path.

use super::Campaign;
use crate::bounce::Verp;
use crate::compose::Composer;
use crate::delivery::ReadyMessage;
use crate::model::{Outcome, ReplyRecord};
use crate::smtp::Envelope;
use crate::store::{OutcomeUpdate, RecipientKey, Store, StoredRecipient};
use crate::Error;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The envelope sender of each message.
#[derive(Clone)]
enum ReturnPath {
    /// The From address for every message.
    Fixed(String),
    /// `bounces+TOKEN@domain`, one per recipient.
    Verp(Box<Verp>, u32),
}

impl ReturnPath {
    fn for_campaign(campaign: &Campaign, store: &Store) -> Result<ReturnPath, Error> {
        let Some(domain) = &campaign.settings.bounces.domain else {
            return Ok(ReturnPath::Fixed(campaign.settings.from.address.clone()));
        };
        let number = store
            .campaign(campaign.id())?
            .map(|meta| meta.number)
            .ok_or_else(|| Error::NotLoaded {
                campaign: campaign.id().to_owned(),
                store: store.path().to_owned(),
            })?;
        Ok(ReturnPath::Verp(
            Box::new(Verp::new(&store.secret()?, domain)),
            number,
        ))
    }

    fn for_recipient(&self, key: &RecipientKey) -> String {
        match self {
            ReturnPath::Fixed(address) => address.clone(),
            ReturnPath::Verp(verp, number) => verp.return_path(*number, key.seq),
        }
    }
}

/// Everything a compose thread needs.
struct ComposeStage {
    composer: Arc<Composer>,
    columns: Arc<Vec<String>>,
    return_path: ReturnPath,
    store: Store,
}

impl ComposeStage {
    /// Builds the message for one recipient, or the outcome that replaces sending it.
    fn prepare(&self, job: StoredRecipient) -> Result<ReadyMessage, OutcomeUpdate> {
        let address = &job.record.email;
        match self.store.suppression(address) {
            Ok(Some(entry)) => {
                let reply =
                    ReplyRecord::local(format!("suppressed: {} ({})", entry.reason, entry.detail));
                return Err(OutcomeUpdate {
                    key: job.key,
                    outcome: Outcome::Suppressed { reply },
                    message_id: None,
                });
            }
            Ok(None) => {}
            Err(error) => tracing::error!(%error, "could not read the suppression list"),
        }
        match self
            .composer
            .compose(address, &self.columns, &job.record.values)
        {
            Ok(composed) => Ok(ReadyMessage {
                envelope: Envelope {
                    mail_from: self.return_path.for_recipient(&job.key),
                    rcpt_to: vec![job.record.email],
                },
                key: job.key,
                bytes: composed.bytes,
                message_id: composed.message_id,
            }),
            Err(error) => {
                tracing::error!(%address, %error, "message could not be composed");
                let reply = ReplyRecord::local(format!("message could not be composed: {error}"));
                Err(OutcomeUpdate {
                    key: job.key,
                    outcome: Outcome::Bounced { reply },
                    message_id: None,
                })
            }
        }
    }
}

/// One compose thread per core: check suppression, render, build and sign, then queue for
/// delivery.
pub(crate) fn spawn_composers(
    campaign: &Campaign,
    store: &Store,
    jobs: crossbeam_channel::Receiver<StoredRecipient>,
    ready: async_channel::Sender<ReadyMessage>,
    outcomes: mpsc::Sender<OutcomeUpdate>,
) -> Result<Vec<std::thread::JoinHandle<()>>, Error> {
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let stage = Arc::new(ComposeStage {
        composer: campaign.composer.clone(),
        columns: Arc::new(campaign.columns.clone()),
        return_path: ReturnPath::for_campaign(campaign, store)?,
        store: store.clone(),
    });
    (0..threads)
        .map(|n| {
            let (jobs, ready, outcomes, stage) =
                (jobs.clone(), ready.clone(), outcomes.clone(), stage.clone());
            std::thread::Builder::new()
                .name(format!("volley-compose-{n}"))
                .spawn(move || {
                    for job in jobs {
                        let sent = match stage.prepare(job) {
                            Ok(message) => ready.send_blocking(message).is_ok(),
                            Err(update) => outcomes.blocking_send(update).is_ok(),
                        };
                        if !sent {
                            return;
                        }
                    }
                })
                .map_err(|source| Error::Io {
                    path: "compose thread".into(),
                    source,
                })
        })
        .collect()
}
