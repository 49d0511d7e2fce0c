//! Per-peer abuse handling, without I/O.
//!
//! A peer may ask for addresses once per `min_request_interval`; extra requests are dropped (not answered) and count
//! as a strike. Unsolicited responses and malformed messages are strikes too. Only repeated abuse bans: `ban_after`
//! strikes within `window`. A first offence never bans. (CometBFT bans for 24 hours on the first early request,
//! which has halted real networks.)

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Abuse thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuardConfig {
    /// Least time between two answered requests from one peer. Default 2 s (TM2 peers ask a random peer every 3 s).
    pub min_request_interval: Duration,
    /// Strikes are counted over this window. Default 10 min.
    pub window: Duration,
    /// Strikes within the window that earn a ban. Default 30.
    pub ban_after: usize,
    /// How long a ban lasts. Default 1 h.
    pub ban_duration: Duration,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            min_request_interval: Duration::from_secs(2),
            window: Duration::from_secs(600),
            ban_after: 30,
            ban_duration: Duration::from_secs(3600),
        }
    }
}

/// What to do with a peer's message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Handle it.
    Accept,
    /// Ignore it (a strike was counted).
    Drop,
    /// Ignore it and ban the peer.
    Ban,
}

/// One peer's record.
#[derive(Clone, Debug, Default)]
pub struct Guard {
    last_answered: Option<Instant>,
    strikes: VecDeque<Instant>,
}

impl Guard {
    /// A request arrived at `now`.
    pub fn on_request(&mut self, now: Instant, c: &GuardConfig) -> Verdict {
        if self.last_answered.is_some_and(|t| now.saturating_duration_since(t) < c.min_request_interval) {
            return self.strike(now, 1, c);
        }
        self.last_answered = Some(now);
        Verdict::Accept
    }

    /// Counts `weight` strikes at `now`.
    pub fn strike(&mut self, now: Instant, weight: usize, c: &GuardConfig) -> Verdict {
        while self.strikes.front().is_some_and(|t| now.saturating_duration_since(*t) > c.window) {
            self.strikes.pop_front();
        }
        for _ in 0..weight {
            if self.strikes.len() >= c.ban_after {
                break;
            }
            self.strikes.push_back(now);
        }
        if self.strikes.len() >= c.ban_after { Verdict::Ban } else { Verdict::Drop }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: GuardConfig = GuardConfig {
        min_request_interval: Duration::from_secs(2),
        window: Duration::from_secs(600),
        ban_after: 30,
        ban_duration: Duration::from_secs(3600),
    };

    #[test]
    fn an_honest_tm2_peer_asking_every_three_seconds_is_always_answered() {
        let t0 = Instant::now();
        let mut g = Guard::default();
        for i in 0..1000u64 {
            assert_eq!(g.on_request(t0 + Duration::from_secs(3 * i), &C), Verdict::Accept);
        }
    }

    #[test]
    fn early_requests_are_dropped_and_only_sustained_abuse_bans() {
        let t0 = Instant::now();
        let mut g = Guard::default();
        assert_eq!(g.on_request(t0, &C), Verdict::Accept);
        // A burst of 29 extra requests: dropped, no ban.
        for i in 0..29 {
            assert_eq!(g.on_request(t0 + Duration::from_millis(i), &C), Verdict::Drop, "early request {i}");
        }
        // The 30th strike within the window bans.
        assert_eq!(g.on_request(t0 + Duration::from_millis(30), &C), Verdict::Ban);
    }

    #[test]
    fn strikes_expire_after_the_window() {
        let t0 = Instant::now();
        let mut g = Guard::default();
        for _ in 0..29 {
            assert_eq!(g.strike(t0, 1, &C), Verdict::Drop);
        }
        // Eleven minutes later the old strikes no longer count.
        assert_eq!(g.strike(t0 + Duration::from_secs(660), 1, &C), Verdict::Drop);
        assert_eq!(g.strikes.len(), 1);
        // Heavy strikes count several at once, bounded.
        assert_eq!(g.strike(t0 + Duration::from_secs(661), 100, &C), Verdict::Ban);
        assert_eq!(g.strikes.len(), 30);
    }
}
