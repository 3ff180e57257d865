//! The store stage's single writer: callers submit batches of messages, the writer thread folds
//! concurrent submissions into one transaction (group commit) and answers each caller with its ids
//! once the transaction is durable.
//!
//! Contract: `submit` resolves `Ok` only after the messages are on disk; a full queue is reported
//! at once (`SubmitError::Full`) so the source can count and refuse instead of waiting unboundedly.
//!
//! With an [`Analyse`] stage (notification dedup, thresholds, alarms from state), every submission
//! passes through it on the writer thread, in order, before it is stored: what the stage keeps or
//! raises is stored and acknowledged as above; what it folds into an earlier stored message updates
//! that message in place (also before the acknowledgement); what it silences is not stored and is
//! counted by the stage. [`StoreWriter::submit_raised`] stores messages that Pharos' own analysis
//! raised (DDoS and scan events) without passing them through the stage again.

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

enum Job {
    Submit {
        msgs: Vec<Message>,
        analyse: bool,
        reply: oneshot::Sender<Result<Vec<Message>, Arc<StoreError>>>,
    },
    Tick(u64),
}

/// What an [`Analyse`] stage wants written.
#[derive(Debug, Default)]
pub struct Analysed {
    /// Messages to insert (fresh ids are assigned).
    pub insert: Vec<Message>,
    /// Stored messages (with `common.id`) to replace in place.
    pub update: Vec<Message>,
}

/// A stage run on the writer thread over every submission before it is stored (see the module
/// docs); its clock is the caller's `now_ms` (Unix ms).
pub trait Analyse: Send {
    /// Takes one submission; appends what to store for it to `out`.
    fn submitted(&mut self, msgs: Vec<Message>, now_ms: u64, out: &mut Analysed);
    /// Told the ids of the messages it asked to insert, once they are stored.
    fn stored(&mut self, inserted: &[Message]);
    /// Advances the clock (about once a second); appends what fell due.
    fn tick(&mut self, now_ms: u64, out: &mut Analysed);
    /// Shutdown: appends everything still held.
    fn finish(&mut self, now_ms: u64, out: &mut Analysed);
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
        Self::spawn_with(store, config, None)
    }

    /// Starts the writer thread over `store`, running `analyse` over every submission.
    pub fn spawn_with(
        store: Arc<dyn MessageStore>,
        config: WriterConfig,
        analyse: Option<Box<dyn Analyse>>,
    ) -> (Self, WriterThread) {
        let queue = config.queue.max(1);
        let (tx, rx) = mpsc::channel(queue);
        let max_batch = config.max_batch.max(1);
        let handle = std::thread::Builder::new()
            .name("pharos-store-writer".into())
            .spawn(move || run(store, rx, max_batch, analyse))
            .expect("spawning the store writer thread");
        (Self { tx, queue }, WriterThread(handle))
    }

    /// Stores `msgs` (after the analysis stage, if any) in one transaction with other concurrent
    /// submissions; returns what was inserted for them, with ids, once durable.
    pub async fn submit(&self, msgs: Vec<Message>) -> Result<Vec<Message>, SubmitError> {
        self.send(msgs, true).await
    }

    /// Stores messages raised by Pharos' own analysis as they are (no analysis stage).
    pub async fn submit_raised(&self, msgs: Vec<Message>) -> Result<Vec<Message>, SubmitError> {
        self.send(msgs, false).await
    }

    /// Gives the analysis stage the clock (about once a second); skipped when the queue is full.
    pub fn tick(&self, now_ms: u64) {
        let _ = self.tx.try_send(Job::Tick(now_ms));
    }

    async fn send(&self, msgs: Vec<Message>, analyse: bool) -> Result<Vec<Message>, SubmitError> {
        if msgs.is_empty() {
            return Ok(msgs);
        }
        let (reply, rx) = oneshot::channel();
        let job = Job::Submit {
            msgs,
            analyse,
            reply,
        };
        self.tx.try_send(job).map_err(|e| match e {
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

use pharos_model::clock::now_ms;

/// Replaces the stored messages the analysis stage folded into (after the inserts, which the
/// submitters are answered on: an update that fails loses a fold's count, never a submission).
fn apply_updates(store: &dyn MessageStore, updates: &[Message]) {
    for m in updates {
        match store.update(m) {
            // the folded-into message was deleted by retention meanwhile: nothing to update
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(e) => {
                tracing::warn!(error = %e, id = ?m.common.id, "the analysis stage's update of a stored message failed; its fold count is lost");
                metrics::counter!("pharos_store_write_errors_total").increment(1);
            }
        }
    }
}

fn run(
    store: Arc<dyn MessageStore>,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    mut analyse: Option<Box<dyn Analyse>>,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        let mut n = jobs[0].len();
        while n < max_batch {
            match rx.try_recv() {
                Ok(job) => {
                    n += job.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        // what the stage raised or folded outside any submission (ticks, late updates)
        let mut extra = Analysed::default();
        let mut all: Vec<Message> = Vec::with_capacity(n);
        let mut lens = Vec::with_capacity(jobs.len());
        let mut replies = Vec::with_capacity(jobs.len());
        let mut updates = Vec::new();
        for job in jobs {
            match job {
                Job::Tick(now) => {
                    if let Some(a) = analyse.as_mut() {
                        a.tick(now, &mut extra);
                    }
                }
                Job::Submit {
                    msgs,
                    analyse: true,
                    reply,
                } if analyse.is_some() => {
                    let mut out = Analysed::default();
                    if let Some(a) = analyse.as_mut() {
                        a.submitted(msgs, now_ms(), &mut out);
                    }
                    lens.push(out.insert.len());
                    all.extend(out.insert);
                    updates.extend(out.update);
                    replies.push(reply);
                }
                Job::Submit { msgs, reply, .. } => {
                    lens.push(msgs.len());
                    all.extend(msgs);
                    replies.push(reply);
                }
            }
        }
        let own = all.len();
        all.extend(extra.insert);
        updates.extend(extra.update);
        if all.is_empty() && updates.is_empty() {
            for reply in replies {
                let _ = reply.send(Ok(Vec::new()));
            }
            continue;
        }
        let result = if all.is_empty() {
            Ok(Vec::new())
        } else {
            store.insert_batch(&mut all)
        };
        match result {
            Ok(_) => {
                apply_updates(&*store, &updates);
                for m in &all {
                    metrics::counter!("pharos_store_stored_total", "kind" => m.kind.name())
                        .increment(1);
                }
                if let Some(a) = analyse.as_mut() {
                    a.stored(&all);
                }
                all.truncate(own);
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
    // shutdown: what the stage still holds (fold counts, dampened outputs)
    if let Some(a) = analyse.as_mut() {
        let mut out = Analysed::default();
        a.finish(now_ms(), &mut out);
        let mut ins = out.insert;
        if !ins.is_empty()
            && let Err(e) = store.insert_batch(&mut ins)
        {
            tracing::error!(error = %e, lost = ins.len(), "store write failed at shutdown: what the analysis stage still held was lost");
            metrics::counter!("pharos_store_write_errors_total").increment(1);
        }
        apply_updates(&*store, &out.update);
    }
}

impl Job {
    fn len(&self) -> usize {
        match self {
            Job::Submit { msgs, .. } => msgs.len(),
            Job::Tick(_) => 0,
        }
    }
}
