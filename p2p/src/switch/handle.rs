//! The switch's handle: what programs ask of a running switch.
//!
//! Requests that change something go to the actor as messages. What only reads — the connected peers, broadcasts —
//! uses the snapshot of connections the actor publishes after every change, so it never waits for the actor. Once the
//! switch has stopped, every request fails with [`SwitchError::Stopped`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use ledgerwire_conn::mconnection::{ChannelId, ConnectionStatus, MConnection, SendError};
use ledgerwire_types::{HostAddress, NetAddress, NodeId};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::events::{EventStream, SwitchEvent};
use crate::node_info::NodeInfo;
use crate::peer::{DisconnectReason, PeerInfo};
use crate::transport::DialError;

/// Why a request to a running switch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwitchError {
    /// The switch has stopped (or never started).
    #[error("the switch has stopped")]
    Stopped,
    /// The address is our own.
    #[error("refusing to dial ourselves")]
    DialSelf,
    /// The dial queue is full.
    #[error("the dial queue is full")]
    DialQueueFull,
    /// Every place in the ban table holds an operator's ban.
    #[error("too many bans in force (at most 10,000 operators' bans); lift some first")]
    TooManyBans,
}

/// Why an address probe failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProbeError {
    /// The switch has stopped.
    #[error("the switch has stopped")]
    Stopped,
    /// The most probes that may run at once are running.
    #[error("too many probes in flight")]
    Busy,
    /// Nobody with the expected ID answered at the address.
    #[error("probe failed: {0}")]
    Failed(#[source] DialError),
}

/// A connected peer, for operators.
#[derive(Clone, Debug)]
pub struct PeerSummary {
    /// Facts about the peer.
    pub info: PeerInfo,
    /// The connection's counters.
    pub status: ConnectionStatus,
}

/// A peer the switch refuses, for operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BanSummary {
    /// The banned peer.
    pub peer: NodeId,
    /// How long until the ban ends.
    pub remaining: Duration,
    /// Why it was banned.
    pub reason: String,
    /// Whether an operator banned it (through [`Switch::ban_by_operator`]), rather than a reactor.
    pub by_operator: bool,
}

/// Each peer's outcome of a broadcast.
#[derive(Debug, Clone, PartialEq)]
pub struct BroadcastReport {
    /// Per peer, in ID order: queued, or why not.
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
    /// The peer's connection refused the message (its queue is full, or it is closing).
    #[error("{0}")]
    Send(#[source] SendError),
}

/// What the handle asks of the actor.
pub(crate) enum Command {
    Dial {
        address: HostAddress,
        persistent: bool,
        reply: oneshot::Sender<Result<(), SwitchError>>,
    },
    StopPeer {
        id: NodeId,
        reason: DisconnectReason,
        forget: bool,
        reply: oneshot::Sender<bool>,
    },
    FinishPeer {
        id: NodeId,
        reason: String,
    },
    Ban {
        id: NodeId,
        duration: Duration,
        reason: String,
        by_operator: bool,
        reply: Option<oneshot::Sender<Result<BanSummary, SwitchError>>>,
    },
    Unban {
        id: NodeId,
        reply: oneshot::Sender<bool>,
    },
    Bans {
        reply: oneshot::Sender<Vec<BanSummary>>,
    },
    Probe {
        address: NetAddress,
        reply: oneshot::Sender<Result<(), ProbeError>>,
    },
    Stop {
        reply: oneshot::Sender<()>,
    },
}

/// Where a switch is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    Building,
    Running,
    Stopped,
}

/// What a running switch publishes about itself.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) node_info: NodeInfo,
    pub(crate) listen_addr: SocketAddr,
}

/// A connected peer in the published snapshot.
#[derive(Clone, Debug)]
pub(crate) struct Connected {
    pub(crate) info: Arc<PeerInfo>,
    pub(crate) conn: Arc<MConnection>,
}

/// The connected peers, by ID, as the actor last published them.
pub(crate) type PeerTable = BTreeMap<NodeId, Connected>;

/// State every handle shares; written by the builder and the actor only.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) id: NodeId,
    pub(crate) running: OnceLock<Running>,
    pub(crate) lifecycle: watch::Sender<Lifecycle>,
    pub(crate) peers: watch::Sender<Arc<PeerTable>>,
}

impl Shared {
    pub(crate) fn new(id: NodeId) -> Self {
        Shared {
            id,
            running: OnceLock::new(),
            lifecycle: watch::channel(Lifecycle::Building).0,
            peers: watch::channel(Arc::new(PeerTable::new())).0,
        }
    }

