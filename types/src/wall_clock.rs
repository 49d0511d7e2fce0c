//! Wall-clock time that follows tokio's clock: read once at start, then advanced by `tokio::time::Instant`, so
//! paused-time tests move it and deadlines computed from it map back to instants exactly.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// The wall clock of one task, anchored at its creation.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    base_unix_ms: i64,
    base: Instant,
}

impl Default for WallClock {
    fn default() -> Self {
        Self::new()
    }
}

impl WallClock {
    /// Anchors the clock at the system time now.
    pub fn new() -> Self {
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        WallClock { base_unix_ms: i64::try_from(ms).unwrap_or(i64::MAX), base: Instant::now() }
    }

    /// Milliseconds since the Unix epoch at `instant`.
    pub fn unix_ms_at(&self, instant: Instant) -> i64 {
        let elapsed = instant.saturating_duration_since(self.base).as_millis();
        self.base_unix_ms.saturating_add(i64::try_from(elapsed).unwrap_or(i64::MAX))
    }

    /// Milliseconds since the Unix epoch now.
    pub fn unix_ms(&self) -> i64 {
        self.unix_ms_at(Instant::now())
    }

    /// Seconds since the Unix epoch now.
    pub fn unix_secs(&self) -> u64 {
        u64::try_from(self.unix_ms() / 1000).unwrap_or(0)
    }

    /// The instant at which the clock reads `unix_ms` (now or later: never before the anchor).
    pub fn instant_at(&self, unix_ms: i64) -> Instant {
        let ms = unix_ms.saturating_sub(self.base_unix_ms).max(0);
        self.base + Duration::from_millis(ms.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_clock_moves_with_tokio_time_and_maps_back_to_instants() {
        let c = WallClock::new();
        let t0 = c.unix_ms();
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(c.unix_ms() - t0, 90_000);
        let later = c.instant_at(t0 + 120_000);
        assert_eq!(c.unix_ms_at(later), t0 + 120_000);
        assert_eq!(c.instant_at(i64::MIN), c.base);
    }
}
