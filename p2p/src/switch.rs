//! The switch: the single owner of every connection decision.
//!
//! One actor task owns the peer set, the dial queue, persistent and private peers and the limits. Everything else
//! talks to it through the cloneable [`Switch`] handle, through the transport's accept loop, or through the tasks it
//! spawns (dials and one supervisor per peer), all by message. There are no shared locks.
//!
//! - **Limits.** At most `max_inbound` inbound and `max_outbound` outbound peers; persistent peers count against
//!   neither (the TM2 README promises this, its code does not). At most `max_dials_in_flight` dials run at once.
//! - **Dial queue.** Time-ordered, one entry per peer ID, bounded; the actor sleeps until the head is due.
//! - **Persistent peers** are redialed forever with [`Backoff`], always at the operator-configured address, also
//!   after an inbound connection from them dropped.
//! - **Simultaneous dials.** When both sides dial each other, both keep the connection dialed by the lower node ID
//!   and close the other, so each ends with exactly one and nobody redials.
//! - **Peers** are supervised by one task each: it tells reactors `PeerUp`, forwards messages, waits for the
//!   connection to end, tells reactors `PeerDown`, then reports to the actor.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use ledgerwire_conn::mconnection::{
    ChannelDescriptor, ChannelId, ChannelReceiver, CloseReason, ConnectionStatus, MConnection, MConnectionConfig,
    SendError,
};
use ledgerwire_types::{HostAddress, NodeId, NodeKey, WireProfile};
use slog::{Logger, debug, info, o};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::dial_queue::{DialQueue, DialTarget, Pushed};
use crate::events::{EVENT_BUFFER, EventStream, SwitchEvent};
use crate::node_info::{MAX_CHANNELS, NodeInfo};
use crate::peer::{DisconnectReason, PeerHandle, PeerInfo};
use crate::reactor::{ReactorContext, ReactorEvent, ReactorSwitch};
use crate::transport::{DialError, Direction, Inbound, RejectReason, Transport, TransportConfig, Upgraded};

/// Switch settings. [`SwitchConfig::new`] fills in the reference defaults.
#[derive(Clone, Debug)]
pub struct SwitchConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen_addr: SocketAddr,
    /// The address to advertise instead of the listen address.
    pub external_address: Option<SocketAddr>,
    /// The network (chain ID) peers must share.
    pub network: String,
    /// Our human-readable name.
    pub moniker: String,
    /// Our software version, advertised in NodeInfo.
    pub software_version: String,
    /// Most inbound non-persistent peers. Default 40.
    pub max_inbound: usize,
    /// Most outbound non-persistent peers. Default 10.
    pub max_outbound: usize,
    /// Most dials at once. Default 8.
    pub max_dials_in_flight: usize,
    /// Most queued dials. Default 1000.
    pub dial_queue_capacity: usize,
    /// Peers to keep connected, at these addresses.
    pub persistent_peers: Vec<HostAddress>,
    /// Peers never shared with others.
    pub private_peer_ids: Vec<NodeId>,
    /// Handshake deadlines and inbound caps.
    pub transport: TransportConfig,
    /// Per-connection settings.
    pub connection: MConnectionConfig,
    /// Redial schedule of persistent peers.
    pub backoff: Backoff,
    /// How long a graceful stop waits for queued messages to go out. Default 2 s.
    pub stop_grace: Duration,
}

impl SwitchConfig {
    /// Defaults for `network`, listening on `listen_addr`.
    pub fn new(listen_addr: SocketAddr, network: &str) -> Self {
        SwitchConfig {
            listen_addr,
            external_address: None,
            network: network.into(),
            moniker: "ledgerwire".into(),
            software_version: concat!("v", env!("CARGO_PKG_VERSION")).into(),
            max_inbound: 40,
            max_outbound: 10,
            max_dials_in_flight: 8,
            dial_queue_capacity: 1000,
            persistent_peers: Vec::new(),
            private_peer_ids: Vec::new(),
            transport: TransportConfig::default(),
            connection: MConnectionConfig::default(),
            backoff: Backoff::default(),
            stop_grace: Duration::from_secs(2),
        }
    }
}

