//! Ping: application-level round-trip times to every peer. The smallest complete reactor, and the template for
//! others: a pure per-peer state machine fed events and `now`, driven by a task that owns it.
//!
//! Wire format on [`PING_CHANNEL`]: 9 bytes, `0x00 ‹nonce u64 BE›` for a ping, `0x01 ‹same nonce›` for its pong.
//! Every `interval` we ping each peer that has no ping outstanding; a pong with the outstanding nonce gives an RTT, no
//! pong within `timeout` counts a failure. Liveness itself is the connection's job (MConnection pings); this
//! reactor measures and reports. Anything else on the channel is a protocol error and disconnects the peer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ledgerwire_p2p::{ChannelDescriptor, PeerHandle, ReactorContext, ReactorEvent, SwitchBuilder, SwitchError};
use ledgerwire_types::NodeId;
use slog::{Logger, debug};
use tokio::sync::watch;
use tokio::time::Instant;

/// The ping channel.
pub const PING_CHANNEL: u8 = 0x70;

const PING: u8 = 0;
const PONG: u8 = 1;

/// Ping settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PingConfig {
    /// How often each peer is pinged. Default 15 s.
    pub interval: Duration,
    /// How long a pong may take. Default 10 s.
    pub timeout: Duration,
}

impl Default for PingConfig {
    fn default() -> Self {
        PingConfig { interval: Duration::from_secs(15), timeout: Duration::from_secs(10) }
    }
}

/// What we know about one peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerPing {
    /// The last measured round-trip time.
    pub rtt: Option<Duration>,
    /// Pongs received.
    pub successes: u64,
    /// Pings that timed out.
    pub failures: u64,
}

/// One peer's ping state, without I/O.
#[derive(Clone, Debug)]
struct PeerState {
    stats: PeerPing,
    outstanding: Option<(u64, Instant)>,
    next_ping: Instant,
}

impl PeerState {
    fn new(now: Instant) -> Self {
        // First ping right away: operators want an RTT as soon as a peer connects.
        PeerState { stats: PeerPing::default(), outstanding: None, next_ping: now }
    }

    /// Called when due; returns the nonce to send, if a ping should go out.
    fn poll(&mut self, now: Instant, config: &PingConfig, nonce: u64) -> Option<u64> {
        if let Some((_, sent)) = self.outstanding
            && now.saturating_duration_since(sent) >= config.timeout
        {
            self.outstanding = None;
            self.stats.failures += 1;
        }
        if self.outstanding.is_some() || now < self.next_ping {
            return None;
        }
        self.outstanding = Some((nonce, now));
        self.next_ping = now + config.interval;
        Some(nonce)
    }

    /// A pong arrived; true if it answered the outstanding ping.
    fn on_pong(&mut self, nonce: u64, now: Instant) -> bool {
        match self.outstanding {
            Some((n, sent)) if n == nonce => {
                self.outstanding = None;
                self.stats.rtt = Some(now.saturating_duration_since(sent));
                self.stats.successes += 1;
                true
            }
            _ => false,
        }
    }

    /// When this peer next needs attention.
    fn deadline(&self, config: &PingConfig) -> Instant {
        match self.outstanding {
            Some((_, sent)) => sent + config.timeout,
            None => self.next_ping,
        }
    }
}

/// Reads the reactor's measurements.
#[derive(Clone, Debug)]
pub struct PingHandle {
    stats: watch::Receiver<Arc<BTreeMap<NodeId, PeerPing>>>,
}

impl PingHandle {
    /// The current measurements of every connected peer.
    pub fn snapshot(&self) -> Arc<BTreeMap<NodeId, PeerPing>> {
        self.stats.borrow().clone()
    }

    /// Waits for the next change of the measurements; `None` once the reactor has stopped.
    pub async fn changed(&mut self) -> Option<Arc<BTreeMap<NodeId, PeerPing>>> {
        self.stats.changed().await.ok()?;
        Some(self.stats.borrow_and_update().clone())
    }
}

/// Registers the ping reactor with a switch under construction and starts it.
pub fn register(builder: &mut SwitchBuilder, config: PingConfig, logger: Logger) -> Result<PingHandle, SwitchError> {
    let ctx = builder.add_reactor("ping", &[descriptor()], 64)?;
    let (tx, rx) = watch::channel(Arc::new(BTreeMap::new()));
    tokio::spawn(run(ctx, config, tx, logger));
    Ok(PingHandle { stats: rx })
}

/// The channel descriptor: tiny messages, a short queue, flushed at once (an RTT must not include the flush
/// throttle).
pub fn descriptor() -> ChannelDescriptor {
    ChannelDescriptor::new(PING_CHANNEL, 1)
        .with_send_queue_capacity(4)
        .with_recv_message_capacity(64)
        .with_low_latency()
}

