//! A fair share of the queue between senders when it fills up.
//!
//! Contract:
//! - Every message takes a token from its sender's bucket (refilled at `rate` per second, room for
//!   one second's worth). Senders are keyed by IPv4 address, or by IPv6 /64 (a host changes its
//!   IPv6 address within its /64 at will).
//! - While at least half of the queue to the next stage is free, every message passes, within its
//!   sender's rate or not. Once less than half is free, a message whose sender has no token left is
//!   refused: the UDP listener drops it (`pharos_syslog_dropped_total{reason="sender_rate"}`); TCP
//!   and TLS connections wait for the sender's next token (`pharos_syslog_throttled_total`). So a
//!   flooding sender cannot take the room the others need, and loses nothing while there is room.
//! - At most [`MAX_SENDERS`] buckets; senders beyond them share one overflow bucket (a flood from
//!   spoofed addresses shares it). Buckets idle long enough to be full again are swept every 10 s.
//! - A rate of 0 turns the limiter off.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most senders with a bucket of their own.
pub const MAX_SENDERS: usize = 65_536;
/// How often full (idle) buckets are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// A sender: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    V4(u32),
    V6(u64),
}

impl Key {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => Key::V4(a.into()),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => Key::V4(v4.into()),
                None => Key::V6((u128::from(a) >> 64) as u64),
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

struct Inner {
    buckets: HashMap<Key, Bucket>,
    overflow: Bucket,
    last_sweep: Instant,
}

/// What [`SenderLimiter::check`] decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// The message goes on.
    Pass,
    /// The sender is over its rate while the queue is under pressure; its next token comes after
    /// this long.
    Refuse(Duration),
}

/// Token buckets per sender, enforced only while the queue is under pressure.
pub struct SenderLimiter {
    rate: f64,
    max_senders: usize,
    inner: Mutex<Inner>,
}

impl SenderLimiter {
    /// A limiter of `rate` messages per second per sender (0: off) keeping up to `max_senders`
    /// buckets.
    pub fn new(rate: u32, max_senders: usize) -> Self {
        let now = Instant::now();
        let rate = f64::from(rate);
        Self {
            rate,
            max_senders: max_senders.max(1),
            inner: Mutex::new(Inner {
                buckets: HashMap::new(),
                overflow: Bucket {
                    tokens: rate,
                    last: now,
                },
                last_sweep: now,
            }),
        }
    }

    /// True when the limiter does nothing.
    pub fn is_off(&self) -> bool {
        self.rate == 0.0
    }

    /// Charges one message of `peer`; `pressure` says whether less than half the queue is free.
    pub fn check(&self, peer: IpAddr, pressure: bool, now: Instant) -> Verdict {
        if self.rate == 0.0 {
            return Verdict::Pass;
        }
        let rate = self.rate;
        let refill = |b: &mut Bucket| {
            let dt = now.saturating_duration_since(b.last).as_secs_f64();
            b.tokens = (b.tokens + dt * rate).min(rate);
            b.last = now;
        };
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *g;
        if now.saturating_duration_since(inner.last_sweep) >= SWEEP_EVERY {
            inner.buckets.retain(|_, b| {
                let dt = now.saturating_duration_since(b.last).as_secs_f64();
                b.tokens + dt * rate < rate
            });
            inner.last_sweep = now;
        }
        let key = Key::of(peer);
        let room = inner.buckets.len() < self.max_senders;
        let b = match inner.buckets.get_mut(&key) {
            Some(b) => b,
            None if room => inner.buckets.entry(key).or_insert(Bucket {
                tokens: rate,
                last: now,
            }),
            None => &mut inner.overflow,
        };
        refill(b);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Verdict::Pass
        } else if !pressure {
            Verdict::Pass
        } else {
            Verdict::Refuse(Duration::from_secs_f64(
                ((1.0 - b.tokens) / rate).max(0.001),
            ))
        }
    }

    /// Senders with a bucket of their own.
    pub fn senders(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .buckets
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn over_its_rate_a_sender_passes_without_pressure_and_is_refused_under_it() {
        let l = SenderLimiter::new(10, MAX_SENDERS);
        let t = Instant::now();
        for _ in 0..10 {
            assert_eq!(l.check(ip("192.0.2.1"), true, t), Verdict::Pass);
        }
        // Out of tokens: passes while there is room, refused under pressure.
        assert_eq!(l.check(ip("192.0.2.1"), false, t), Verdict::Pass);
        let Verdict::Refuse(wait) = l.check(ip("192.0.2.1"), true, t) else {
            panic!("not refused")
        };
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        // Another sender has its own bucket.
        assert_eq!(l.check(ip("192.0.2.2"), true, t), Verdict::Pass);
        // A tenth of a second later, one more token.
        let later = t + Duration::from_millis(100);
        assert_eq!(l.check(ip("192.0.2.1"), true, later), Verdict::Pass);
        assert!(matches!(
            l.check(ip("192.0.2.1"), true, later),
            Verdict::Refuse(_)
        ));
    }

    #[test]
    fn ipv6_senders_share_their_64_and_mapped_v4_is_v4() {
        let l = SenderLimiter::new(1, MAX_SENDERS);
        let t = Instant::now();
        assert_eq!(l.check(ip("2001:db8:1:2::1"), true, t), Verdict::Pass);
        assert!(matches!(
            l.check(ip("2001:db8:1:2::ffff"), true, t),
            Verdict::Refuse(_)
        ));
        assert_eq!(l.check(ip("2001:db8:1:3::1"), true, t), Verdict::Pass);
        assert_eq!(l.check(ip("192.0.2.9"), true, t), Verdict::Pass);
        assert!(matches!(
            l.check(ip("::ffff:192.0.2.9"), true, t),
            Verdict::Refuse(_)
        ));
    }

    #[test]
    fn senders_beyond_the_bound_share_one_bucket_and_idle_buckets_are_swept() {
        let l = SenderLimiter::new(2, 3);
        let t = Instant::now();
        for i in 1..=3 {
            assert_eq!(l.check(ip(&format!("192.0.2.{i}")), true, t), Verdict::Pass);
        }
        assert_eq!(l.senders(), 3);
        // Spoofed sources beyond the bound: two tokens between all of them.
        assert_eq!(l.check(ip("198.51.100.1"), true, t), Verdict::Pass);
        assert_eq!(l.check(ip("198.51.100.2"), true, t), Verdict::Pass);
        assert!(matches!(
            l.check(ip("198.51.100.3"), true, t),
            Verdict::Refuse(_)
        ));
        assert_eq!(l.senders(), 3);
        // After the sweep period the idle (full again) buckets are gone.
        let later = t + SWEEP_EVERY;
        assert_eq!(l.check(ip("203.0.113.1"), true, later), Verdict::Pass);
        assert_eq!(l.senders(), 1);
    }

    #[test]
    fn rate_zero_is_off() {
        let l = SenderLimiter::new(0, MAX_SENDERS);
        assert!(l.is_off());
        let t = Instant::now();
        for _ in 0..1000 {
            assert_eq!(l.check(ip("192.0.2.1"), true, t), Verdict::Pass);
        }
        assert_eq!(l.senders(), 0);
    }
}