/// Why a switch operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SwitchError {
    /// Two reactors claim the same channel.
    #[error("channel {channel:#04x} is claimed by reactors {first:?} and {second:?}")]
    ChannelTaken {
        /// The channel.
        channel: ChannelId,
        /// The first reactor.
        first: String,
        /// The second reactor.
        second: String,
    },
    /// More channels than a NodeInfo can list.
    #[error("{0} channels registered, at most 16 fit in NodeInfo")]
    TooManyChannels(usize),
    /// A reactor's descriptors or the connection settings are invalid.
    #[error("invalid channel or connection settings: {0}")]
    Config(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The switch has stopped.
    #[error("the switch has stopped")]
    Stopped,
    /// The address is our own.
    #[error("refusing to dial ourselves")]
    DialSelf,
    /// The dial queue is full.
    #[error("the dial queue is full")]
    DialQueueFull,
    /// A reactor used a channel it does not own.
    #[error("channel {0:#04x} does not belong to this reactor")]
    NotOurChannel(ChannelId),
}

/// A connected peer, for operators.
#[derive(Clone, Debug)]
pub struct PeerSummary {
    /// Facts about the peer.
    pub info: PeerInfo,
    /// The connection's counters.
    pub status: ConnectionStatus,
}

/// Each peer's outcome of a broadcast.
#[derive(Debug, Clone, PartialEq)]
pub struct BroadcastReport {
    /// Per peer: queued, or why not.
    pub results: Vec<(NodeId, Result<(), BroadcastFailure>)>,
}

impl BroadcastReport {
    /// Peers the message was queued for.
    pub fn delivered(&self) -> usize {
        self.results.iter().filter(|(_, r)| r.is_ok()).count()
    }
}

/// Why a broadcast skipped a peer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BroadcastFailure {
    /// The peer did not advertise the channel.
    #[error("peer does not speak the channel")]
    NotSupported,
    /// The peer's connection refused the message.
    #[error("{0}")]
    Send(SendError),
}

enum Command {
    Dial { address: HostAddress, persistent: bool, reply: oneshot::Sender<Result<(), SwitchError>> },
    Peers { reply: oneshot::Sender<Vec<PeerSummary>> },
    Connections { reply: oneshot::Sender<Vec<(Arc<PeerInfo>, Arc<MConnection>)>> },
    StopPeer { id: NodeId, reason: DisconnectReason, forget: bool, reply: oneshot::Sender<bool> },
    FinishPeer { id: NodeId, reason: String },
    Ban { id: NodeId, duration: Duration, reason: String },
    Stop { reply: oneshot::Sender<()> },
}

/// What the switch publishes once it runs.
#[derive(Debug)]
struct Running {
    node_info: NodeInfo,
    listen_addr: SocketAddr,
}

#[derive(Debug)]
struct Shared {
    id: NodeId,
    running: OnceLock<Running>,
}

/// A handle to a switch. Cheap to clone; the switch stops when told to, or when every handle is gone.
#[derive(Clone)]
pub struct Switch {
    cmd: mpsc::Sender<Command>,
    /// Weak: the running switch owns the only strong sender, so every subscription ends when it stops.
    events: broadcast::WeakSender<SwitchEvent>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Switch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switch").field("id", &self.shared.id).finish_non_exhaustive()
    }
}

impl Switch {
    /// Our node ID.
    pub fn id(&self) -> NodeId {
        self.shared.id
    }

    /// Our NodeInfo (`None` before the switch has started).
    pub fn node_info(&self) -> Option<&NodeInfo> {
        self.shared.running.get().map(|r| &r.node_info)
    }

    /// The address the listener is bound to (`None` before the switch has started).
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.shared.running.get().map(|r| r.listen_addr)
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, SwitchError> {
        let (tx, rx) = oneshot::channel();
        self.cmd.send(make(tx)).await.map_err(|_| SwitchError::Stopped)?;
        rx.await.map_err(|_| SwitchError::Stopped)
    }

    /// Queues a dial to `address`. A persistent peer is redialed forever at this address and exempt from limits.
    pub async fn dial(&self, address: HostAddress, persistent: bool) -> Result<(), SwitchError> {
        self.ask(|reply| Command::Dial { address, persistent, reply }).await?
    }

    /// The connected peers.
    pub async fn peers(&self) -> Vec<PeerSummary> {
        self.ask(|reply| Command::Peers { reply }).await.unwrap_or_default()
    }

    /// Disconnects `peer` because it misbehaved; persistent peers are redialed later. Returns whether it was
    /// connected.
    pub async fn stop_peer_for_error(&self, peer: NodeId, reason: impl Into<String>) -> bool {
        let reason = DisconnectReason::Error(reason.into());
        self.ask(|reply| Command::StopPeer { id: peer, reason, forget: false, reply }).await.unwrap_or(false)
    }

