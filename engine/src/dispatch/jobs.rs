//! The compose stage's work queue: a crossbeam-deque work-stealing pool. The scheduler pushes
//! per-destination batches of recipients into a global injector; each compose thread takes a
//! batch into its own deque, works through it, and steals from the injector or from the
//! other threads when it runs dry, so one slow batch never leaves a core idle. Idle threads
//! park until work arrives.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crossbeam_deque::{Injector, Steal, Stealer, Worker};

use super::ComposeJob;

/// The shared side of the pool: the injector, every thread's stealer, and the parking spot.
pub struct JobQueue {
    injector: Injector<ComposeJob>,
    stealers: Vec<Stealer<ComposeJob>>,
    closed: AtomicBool,
    parked: Mutex<usize>,
    wake: Condvar,
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobQueue")
            .field("threads", &self.stealers.len())
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// One compose thread's end of the pool.
pub struct JobWorker {
    local: Worker<ComposeJob>,
    queue: Arc<JobQueue>,
}

impl JobQueue {
    /// A queue for `threads` compose threads, and their workers (one each).
    pub fn new(threads: usize) -> (Arc<JobQueue>, Vec<JobWorker>) {
        let locals: Vec<Worker<ComposeJob>> =
            (0..threads.max(1)).map(|_| Worker::new_fifo()).collect();
        let queue = Arc::new(JobQueue {
            injector: Injector::new(),
            stealers: locals.iter().map(Worker::stealer).collect(),
            closed: AtomicBool::new(false),
            parked: Mutex::new(0),
            wake: Condvar::new(),
        });
        let workers = locals
            .into_iter()
            .map(|local| JobWorker {
                local,
                queue: queue.clone(),
            })
            .collect();
        (queue, workers)
    }

    /// Queues a batch and wakes parked threads. Never blocks: the scheduler bounds what it
    /// pushes by its in-flight budget.
    pub fn push_batch(&self, jobs: Vec<ComposeJob>) {
        if jobs.is_empty() {
            return;
        }
        for job in jobs {
            self.injector.push(job);
        }
        let parked = *self.parked.lock().unwrap_or_else(|p| p.into_inner());
        if parked > 0 {
            self.wake.notify_all();
        }
    }

    /// Lets the threads finish: once the queue is empty, [`JobWorker::next_job`] returns `None`.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_all();
    }

    /// Jobs not yet taken by a thread (approximate).
    pub fn len(&self) -> usize {
        self.injector.len() + self.stealers.iter().map(Stealer::len).sum::<usize>()
    }

    /// True when no job waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl JobWorker {
    /// The next job: its own first, then a batch from the injector, then one stolen from
    /// another thread. Parks while there is none; `None` once the queue is closed and empty.
    pub fn next_job(&mut self) -> Option<ComposeJob> {
        loop {
            if let Some(job) = self.find() {
                return Some(job);
            }
            if self.queue.closed.load(Ordering::Acquire) {
                return self.find();
            }
            let mut parked = self.queue.parked.lock().unwrap_or_else(|p| p.into_inner());
            *parked += 1;
            // Registered as parked: a push from now on notifies, and one that came before
            // is found by this second look (made under the lock the pusher takes to notify).
            if let Some(job) = self.find() {
                *parked -= 1;
                return Some(job);
            }
            let (mut parked, _) = self
                .queue
                .wake
                .wait_timeout(parked, Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner());
            *parked -= 1;
        }
    }

    fn find(&self) -> Option<ComposeJob> {
        if let Some(job) = self.local.pop() {
            return Some(job);
        }
        loop {
            let stolen = self
                .queue
                .injector
                .steal_batch_and_pop(&self.local)
                .or_else(|| self.queue.stealers.iter().map(Stealer::steal).collect());
            match stolen {
                Steal::Success(job) => return Some(job),
                Steal::Empty => return None,
                Steal::Retry => continue,
            }
        }
    }
}
