//! Client-side rate limiter shared by every job of one account. Requests are spaced evenly at
//! `60 s / requests_per_minute`, so no 60-second window ever holds more than the configured
//! number of requests, and a long backfill runs at exactly the allowed rate. Uses tokio time, so
//! tests drive it with a paused clock. It also counts what it granted and how long callers
//! waited ([`RateLimiter::usage`]), which backfill progress reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Evenly spaced request slots.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next_slot: Mutex<Option<Instant>>,
    granted: AtomicU64,
    waits: AtomicU64,
    waited_micros: AtomicU64,
    throttled: AtomicU64,
}

/// What a [`RateLimiter`] has done so far (monotonic counters; subtract two snapshots for a
/// span).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimiterUsage {
    /// Slots granted: one per request attempt sent, retries included.
    pub granted: u64,
    /// Grants that had to wait for their slot.
    pub waits: u64,
    /// Total time spent waiting for slots.
    pub waited: Duration,
    /// Responses the server answered with throttling (429 or a "rate limit" body).
    pub throttled: u64,
}

impl LimiterUsage {
    /// Counters accumulated since `earlier`.
    pub fn since(&self, earlier: &LimiterUsage) -> LimiterUsage {
        LimiterUsage {
            granted: self.granted.saturating_sub(earlier.granted),
            waits: self.waits.saturating_sub(earlier.waits),
            waited: self.waited.saturating_sub(earlier.waited),
            throttled: self.throttled.saturating_sub(earlier.throttled),
        }
    }
}

impl RateLimiter {
    pub fn per_minute(requests_per_minute: u32) -> RateLimiter {
        let rpm = requests_per_minute.max(1);
        RateLimiter {
            interval: Duration::from_secs(60) / rpm,
            next_slot: Mutex::new(None),
            granted: AtomicU64::new(0),
            waits: AtomicU64::new(0),
            waited_micros: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
        }
    }

    /// Counters so far.
    pub fn usage(&self) -> LimiterUsage {
        LimiterUsage {
            granted: self.granted.load(Ordering::Relaxed),
            waits: self.waits.load(Ordering::Relaxed),
            waited: Duration::from_micros(self.waited_micros.load(Ordering::Relaxed)),
            throttled: self.throttled.load(Ordering::Relaxed),
        }
    }

    /// Records a response the server throttled (counted in [`LimiterUsage::throttled`]).
    pub fn note_throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Wait for the next free slot; returns how long the caller waited.
    pub async fn acquire(&self) -> Duration {
        let now = Instant::now();
        let slot = {
            let mut next = self.next_slot.lock().await;
            let slot = match *next {
                Some(n) if n > now => n,
                _ => now,
            };
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
        let waited = slot.saturating_duration_since(now);
        self.granted.fetch_add(1, Ordering::Relaxed);
        if !waited.is_zero() {
            self.waits.fetch_add(1, Ordering::Relaxed);
            let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
            self.waited_micros.fetch_add(micros, Ordering::Relaxed);
        }
        waited
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_limit_in_any_minute() {
        let limiter = Arc::new(RateLimiter::per_minute(60));
        let start = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..150 {
            let l = limiter.clone();
            handles.push(tokio::spawn(async move {
                l.acquire().await;
                Instant::now().duration_since(start)
            }));
        }
        let mut times = Vec::new();
        for h in handles {
            times.push(h.await.expect("task"));
        }
        times.sort();
        // Sliding 60 s windows starting at each request hold at most 60 requests.
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_secs(60))
                .count();
            assert!(in_window <= 60, "window at {t:?} holds {in_window}");
        }
        // And the limiter does not waste budget: 150 requests take 149 intervals.
        assert_eq!(times.last().copied(), Some(Duration::from_secs(149)));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_is_not_banked_as_burst() {
        let limiter = RateLimiter::per_minute(60);
        limiter.acquire().await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(limiter.acquire().await, Duration::ZERO);
        assert_eq!(limiter.acquire().await, Duration::from_secs(1));
        limiter.note_throttled();
        assert_eq!(
            limiter.usage(),
            LimiterUsage {
                granted: 3,
                waits: 1,
                waited: Duration::from_secs(1),
                throttled: 1,
            }
        );
    }
}
