//! The compose stage: one thread per core takes jobs from the scheduler's work-stealing queue,
//! checks the suppression list, renders, builds and signs each message, and queues it at its
//! destination with its return path. CPU work stays here, off the async workers, so an RSA
//! signature never stalls a socket.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::CampaignMessages;
use crate::bounce::Verp;
use crate::delivery::{ReadyMessage, Settled};
use crate::dispatch::{ComposeJob, JobWorker};
use crate::model::{Outcome, ReplyRecord};
use crate::smtp::Envelope;
use crate::store::{OutcomeUpdate, RecipientKey, Store, StoredRecipient};

/// The domain given to the signer of Message-ID tokens (only the token is used).
const MESSAGE_ID_DOMAIN: &str = "message-id.invalid";

/// The compose stage of each campaign of a running send, by its index there.
pub(crate) trait Stages: Send + Sync + 'static {
    /// The stage of campaign `index`, or `None` when the send does not know it.
    fn stage(&self, index: usize) -> Option<Arc<ComposeStage>>;
}

/// Who a campaign's messages say they are from, in the envelope and the Message-ID.
pub(crate) struct Identity {
    /// The campaign's number in the store (it is in VERP tokens and Message-IDs).
    pub(crate) number: u32,
    /// The store's secret, which signs VERP and Message-ID tokens.
    pub(crate) secret: [u8; 32],
    /// The From address, the envelope sender without VERP.
    pub(crate) from: String,
    /// `[bounces] domain`: with it, each recipient gets a return path of its own (VERP).
    pub(crate) bounce_domain: Option<String>,
    /// The campaign's topic: recipients who left it are not sent to (issue 22).
    pub(crate) topic: Option<String>,
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
    fn for_recipient(&self, key: &RecipientKey) -> String {
        match self {
            ReturnPath::Fixed(address) => address.clone(),
            ReturnPath::Verp(verp, number) => verp.return_path(*number, key.seq),
        }
    }
}

/// Everything a compose thread needs for one campaign.
pub(crate) struct ComposeStage {
    messages: CampaignMessages,
    return_path: ReturnPath,
    /// Signs Message-IDs: `<token>@from-domain` names the recipient, so a bounce quoting it
    /// finds its recipient without a per-message index in the store.
    message_ids: Verp,
    number: u32,
    store: Store,
    /// The campaign's topic, if any.
    topic: Option<String>,
}

impl ComposeStage {
    /// The stage for a campaign's `messages`, sent as `identity`, loaded into `store`.
    pub(crate) fn new(
        messages: CampaignMessages,
        identity: Identity,
        store: Store,
    ) -> ComposeStage {
        let return_path = match &identity.bounce_domain {
            Some(domain) => ReturnPath::Verp(
                Box::new(Verp::new(&identity.secret, domain)),
                identity.number,
            ),
            None => ReturnPath::Fixed(identity.from),
        };
        ComposeStage {
            messages,
            return_path,
            message_ids: Verp::new(&identity.secret, MESSAGE_ID_DOMAIN),
            number: identity.number,
            store,
            topic: identity.topic,
        }
    }

    /// Builds the message for one recipient, or the outcome that replaces sending it.
    fn prepare(
        &self,
        job: StoredRecipient,
        campaign: usize,
        priority: u8,
    ) -> Result<ReadyMessage, OutcomeUpdate> {
        if let Some(update) = self.suppressed(&job) {
            return Err(update);
        }
        let address = &job.record.email;
        let composed = {
            let _span = tracing::debug_span!("compose").entered();
            let id = self.message_ids.token(self.number, job.key.seq);
            self.messages.compose(
                address,
                &job.record.values,
                (self.number, job.record.variant, job.key.seq),
                Some(&id),
            )
        };
        let blocked_before = crate::delivery::blocked_before(&job.record);
        match composed {
            Ok(composed) => Ok(ReadyMessage {
                blocked_before,
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

    /// The outcome of a recipient on the suppression list, globally or for the campaign's
    /// topic (a store that cannot be read is logged, and the recipient is sent to).
    fn suppressed(&self, job: &StoredRecipient) -> Option<OutcomeUpdate> {
        match self
            .store
            .suppression_for(&job.record.email, self.topic.as_deref())
        {
            Ok(Some(entry)) => {
                let reply =
                    ReplyRecord::local(format!("suppressed: {} ({})", entry.reason, entry.detail));
                Some(OutcomeUpdate {
                    key: job.key.clone(),
                    outcome: Outcome::Suppressed { reply },
                    message_id: None,
                })
            }
            Ok(None) => None,
            Err(error) => {
                tracing::error!(%error, "could not read the suppression list");
                None
            }
        }
    }
}

/// Starts one compose thread per worker. Each ends when the queue is closed and empty;
/// after `cancel` it drops what is left (those recipients stay pending).
pub(crate) fn spawn_composers(
    workers: Vec<JobWorker>,
    stages: Arc<impl Stages>,
    settled: mpsc::Sender<Settled>,
    cancel: CancellationToken,
) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
    workers
        .into_iter()
        .enumerate()
        .map(|(n, mut worker)| {
            let (stages, settled, cancel) = (stages.clone(), settled.clone(), cancel.clone());
            std::thread::Builder::new()
                .name(format!("volley-compose-{n}"))
                .spawn(move || {
                    while let Some(job) = worker.next_job() {
                        if cancel.is_cancelled() {
                            continue;
                        }
                        if !compose_one(job, &*stages, &settled) {
                            return;
                        }
                    }
                })
        })
        .collect()
}

/// Composes one job and queues it (or settles it); false when the pipeline is closing.
fn compose_one(job: ComposeJob, stages: &impl Stages, settled: &mpsc::Sender<Settled>) -> bool {
    let ComposeJob {
        campaign,
        priority,
        destination,
        recipient,
    } = job;
    let Some(stage) = stages.stage(campaign) else {
        return true;
    };
    match stage.prepare(recipient, campaign, priority) {
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
