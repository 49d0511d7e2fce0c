//! The transport: turns TCP sockets into authenticated, described peers.
//!
//! Upgrade order, for both directions:
//! 1. the secret connection handshake, under `handshake_timeout`;
//! 2. for dials, the authenticated ID must be the dialed ID (checked before we say anything about ourselves);
//! 3. NodeInfo exchange, written and read at the same time, at most 10,240 bytes, under `handshake_timeout`;
//! 4. the NodeInfo must be valid, carry the authenticated ID, not be ours, and be compatible with ours.
//!
//! Inbound upgrades run concurrently in a bounded pool of [handshake slots](handshake_slots), shared fairly between
//! hosts and networks, so neither a slow client nor a flood from many addresses keeps an honest newcomer out. A
//! socket refused a slot, or one that fails any step, is dropped (closed) at once and reported with a typed
//! [`RejectReason`] that keeps its cause.

pub mod handshake_slots;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ledgerwire_conn::length_prefixed::{self, LengthPrefixedError};
use ledgerwire_conn::{SecretConnection, SecretConnectionError};
use ledgerwire_types::{AddressError, NetAddress, NodeId, NodeKey, WireProfile};
use slog::{Logger, debug, warn};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use crate::node_info::{Incompatibility, MAX_NODE_INFO_SIZE, NodeInfo, NodeInfoError};
use handshake_slots::{Admission, HandshakeSlots, SlotId, SlotLimits};

/// The secret connection type the transport produces.
pub type SecretTcp = SecretConnection<OwnedReadHalf, OwnedWriteHalf>;

/// Who opened the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The peer dialed us.
    Inbound,
    /// We dialed the peer.
    Outbound,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        })
    }
}

/// Transport limits and deadlines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransportConfig {
    /// Deadline for the secret connection handshake, and separately for the NodeInfo exchange. Default 3 s (what
    /// Go peers allow us).
    pub handshake_timeout: Duration,
    /// Deadline for the TCP connect of a dial. Default 3 s.
    pub dial_timeout: Duration,
    /// Inbound upgrades in flight at once, from everyone. Default 256.
    pub max_pending_inbound: usize,
    /// Inbound upgrades in flight at once from one host (an IPv4 address or an IPv6 /64). Default 8.
    pub max_pending_inbound_per_ip: usize,
    /// Inbound upgrades in flight at once from one network (an IPv4 /24 or an IPv6 /48). Default 32.
    pub max_pending_inbound_per_subnet: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        let slots = SlotLimits::default();
        TransportConfig {
            handshake_timeout: Duration::from_secs(3),
            dial_timeout: Duration::from_secs(3),
            max_pending_inbound: slots.total,
            max_pending_inbound_per_ip: slots.per_ip,
            max_pending_inbound_per_subnet: slots.per_subnet,
        }
    }
}

/// The shortest handshake deadline accepted: a handshake is several round trips and signature checks.
pub const MIN_HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(100);

impl TransportConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), TransportConfigError> {
        if self.handshake_timeout < MIN_HANDSHAKE_TIMEOUT {
            return Err(TransportConfigError::TooShort { field: "handshake_timeout", min: MIN_HANDSHAKE_TIMEOUT });
        }
        if self.dial_timeout.is_zero() {
            return Err(TransportConfigError::Zero("dial_timeout"));
        }
        for (field, v) in [
            ("max_pending_inbound", self.max_pending_inbound),
            ("max_pending_inbound_per_ip", self.max_pending_inbound_per_ip),
            ("max_pending_inbound_per_subnet", self.max_pending_inbound_per_subnet),
        ] {
            if v == 0 {
                return Err(TransportConfigError::Zero(field));
            }
        }
        Ok(())
    }

    fn slot_limits(&self) -> SlotLimits {
        SlotLimits {
            total: self.max_pending_inbound,
            per_ip: self.max_pending_inbound_per_ip,
            per_subnet: self.max_pending_inbound_per_subnet,
        }
    }
}

/// Why transport settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportConfigError {
    /// A deadline too short for any handshake to finish.
    #[error("{field} must be at least {min:?}")]
    TooShort {
        /// The setting.
        field: &'static str,
        /// The least accepted value.
        min: Duration,
    },
    /// A setting that must be positive is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
}

