//! What the running server shares between its tasks: the current zone (replaceable while
//! running) and the query counters tests read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use hickory_proto::rr::RecordType;

use super::answer::{self, Transport};
use super::Zone;

/// Distinct (name, type) questions counted one by one; past this, new questions only add to
/// the total, so a flood of random names cannot grow memory without bound.
const MAX_TRACKED_QUESTIONS: usize = 100_000;

/// State shared by the UDP loop, the TCP connections and the [`NameServer`](super::NameServer)
/// handle.
#[derive(Debug)]
pub(super) struct Shared {
    zone: RwLock<Arc<Zone>>,
    total: AtomicU64,
    per_question: Mutex<HashMap<(String, RecordType), u64>>,
}

impl Shared {
    pub(super) fn new(zone: Zone) -> Shared {
        Shared {
            zone: RwLock::new(Arc::new(zone)),
            total: AtomicU64::new(0),
            per_question: Mutex::new(HashMap::new()),
        }
    }

    /// Replaces the zone; queries already being answered finish with the old one.
    pub(super) fn set_zone(&self, zone: Zone) {
        let mut current = self.zone.write().unwrap_or_else(PoisonError::into_inner);
        *current = Arc::new(zone);
    }

    /// Counts and answers one request packet; `None` means no reply is to be sent.
    pub(super) fn handle(&self, packet: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let zone = Arc::clone(&self.zone.read().unwrap_or_else(PoisonError::into_inner));
        let handled = answer::handle(&zone, packet, transport);
        self.total.fetch_add(1, Ordering::Relaxed);
        if let Some(question) = handled.question {
            let mut counts = self
                .per_question
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let tracked = counts.len();
            match counts.get_mut(&question) {
                Some(count) => *count += 1,
                None if tracked < MAX_TRACKED_QUESTIONS => {
                    counts.insert(question, 1);
                }
                None => {}
            }
        }
        handled.reply
    }

    /// Request packets handled so far.
    pub(super) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Queries for one canonical name and type so far.
    pub(super) fn count(&self, name: &str, record_type: RecordType) -> u64 {
        let counts = self
            .per_question
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        counts
            .get(&(name.to_owned(), record_type))
            .copied()
            .unwrap_or(0)
    }
}
