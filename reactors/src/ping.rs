//! Ping: application-level round-trip times to every peer. The smallest complete reactor: a pure state machine fed
//! events and `now` ([`Pinger`]), driven by a task that owns it; outstanding pings live in a [`PendingRequests`]
//! table with their deadlines, and the next thing to do is found without scanning every peer. (Ping's answers are
//! best-effort: a pong that does not fit is dropped. A protocol that owes every request an answer reserves room when
//! it accepts one; see `p2p/examples/request_response.rs`.)
//!
//! Wire format on [`PING_CHANNEL`]: 9 bytes, `0x00 ‹nonce u64 BE›` for a ping, `0x01 ‹same nonce›` for its pong.
//! Each peer is pinged when it connects and then every `interval`, with at most one ping outstanding; a pong with
//! the outstanding nonce gives an RTT (measured from the instant the pong was read, so a busy inbox does not inflate
//! it), no pong within `timeout` counts a failure. Liveness itself is the connection's job (MConnection pings); this
//! reactor measures and reports. Anything else on the channel is a protocol error and disconnects the peer.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use ledgerwire_p2p::pending::{PendingRequests, RequestId};
use ledgerwire_p2p::{BuildError, ChannelDescriptor, PeerHandle, ReactorContext, ReactorEvent, SwitchBuilder};
use ledgerwire_types::deadline::Timer;
use ledgerwire_types::{NodeId, random};
use priority_queue::PriorityQueue;
use slog::{Logger, debug};
use tokio::sync::{mpsc, oneshot, watch};
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

/// Every peer's ping state, without I/O.
#[derive(Debug)]
pub struct Pinger {
    config: PingConfig,
    /// When each peer is next due for a ping.
    due: PriorityQueue<NodeId, Reverse<Instant>>,
    /// Pings in flight, with the instant each was sent.
    pending: PendingRequests<Instant>,
    outstanding: HashMap<NodeId, RequestId>,
    stats: BTreeMap<NodeId, PeerPing>,
}

impl Pinger {
    /// No peers yet; nonces start at `first_nonce`.
    pub fn new(config: PingConfig, first_nonce: u64) -> Self {
        Pinger {
            config,
            due: PriorityQueue::new(),
            pending: PendingRequests::starting_at(first_nonce),
            outstanding: HashMap::new(),
            stats: BTreeMap::new(),
        }
    }

    /// A peer connected: its first ping is due at once (operators want an RTT as soon as a peer connects).
    pub fn peer_up(&mut self, peer: NodeId, now: Instant) {
        self.stats.insert(peer, PeerPing::default());
        self.due.push(peer, Reverse(now));
    }

    /// A peer went away: forget it and its ping in flight.
    pub fn peer_down(&mut self, peer: NodeId) {
        self.stats.remove(&peer);
        self.due.remove(&peer);
        self.pending.remove_peer(peer);
        self.outstanding.remove(&peer);
    }

    /// A pong read at `received_at`; true if it answered the peer's outstanding ping (a stray or late nonce is
    /// ignored).
    pub fn on_pong(&mut self, peer: NodeId, nonce: u64, received_at: Instant) -> bool {
        let id = RequestId::from_wire(nonce);
        if self.outstanding.get(&peer) != Some(&id) {
            return false;
        }
        let Some(sent) = self.pending.resolve(peer, id) else { return false };
        self.outstanding.remove(&peer);
        if let Some(s) = self.stats.get_mut(&peer) {
            s.rtt = Some(received_at.saturating_duration_since(sent));
            s.successes += 1;
        }
        true
    }

    /// Counts the pings whose pong is overdue as failures and returns the pings to send now, as `(peer, nonce)`.
    /// The `bool` says whether any measurement changed.
    pub fn poll(&mut self, now: Instant) -> (Vec<(NodeId, u64)>, bool) {
        let mut changed = false;
        for overdue in self.pending.expire(now) {
            self.outstanding.remove(&overdue.peer);
            if let Some(s) = self.stats.get_mut(&overdue.peer) {
                s.failures += 1;
                changed = true;
            }
        }
        let mut pings = Vec::new();
        while let Some((&peer, &Reverse(at))) = self.due.peek() {
            if at > now {
                break;
            }
            let next = now + self.config.interval;
            self.due.change_priority(&peer, Reverse(next));
            if self.outstanding.contains_key(&peer) {
                continue; // still waiting for the last pong (a timeout longer than the interval)
            }
            let id = self.pending.insert(peer, now + self.config.timeout, now);
            self.outstanding.insert(peer, id);
            pings.push((peer, id.get()));
        }
        (pings, changed)
    }