/// Why a connection was turned away. Each variant keeps its cause ([`std::error::Error::source`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum RejectReason {
    /// The secret connection handshake failed on authentication: a bad signature, an invalid or low-order key.
    #[error("authentication failed: {0}")]
    AuthFailed(#[source] SecretConnectionError),
    /// The peer does not speak the protocol (garbage, a deadline, or it hung up mid-handshake).
    #[error("handshake failed: {0}")]
    Handshake(#[source] SecretConnectionError),
    /// A dial reached another node than the one dialed.
    #[error("dialed {dialed} but reached {reached}")]
    WrongPeer {
        /// The ID we dialed.
        dialed: NodeId,
        /// The ID that authenticated.
        reached: NodeId,
    },
    /// The NodeInfo names another ID than the key that authenticated.
    #[error("NodeInfo claims {claimed} but the key is {key}")]
    IdMismatch {
        /// The ID in the NodeInfo.
        claimed: NodeId,
        /// The authenticated ID.
        key: NodeId,
    },
    /// The peer is us.
    #[error("connection to ourselves")]
    SelfConnection,
    /// We already have a connection to this peer (after the simultaneous-dial tie-break).
    #[error("duplicate connection")]
    Duplicate,
    /// The peer's NodeInfo is not compatible with ours.
    #[error("incompatible: {0}")]
    Incompatible(#[source] Incompatibility),
    /// The peer's NodeInfo is invalid.
    #[error("invalid NodeInfo: {0}")]
    InvalidNodeInfo(#[source] NodeInfoError),
    /// A connection limit is reached.
    #[error("over limit: {0}")]
    OverLimit(&'static str),
    /// A pending handshake was aborted to make room for a newcomer from a less crowded network.
    #[error("handshake aborted to make room for a newcomer from a less crowded network")]
    Evicted,
    /// The NodeInfo exchange did not finish in time.
    #[error("timed out during the NodeInfo exchange")]
    NodeInfoTimeout,
    /// The peer is banned.
    #[error("banned")]
    Banned,
}

/// An upgraded connection, ready to be multiplexed.
#[derive(Debug)]
pub struct Upgraded {
    /// The authenticated, encrypted connection.
    pub conn: SecretTcp,
    /// The peer's validated NodeInfo; its ID is the authenticated ID.
    pub node_info: NodeInfo,
    /// The socket's remote address.
    pub remote_addr: SocketAddr,
    /// Who dialed.
    pub direction: Direction,
    /// How long the handshake and the NodeInfo exchange took.
    pub handshake: std::time::Duration,
}

/// What the accept loop reports.
#[derive(Debug)]
pub enum Inbound {
    /// A connection that passed every transport check (boxed: it carries both cipher states).
    Upgraded(Box<Upgraded>),
    /// A connection that was closed, and why.
    Rejected {
        /// The socket's remote address.
        remote_addr: SocketAddr,
        /// The authenticated ID, if the handshake got that far.
        peer: Option<NodeId>,
        /// Why.
        reason: RejectReason,
    },
}

/// Why a dial failed. Each variant keeps its cause.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DialError {
    /// TCP connect failed.
    #[error("connect failed: {0}")]
    Connect(#[source] Arc<io::Error>),
    /// TCP connect took longer than the dial timeout.
    #[error("connect timed out")]
    ConnectTimeout,
    /// The address could not be resolved or is not dialable.
    #[error("bad address: {0}")]
    Address(#[source] Arc<AddressError>),
    /// The connection was made but the upgrade refused it.
    #[error("{0}")]
    Rejected(#[from] RejectReason),
}

impl From<AddressError> for DialError {
    fn from(e: AddressError) -> Self {
        DialError::Address(Arc::new(e))
    }
}

/// Turns sockets into peers for one node identity and NodeInfo.
#[derive(Debug)]
pub struct Transport {
    key: Arc<NodeKey>,
    profile: WireProfile,
    node_info: NodeInfo,
    config: TransportConfig,
    logger: Logger,
}

impl Transport {
    /// A transport for `key` advertising `node_info` (whose profile it speaks). `logger` may be `None`.
    pub fn new(
        key: Arc<NodeKey>,
        node_info: NodeInfo,
        config: TransportConfig,
        logger: impl Into<Option<Logger>>,
    ) -> Self {
        let logger = logger.into().unwrap_or_else(|| Logger::root(slog::Discard, slog::o!()));
        Transport { key, profile: node_info.profile(), node_info, config, logger }
    }

    /// Our NodeInfo.
    pub fn node_info(&self) -> &NodeInfo {
        &self.node_info
    }

    /// Our ID.
    pub fn id(&self) -> NodeId {
        self.node_info.id
    }

    async fn connect(&self, addr: NetAddress) -> Result<TcpStream, DialError> {
        addr.validate()?;
        tokio::time::timeout(self.config.dial_timeout, TcpStream::connect(addr.socket_addr()))
            .await
            .map_err(|_| DialError::ConnectTimeout)?
            .map_err(|e| DialError::Connect(Arc::new(e)))
    }

    /// Dials `addr`, checks the peer is `addr.id()`, and upgrades the connection.
    pub async fn dial(&self, addr: NetAddress) -> Result<Upgraded, DialError> {
        let socket = self.connect(addr).await?;
        self.upgrade(socket, Direction::Outbound, Some(addr.id())).await.map_err(|(_, r)| DialError::Rejected(r))
    }

    /// Checks that `addr.id()` listens at `addr`: connects and runs the secret connection handshake, which proves the
    /// key, then hangs up before the NodeInfo exchange (so the peer never admits the connection, and no existing
    /// connection of ours is replaced). Used to verify addresses that peers report about themselves.
    pub async fn probe(&self, addr: NetAddress) -> Result<(), DialError> {
        let socket = self.connect(addr).await?;
        let _ = socket.set_nodelay(true);
        let conn = SecretConnection::handshake(socket, &self.key, self.profile, self.config.handshake_timeout)
            .await
            .map_err(secret_reject)?;
        let reached = conn.remote_id();
        if reached != addr.id() {
            return Err(RejectReason::WrongPeer { dialed: addr.id(), reached }.into());
        }
        Ok(())
    }

    /// Runs the upgrade steps on a connected socket. On failure the socket is dropped (closed) before this returns;
    /// the error carries the authenticated ID if the handshake got that far.
    pub async fn upgrade(
        &self,
        socket: TcpStream,
        direction: Direction,
        expected: Option<NodeId>,
    ) -> Result<Upgraded, (Option<NodeId>, RejectReason)> {
        let started = std::time::Instant::now();
        let remote_addr =
            socket.peer_addr().map_err(|e| (None, RejectReason::Handshake(SecretConnectionError::Io(Arc::new(e)))))?;
        // We buffer and flush ourselves: Nagle's algorithm would only add latency.
        let _ = socket.set_nodelay(true);
        let timeout = self.config.handshake_timeout;
        let mut conn = SecretConnection::handshake(socket, &self.key, self.profile, timeout)
            .await
            .map_err(|e| (None, secret_reject(e)))?;
        let id = conn.remote_id();
        let fail = |r: RejectReason| (Some(id), r);
        if let Some(want) = expected
            && want != id
        {
            return Err(fail(RejectReason::WrongPeer { dialed: want, reached: id }));
        }
        let theirs = tokio::time::timeout(timeout, exchange_node_info(&mut conn, &self.node_info))
            .await
            .map_err(|_| fail(RejectReason::NodeInfoTimeout))?
            .map_err(fail)?;
        let info = NodeInfo::decode(self.profile, &theirs).map_err(|e| fail(RejectReason::InvalidNodeInfo(e)))?;
        info.validate().map_err(|e| fail(RejectReason::InvalidNodeInfo(e)))?;
        if info.id != id {
            return Err(fail(RejectReason::IdMismatch { claimed: info.id, key: id }));
        }
        if id == self.id() {
            return Err(fail(RejectReason::SelfConnection));
        }
        self.node_info.compatible_with(&info).map_err(|e| fail(RejectReason::Incompatible(e)))?;
        Ok(Upgraded { conn, node_info: info, remote_addr, direction, handshake: started.elapsed() })
    }

    /// Accepts connections on `listener` and upgrades them concurrently in the handshake slots, sending each outcome
    /// to `out`, until `out` is closed. A socket refused a slot is closed at once; one whose slot is taken for a
    /// newcomer is closed when its handshake is aborted.
    pub async fn accept_loop(self: Arc<Self>, listener: TcpListener, out: mpsc::Sender<Inbound>) {
        let mut slots = HandshakeSlots::new(self.config.slot_limits());
        let mut pending: JoinSet<Inbound> = JoinSet::new();
        let mut by_task: HashMap<tokio::task::Id, SlotId> = HashMap::new();
        let mut running: HashMap<SlotId, (AbortHandle, SocketAddr)> = HashMap::new();
        loop {
            tokio::select! {
                () = out.closed() => break,
                Some(done) = pending.join_next_with_id(), if !pending.is_empty() => {
                    let (task, outcome) = match done {
                        Ok((task, outcome)) => (task, Some(outcome)),
                        Err(e) => (e.id(), None), // aborted (evicted): its slot is already free
                    };
                    // A handshake evicted just as it finished was already reported and its slot given away: its
                    // outcome is dropped (an upgraded connection closes with it).
                    let evicted = match by_task.remove(&task) {
                        Some(slot) => {
                            let evicted = running.remove(&slot).is_none();
                            slots.release(slot);
                            evicted
                        }
                        None => true,
                    };
                    if let Some(outcome) = outcome.filter(|_| !evicted)
                        && out.send(outcome).await.is_err()
                    {
                        break;
                    }
                }
                accepted = listener.accept() => {
                    let (socket, remote_addr) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Typically EMFILE: back off instead of spinning on a failing accept.
                            warn!(self.logger, "accept failed"; "err" => %e);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let slot = match slots.admit(remote_addr.ip(), Instant::now()) {
                        Admission::Admit(slot) => slot,
                        Admission::AdmitEvicting { slot, evict } => {
                            if let Some((handle, victim)) = running.remove(&evict) {
                                handle.abort();
                                debug!(self.logger, "pending handshake evicted"; "addr" => %victim, "for" => %remote_addr);
                                let evicted = Inbound::Rejected { remote_addr: victim, peer: None, reason: RejectReason::Evicted };
                                if out.send(evicted).await.is_err() {
                                    break;
                                }
                            }
                            slot
                        }
                        Admission::Reject(what) => {
                            drop(socket);
                            debug!(self.logger, "inbound connection over limit"; "addr" => %remote_addr, "limit" => what);
                            let rejected = Inbound::Rejected { remote_addr, peer: None, reason: RejectReason::OverLimit(what) };
                            if out.send(rejected).await.is_err() {
                                break;
                            }
                            continue;
                        }
                    };
                    let transport = self.clone();
                    let handle = pending.spawn(async move {
                        match transport.upgrade(socket, Direction::Inbound, None).await {
                            Ok(up) => Inbound::Upgraded(Box::new(up)),
                            Err((peer, reason)) => Inbound::Rejected { remote_addr, peer, reason },
                        }
                    });
                    by_task.insert(handle.id(), slot);
                    running.insert(slot, (handle, remote_addr));
                }
            }
        }
        pending.shutdown().await;
    }
}

fn secret_reject(e: SecretConnectionError) -> RejectReason {
    match e {
        SecretConnectionError::BadSignature
        | SecretConnectionError::InvalidPublicKey
        | SecretConnectionError::UnsupportedKeyType(_)
        | SecretConnectionError::LowOrderEphemeralKey => RejectReason::AuthFailed(e),
        other => RejectReason::Handshake(other),
    }
}

fn io_reject(e: io::Error) -> RejectReason {
    match SecretConnectionError::from_io(&e) {
        Some(inner) => RejectReason::Handshake(inner.clone()),
        None => RejectReason::Handshake(SecretConnectionError::Io(Arc::new(e))),
    }
}

/// Writes ours and reads theirs at the same time; returns their NodeInfo body.
async fn exchange_node_info(conn: &mut SecretTcp, ours: &NodeInfo) -> Result<Vec<u8>, RejectReason> {
    let encoded = ours.encode();
    let (reader, writer) = conn.halves_mut();
    let send = async {
        writer.write_all(&encoded).await.map_err(io_reject)?;
        writer.flush().await.map_err(io_reject)
    };
    let receive = async {
        length_prefixed::read(reader, MAX_NODE_INFO_SIZE).await.map_err(|e| match e {
            LengthPrefixedError::Io(e) => io_reject(e),
            LengthPrefixedError::BadPrefix => {
                RejectReason::InvalidNodeInfo(NodeInfoError::Decode("bad length prefix".into()))
            }
            LengthPrefixedError::TooLarge { len, .. } => RejectReason::InvalidNodeInfo(NodeInfoError::TooLarge(len)),
        })
    };
    let ((), body) = tokio::try_join!(send, receive)?;
    Ok(body)
}
