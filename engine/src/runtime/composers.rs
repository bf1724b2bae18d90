//! The compose stage: one thread per core takes jobs from the scheduler's work-stealing queue,
//! checks the suppression list, renders, builds and signs each message, and queues it at its
//! destination with its return path. CPU work stays here, off the async workers, so an RSA
//! signature never stalls a socket.

use super::run::Registry;
use super::{compose_tracked, Campaign, Tracking};
use crate::bounce::Verp;
use crate::compose::Composer;
use crate::delivery::{ReadyMessage, Settled};
use crate::dispatch::{ComposeJob, JobWorker};
use crate::model::{Outcome, ReplyRecord};
use crate::smtp::Envelope;
use crate::store::{OutcomeUpdate, RecipientKey, Store, StoredRecipient};
use crate::Error;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The domain given to the signer of Message-ID tokens (only the token is used).
const MESSAGE_ID_DOMAIN: &str = "message-id.invalid";

/// The campaign's number in the store (it is in VERP tokens and Message-IDs).
fn campaign_number(campaign: &Campaign, store: &Store) -> Result<u32, Error> {
    store
        .campaign(campaign.id())?
        .map(|meta| meta.number)
        .ok_or_else(|| Error::NotLoaded {
            campaign: campaign.id().to_owned(),
            store: store.path().to_owned(),
        })
}

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
        let number = campaign_number(campaign, store)?;
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

/// Everything a compose thread needs for one campaign.
pub(crate) struct ComposeStage {
    /// One per variant, by index; never empty.
    composers: Vec<Arc<Composer>>,
    columns: Arc<Vec<String>>,
    tracking: Option<Arc<Tracking>>,
    return_path: ReturnPath,
    /// Signs Message-IDs: `<token>@from-domain` names the recipient, so a bounce quoting it
    /// finds its recipient without a per-message index in the store.
    message_ids: Verp,
    number: u32,
    store: Store,
}

impl ComposeStage {
    /// The stage for `campaign` (loaded into `store`).
    pub(crate) fn new(campaign: &Campaign, store: &Store) -> Result<ComposeStage, Error> {
        let number = campaign_number(campaign, store)?;
        Ok(ComposeStage {
            composers: campaign.composers.clone(),
            columns: Arc::new(campaign.columns.clone()),
            tracking: campaign.tracking.clone(),
            return_path: ReturnPath::for_campaign(campaign, store)?,
            message_ids: Verp::new(&store.secret()?, MESSAGE_ID_DOMAIN),
            number,
            store: store.clone(),
        })
    }

    /// Builds the message for one recipient, or the outcome that replaces sending it.
    fn prepare(
        &self,
        job: StoredRecipient,
        campaign: usize,
        priority: u8,
    ) -> Result<ReadyMessage, OutcomeUpdate> {
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
        let composed = {
            let _span = tracing::debug_span!("compose").entered();
            let id = self.message_ids.token(self.number, job.key.seq);
            let variant = job.record.variant;
            // invariant: `composers` is never empty (see `Campaign::composer`)
            let composer = self
                .composers
                .get(usize::from(crate::model::variant_index(variant)))
                .unwrap_or(&self.composers[0]);
            compose_tracked(
                composer,
                &self.columns,
                self.tracking.as_deref(),
                address,
                &job.record.values,
                (self.number, variant, job.key.seq),
                Some(&id),
            )
        };
        match composed {
            Ok(composed) => Ok(ReadyMessage {
                campaign,
                priority,
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

/// Starts one compose thread per worker. Each ends when the queue is closed and empty;
/// after `cancel` it drops what is left (those recipients stay pending).
pub(crate) fn spawn_composers(
    workers: Vec<JobWorker>,
    registry: Arc<Registry>,
    settled: mpsc::Sender<Settled>,
    cancel: CancellationToken,
) -> Result<Vec<std::thread::JoinHandle<()>>, Error> {
    workers
        .into_iter()
        .enumerate()
        .map(|(n, mut worker)| {
            let (registry, settled, cancel) = (registry.clone(), settled.clone(), cancel.clone());
            std::thread::Builder::new()
                .name(format!("volley-compose-{n}"))
                .spawn(move || {
                    while let Some(job) = worker.next_job() {
                        if cancel.is_cancelled() {
                            continue;
                        }
                        if !compose_one(job, &registry, &settled) {
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

/// Composes one job and queues it (or settles it); false when the pipeline is closing.
fn compose_one(job: ComposeJob, registry: &Registry, settled: &mpsc::Sender<Settled>) -> bool {
    let ComposeJob {
        campaign,
        priority,
        destination,
        recipient,
    } = job;
    let Some(lane) = registry.get(campaign) else {
        return true;
    };
    match lane.stage.prepare(recipient, campaign, priority) {
        Ok(message) => {
            destination.ready().push(message);
            true
        }
        Err(update) => settled
            .blocking_send(Settled::Outcome {
                campaign,
                destination: Some(destination.id),
                update,
            })
            .is_ok(),
    }
}