fn message(kind: u8, nonce: u64) -> Vec<u8> {
    let mut m = Vec::with_capacity(9);
    m.push(kind);
    m.extend_from_slice(&nonce.to_be_bytes());
    m
}

fn parse(msg: &[u8]) -> Option<(u8, u64)> {
    let (&kind, rest) = msg.split_first()?;
    let nonce = u64::from_be_bytes(rest.try_into().ok()?);
    matches!(kind, PING | PONG).then_some((kind, nonce))
}

fn random_nonce() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

async fn run(
    mut ctx: ReactorContext,
    config: PingConfig,
    out: watch::Sender<Arc<BTreeMap<NodeId, PeerPing>>>,
    logger: Logger,
) {
    let mut peers: HashMap<NodeId, (PeerHandle, PeerState)> = HashMap::new();
    loop {
        let publish = |peers: &HashMap<NodeId, (PeerHandle, PeerState)>| {
            let snapshot = peers.iter().map(|(id, (_, s))| (*id, s.stats)).collect();
            let _ = out.send(Arc::new(snapshot));
        };
        let next = peers.values().map(|(_, s)| s.deadline(&config)).min();
        tokio::select! {
            event = ctx.events.recv() => match event {
                None => return,
                Some(ReactorEvent::PeerUp(handle)) => {
                    peers.insert(handle.id(), (handle, PeerState::new(Instant::now())));
                    publish(&peers);
                }
                Some(ReactorEvent::PeerDown { peer, .. }) => {
                    peers.remove(&peer);
                    publish(&peers);
                }
                Some(ReactorEvent::Message { peer, msg, .. }) => {
                    let Some((handle, state)) = peers.get_mut(&peer) else { continue };
                    match parse(&msg) {
                        Some((PING, nonce)) => {
                            // A full queue means pongs are already on their way; dropping one is harmless.
                            let _ = handle.try_send(PING_CHANNEL, message(PONG, nonce));
                        }
                        Some((_, nonce)) => {
                            if state.on_pong(nonce, Instant::now()) {
                                publish(&peers);
                            }
                        }
                        None => {
                            debug!(logger, "malformed ping message"; "peer" => %peer, "len" => msg.len());
                            ctx.switch.stop_peer_for_error(peer, "malformed ping message").await;
                        }
                    }
                }
            },
            () = sleep_until_opt(next) => {
                let now = Instant::now();
                let mut changed = false;
                for (handle, state) in peers.values_mut() {
                    let failures = state.stats.failures;
                    if let Some(nonce) = state.poll(now, &config, random_nonce()) {
                        let _ = handle.try_send(PING_CHANNEL, message(PING, nonce));
                    }
                    changed |= state.stats.failures != failures;
                }
                if changed {
                    publish(&peers);
                }
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: PingConfig = PingConfig { interval: Duration::from_secs(15), timeout: Duration::from_secs(10) };

    #[test]
    fn pings_at_once_then_every_interval_and_measures_the_pong() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut p = PeerState::new(t0);
        assert_eq!(p.poll(t0, &C, 7), Some(7));
        assert_eq!(p.poll(t0 + s(1), &C, 8), None, "one ping outstanding at a time");
        assert!(!p.on_pong(99, t0 + s(1)), "a stray nonce is ignored");
        assert!(p.on_pong(7, t0 + Duration::from_millis(1500)));
        assert_eq!(p.stats.rtt, Some(Duration::from_millis(1500)));
        assert_eq!(p.deadline(&C), t0 + s(15));
        assert_eq!(p.poll(t0 + s(14), &C, 9), None);
        assert_eq!(p.poll(t0 + s(15), &C, 9), Some(9));
    }

    #[test]
    fn an_unanswered_ping_times_out_and_counts_a_failure() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut p = PeerState::new(t0);
        p.poll(t0, &C, 1);
        assert_eq!(p.deadline(&C), t0 + s(10));
        assert_eq!(p.poll(t0 + s(10), &C, 2), None, "timed out; the next ping waits for the interval");
        assert_eq!(p.stats.failures, 1);
        assert!(!p.on_pong(1, t0 + s(11)), "a late pong is not an RTT");
        assert_eq!(p.poll(t0 + s(15), &C, 3), Some(3));
    }

    #[test]
    fn only_well_formed_messages_parse() {
        assert_eq!(parse(&message(PING, 5)), Some((PING, 5)));
        assert_eq!(parse(&message(PONG, u64::MAX)), Some((PONG, u64::MAX)));
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&[2, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(parse(&[0, 1, 2]), None);
        assert_eq!(parse(&[0; 10]), None);
    }
}
