//! Cross-crate integration tests for ledgerwire, and the harness they share.
//!
//! [`TestNode`] starts a switch on `127.0.0.1:0` with an echo reactor, so a multi-node test reads like its
//! story:
//!
//! ```no_run
//! # async fn demo() {
//! use ledgerwire_tests::{NodeOptions, TestNode};
//! let a = TestNode::spawn(NodeOptions::default()).await;
//! let mut b = TestNode::spawn(NodeOptions::default()).await;
//! a.connect_to(&b).await;
//! assert_eq!(b.echo_round_trip(a.id, b"hello").await, b"hello");
//! # }
//! ```
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ledgerwire_p2p::{
    ChannelDescriptor, EventItem, EventStream, MConnectionConfig, PeerHandle, ReactorContext, ReactorEvent, Switch,
    SwitchBuilder, SwitchConfig, SwitchEvent,
};
use ledgerwire_reactors::discovery::book::Entry;
use ledgerwire_reactors::discovery::{self, DiscoveryConfig, DiscoveryEvent, DiscoveryHandle};
use ledgerwire_types::{HostAddress, NodeId, NodeKey, WireProfile};
use tokio::sync::{broadcast, mpsc, oneshot};

/// The echo reactor's channel.
pub const ECHO_CHANNEL: u8 = 0x7e;

/// How long a test waits for something that should happen within milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The tests' logger: silent, unless the environment variable `LEDGERWIRE_TEST_LOG` names a level (`trace`,
/// `debug`, `info`, `warn`, `error`); then every node's records at that level or above go to standard error, for
/// reading what a failing multi-node test did: `LEDGERWIRE_TEST_LOG=debug cargo test -p ledgerwire-tests`.
pub fn logger() -> slog::Logger {
    use slog::Drain;
    let level = match std::env::var("LEDGERWIRE_TEST_LOG").ok().as_deref() {
        Some("trace") => slog::Level::Trace,
        Some("debug") => slog::Level::Debug,
        Some("info") => slog::Level::Info,
        Some("warn") => slog::Level::Warning,
        Some("error") => slog::Level::Error,
        _ => return slog::Logger::root(slog::Discard, slog::o!()),
    };
    let decorator = slog_term::PlainSyncDecorator::new(std::io::stderr());
    let drain = slog_term::FullFormat::new(decorator).build().fuse();
    slog::Logger::root(slog::LevelFilter::new(drain, level).fuse(), slog::o!())
}

/// Options for [`TestNode::spawn`].
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// Wire profile.
    pub profile: WireProfile,
    /// Identity (a fresh one if `None`).
    pub key: Option<Arc<NodeKey>>,
    /// Listen address.
    pub listen: std::net::SocketAddr,
    /// The address to advertise instead of the listen address.
    pub external_address: Option<std::net::SocketAddr>,
    /// Switch settings applied on top of the defaults.
    pub tweak: fn(&mut SwitchConfig),
    /// Persistent peers.
    pub persistent: Vec<HostAddress>,
    /// Private peer IDs.
    pub private: Vec<NodeId>,
    /// Network name.
    pub network: String,
    /// Run peer discovery with these settings.
    pub discovery: Option<DiscoveryOptions>,
}

/// Discovery settings for a test node.
#[derive(Clone, Debug)]
pub struct DiscoveryOptions {
    /// Seed nodes.
    pub seeds: Vec<HostAddress>,
    /// Seed mode.
    pub seed_mode: bool,
    /// Where to keep the address book.
    pub book_file: Option<std::path::PathBuf>,
    /// How often to ask and top up.
    pub interval: Duration,
    /// Outbound peers to aim for (also the switch's outbound limit).
    pub max_outbound: usize,
    /// How often others may ask this node; test peers ask every 100 ms or more.
    pub min_request_interval: Duration,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        DiscoveryOptions {
            seeds: Vec::new(),
            seed_mode: false,
            book_file: None,
            interval: Duration::from_millis(100),
            max_outbound: 10,
            min_request_interval: Duration::from_millis(50),
        }
    }
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            profile: WireProfile::Tm2,
            key: None,
            listen: ([127, 0, 0, 1], 0).into(),
            external_address: None,
            tweak: |_| {},
            persistent: Vec::new(),
            private: Vec::new(),
            network: "test-net".into(),
            discovery: None,
        }
    }
}

/// A running switch with an echo reactor.
#[derive(Debug)]
pub struct TestNode {
    /// The switch.
    pub switch: Switch,
    /// Our ID.
    pub id: NodeId,
    /// Our identity.
    pub key: Arc<NodeKey>,
    /// Our dialable address.
    pub address: HostAddress,
    /// Events since start.
    pub events: EventStream,
    /// The discovery reactor, if running.
    pub discovery: Option<DiscoveryHandle>,
    /// Discovery events since start.
    pub discovery_events: Option<broadcast::Receiver<DiscoveryEvent>>,
    echo: mpsc::Sender<EchoRequest>,
}

