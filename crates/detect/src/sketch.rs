//! Space-Saving heavy-hitter sketch (Metwally et al. 2005), weighted.
//!
//! Contract: a sketch of capacity `k` holds at most `k` keys and never allocates after its first
//! `k` distinct keys. Every key whose true weight exceeds `total / k` is in the sketch, and a
//! reported count overestimates the true weight by at most the entry's `error`
//! (which is at most `total / k`).

/// A bounded top-k counter of weighted keys.
#[derive(Debug, Clone)]
pub struct SpaceSaving<K> {
    entries: Vec<Entry<K>>,
    cap: usize,
    total: u64,
}

/// One monitored key with its (over)estimated weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<K> {
    /// The key.
    pub key: K,
    /// Estimated weight (true weight <= count <= true weight + error).
    pub count: u64,
    /// Maximum overestimate of `count`.
    pub error: u64,
}

impl<K: Copy + PartialEq> SpaceSaving<K> {
    /// A sketch that monitors at most `cap` keys (at least 1).
    pub fn new(cap: usize) -> Self {
        Self {
            entries: Vec::new(),
            cap: cap.max(1),
            total: 0,
        }
    }

    /// Adds `w` to `key`.
    #[inline]
    pub fn add(&mut self, key: K, w: u64) {
        self.total = self.total.saturating_add(w);
        if let Some(e) = self.entries.iter_mut().find(|e| e.key == key) {
            e.count = e.count.saturating_add(w);
            return;
        }
        if self.entries.len() < self.cap {
            self.entries.push(Entry {
                key,
                count: w,
                error: 0,
            });
            return;
        }
        // replace the minimum
        let mut min_i = 0;
        let mut min_c = u64::MAX;
        for (i, e) in self.entries.iter().enumerate() {
            if e.count < min_c {
                min_c = e.count;
                min_i = i;
            }
        }
        self.entries[min_i] = Entry {
            key,
            count: min_c.saturating_add(w),
            error: min_c,
        };
    }

    /// Sum of all weights added.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Number of monitored keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `n` heaviest monitored keys by guaranteed weight (`count - error`), heaviest first.
    pub fn top(&self, n: usize) -> Vec<Entry<K>> {
        let mut v = self.entries.clone();
        v.sort_by_key(|e| std::cmp::Reverse((e.count - e.error, e.count)));
        v.truncate(n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn heavy_keys_survive_a_stream_of_distinct_light_keys() {
        let mut s = SpaceSaving::new(8);
        for i in 0..10_000u32 {
            s.add(1_000_000 + i, 1);
            if i % 4 == 0 {
                s.add(7, 1);
            }
        }
        assert_eq!(s.len(), 8);
        assert_eq!(s.top(1)[0].key, 7);
        assert_eq!(s.total(), 12_500);
    }

    proptest! {
        #[test]
        fn counts_bound_true_weights(stream in proptest::collection::vec((0u8..40, 1u64..100), 0..400), cap in 1usize..16) {
            let mut s = SpaceSaving::new(cap);
            let mut truth = [0u64; 40];
            for (k, w) in &stream {
                s.add(*k, *w);
                truth[*k as usize] += *w;
            }
            prop_assert!(s.len() <= cap);
            let total: u64 = truth.iter().sum();
            for e in s.top(cap) {
                let t = truth[e.key as usize];
                prop_assert!(e.count >= t && e.count - e.error <= t);
                prop_assert!(e.error <= total / cap as u64);
            }
            for (k, t) in truth.iter().enumerate() {
                if *t > total / cap as u64 {
                    prop_assert!(s.top(cap).iter().any(|e| e.key as usize == k));
                }
            }
        }
    }
}
