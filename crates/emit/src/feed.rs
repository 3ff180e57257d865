//! [`Feed`]: the store's change feed, read once for all subscriptions and streams.
//!
//! Contract: [`Feed::read`] returns what [`MessageStore::changes`] would (entries after a seq, in
//! seq order, at most `limit`), sharing decoded entries between readers: the newest entries read
//! (up to the capacity) are kept, so readers that follow the feed closely decode each message once
//! between them instead of once each. A reader behind the kept window reads the store directly.
//! An entry holds the message as it was when first read (a later update or state change is a later
//! entry); a message deleted by retention after it was read may still be returned while kept.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use pharos_store::{MessageStore, StoreError, StoredMessage};

use crate::Change;

/// Entries fetched from the store at once when readers reach the end of what is kept.
const FETCH: usize = 1000;

/// One change of the feed, shared between readers.
#[derive(Debug)]
pub struct Entry {
    /// Position in the feed.
    pub seq: u64,
    /// What happened.
    pub change: Change,
    /// The message as stored when the entry was read.
    pub stored: StoredMessage,
    /// The message rendered once by a reader that sends text (the SSE stream's JSON).
    pub rendered: OnceLock<String>,
}

/// Kept entries: every feed row with seq in (lo, hi] is in `entries`, in order.
struct Window {
    lo: u64,
    hi: u64,
    entries: VecDeque<Arc<Entry>>,
}

/// The shared reader of the change feed; see the module docs.
pub struct Feed {
    store: Arc<dyn MessageStore>,
    window: Mutex<Window>,
    capacity: usize,
}

fn entry((seq, change, stored): (u64, Change, StoredMessage)) -> Arc<Entry> {
    Arc::new(Entry {
        seq,
        change,
        stored,
        rendered: OnceLock::new(),
    })
}

impl Feed {
    /// A reader of `store`'s feed keeping up to `capacity` entries.
    pub fn new(store: Arc<dyn MessageStore>, capacity: usize) -> Self {
        let start = store.last_change().unwrap_or(0);
        Self {
            store,
            window: Mutex::new(Window {
                lo: start,
                hi: start,
                entries: VecDeque::new(),
            }),
            capacity: capacity.max(FETCH),
        }
    }

    /// The store this feed reads.
    pub fn store(&self) -> &Arc<dyn MessageStore> {
        &self.store
    }

    fn lock(&self) -> MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Up to `limit` entries with seq > `after`, in seq order (blocking: call off the async
    /// runtime). Empty means no entry after `after` up to the newest seq when it was called.
    pub fn read(&self, after: u64, limit: usize) -> Result<Vec<Arc<Entry>>, StoreError> {
        let limit = limit.max(1);
        let mut w = self.lock();
        if after < w.lo {
            drop(w);
            return Ok(self
                .store
                .changes(after, limit)?
                .into_iter()
                .map(entry)
                .collect());
        }
        if after > w.hi {
            if after >= self.store.last_change()? {
                // Nothing there yet: keep the window for the readers behind.
                return Ok(Vec::new());
            }
            w.entries.clear();
            w.lo = after;
            w.hi = after;
        }
        let from = w.entries.partition_point(|e| e.seq <= after);
        let mut out: Vec<Arc<Entry>> = w.entries.range(from..).take(limit).cloned().collect();
        if out.len() < limit {
            let last = self.store.last_change()?;
            if w.hi < last {
                let fetched = self.store.changes(w.hi, FETCH.max(limit))?;
                if fetched.is_empty() {
                    // Every row in (hi, last] was deleted by retention.
                    w.hi = last;
                }
                for e in fetched {
                    let e = entry(e);
                    w.hi = e.seq;
                    if out.len() < limit {
                        out.push(e.clone());
                    }
                    w.entries.push_back(e);
                }
                while w.entries.len() > self.capacity {
                    if let Some(old) = w.entries.pop_front() {
                        w.lo = old.seq;
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use pharos_model::{GenericLog, Kind, Message};
    use pharos_store::SqliteStore;

    use super::*;

    fn logs(store: &SqliteStore, n: usize) {
        let mut v: Vec<Message> = (0..n)
            .map(|_| Message::new("fw", Kind::GenericLog(GenericLog::default())))
            .collect();
        store.insert_batch(&mut v).unwrap();
    }

    fn seqs(v: &[Arc<Entry>]) -> Vec<u64> {
        v.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn readers_get_what_the_store_gives_and_share_entries() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        logs(&store, 3);
        let feed = Feed::new(store.clone(), 1000);
        // Before the window (created at seq 3): read from the store.
        assert_eq!(seqs(&feed.read(0, 10).unwrap()), vec![1, 2, 3]);
        assert!(feed.read(3, 10).unwrap().is_empty());
        logs(&store, 5);
        let a = feed.read(3, 2).unwrap();
        assert_eq!(seqs(&a), vec![4, 5]);
        let b = feed.read(3, 10).unwrap();
        assert_eq!(seqs(&b), vec![4, 5, 6, 7, 8]);
        assert!(Arc::ptr_eq(&a[0], &b[0]), "decoded once, shared");
        assert_eq!(seqs(&feed.read(6, 10).unwrap()), vec![7, 8]);
        assert!(feed.read(8, 10).unwrap().is_empty());
        // A reader ahead of the window (e.g. an SSE client resuming) resets it.
        logs(&store, 2);
        assert_eq!(seqs(&feed.read(9, 10).unwrap()), vec![10]);
        assert_eq!(
            seqs(&feed.read(8, 10).unwrap()),
            vec![9, 10],
            "behind: from the store"
        );
    }

    #[test]
    fn the_window_keeps_at_most_its_capacity_and_skips_deleted_rows() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let feed = Feed::new(store.clone(), 1000);
        logs(&store, 2500);
        let mut after = 0;
        let mut n = 0;
        loop {
            let got = feed.read(after, 700).unwrap();
            if got.is_empty() {
                break;
            }
            assert_eq!(got[0].seq, after + 1, "no gap");
            n += got.len();
            after = got.last().unwrap().seq;
        }
        assert_eq!(n, 2500);
        assert!(feed.lock().entries.len() <= 1000);
        assert_eq!(seqs(&feed.read(2497, 10).unwrap()), vec![2498, 2499, 2500]);
        // Rows deleted by retention before they were read are skipped.
        logs(&store, 3);
        store
            .delete_before(chrono::Utc::now() + chrono::Duration::days(1))
            .unwrap();
        assert!(feed.read(2500, 10).unwrap().is_empty());
        logs(&store, 1);
        assert_eq!(seqs(&feed.read(2500, 10).unwrap()), vec![2504]);
    }
}