    /// Marks the switch stopped (idempotent) and empties the snapshot.
    pub(crate) fn set_stopped(&self) {
        self.lifecycle.send_replace(Lifecycle::Stopped);
        self.peers.send_replace(Arc::new(PeerTable::new()));
    }
}

/// A handle to a switch. Cheap to clone; the switch stops when told to, or when every handle is gone.
#[derive(Clone)]
pub struct Switch {
    pub(crate) cmd: mpsc::Sender<Command>,
    /// Weak: the running switch owns the only strong sender, so every subscription ends when it stops.
    pub(crate) events: broadcast::WeakSender<SwitchEvent>,
    pub(crate) shared: Arc<Shared>,
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

    /// Waits until the switch runs; [`SwitchError::Stopped`] if it stopped, or will never start (its builder was
    /// dropped, or `start` failed).
    pub async fn started(&self) -> Result<(), SwitchError> {
        let mut rx = self.shared.lifecycle.subscribe();
        match rx.wait_for(|l| *l != Lifecycle::Building).await.map(|l| *l) {
            Ok(Lifecycle::Running) => Ok(()),
            _ => Err(SwitchError::Stopped),
        }
    }

    /// Whether the switch has stopped (or will never start).
    pub fn is_stopped(&self) -> bool {
        *self.shared.lifecycle.borrow() == Lifecycle::Stopped
    }

    fn running(&self) -> Result<(), SwitchError> {
        if self.is_stopped() { Err(SwitchError::Stopped) } else { Ok(()) }
    }

