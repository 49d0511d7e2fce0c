//! Ping and pong deadlines.

use std::time::Duration;

use tokio::time::Instant;

/// When to ping next and when a missing pong ends the connection.
#[derive(Debug, Clone)]
pub(crate) struct Keepalive {
    ping_interval: Duration,
    pong_timeout: Duration,
    next_ping: Instant,
    pong_deadline: Option<Instant>,
}

impl Keepalive {
    pub(crate) fn new(ping_interval: Duration, pong_timeout: Duration, now: Instant) -> Self {
        Keepalive { ping_interval, pong_timeout, next_ping: now + ping_interval, pong_deadline: None }
    }

    pub(crate) fn ping_due(&self, now: Instant) -> bool {
        now >= self.next_ping
    }

    pub(crate) fn next_ping(&self) -> Instant {
        self.next_ping
    }

    /// Records a ping written at `now`: the next one is due a full interval later, and a pong is expected.
    pub(crate) fn on_ping_sent(&mut self, now: Instant) {
        self.next_ping = now + self.ping_interval;
        if self.pong_deadline.is_none() {
            self.pong_deadline = Some(now + self.pong_timeout);
        }
    }

    /// A pong arrived (solicited or not): nothing is outstanding any more.
    pub(crate) fn on_pong(&mut self) {
        self.pong_deadline = None;
    }

    pub(crate) fn pong_deadline(&self) -> Option<Instant> {
        self.pong_deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_schedule_and_pong_deadline() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut k = Keepalive::new(s(60), s(45), t0);
        assert!(!k.ping_due(t0 + s(59)));
        assert!(k.ping_due(t0 + s(60)));
        k.on_ping_sent(t0 + s(60));
        assert_eq!(k.pong_deadline(), Some(t0 + s(105)));
        assert_eq!(k.next_ping(), t0 + s(120));
        k.on_pong();
        assert_eq!(k.pong_deadline(), None);
        // Unsolicited pongs change nothing.
        k.on_pong();
        assert_eq!(k.next_ping(), t0 + s(120));
    }
}