    /// When [`Pinger::poll`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let due = self.due.peek().map(|(_, Reverse(t))| *t);
        match (due, self.pending.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The ping to `peer` could not be sent (its queue was full: the peer is not reading): it counts as failed at
    /// once, and the next goes out after the interval.
    pub fn unsent(&mut self, peer: NodeId) {
        if let Some(id) = self.outstanding.remove(&peer) {
            self.pending.cancel(id);
            if let Some(s) = self.stats.get_mut(&peer) {
                s.failures += 1;
            }
        }
    }

    /// The measurements of every connected peer.
    pub fn stats(&self) -> &BTreeMap<NodeId, PeerPing> {
        &self.stats
    }
}

/// Reads the reactor's measurements.
#[derive(Clone, Debug)]
pub struct PingHandle {
    queries: mpsc::Sender<oneshot::Sender<BTreeMap<NodeId, PeerPing>>>,
    version: watch::Receiver<u64>,
}

impl PingHandle {
    /// The current measurements of every connected peer (empty once the reactor has stopped).
    pub async fn snapshot(&self) -> BTreeMap<NodeId, PeerPing> {
        let (tx, rx) = oneshot::channel();
        if self.queries.send(tx).await.is_err() {
            return BTreeMap::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Waits for the next change of the measurements; `None` once the reactor has stopped.
    pub async fn changed(&mut self) -> Option<BTreeMap<NodeId, PeerPing>> {
        self.version.changed().await.ok()?;
        Some(self.snapshot().await)
    }
}

/// Registers the ping reactor with a switch under construction and starts it. `logger` may be `None`.
pub fn register(
    builder: &mut SwitchBuilder,
    config: PingConfig,
    logger: impl Into<Option<Logger>>,
) -> Result<PingHandle, BuildError> {
    let logger = logger.into().unwrap_or_else(|| Logger::root(slog::Discard, slog::o!()));
    let ctx = builder.add_reactor("ping", &[descriptor()], 64)?;
    let (version_tx, version) = watch::channel(0);
    let (queries_tx, queries) = mpsc::channel(8);
    tokio::spawn(run(ctx, config, queries, version_tx, logger));
    Ok(PingHandle { queries: queries_tx, version })
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

async fn run(
    mut ctx: ReactorContext,
    config: PingConfig,
    mut queries: mpsc::Receiver<oneshot::Sender<BTreeMap<NodeId, PeerPing>>>,
    version: watch::Sender<u64>,
    logger: Logger,
) {
    let mut pinger = Pinger::new(config, random::u64());
    let mut handles: HashMap<NodeId, PeerHandle> = HashMap::new();
    // Readers ask for a copy when they want one; a change only bumps a counter.
    let changed = || version.send_modify(|v| *v += 1);
    // One timer, moved to the next deadline each turn.
    let mut timer = Timer::new();
    loop {
        timer.set(pinger.next_deadline());
        tokio::select! {
            event = ctx.events.recv() => match event {
                None => return,
                Some(ReactorEvent::PeerUp(handle)) => {
                    pinger.peer_up(handle.id(), Instant::now());
                    handles.insert(handle.id(), handle);
                    changed();
                }
                Some(ReactorEvent::PeerDown { peer, .. }) => {
                    pinger.peer_down(peer);
                    handles.remove(&peer);
                    changed();
                }
                Some(ReactorEvent::Message { peer, msg, received_at, .. }) => {
                    let Some(handle) = handles.get(&peer) else { continue };
                    match parse(&msg) {
                        Some((PING, nonce)) => {
                            // A full queue means pongs are already on their way; dropping one is harmless.
                            let _ = handle.try_send(PING_CHANNEL, message(PONG, nonce));
                        }
                        Some((_, nonce)) => {
                            if pinger.on_pong(peer, nonce, received_at) {
                                changed();
                            }
                        }
                        None => {
                            debug!(logger, "malformed ping message"; "peer" => %peer, "len" => msg.len());
                            // Disconnect at once, without waiting on the switch; later messages of this peer are
                            // ignored (its handle is gone).
                            handle.stop_for_error("malformed ping message");
                            handles.remove(&peer);
                        }
                    }
                }
            },
            Some(reply) = queries.recv() => {
                let _ = reply.send(pinger.stats().clone());
            }
            () = timer.wait() => {
                let (pings, mut any_change) = pinger.poll(Instant::now());
                for (peer, nonce) in pings {
                    let sent = handles.get(&peer).is_some_and(|h| h.try_send(PING_CHANNEL, message(PING, nonce)).is_ok());
                    if !sent {
                        // Never wait on one peer: an unsent ping counts as failed now.
                        pinger.unsent(peer);
                        any_change = true;
                    }
                }
                if any_change {
                    changed();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerwire_types::{NodeKey, WireProfile};

    const C: PingConfig = PingConfig { interval: Duration::from_secs(15), timeout: Duration::from_secs(10) };
    const S: fn(u64) -> Duration = Duration::from_secs;

    fn peer(seed: u8) -> NodeId {
        NodeKey::from_seed(&[seed; 32]).node_id(WireProfile::Tm2)
    }

    #[test]
    fn pings_at_once_then_every_interval_and_measures_the_pong_from_when_it_was_read() {
        let t0 = Instant::now();
        let mut p = Pinger::new(C, 7);
        p.peer_up(peer(1), t0);
        assert_eq!(p.next_deadline(), Some(t0));
        let (pings, _) = p.poll(t0);
        assert_eq!(pings, vec![(peer(1), 7)]);
        assert_eq!(p.next_deadline(), Some(t0 + S(10)), "the pong's deadline comes before the next ping");
        assert!(!p.on_pong(peer(1), 99, t0 + S(1)), "a stray nonce is ignored");
        assert!(!p.on_pong(peer(2), 7, t0 + S(1)), "another peer cannot answer for it");
        assert!(p.on_pong(peer(1), 7, t0 + Duration::from_millis(1500)));
        assert!(!p.on_pong(peer(1), 7, t0 + S(2)), "answered once");
        assert_eq!(p.stats()[&peer(1)].rtt, Some(Duration::from_millis(1500)));
        assert_eq!(p.next_deadline(), Some(t0 + S(15)));
        assert!(p.poll(t0 + S(14)).0.is_empty());
        assert_eq!(p.poll(t0 + S(15)).0, vec![(peer(1), 8)]);
    }

    #[test]
    fn an_unanswered_ping_times_out_and_counts_a_failure() {
        let t0 = Instant::now();
        let mut p = Pinger::new(C, 1);
        p.peer_up(peer(1), t0);
        p.poll(t0);
        let (pings, changed) = p.poll(t0 + S(10));
        assert!(pings.is_empty() && changed, "timed out; the next ping waits for the interval");
        assert_eq!(p.stats()[&peer(1)].failures, 1);
        assert!(!p.on_pong(peer(1), 1, t0 + S(11)), "a late pong is not an RTT");
        assert_eq!(p.poll(t0 + S(15)).0, vec![(peer(1), 2)]);
    }

    #[test]
    fn a_peer_that_leaves_takes_its_ping_with_it_and_others_are_unaffected() {
        let t0 = Instant::now();
        let mut p = Pinger::new(C, 1);
        for i in 1..=3 {
            p.peer_up(peer(i), t0 + S(u64::from(i)));
        }
        let (pings, _) = p.poll(t0 + S(3));
        assert_eq!(pings.len(), 3);
        p.peer_down(peer(2));
        let (_, changed) = p.poll(t0 + S(20));
        assert!(changed);
        assert_eq!(p.stats().keys().copied().collect::<Vec<_>>(), {
            let mut v = vec![peer(1), peer(3)];
            v.sort();
            v
        });
        assert!(p.stats().values().all(|s| s.failures == 1));
    }

    #[test]
    fn a_ping_that_could_not_be_sent_fails_at_once_and_its_nonce_is_void() {
        let t0 = Instant::now();
        let mut p = Pinger::new(C, 1);
        p.peer_up(peer(1), t0);
        let (pings, _) = p.poll(t0);
        p.unsent(peer(1));
        assert_eq!(p.stats()[&peer(1)].failures, 1);
        assert!(!p.on_pong(peer(1), pings[0].1, t0 + S(1)), "withdrawn");
        assert_eq!(p.next_deadline(), Some(t0 + S(15)), "no timeout left to wait for");
        assert_eq!(p.poll(t0 + S(15)).0.len(), 1);
    }

    #[test]
    fn a_timeout_longer_than_the_interval_keeps_one_ping_outstanding() {
        let t0 = Instant::now();
        let slow = PingConfig { interval: S(5), timeout: S(12) };
        let mut p = Pinger::new(slow, 1);
        p.peer_up(peer(1), t0);
        assert_eq!(p.poll(t0).0.len(), 1);
        assert!(p.poll(t0 + S(5)).0.is_empty(), "still waiting for the first pong");
        assert!(p.poll(t0 + S(10)).0.is_empty());
        let (pings, changed) = p.poll(t0 + S(15));
        assert!(changed, "the first ping timed out at 12 s");
        assert_eq!(pings, vec![(peer(1), 2)]);
    }

    #[test]
    fn thousands_of_peers_cost_no_scan_per_event() {
        let t0 = Instant::now();
        let mut p = Pinger::new(C, 1);
        for i in 0..5000u32 {
            let id = NodeKey::from_seed(&{
                let mut s = [0u8; 32];
                s[..4].copy_from_slice(&i.to_be_bytes());
                s
            })
            .node_id(WireProfile::Tm2);
            p.peer_up(id, t0 + Duration::from_millis(u64::from(i)));
        }
        // Each poll hands out exactly the pings due by then, in order.
        assert_eq!(p.poll(t0 + Duration::from_millis(999)).0.len(), 1000);
        assert_eq!(p.poll(t0 + Duration::from_millis(4999)).0.len(), 4000);
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_millis(10_999)), "the first pong deadline");
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
