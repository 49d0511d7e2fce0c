//! The transport: turns TCP sockets into authenticated, described peers.
//!
//! Upgrade order, for both directions:
//! 1. the secret connection handshake, under `handshake_timeout`;
//! 2. for dials, the authenticated ID must be the dialed ID (checked before we say anything about ourselves);
//! 3. NodeInfo exchange, written and read at the same time, at most 10,240 bytes, under `handshake_timeout`;
//! 4. the NodeInfo must be valid, carry the authenticated ID, not be ours, and be compatible with ours.
//!
//! Inbound upgrades run concurrently, capped in total and per remote IP, so a slow or silent client holds up nobody
//! else. A socket over a cap, or one that fails any step, is dropped (closed) at once and reported with a typed
//! [`RejectReason`].

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ledgerwire_conn::{SecretConnection, SecretConnectionError};
use ledgerwire_types::{NetAddress, NodeId, NodeKey, WireProfile};
use slog::{Logger, debug, warn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::node_info::{Incompatibility, MAX_NODE_INFO_SIZE, NodeInfo, NodeInfoError};

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
    /// Inbound upgrades in flight at once, from everyone. Default 64.
    pub max_pending_inbound: usize,
    /// Inbound upgrades in flight at once from one IP address. Default 8.
    pub max_pending_inbound_per_ip: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            handshake_timeout: Duration::from_secs(3),
            dial_timeout: Duration::from_secs(3),
            max_pending_inbound: 64,
            max_pending_inbound_per_ip: 8,
        }
    }
}