struct EchoRequest {
    peer: NodeId,
    payload: Bytes,
    reply: oneshot::Sender<Bytes>,
}

/// Settings that make tests quick: fast redials, short deadlines, immediate flushes.
pub fn fast(config: &mut SwitchConfig) {
    config.backoff.base = Duration::from_millis(50);
    config.backoff.max = Duration::from_millis(400);
    config.transport.handshake_timeout = Duration::from_secs(5);
    config.connection = MConnectionConfig { flush_throttle: Duration::ZERO, ..config.connection };
}

impl TestNode {
    /// Starts a node.
    pub async fn spawn(opts: NodeOptions) -> TestNode {
        let key = opts.key.clone().unwrap_or_else(|| Arc::new(NodeKey::generate()));
        let mut config = SwitchConfig::new(opts.listen, &opts.network);
        config.persistent_peers = opts.persistent.clone();
        config.private_peer_ids = opts.private.clone();
        config.external_address = opts.external_address;
        fast(&mut config);
        if let Some(d) = &opts.discovery {
            config.max_outbound = d.max_outbound;
        }
        (opts.tweak)(&mut config);
        let mut builder = SwitchBuilder::new(key.clone(), opts.profile, config.clone(), logger());
        let discovery = opts.discovery.as_ref().map(|d| {
            let mut c = DiscoveryConfig::new(opts.profile, d.max_outbound);
            c.seeds = d.seeds.clone();
            c.seed_mode = d.seed_mode;
            c.book_file = d.book_file.clone();
            c.interval = d.interval;
            c.guard.min_request_interval = d.min_request_interval;
            c.private = opts.private.iter().copied().collect();
            c.persistent = opts.persistent.iter().map(|a| a.id()).collect();
            c.persistent_addresses = opts.persistent.clone();
            discovery::register(&mut builder, c, logger()).unwrap()
        });
        let discovery_events = discovery.as_ref().map(|d| d.subscribe());
        let ctx = builder
            .add_reactor("echo", &[ChannelDescriptor::new(ECHO_CHANNEL, 1).with_send_queue_capacity(64)], 256)
            .unwrap();
        let events = builder.handle().subscribe(|_| true).unwrap();
        let switch = builder.start().await.unwrap();
        let (echo, requests) = mpsc::channel(16);
        tokio::spawn(echo_reactor(ctx, requests));
        let listen = switch.listen_addr().unwrap();
        let address = HostAddress::parse(&format!("{}@{listen}", switch.id()), opts.profile).unwrap();
        TestNode { id: switch.id(), switch, key, address, events, discovery, discovery_events, echo }
    }

    /// Dials `other` and waits until both sides report the connection.
    pub async fn connect_to(&self, other: &TestNode) {
        let mut mine = self.switch.subscribe(|_| true).unwrap();
        let mut theirs = other.switch.subscribe(|_| true).unwrap();
        self.switch.dial(other.address.clone(), false).await.unwrap();
        let (a, b) = (self.id, other.id);
        wait_for(&mut mine, |e| matches!(e, SwitchEvent::PeerConnected { peer, .. } if *peer == b)).await;
        wait_for(&mut theirs, |e| matches!(e, SwitchEvent::PeerConnected { peer, .. } if *peer == a)).await;
    }

    /// Sends `payload` to `peer` on the echo channel and returns what comes back. If the connection is replaced
    /// while the request is in flight (a simultaneous-dial tie-break), the request is repeated, at most 10 times.
    pub async fn echo_round_trip(&mut self, peer: NodeId, payload: &[u8]) -> Vec<u8> {
        for _ in 0..10 {
            let (reply, rx) = oneshot::channel();
            self.echo.send(EchoRequest { peer, payload: Bytes::copy_from_slice(payload), reply }).await.unwrap();
            match tokio::time::timeout(PATIENCE, rx).await.expect("echo reply in time") {
                Ok(bytes) => return bytes.to_vec(),
                // The peer went down mid-request; the reactor holds the next request until it is back.
                Err(_) => continue,
            }
        }
        panic!("no echo from {peer} after 10 attempts");
    }

    /// Waits for an event matching `pred` (panics after [`PATIENCE`]).
    pub async fn wait_for(&mut self, pred: impl Fn(&SwitchEvent) -> bool) -> SwitchEvent {
        wait_for(&mut self.events, pred).await
    }

    /// Waits for a discovery event matching `pred` (panics after [`PATIENCE`]).
    pub async fn wait_for_discovery(&mut self, pred: impl Fn(&DiscoveryEvent) -> bool) -> DiscoveryEvent {
        let rx = self.discovery_events.as_mut().expect("discovery runs on this node");
        let found = tokio::time::timeout(PATIENCE, async {
            loop {
                match rx.recv().await {
                    Ok(e) if pred(&e) => return e,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => panic!("discovery stopped"),
                }
            }
        })
        .await;
        found.expect("the expected discovery event did not come in time")
    }

