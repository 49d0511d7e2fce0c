//! Rate limits for log lines that peers can trigger (failed dials, rejected connections, refused messages), so a
//! flood shows in the log without filling the disk. Pure: fed `now`.

use std::time::Duration;

use tokio::time::Instant;

/// Allows `burst` lines per `window`; counts what it suppresses and reports the count with the next allowed line.
#[derive(Clone, Debug)]
pub struct LogLimit {
    window: Duration,
    burst: u32,
    window_start: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl LogLimit {
    /// `burst` lines per `window`.
    pub fn new(burst: u32, window: Duration) -> Self {
        LogLimit { window, burst: burst.max(1), window_start: None, used: 0, suppressed: 0 }
    }

    /// Whether a line may be written at `now`: `Some(n)` with the number of lines suppressed since the last one
    /// written, or `None` to drop this one.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        let fresh = self.window_start.is_none_or(|start| now.saturating_duration_since(start) >= self.window);
        if fresh {
            self.window_start = Some(now);
            self.used = 0;
        }
        if self.used >= self.burst {
            self.suppressed += 1;
            return None;
        }
        self.used += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

impl Default for LogLimit {
    /// 10 lines per 10 seconds.
    fn default() -> Self {
        LogLimit::new(10, Duration::from_secs(10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_lines_are_counted_and_reported_with_the_next_window() {
        let t0 = Instant::now();
        let mut l = LogLimit::new(3, Duration::from_secs(10));
        assert_eq!((0..3).map(|_| l.allow(t0)).collect::<Vec<_>>(), vec![Some(0); 3]);
        for _ in 0..1000 {
            assert_eq!(l.allow(t0 + Duration::from_secs(5)), None);
        }
        assert_eq!(l.allow(t0 + Duration::from_secs(10)), Some(1000), "the first line of a new window says how many");
        assert_eq!(l.allow(t0 + Duration::from_secs(11)), Some(0));
    }
}