/// Why a connection was turned away.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// The secret connection handshake failed: a bad signature or key, or the authenticated ID is not the ID we
    /// dialed or the one in the peer's NodeInfo.
    #[error("authentication failed: {0}")]
    AuthFailed(String),
    /// The peer does not speak the protocol (garbage, or it hung up mid-handshake).
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// The peer is us.
    #[error("connection to ourselves")]
    SelfConnection,
    /// We already have a connection to this peer (after the simultaneous-dial tie-break).
    #[error("duplicate connection")]
    Duplicate,
    /// The peer's NodeInfo is not compatible with ours.
    #[error("incompatible: {0}")]
    Incompatible(Incompatibility),
    /// The peer's NodeInfo is invalid.
    #[error("invalid NodeInfo: {0}")]
    InvalidNodeInfo(NodeInfoError),
    /// A connection limit is reached.
    #[error("over limit: {0}")]
    OverLimit(&'static str),
    /// A deadline passed.
    #[error("timed out during {0}")]
    TimedOut(&'static str),
    /// A filter (such as a ban) refused the peer.
    #[error("filtered: {0}")]
    Filtered(String),
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

/// Why a dial failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    /// TCP connect failed.
    #[error("connect failed: {0}")]
    Connect(String),
    /// TCP connect took longer than the dial timeout.
    #[error("connect timed out")]
    ConnectTimeout,
    /// The address could not be resolved or is not dialable.
    #[error("bad address: {0}")]
    Address(String),
    /// The connection was made but the upgrade refused it.
    #[error("{0}")]
    Rejected(RejectReason),
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
    /// A transport for `key` advertising `node_info` (whose profile it speaks).
    pub fn new(key: Arc<NodeKey>, node_info: NodeInfo, config: TransportConfig, logger: Logger) -> Self {
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

    /// Dials `addr`, checks the peer is `addr.id()`, and upgrades the connection.
    pub async fn dial(&self, addr: NetAddress) -> Result<Upgraded, DialError> {
        addr.validate().map_err(|e| DialError::Address(e.to_string()))?;
        let socket = tokio::time::timeout(self.config.dial_timeout, TcpStream::connect(addr.socket_addr()))
            .await
            .map_err(|_| DialError::ConnectTimeout)?
            .map_err(|e| DialError::Connect(e.to_string()))?;
        self.upgrade(socket, Direction::Outbound, Some(addr.id())).await.map_err(|(_, r)| DialError::Rejected(r))
    }

    /// Runs the upgrade steps on a connected socket. On failure the socket is dropped (closed) before this returns;
    /// the error carries the authenticated ID if the handshake got that far.
    pub async fn upgrade(
        &self,
        socket: TcpStream,
        direction: Direction,
        expected: Option<NodeId>,
    ) -> Result<Upgraded, (Option<NodeId>, RejectReason)> {
        let remote_addr = socket.peer_addr().map_err(|e| (None, RejectReason::Handshake(e.to_string())))?;
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
            return Err(fail(RejectReason::AuthFailed(format!("dialed {want} but reached {id}"))));
        }
        let theirs = tokio::time::timeout(timeout, exchange_node_info(&mut conn, &self.node_info))
            .await
            .map_err(|_| fail(RejectReason::TimedOut("NodeInfo exchange")))?
            .map_err(fail)?;
        let info = NodeInfo::decode(self.profile, &theirs).map_err(|e| fail(RejectReason::InvalidNodeInfo(e)))?;
        info.validate().map_err(|e| fail(RejectReason::InvalidNodeInfo(e)))?;
        if info.id != id {
            return Err(fail(RejectReason::AuthFailed(format!("NodeInfo claims {} but the key is {id}", info.id))));
        }
        if id == self.id() {
            return Err(fail(RejectReason::SelfConnection));
        }
        self.node_info.compatible_with(&info).map_err(|e| fail(RejectReason::Incompatible(e)))?;
        Ok(Upgraded { conn, node_info: info, remote_addr, direction })
    }

    /// Accepts connections on `listener` and upgrades them concurrently, sending each outcome to `out`, until `out`
    /// is closed. Over-limit sockets are closed at once.
    pub async fn accept_loop(self: Arc<Self>, listener: TcpListener, out: mpsc::Sender<Inbound>) {
        let mut pending: JoinSet<(IpAddr, Inbound)> = JoinSet::new();
        let mut per_ip: HashMap<IpAddr, usize> = HashMap::new();
        loop {
            tokio::select! {
                () = out.closed() => break,
                Some(done) = pending.join_next(), if !pending.is_empty() => {
                    let Ok((ip, outcome)) = done else { continue };
                    release(&mut per_ip, ip);
                    if out.send(outcome).await.is_err() {
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
                    let ip = remote_addr.ip().to_canonical();
                    let from_ip = per_ip.get(&ip).copied().unwrap_or(0);
                    let limit = if pending.len() >= self.config.max_pending_inbound {
                        Some("pending inbound handshakes")
                    } else if from_ip >= self.config.max_pending_inbound_per_ip {
                        Some("pending inbound handshakes from one IP")
                    } else {
                        None
                    };
                    if let Some(what) = limit {
                        drop(socket);
                        debug!(self.logger, "inbound connection over limit"; "addr" => %remote_addr, "limit" => what);
                        let rejected = Inbound::Rejected { remote_addr, peer: None, reason: RejectReason::OverLimit(what) };
                        if out.send(rejected).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    *per_ip.entry(ip).or_insert(0) += 1;
                    let transport = self.clone();
                    pending.spawn(async move {
                        let outcome = match transport.upgrade(socket, Direction::Inbound, None).await {
                            Ok(up) => Inbound::Upgraded(Box::new(up)),
                            Err((peer, reason)) => Inbound::Rejected { remote_addr, peer, reason },
                        };
                        (ip, outcome)
                    });
                }
            }
        }
        pending.shutdown().await;
    }
}

fn release(per_ip: &mut HashMap<IpAddr, usize>, ip: IpAddr) {
    if let Some(n) = per_ip.get_mut(&ip) {
        *n -= 1;
        if *n == 0 {
            per_ip.remove(&ip);
        }
    }
}

fn secret_reject(e: SecretConnectionError) -> RejectReason {
    match e {
        SecretConnectionError::HandshakeTimeout(_) => RejectReason::TimedOut("secret connection handshake"),
        SecretConnectionError::BadSignature
        | SecretConnectionError::InvalidPublicKey
        | SecretConnectionError::UnsupportedKeyType(_)
        | SecretConnectionError::LowOrderEphemeralKey => RejectReason::AuthFailed(e.to_string()),
        other => RejectReason::Handshake(other.to_string()),
    }
}

/// Writes ours and reads theirs at the same time; returns their NodeInfo body.
async fn exchange_node_info(conn: &mut SecretTcp, ours: &NodeInfo) -> Result<Vec<u8>, RejectReason> {
    let encoded = ours.encode();
    let (reader, writer) = conn.halves_mut();
    let io = |e: io::Error| match SecretConnectionError::from_io(&e) {
        Some(inner) => RejectReason::Handshake(inner.to_string()),
        None => RejectReason::Handshake(e.to_string()),
    };
    let send = async {
        writer.write_all(&encoded).await.map_err(io)?;
        writer.flush().await.map_err(io)
    };
    let receive = async {
        let mut len: u64 = 0;
        for i in 0..10 {
            let b = reader.read_u8().await.map_err(io)?;
            len |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                break;
            }
            if i == 9 {
                return Err(RejectReason::InvalidNodeInfo(NodeInfoError::Decode("bad length prefix".into())));
            }
        }
        if len > MAX_NODE_INFO_SIZE as u64 {
            return Err(RejectReason::InvalidNodeInfo(NodeInfoError::TooLarge(len)));
        }
        let mut body = vec![0u8; len as usize];
        reader.read_exact(&mut body).await.map_err(io)?;
        Ok(body)
    };
    let ((), body) = tokio::try_join!(send, receive)?;
    Ok(body)
}
