//! Rate limiting as a token bucket that says how long to wait, never spins.

use std::time::Duration;

use tokio::time::Instant;

/// A byte-rate limiter. Transfers are charged after the fact and may overdraw the bucket; the caller then waits the
/// returned time before its next transfer, so the long-run rate is exact and no transfer is ever split.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    /// Bytes per second; 0 = unlimited.
    rate: u64,
    /// Most tokens the bucket holds (a burst after a quiet period).
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket for `rate` bytes per second (0 = unlimited) allowing bursts of 100 ms of traffic, and at least
    /// `min_burst` bytes (one packet), starting full.
    pub(crate) fn new(rate: u64, min_burst: usize, now: Instant) -> Self {
        let burst = (rate as f64 * 0.1).max(min_burst as f64);
        TokenBucket { rate, burst, tokens: burst, last: now }
    }

    /// Whether the bucket limits anything (a rate of 0 does not): callers skip reading the clock when it does not.
    pub(crate) fn limits(&self) -> bool {
        self.rate != 0
    }

    /// Charges `n` bytes at `now` and returns how long to wait before the next transfer, if at all.
    pub(crate) fn charge(&mut self, n: usize, now: Instant) -> Option<Duration> {
        if self.rate == 0 {
            return None;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(self.burst) - n as f64;
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / self.rate as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `total` bytes in `chunk`-sized transfers, sleeping as told; returns the simulated duration.
    fn simulate(rate: u64, total: usize, chunk: usize) -> Duration {
        let start = Instant::now();
        let mut now = start;
        let mut bucket = TokenBucket::new(rate, chunk, now);
        let mut sent = 0;
        while sent < total {
            if let Some(wait) = bucket.charge(chunk, now) {
                now += wait;
            }
            sent += chunk;
        }
        now - start
    }

    #[test]
    fn long_run_rate_is_the_configured_rate() {
        // 10 MB at 1 MB/s: 10 s minus the initial 100 ms burst.
        let d = simulate(1_000_000, 10_000_000, 1034);
        assert!((d.as_secs_f64() - 9.9).abs() < 0.01, "{d:?}");
        let d = simulate(5_120_000, 51_200_000, 1034);
        assert!((d.as_secs_f64() - 9.9).abs() < 0.01, "{d:?}");
    }

    #[test]
    fn unlimited_never_waits_and_quiet_periods_refill_only_up_to_the_burst() {
        let now = Instant::now();
        let mut free = TokenBucket::new(0, 1024, now);
        assert_eq!(free.charge(usize::MAX / 2, now), None);

        let mut b = TokenBucket::new(1_000_000, 1024, now);
        assert_eq!(b.charge(100_000, now), None, "the 100 ms burst");
        assert_eq!(b.charge(100_000, now), Some(Duration::from_millis(100)));
        // An hour of silence refills the burst only, not an hour of traffic.
        let later = now + Duration::from_secs(3600);
        assert_eq!(b.charge(100_000, later), None);
        assert_eq!(b.charge(100_000, later), Some(Duration::from_millis(100)));
    }

    #[test]
    fn a_packet_larger_than_the_burst_still_passes_then_waits() {
        let now = Instant::now();
        let mut b = TokenBucket::new(1000, 1034, now);
        assert_eq!(b.charge(1034, now), None, "the minimum burst admits one packet");
        assert_eq!(b.charge(1034, now), Some(Duration::from_secs_f64(1.034)));
    }
}