    /// Disconnects `peer` at the operator's request and stops redialing it until restart. Returns whether it was
    /// connected.
    pub async fn disconnect(&self, peer: NodeId) -> bool {
        let reason = DisconnectReason::Operator;
        self.ask(|reply| Command::StopPeer { id: peer, reason, forget: true, reply }).await.unwrap_or(false)
    }

    /// Closes the connection to `peer` after everything queued for it has been sent (a seed that answered, a
    /// crawled peer). Persistent peers are redialed later, as usual.
    pub async fn finish_peer(&self, peer: NodeId, reason: impl Into<String>) {
        let _ = self.cmd.send(Command::FinishPeer { id: peer, reason: reason.into() }).await;
    }

    /// Disconnects `peer` (if connected) and refuses connections to and from it for `duration`.
    pub async fn ban(&self, peer: NodeId, duration: Duration, reason: impl Into<String>) {
        let _ = self.cmd.send(Command::Ban { id: peer, duration, reason: reason.into() }).await;
    }

    /// Sends `msg` on `channel` to every connected peer that speaks it, concurrently, and reports each outcome.
    pub async fn broadcast(&self, channel: ChannelId, msg: impl Into<Bytes>) -> BroadcastReport {
        let msg = msg.into();
        let conns = self.ask(|reply| Command::Connections { reply }).await.unwrap_or_default();
        let mut results = Vec::with_capacity(conns.len());
        let mut sends = JoinSet::new();
        for (info, conn) in conns {
            if !info.node_info.channels.contains(&channel) {
                results.push((info.id, Err(BroadcastFailure::NotSupported)));
                continue;
            }
            let msg = msg.clone();
            sends.spawn(async move { (info.id, conn.send(channel, msg).await.map_err(BroadcastFailure::Send)) });
        }
        while let Some(done) = sends.join_next().await {
            if let Ok(r) = done {
                results.push(r);
            }
        }
        results.sort_by_key(|(id, _)| *id);
        BroadcastReport { results }
    }

    /// Subscribes to events that pass `filter`. Dropping the stream unsubscribes; the stream ends when the switch
    /// stops.
    pub fn subscribe(&self, filter: impl Fn(&SwitchEvent) -> bool + Send + Sync + 'static) -> EventStream {
        let rx = match self.events.upgrade() {
            Some(tx) => tx.subscribe(),
            // Already stopped: a stream that ends at once.
            None => broadcast::channel(1).1,
        };
        EventStream::new(rx, Box::new(filter))
    }

    /// Stops the switch: stops accepting and dialing, gives connections up to `stop_grace` to send what is queued,
    /// closes them, and waits for every task. Returns at once if the switch already stopped.
    pub async fn stop(&self) {
        let _ = self.ask(|reply| Command::Stop { reply }).await;
    }
}

struct ReactorSlot {
    channels: Arc<[ChannelId]>,
    inbox: mpsc::Sender<ReactorEvent>,
}

/// Builds a switch: register reactors, then start.
pub struct SwitchBuilder {
    key: Arc<NodeKey>,
    profile: WireProfile,
    config: SwitchConfig,
    logger: Logger,
    reactors: Vec<ReactorSlot>,
    descriptors: Vec<ChannelDescriptor>,
    owner: HashMap<ChannelId, String>,
    handle: Switch,
    cmd_rx: mpsc::Receiver<Command>,
    events: broadcast::Sender<SwitchEvent>,
}

impl std::fmt::Debug for SwitchBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwitchBuilder").field("id", &self.handle.id()).finish_non_exhaustive()
    }
}

impl SwitchBuilder {
    /// A builder for a switch with identity `key`, speaking `profile`.
    pub fn new(key: Arc<NodeKey>, profile: WireProfile, config: SwitchConfig, logger: Logger) -> Self {
        let (cmd, cmd_rx) = mpsc::channel(64);
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let shared = Arc::new(Shared { id: key.node_id(profile), running: OnceLock::new() });
        SwitchBuilder {
            key,
            profile,
            config,
            logger,
            reactors: Vec::new(),
            descriptors: Vec::new(),
            owner: HashMap::new(),
            handle: Switch { cmd, events: events.downgrade(), shared },
            cmd_rx,
            events,
        }
    }

    /// The switch's handle (usable now; commands take effect once it has started).
    pub fn handle(&self) -> Switch {
        self.handle.clone()
    }