    /// Waits until the address book holds an entry for `id` that satisfies `pred`, and returns it (panics after
    /// [`PATIENCE`]). The switch announces a peer before the discovery reactor has recorded it, so tests that check
    /// the book after a switch event wait here rather than read once.
    pub async fn wait_for_book_entry(&self, id: NodeId, pred: impl Fn(&Entry) -> bool) -> Entry {
        let discovery = self.discovery.as_ref().expect("discovery runs on this node");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let book = discovery.address_book().await;
            if let Some(entry) = book.into_iter().find(|e| e.address.id() == id && pred(e)) {
                return entry;
            }
            assert!(tokio::time::Instant::now() < deadline, "no matching book entry for {id} in time");
            tokio::task::yield_now().await;
        }
    }

    /// Connected peers' IDs.
    pub async fn peer_ids(&self) -> Vec<NodeId> {
        let mut ids: Vec<_> = self.switch.peers().unwrap().into_iter().map(|p| p.info.id).collect();
        ids.sort();
        ids
    }
}

/// Waits for an event matching `pred` on `events` (panics after [`PATIENCE`]).
pub async fn wait_for(events: &mut EventStream, pred: impl Fn(&SwitchEvent) -> bool) -> SwitchEvent {
    let found = tokio::time::timeout(PATIENCE, async {
        loop {
            match events.recv().await {
                Some(EventItem::Event(e)) if pred(&e) => return e,
                Some(_) => continue,
                None => panic!("the switch stopped"),
            }
        }
    })
    .await;
    found.expect("the expected event did not come in time")
}

/// The echo protocol: byte 0 = request, 1 = reply, then the payload. Requests from the test are matched to replies
/// per peer in order, which is all the protocol needs (messages on one channel arrive in order).
async fn echo_reactor(mut ctx: ReactorContext, mut requests: mpsc::Receiver<EchoRequest>) {
    let mut peers: std::collections::HashMap<NodeId, (PeerHandle, std::collections::VecDeque<oneshot::Sender<Bytes>>)> =
        Default::default();
    // Requests for a peer whose PeerUp has not arrived yet (the switch reports a connection slightly before
    // reactors hear of it).
    let mut early: std::collections::HashMap<NodeId, Vec<EchoRequest>> = Default::default();
    // Sends the request, or hands it back when the connection is already closing (its PeerDown is on the way; the
    // request waits for the next PeerUp instead of failing at once).
    async fn ask(
        handle: &PeerHandle,
        waiting: &mut std::collections::VecDeque<oneshot::Sender<Bytes>>,
        req: EchoRequest,
    ) -> Option<EchoRequest> {
        let mut msg = vec![0u8];
        msg.extend_from_slice(&req.payload);
        if handle.send(ECHO_CHANNEL, msg).await.is_ok() {
            waiting.push_back(req.reply);
            None
        } else {
            Some(req)
        }
    }
    loop {
        tokio::select! {
            ev = ctx.events.recv() => match ev {
                None => return,
                Some(ReactorEvent::PeerUp(h)) => {
                    let mut waiting = Default::default();
                    let mut unsent = Vec::new();
                    for req in early.remove(&h.id()).unwrap_or_default() {
                        unsent.extend(ask(&h, &mut waiting, req).await);
                    }
                    if !unsent.is_empty() {
                        early.insert(h.id(), unsent);
                    }
                    peers.insert(h.id(), (h, waiting));
                }
                Some(ReactorEvent::PeerDown { peer, .. }) => {
                    peers.remove(&peer);
                }
                Some(ReactorEvent::Message { peer, msg, .. }) => {
                    let Some((handle, waiting)) = peers.get_mut(&peer) else { continue };
                    match msg.first() {
                        Some(0) => {
                            let mut reply = msg.to_vec();
                            reply[0] = 1;
                            let _ = handle.send(ECHO_CHANNEL, reply).await;
                        }
                        Some(1) => {
                            if let Some(tx) = waiting.pop_front() {
                                let _ = tx.send(msg.slice(1..));
                            }
                        }
                        _ => {
                            let _ = ctx.switch.stop_peer_for_error(peer, "malformed echo message").await;
                        }
                    }
                }
            },
            Some(req) = requests.recv() => {
                match peers.get_mut(&req.peer) {
                    Some((handle, waiting)) => {
                        if let Some(req) = ask(handle, waiting, req).await {
                            early.entry(req.peer).or_default().push(req);
                        }
                    }
                    None => early.entry(req.peer).or_default().push(req),
                }
            }
        }
    }
}
