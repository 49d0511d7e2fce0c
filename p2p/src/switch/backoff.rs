//! Redial delays: exponential backoff with bounded jitter and saturating arithmetic.

use std::time::Duration;

/// Backoff settings. [`Default`] is the reference's schedule for persistent peers: 1 s doubling to 10 min, ±10%
/// jitter capped at 10 s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Jitter as a fraction of the delay (0.1 = ±10%).
    pub jitter: f64,
    /// Largest jitter.
    pub jitter_cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(600),
            jitter: 0.1,
            jitter_cap: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0 = the first retry), with `r` in `[-1, 1]` choosing the jitter.
    /// Never overflows: huge attempt counts give `max` ± jitter (the reference's `base << n` went negative after
    /// about 4 hours of failures).
    pub fn delay(&self, attempt: u32, r: f64) -> Duration {
        let base = if self.base.is_zero() { Duration::from_secs(1) } else { self.base };
        let max = if self.max.is_zero() { Duration::from_secs(60) } else { self.max };
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        let interval = base.saturating_mul(factor).min(max);
        let jitter = interval.mul_f64(self.jitter.clamp(0.0, 1.0)).min(self.jitter_cap);
        let j = jitter.mul_f64(r.abs().min(1.0));
        if r < 0.0 { interval.saturating_sub(j) } else { interval.saturating_add(j) }
    }

    /// [`Backoff::delay`] with jitter from the operating system's random number generator.
    pub fn delay_random(&self, attempt: u32) -> Duration {
        self.delay(attempt, ledgerwire_types::random::signed_unit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn doubles_from_the_base_to_the_max() {
        let b = Backoff::default();
        let without_jitter: Vec<_> = (0..12).map(|n| b.delay(n, 0.0)).collect();
        let want = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600].map(S);
        assert_eq!(without_jitter, want);
    }

    #[test]
    fn jitter_is_ten_percent_capped_at_ten_seconds() {
        let b = Backoff::default();
        assert_eq!(b.delay(0, 1.0), Duration::from_millis(1100));
        assert_eq!(b.delay(0, -1.0), Duration::from_millis(900));
        assert_eq!(b.delay(6, 1.0), Duration::from_millis(70_400)); // 64 s + 6.4 s
        assert_eq!(b.delay(20, 1.0), S(610), "10% of 600 s is 60 s, capped at 10 s");
        assert_eq!(b.delay(20, -1.0), S(590));
        for n in 0..40 {
            let d = b.delay_random(n);
            let mid = b.delay(n, 0.0);
            assert!(d >= mid.saturating_sub(S(10)) && d <= mid + S(10), "{n}: {d:?}");
        }
    }

    #[test]
    fn huge_attempt_counts_saturate_instead_of_overflowing() {
        let b = Backoff::default();
        for n in [31, 34, 63, 64, 1000, u32::MAX] {
            assert_eq!(b.delay(n, 0.0), S(600), "attempt {n}");
        }
        let big = Backoff { base: Duration::MAX, max: Duration::MAX, ..Backoff::default() };
        assert_eq!(big.delay(u32::MAX, 1.0), Duration::MAX);
    }

    #[test]
    fn zero_settings_are_sanitised() {
        let b = Backoff { base: Duration::ZERO, max: Duration::ZERO, jitter: 0.0, jitter_cap: Duration::ZERO };
        assert_eq!(b.delay(0, 1.0), S(1));
        assert_eq!(b.delay(10, 1.0), S(60));
    }
}