    /// Registers a reactor owning `channels`; its inbox holds up to `inbox_capacity` events. A channel already
    /// claimed is an error.
    pub fn add_reactor(
        &mut self,
        name: &str,
        channels: &[ChannelDescriptor],
        inbox_capacity: usize,
    ) -> Result<ReactorContext, SwitchError> {
        for c in channels {
            if let Some(first) = self.owner.get(&c.id) {
                return Err(SwitchError::ChannelTaken { channel: c.id, first: first.clone(), second: name.into() });
            }
        }
        for c in channels {
            self.owner.insert(c.id, name.into());
        }
        let (inbox, events) = mpsc::channel(inbox_capacity.max(1));
        self.descriptors.extend_from_slice(channels);
        self.reactors.push(ReactorSlot { channels: channels.iter().map(|c| c.id).collect::<Vec<_>>().into(), inbox });
        Ok(ReactorContext { name: name.into(), events, switch: ReactorSwitch::new(self.handle.clone(), channels) })
    }

    /// Binds the listener, starts accepting and dialing (persistent peers first), and returns the handle.
    pub async fn start(self) -> Result<Switch, SwitchError> {
        let SwitchBuilder { key, profile, config, logger, reactors, descriptors, handle, cmd_rx, events, .. } = self;
        if descriptors.len() > MAX_CHANNELS {
            return Err(SwitchError::TooManyChannels(descriptors.len()));
        }
        config.connection.validate().map_err(|e| SwitchError::Config(e.to_string()))?;
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .map_err(|e| SwitchError::Listen { addr: config.listen_addr, reason: e.to_string() })?;
        let listen_addr = listener
            .local_addr()
            .map_err(|e| SwitchError::Listen { addr: config.listen_addr, reason: e.to_string() })?;
        let advertised = config.external_address.unwrap_or(listen_addr);
        let channels: Vec<u8> = descriptors.iter().map(|d| d.id).collect();
        let node_info = NodeInfo::ours(
            profile,
            handle.id(),
            advertised,
            &config.network,
            &config.moniker,
            channels,
            &config.software_version,
        );
        let logger = logger.new(o!("node" => handle.id().to_string()));
        let transport = Arc::new(Transport::new(key, node_info.clone(), config.transport, logger.clone()));
        let _ = handle.shared.running.set(Running { node_info, listen_addr });

        let (inbound_tx, inbound_rx) = mpsc::channel(64);
        tokio::spawn(transport.clone().accept_loop(listener, inbound_tx));
        let (closed_tx, closed_rx) = mpsc::unbounded_channel();
        let mut owner = [None; 256];
        for (i, r) in reactors.iter().enumerate() {
            for &c in r.channels.iter() {
                owner[usize::from(c)] = Some(i);
            }
        }
        let mut actor = Actor {
            id: handle.id(),
            transport,
            persistent: config.persistent_peers.iter().map(|a| (a.id(), a.clone())).collect(),
            private: config.private_peer_ids.iter().copied().collect(),
            queue: DialQueue::new(config.dial_queue_capacity),
            dialing: HashSet::new(),
            dials: JoinSet::new(),
            peers: HashMap::new(),
            banned: HashMap::new(),
            next_conn_id: 0,
            reactors: Arc::new(reactors),
            owner,
            descriptors: Arc::new(descriptors),
            events,
            cmd_rx,
            inbound_rx,
            closed_tx,
            closed_rx,
            config,
            logger,
        };
        let now = Instant::now();
        for address in actor.persistent.values().cloned().collect::<Vec<_>>() {
            actor.queue.push(DialTarget { address, persistent: true, attempts: 0 }, now);
        }
        info!(actor.logger, "switch started"; "listen" => %listen_addr, "profile" => %profile);
        tokio::spawn(actor.run());
        Ok(handle)
    }
}

/// A connected peer, as the actor keeps it.
struct PeerSlot {
    info: Arc<PeerInfo>,
    conn: Arc<MConnection>,
    conn_id: u64,
    stop_reason: Arc<OnceLock<DisconnectReason>>,
    supervisor: JoinHandle<()>,
}

impl PeerSlot {
    fn alive(&self) -> bool {
        self.conn.close_reason().is_none()
    }

    /// Closes the connection, recording why (first reason wins).
    fn stop(&self, reason: DisconnectReason) {
        let _ = self.stop_reason.set(reason);
        self.conn.close();
    }
}

struct PeerClosed {
    id: NodeId,
    conn_id: u64,
    reason: DisconnectReason,
}