    async fn send(&self, command: Command) -> Result<(), SwitchError> {
        self.cmd.send(command).await.map_err(|_| SwitchError::Stopped)
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, SwitchError> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx)).await?;
        rx.await.map_err(|_| SwitchError::Stopped)
    }

    /// Queues a dial to `address`. A persistent peer is redialed forever at this address and exempt from limits.
    pub async fn dial(&self, address: HostAddress, persistent: bool) -> Result<(), SwitchError> {
        self.ask(|reply| Command::Dial { address, persistent, reply }).await?
    }

    /// The connected peers, in ID order (a connection that is closing is no longer listed).
    pub fn peers(&self) -> Result<Vec<PeerSummary>, SwitchError> {
        self.running()?;
        let table = self.shared.peers.borrow().clone();
        Ok(table
            .values()
            .filter(|c| c.conn.close_reason().is_none())
            .map(|c| PeerSummary { info: (*c.info).clone(), status: c.conn.status() })
            .collect())
    }

    /// Disconnects `peer` because it misbehaved; persistent peers are redialed later. Returns whether it was
    /// connected.
    pub async fn stop_peer_for_error(&self, peer: NodeId, reason: impl Into<String>) -> Result<bool, SwitchError> {
        let reason = DisconnectReason::Error(reason.into());
        self.ask(|reply| Command::StopPeer { id: peer, reason, forget: false, reply }).await
    }

    /// Disconnects `peer` at the operator's request and stops redialing it until restart. Returns whether it was
    /// connected.
    pub async fn disconnect(&self, peer: NodeId) -> Result<bool, SwitchError> {
        let reason = DisconnectReason::Operator;
        self.ask(|reply| Command::StopPeer { id: peer, reason, forget: true, reply }).await
    }

    /// Closes the connection to `peer` after everything queued for it has been sent (a seed that answered, a
    /// crawled peer). Persistent peers are redialed later, as usual.
    pub async fn finish_peer(&self, peer: NodeId, reason: impl Into<String>) -> Result<(), SwitchError> {
        self.send(Command::FinishPeer { id: peer, reason: reason.into() }).await
    }

    /// Disconnects `peer` (if connected) and refuses connections to and from it for `duration` (at most about 100
    /// years). A ban in force that ends later is kept. A persistent peer stays persistent and is dialed again when
    /// the ban ends. For reactors: when 10,000 bans are in force, the one of these that ends soonest makes way for a
    /// newer one, and when all 10,000 are operators' the new one is not kept (the peer is still disconnected).
    pub async fn ban(&self, peer: NodeId, duration: Duration, reason: impl Into<String>) -> Result<(), SwitchError> {
        let reason = reason.into();
        self.send(Command::Ban { id: peer, duration, reason, by_operator: false, reply: None }).await
    }

    /// [`Switch::ban`] for an operator: the ban is never evicted to make room for others, and the answer is the ban
    /// now in force (an earlier one that ends later is kept). Fails with [`SwitchError::TooManyBans`] when 10,000
    /// operators' bans are in force.
    pub async fn ban_by_operator(
        &self,
        peer: NodeId,
        duration: Duration,
        reason: impl Into<String>,
    ) -> Result<BanSummary, SwitchError> {
        let reason = reason.into();
        self.ask(|reply| Command::Ban { id: peer, duration, reason, by_operator: true, reply: Some(reply) }).await?
    }

    /// Lifts `peer`'s ban; a persistent peer is dialed at once. Returns whether it was banned.
    pub async fn unban(&self, peer: NodeId) -> Result<bool, SwitchError> {
        self.ask(|reply| Command::Unban { id: peer, reply }).await
    }

    /// The bans in force, soonest to end first. Requests are taken in order: a ban asked for before this call is
    /// listed if it was kept.
    pub async fn bans(&self) -> Result<Vec<BanSummary>, SwitchError> {
        self.ask(|reply| Command::Bans { reply }).await
    }

    /// Checks that `address.id()` answers at `address` (connect and authenticate, then hang up; see
    /// [`Transport::probe`](crate::Transport::probe)). At most `max_probes_in_flight` run at once.
    pub async fn probe(&self, address: NetAddress) -> Result<(), ProbeError> {
        let (reply, rx) = oneshot::channel();
        self.cmd.send(Command::Probe { address, reply }).await.map_err(|_| ProbeError::Stopped)?;
        rx.await.map_err(|_| ProbeError::Stopped)?
    }

    /// Sends `msg` on `channel` to every connected peer that speaks it, concurrently, each waiting up to the send
    /// timeout for queue room, and reports each outcome.
    pub async fn broadcast(&self, channel: ChannelId, msg: impl Into<Bytes>) -> Result<BroadcastReport, SwitchError> {
        self.running()?;
        let msg = msg.into();
        let table = self.shared.peers.borrow().clone();
        let mut results = Vec::with_capacity(table.len());
        let mut sends = JoinSet::new();
        for (id, c) in table.iter() {
            if !c.info.node_info.channels.contains(&channel) {
                results.push((*id, Err(BroadcastFailure::NotSupported)));
                continue;
            }
            let (id, conn, msg) = (*id, c.conn.clone(), msg.clone());
            sends.spawn(async move { (id, conn.send(channel, msg).await.map_err(BroadcastFailure::Send)) });
        }
        while let Some(done) = sends.join_next().await {
            if let Ok(r) = done {
                results.push(r);
            }
        }
        results.sort_by_key(|(id, _)| *id);
        Ok(BroadcastReport { results })
    }

    /// Sends `msg` on `channel` to every connected peer that speaks it and has room now, and reports each outcome;
    /// never waits (a peer whose queue is full is reported as such).
    pub fn try_broadcast(&self, channel: ChannelId, msg: impl Into<Bytes>) -> Result<BroadcastReport, SwitchError> {
        self.running()?;
        let msg = msg.into();
        let table = self.shared.peers.borrow().clone();
        let results = table
            .iter()
            .map(|(id, c)| {
                let outcome = if c.info.node_info.channels.contains(&channel) {
                    c.conn.try_send(channel, msg.clone()).map_err(BroadcastFailure::Send)
                } else {
                    Err(BroadcastFailure::NotSupported)
                };
                (*id, outcome)
            })
            .collect();
        Ok(BroadcastReport { results })
    }

    /// Subscribes to events that pass `filter`. Dropping the stream unsubscribes; the stream ends when the switch
    /// stops.
    pub fn subscribe(
        &self,
        filter: impl Fn(&SwitchEvent) -> bool + Send + Sync + 'static,
    ) -> Result<EventStream, SwitchError> {
        match self.events.upgrade() {
            Some(tx) => Ok(EventStream::new(tx.subscribe(), Box::new(filter))),
            None => Err(SwitchError::Stopped),
        }
    }

    /// Stops the switch: stops accepting and dialing, gives connections up to `stop_grace` to send what is queued,
    /// closes them, and waits for every task. Returns once the switch has stopped (at once if it already had).
    pub async fn stop(&self) {
        let _ = self.ask(|reply| Command::Stop { reply }).await;
        let mut rx = self.shared.lifecycle.subscribe();
        let _ = rx.wait_for(|l| *l == Lifecycle::Stopped).await;
    }
}
