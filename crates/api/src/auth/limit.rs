//! Token buckets per client key, with bounded memory.
//!
//! Contract: a bucket holds up to `burst` tokens and refills at `rate` per second; a check that
//! cannot take its cost takes nothing and says after how many seconds it could succeed. A rate of
//! 0 disables the limiter. At most [`MAX_CLIENTS`] buckets are kept: full (idle) buckets are
//! evicted first, then the least recently used.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Most clients whose buckets are kept.
pub const MAX_CLIENTS: usize = 10_000;

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by client.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    max_clients: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter of `rate` per second with room for `burst` (at least 1); rate 0: unlimited.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self::with_capacity(rate, burst, MAX_CLIENTS)
    }

    /// A limiter that keeps at most `max_clients` buckets.
    pub fn with_capacity(rate: f64, burst: f64, max_clients: usize) -> Self {
        Self {
            rate: rate.max(0.0),
            burst: burst.max(1.0),
            max_clients: max_clients.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Buckets currently kept.
    pub fn clients(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Takes `cost` from `key`'s bucket, or returns the seconds to wait (at least 1).
    pub fn check(&self, key: &str, cost: f64) -> Result<(), u64> {
        self.check_all(&[(key, cost)]).map_err(|(_, s)| s)
    }

    /// Takes every cost from its bucket, or nothing: the first key short of tokens and its wait.
    pub fn check_all<'a>(&self, costs: &[(&'a str, f64)]) -> Result<(), (&'a str, u64)> {
        if self.rate == 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        for (key, cost) in costs {
            let available = map.get(*key).map_or(self.burst, |b| self.refilled(b, now));
            if available < *cost {
                let wait = ((cost - available) / self.rate).ceil().max(1.0);
                return Err((key, wait as u64));
            }
        }
        for (key, cost) in costs {
            if !map.contains_key(*key) && map.len() >= self.max_clients {
                self.evict(&mut map, now);
            }
            let burst = self.burst;
            let tokens = map.get(*key).map_or(burst, |b| self.refilled(b, now));
            map.insert(
                (*key).to_string(),
                Bucket {
                    tokens: tokens - cost,
                    last: now,
                },
            );
        }
        Ok(())
    }

    fn refilled(&self, b: &Bucket, now: Instant) -> f64 {
        let dt = now.saturating_duration_since(b.last).as_secs_f64();
        (b.tokens + dt * self.rate).min(self.burst)
    }

    fn evict(&self, map: &mut HashMap<String, Bucket>, now: Instant) {
        map.retain(|_, b| self.refilled(b, now) < self.burst);
        if map.len() >= self.max_clients
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, b)| b.last)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_waits_are_announced() {
        let l = RateLimiter::new(10.0, 5.0);
        for _ in 0..5 {
            assert!(l.check("a", 1.0).is_ok());
        }
        assert_eq!(l.check("a", 1.0), Err(1));
        assert!(l.check("b", 1.0).is_ok(), "clients have their own buckets");
        assert_eq!(RateLimiter::new(1.0, 1.0).check("x", 30.0), Err(29));
    }

    #[test]
    fn check_all_takes_everything_or_nothing() {
        let l = RateLimiter::new(1.0, 10.0);
        assert!(l.check_all(&[("fw1", 8.0), ("fw2", 1.0)]).is_ok());
        assert_eq!(l.check_all(&[("fw2", 1.0), ("fw1", 5.0)]), Err(("fw1", 3)));
        // fw2 was not charged by the refused request.
        assert!(l.check("fw2", 9.0).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let l = RateLimiter::with_capacity(1.0, 10.0, 100);
        for i in 0..1000 {
            assert!(l.check(&format!("c{i}"), 1.0).is_ok());
        }
        assert!(l.clients() <= 100);
        assert!(RateLimiter::new(0.0, 0.0).check("x", 1e9).is_ok());
    }
}