struct Actor {
    id: NodeId,
    transport: Arc<Transport>,
    persistent: HashMap<NodeId, HostAddress>,
    private: HashSet<NodeId>,
    queue: DialQueue,
    dialing: HashSet<NodeId>,
    dials: JoinSet<(DialTarget, Result<Upgraded, DialError>)>,
    peers: HashMap<NodeId, PeerSlot>,
    banned: HashMap<NodeId, Instant>,
    next_conn_id: u64,
    reactors: Arc<Vec<ReactorSlot>>,
    owner: [Option<usize>; 256],
    descriptors: Arc<Vec<ChannelDescriptor>>,
    events: broadcast::Sender<SwitchEvent>,
    cmd_rx: mpsc::Receiver<Command>,
    inbound_rx: mpsc::Receiver<Inbound>,
    closed_tx: mpsc::UnboundedSender<PeerClosed>,
    closed_rx: mpsc::UnboundedReceiver<PeerClosed>,
    config: SwitchConfig,
    logger: Logger,
}

/// Two live connections to one peer: whether the new one replaces the existing one. Connections in the same
/// direction keep the existing one. A simultaneous dial (one each way) keeps the connection dialed by the lower node
/// ID, so both sides choose the same connection without talking to each other.
pub fn keep_new_connection(ours: NodeId, theirs: NodeId, existing: Direction, new: Direction) -> bool {
    if existing == new {
        return false;
    }
    let new_dialer = if new == Direction::Outbound { ours } else { theirs };
    new_dialer == ours.min(theirs)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl Actor {
    fn emit(&self, event: SwitchEvent) {
        // No subscribers is fine.
        let _ = self.events.send(event);
    }

    async fn run(mut self) {
        let stop_reply = loop {
            let can_dial = self.dials.len() < self.config.max_dials_in_flight;
            let next_dial = if can_dial { self.queue.next_due() } else { None };
            tokio::select! {
                cmd = self.cmd_rx.recv() => match cmd {
                    Some(Command::Stop { reply }) => break Some(reply),
                    Some(cmd) => self.on_command(cmd),
                    None => break None,
                },
                Some(inbound) = self.inbound_rx.recv() => self.on_inbound(inbound),
                Some(done) = self.dials.join_next(), if !self.dials.is_empty() => {
                    if let Ok((target, result)) = done {
                        self.on_dial_result(target, result);
                    }
                }
                Some(closed) = self.closed_rx.recv() => self.on_peer_closed(closed),
                () = sleep_until_opt(next_dial) => self.start_due_dials(),
            }
        };
        self.shutdown().await;
        if let Some(reply) = stop_reply {
            let _ = reply.send(());
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Dial { address, persistent, reply } => {
                let _ = reply.send(self.enqueue_dial(address, persistent));
            }
            Command::Peers { reply } => {
                let peers = self
                    .peers
                    .values()
                    .filter(|p| p.alive())
                    .map(|p| PeerSummary { info: (*p.info).clone(), status: p.conn.status() })
                    .collect();
                let _ = reply.send(peers);
            }
            Command::Connections { reply } => {
                let conns =
                    self.peers.values().filter(|p| p.alive()).map(|p| (p.info.clone(), p.conn.clone())).collect();
                let _ = reply.send(conns);
            }
            Command::StopPeer { id, reason, forget, reply } => {
                if forget && self.persistent.remove(&id).is_some() {
                    self.queue.remove(&id);
                }
                let found = self.peers.get(&id).filter(|p| p.alive()).map(|p| p.stop(reason)).is_some();
                let _ = reply.send(found);
            }
            Command::FinishPeer { id, reason } => {
                if let Some(p) = self.peers.get(&id).filter(|p| p.alive()) {
                    let _ = p.stop_reason.set(DisconnectReason::Finished(reason));
                    let conn = p.conn.clone();
                    let grace = self.config.stop_grace;
                    tokio::spawn(async move {
                        if tokio::time::timeout(grace, conn.close_gracefully()).await.is_err() {
                            conn.close();
                        }
                    });
                }
            }
            Command::Ban { id, duration, reason } => {
                info!(self.logger, "peer banned"; "peer" => %id, "for" => ?duration, "reason" => &reason);
                self.banned.insert(id, Instant::now() + duration);
                self.queue.remove(&id);
                if let Some(p) = self.peers.get(&id).filter(|p| p.alive()) {
                    p.stop(DisconnectReason::Banned(reason));
                }
            }
            Command::Stop { .. } => {}
        }
    }

    /// Whether `id` is banned now (expired bans are forgotten).
    fn is_banned(&mut self, id: &NodeId) -> bool {
        match self.banned.get(id) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                self.banned.remove(id);
                false
            }
            None => false,
        }
    }

    fn enqueue_dial(&mut self, address: HostAddress, persistent: bool) -> Result<(), SwitchError> {
        let id = address.id();
        if id == self.id {
            return Err(SwitchError::DialSelf);
        }
        // One owner per peer: a persistent peer is dialed only by the persistent logic, at its configured address.
        if !persistent && self.persistent.contains_key(&id) {
            return Ok(());
        }
        if persistent {
            self.persistent.insert(id, address.clone());
        }
        match self.queue.push(DialTarget { address, persistent, attempts: 0 }, Instant::now()) {
            Pushed::Full => Err(SwitchError::DialQueueFull),
            Pushed::Added | Pushed::Merged => Ok(()),
        }
    }

    /// Non-persistent, live peers in one direction.
    fn count(&self, direction: Direction) -> usize {
        self.peers.values().filter(|p| p.alive() && !p.info.persistent && p.info.direction == direction).count()
    }

    fn start_due_dials(&mut self) {
        let now = Instant::now();
        while self.dials.len() < self.config.max_dials_in_flight {
            let Some(target) = self.queue.pop_due(now) else { break };
            let id = target.address.id();
            if id == self.id || self.dialing.contains(&id) || self.peers.get(&id).is_some_and(PeerSlot::alive) {
                continue;
            }
            if self.is_banned(&id) {
                let reason = DialError::Rejected(RejectReason::Filtered("banned".into()));
                self.emit(SwitchEvent::DialFailed { peer: id, address: target.address.to_string(), reason });
                continue;
            }
            if !target.persistent {
                let dialing_ordinary = self.dials.len().saturating_sub(self.persistent_dials());
                if self.count(Direction::Outbound) + dialing_ordinary >= self.config.max_outbound {
                    debug!(self.logger, "outbound limit reached; dropping dial"; "peer" => %id);
                    let reason = DialError::Rejected(RejectReason::OverLimit("max_num_outbound_peers"));
                    self.emit(SwitchEvent::DialFailed { peer: id, address: target.address.to_string(), reason });
                    continue;
                }
            }
            self.dialing.insert(id);
            let transport = self.transport.clone();
            self.dials.spawn(async move {
                let result = match target.address.resolve().await {
                    Ok(addr) => transport.dial(addr).await,
                    Err(e) => Err(DialError::Address(e.to_string())),
                };
                (target, result)
            });
        }
    }

    fn persistent_dials(&self) -> usize {
        self.dialing.iter().filter(|id| self.persistent.contains_key(id)).count()
    }

    /// Queues a persistent peer's retry number `retry` (0 = the first after a failure or a drop): it waits
    /// `backoff.delay(retry)`, so the schedule runs 1 s, 2 s, 4 s, … up to 10 min.
    fn requeue_persistent(&mut self, id: NodeId, retry: u32) {
        if let Some(address) = self.persistent.get(&id).cloned() {
            let at = Instant::now() + self.config.backoff.delay_random(retry);
            self.queue.push(DialTarget { address, persistent: true, attempts: retry.saturating_add(1) }, at);
        }
    }

    fn on_dial_result(&mut self, target: DialTarget, result: Result<Upgraded, DialError>) {
        let id = target.address.id();
        self.dialing.remove(&id);
        let failure = match result {
            Ok(up) => {
                let address = up.remote_addr;
                match self.admit(up) {
                    Ok(()) => return,
                    // The tie-break kept the other connection: we are connected, nothing to retry.
                    Err(RejectReason::Duplicate) => {
                        self.emit(SwitchEvent::PeerRejected {
                            address,
                            peer: Some(id),
                            reason: RejectReason::Duplicate,
                        });
                        return;
                    }
                    Err(reason) => DialError::Rejected(reason),
                }
            }
            Err(e) => e,
        };
        debug!(self.logger, "dial failed"; "peer" => %id, "address" => %target.address, "reason" => %failure);
        self.emit(SwitchEvent::DialFailed { peer: id, address: target.address.to_string(), reason: failure });
        if self.persistent.contains_key(&id) {
            self.requeue_persistent(id, target.attempts);
        }
    }

    fn on_inbound(&mut self, inbound: Inbound) {
        match inbound {
            Inbound::Upgraded(up) => {
                let (address, peer) = (up.remote_addr, up.node_info.id);
                if let Err(reason) = self.admit(*up) {
                    debug!(self.logger, "inbound peer rejected"; "peer" => %peer, "reason" => %reason);
                    self.emit(SwitchEvent::PeerRejected { address, peer: Some(peer), reason });
                }
            }
            Inbound::Rejected { remote_addr, peer, reason } => {
                self.emit(SwitchEvent::PeerRejected { address: remote_addr, peer, reason });
            }
        }
    }

    /// Decides whether an upgraded connection becomes a peer; on refusal the connection is dropped (closed).
    fn admit(&mut self, up: Upgraded) -> Result<(), RejectReason> {
        let id = up.node_info.id;
        if self.is_banned(&id) {
            return Err(RejectReason::Filtered("banned".into()));
        }
        let persistent = self.persistent.contains_key(&id);
        let mut previous = None;
        if let Some(existing) = self.peers.get(&id) {
            if existing.alive() {
                if !keep_new_connection(self.id, id, existing.info.direction, up.direction) {
                    return Err(RejectReason::Duplicate);
                }
                existing.stop(DisconnectReason::Replaced);
                self.emit(SwitchEvent::PeerDisconnected {
                    peer: id,
                    address: existing.info.remote_addr,
                    reason: DisconnectReason::Replaced,
                });
            }
            if let Some(old) = self.peers.remove(&id) {
                if !old.alive() {
                    // Closing but not yet reported: report it now, its own report will be ignored as stale.
                    let reason = old.stop_reason.get().cloned().unwrap_or_else(|| {
                        DisconnectReason::Connection(old.conn.close_reason().unwrap_or(CloseReason::Local))
                    });
                    self.emit(SwitchEvent::PeerDisconnected { peer: id, address: old.info.remote_addr, reason });
                }
                previous = Some(old.supervisor);
            }
        }
        if !persistent {
            let (count, max, what) = match up.direction {
                Direction::Inbound => {
                    (self.count(Direction::Inbound), self.config.max_inbound, "max_num_inbound_peers")
                }
                Direction::Outbound => {
                    (self.count(Direction::Outbound), self.config.max_outbound, "max_num_outbound_peers")
                }
            };
            if count >= max {
                return Err(RejectReason::OverLimit(what));
            }
        }
        let logger = self.logger.new(o!("peer" => id.to_string()));
        let (conn, receivers) = MConnection::spawn(up.conn, &self.descriptors, self.config.connection, logger.clone())
            .map_err(|e| RejectReason::Filtered(e.to_string()))?;
        let info = Arc::new(PeerInfo {
            id,
            node_info: up.node_info,
            remote_addr: up.remote_addr,
            direction: up.direction,
            persistent,
            private: self.private.contains(&id),
            connected_since: SystemTime::now(),
            configured_address: self.persistent.get(&id).cloned(),
        });
        let conn = Arc::new(conn);
        self.next_conn_id += 1;
        let conn_id = self.next_conn_id;
        let stop_reason = Arc::new(OnceLock::new());
        let supervisor = tokio::spawn(supervise(Supervised {
            info: info.clone(),
            conn: conn.clone(),
            receivers,
            reactors: self.reactors.clone(),
            owner: self.owner,
            previous,
            stop_reason: stop_reason.clone(),
            closed_tx: self.closed_tx.clone(),
            conn_id,
        }));
        info!(logger, "peer connected"; "direction" => %info.direction, "address" => %info.remote_addr, "persistent" => persistent);
        self.emit(SwitchEvent::PeerConnected {
            peer: id,
            address: info.remote_addr,
            direction: info.direction,
            persistent,
            private: info.private,
        });
        self.queue.remove(&id);
        self.peers.insert(id, PeerSlot { info, conn, conn_id, stop_reason, supervisor });
        Ok(())
    }

    fn on_peer_closed(&mut self, closed: PeerClosed) {
        let current = self.peers.get(&closed.id).is_some_and(|p| p.conn_id == closed.conn_id);
        if !current {
            return; // a replaced connection; its successor is already in place
        }
        let Some(slot) = self.peers.remove(&closed.id) else { return };
        info!(self.logger, "peer disconnected"; "peer" => %closed.id, "reason" => %closed.reason);
        self.emit(SwitchEvent::PeerDisconnected {
            peer: closed.id,
            address: slot.info.remote_addr,
            reason: closed.reason,
        });
        if self.persistent.contains_key(&closed.id) {
            self.requeue_persistent(closed.id, 0);
        }
    }

    async fn shutdown(mut self) {
        info!(self.logger, "switch stopping"; "peers" => self.peers.len());
        // Stop accepting (the accept loop sees its outlet close) and dialing.
        drop(std::mem::replace(&mut self.inbound_rx, mpsc::channel(1).1));
        self.dials.shutdown().await;
        let grace = self.config.stop_grace;
        let mut closing = JoinSet::new();
        for slot in self.peers.values() {
            let _ = slot.stop_reason.set(DisconnectReason::Shutdown);
            let conn = slot.conn.clone();
            closing.spawn(async move {
                if tokio::time::timeout(grace, conn.close_gracefully()).await.is_err() {
                    conn.close();
                }
                conn.closed().await;
            });
        }
        while closing.join_next().await.is_some() {}
        for (id, mut slot) in self.peers.drain() {
            // Supervisors finish once reactors have taken the peer's last events; a stuck reactor cannot hold us.
            if tokio::time::timeout(grace, &mut slot.supervisor).await.is_err() {
                debug!(self.logger, "peer supervisor did not finish in time"; "peer" => %id);
                slot.supervisor.abort();
            }
            let _ = self.events.send(SwitchEvent::PeerDisconnected {
                peer: id,
                address: slot.info.remote_addr,
                reason: DisconnectReason::Shutdown,
            });
        }
        info!(self.logger, "switch stopped");
    }
}

