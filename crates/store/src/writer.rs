//! The store stage's single writer: callers submit batches of messages, the writer thread folds
//! concurrent submissions into one transaction (group commit) and answers each caller with its ids
//! once the transaction is durable.
//!
//! Contract: `submit` resolves `Ok` only after the messages are on disk; a full queue is reported
//! at once (`SubmitError::Full`) so the source can count and refuse instead of waiting unboundedly.

use std::sync::Arc;
use std::thread::JoinHandle;

use pharos_model::Message;
use tokio::sync::{mpsc, oneshot};

use crate::{MessageStore, StoreError};

/// Settings of the writer stage.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Submissions that may wait for the writer before new ones are refused.
    pub queue: usize,
    /// Most messages folded into one transaction.
    pub max_batch: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            queue: 1024,
            max_batch: 5000,
        }
    }
}

/// Why a submission was not stored.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The writer's queue is full: the store is slower than the input.
    #[error("store queue is full ({0} submissions waiting); retry later")]
    Full(usize),
    /// The writer has stopped (shutting down).
    #[error("store writer has stopped")]
    Closed,
    /// The store failed to write (disk full, I/O error); nothing of the submission was stored.
    #[error("store write failed: {0}")]
    Store(Arc<StoreError>),
}

struct Job {
    msgs: Vec<Message>,
    reply: oneshot::Sender<Result<Vec<Message>, Arc<StoreError>>>,
}

/// A cloneable handle that submits batches to the writer thread.
#[derive(Clone)]
pub struct StoreWriter {
    tx: mpsc::Sender<Job>,
    queue: usize,
}

/// The writer thread; join it after every handle is dropped to know all writes finished.
pub struct WriterThread(JoinHandle<()>);

impl WriterThread {
    /// Waits until the writer has drained its queue and stopped.
    pub fn join(self) {
        let _ = self.0.join();
    }
}

impl StoreWriter {
    /// Starts the writer thread over `store`.
    pub fn spawn(store: Arc<dyn MessageStore>, config: WriterConfig) -> (Self, WriterThread) {
        let queue = config.queue.max(1);
        let (tx, rx) = mpsc::channel(queue);
        let max_batch = config.max_batch.max(1);
        let handle = std::thread::Builder::new()
            .name("pharos-store-writer".into())
            .spawn(move || run(store, rx, max_batch))
            .expect("spawning the store writer thread");
        (Self { tx, queue }, WriterThread(handle))
    }

    /// Stores `msgs` in one transaction with other concurrent submissions; returns them with ids
    /// once durable.
    pub async fn submit(&self, msgs: Vec<Message>) -> Result<Vec<Message>, SubmitError> {
        if msgs.is_empty() {
            return Ok(msgs);
        }
        let (reply, rx) = oneshot::channel();
        self.tx.try_send(Job { msgs, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SubmitError::Full(self.queue),
            mpsc::error::TrySendError::Closed(_) => SubmitError::Closed,
        })?;
        match rx.await {
            Ok(Ok(stored)) => Ok(stored),
            Ok(Err(e)) => Err(SubmitError::Store(e)),
            Err(_) => Err(SubmitError::Closed),
        }
    }
}

fn run(store: Arc<dyn MessageStore>, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        let mut n = jobs[0].msgs.len();
        while n < max_batch {
            match rx.try_recv() {
                Ok(job) => {
                    n += job.msgs.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let mut all: Vec<Message> = Vec::with_capacity(n);
        let mut lens = Vec::with_capacity(jobs.len());
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs {
            lens.push(job.msgs.len());
            all.extend(job.msgs);
            replies.push(job.reply);
        }
        match store.insert_batch(&mut all) {
            Ok(_) => {
                for m in &all {
                    metrics::counter!("pharos_store_stored_total", "kind" => m.kind.name())
                        .increment(1);
                }
                let mut rest = all.into_iter();
                for (len, reply) in lens.into_iter().zip(replies) {
                    let _ = reply.send(Ok(rest.by_ref().take(len).collect()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, messages = n, "store write failed; the submitters were told and nothing of this batch was stored");
                metrics::counter!("pharos_store_write_errors_total").increment(1);
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