struct Supervised {
    info: Arc<PeerInfo>,
    conn: Arc<MConnection>,
    receivers: Vec<ChannelReceiver>,
    reactors: Arc<Vec<ReactorSlot>>,
    owner: [Option<usize>; 256],
    previous: Option<JoinHandle<()>>,
    stop_reason: Arc<OnceLock<DisconnectReason>>,
    closed_tx: mpsc::UnboundedSender<PeerClosed>,
    conn_id: u64,
}

/// One peer's life as reactors see it: up, messages, down.
async fn supervise(s: Supervised) {
    let id = s.info.id;
    if let Some(previous) = s.previous {
        // The replaced connection's PeerDown reaches reactors before this one's PeerUp.
        let _ = previous.await;
    }
    for r in s.reactors.iter() {
        let handle = PeerHandle::new(s.info.clone(), s.conn.clone(), r.channels.clone());
        let _ = r.inbox.send(ReactorEvent::PeerUp(handle)).await;
    }
    let mut forwarders = JoinSet::new();
    for mut rx in s.receivers {
        let Some(r) = s.owner[usize::from(rx.id())].and_then(|i| s.reactors.get(i)) else { continue };
        let inbox = r.inbox.clone();
        forwarders.spawn(async move {
            let channel = rx.id();
            while let Some(msg) = rx.recv().await {
                if inbox.send(ReactorEvent::Message { peer: id, channel, msg: msg.data }).await.is_err() {
                    break;
                }
            }
        });
    }
    let close: CloseReason = s.conn.closed().await;
    while forwarders.join_next().await.is_some() {}
    let reason = s.stop_reason.get().cloned().unwrap_or(DisconnectReason::Connection(close));
    for r in s.reactors.iter() {
        let _ = r.inbox.send(ReactorEvent::PeerDown { peer: id, reason: reason.clone() }).await;
    }
    let _ = s.closed_tx.send(PeerClosed { id, conn_id: s.conn_id, reason });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_of_a_simultaneous_dial_keep_the_same_connection() {
        let (a, b) = (
            NodeKey::from_seed(&[1; 32]).node_id(WireProfile::Tm2),
            NodeKey::from_seed(&[2; 32]).node_id(WireProfile::Tm2),
        );
        let (low, high) = (a.min(b), a.max(b));
        use Direction::{Inbound, Outbound};
        // The low node dialed connection X (outbound for low, inbound for high); the high node dialed Y.
        // Whichever each side admitted first, both end with X.
        for (low_first, high_first) in
            [(Outbound, Inbound), (Inbound, Outbound), (Outbound, Outbound), (Inbound, Inbound)]
        {
            let low_keeps_x = if low_first == Outbound {
                !keep_new_connection(low, high, Outbound, Inbound)
            } else {
                keep_new_connection(low, high, Inbound, Outbound)
            };
            let high_keeps_x = if high_first == Inbound {
                !keep_new_connection(high, low, Inbound, Outbound)
            } else {
                keep_new_connection(high, low, Outbound, Inbound)
            };
            assert!(low_keeps_x && high_keeps_x, "{low_first:?} {high_first:?}");
        }
        // Same direction twice: keep what we have.
        assert!(!keep_new_connection(a, b, Inbound, Inbound));
        assert!(!keep_new_connection(a, b, Outbound, Outbound));
    }
}
