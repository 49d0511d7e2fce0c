//! Connected peers as reactors see them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use ledgerwire_conn::mconnection::{ChannelId, CloseReason, ConnectionStatus, MConnection, SendError, SendPermit};
use ledgerwire_types::{HostAddress, NodeId};

use tokio::time::Instant;

use crate::node_info::NodeInfo;
use crate::transport::Direction;

/// Facts about a connected peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The authenticated ID.
    pub id: NodeId,
    /// The peer's NodeInfo.
    pub node_info: NodeInfo,
    /// The socket's remote address.
    pub remote_addr: SocketAddr,
    /// Who dialed.
    pub direction: Direction,
    /// Whether we keep redialing this peer.
    pub persistent: bool,
    /// Whether the peer is private (never shared with others).
    pub private: bool,
    /// When the connection was admitted.
    pub connected_since: SystemTime,
    /// The operator-configured address of a persistent peer.
    pub configured_address: Option<HostAddress>,
}

/// Why a peer's connection ended.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DisconnectReason {
    /// The connection failed or the peer left.
    #[error("{0}")]
    Connection(CloseReason),
    /// A reactor stopped the peer for misbehaving.
    #[error("stopped for error: {0}")]
    Error(String),
    /// The operator disconnected the peer.
    #[error("disconnected by the operator")]
    Operator,
    /// A simultaneous dial left two connections; the other one was kept.
    #[error("replaced by the connection the tie-break kept")]
    Replaced,
    /// The switch is stopping.
    #[error("switch stopping")]
    Shutdown,
    /// A reactor was done with the peer (for example a seed that has answered) and closed the connection after
    /// sending what was queued.
    #[error("finished: {0}")]
    Finished(String),
    /// The peer was banned for a while.
    #[error("banned: {0}")]
    Banned(String),
}

/// Why a reactor could not send to a peer.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PeerSendError {
    /// The channel does not belong to the sending reactor.
    #[error("channel {0:#04x} does not belong to this reactor")]
    NotOurChannel(ChannelId),
    /// The peer did not advertise the channel in its NodeInfo.
    #[error("peer does not speak channel {0:#04x}")]
    NotSupportedByPeer(ChannelId),
    /// The connection refused the message.
    #[error("{0}")]
    Send(SendError),
}

/// A reactor's handle to one connected peer: its facts, and sending on the reactor's own channels.
#[derive(Clone, Debug)]
pub struct PeerHandle {
    info: Arc<PeerInfo>,
    conn: Arc<MConnection>,
    channels: Arc<[ChannelId]>,
}

impl PeerHandle {
    pub(crate) fn new(info: Arc<PeerInfo>, conn: Arc<MConnection>, channels: Arc<[ChannelId]>) -> Self {
        PeerHandle { info, conn, channels }
    }

    /// The peer's ID.
    pub fn id(&self) -> NodeId {
        self.info.id
    }

    /// Facts about the peer.
    pub fn info(&self) -> &PeerInfo {
        &self.info
    }

    fn check(&self, channel: ChannelId) -> Result<(), PeerSendError> {
        if !self.channels.contains(&channel) {
            return Err(PeerSendError::NotOurChannel(channel));
        }
        if !self.info.node_info.channels.contains(&channel) {
            return Err(PeerSendError::NotSupportedByPeer(channel));
        }
        Ok(())
    }

    /// Queues `msg` on `channel`, waiting (up to the connection's send timeout, 10 s by default) for room. A task
    /// that serves many peers should not wait on one of them: use [`PeerHandle::try_send`], a [reservation]
    /// (PeerHandle::reserve) or [`PeerHandle::send_before`] with a short deadline.
    pub async fn send(&self, channel: ChannelId, msg: impl Into<Bytes>) -> Result<(), PeerSendError> {
        self.check(channel)?;
        self.conn.send(channel, msg).await.map_err(PeerSendError::Send)
    }

    /// Queues `msg` on `channel`, waiting for room until `deadline` at the latest (a request's expiry, say).
    pub async fn send_before(
        &self,
        channel: ChannelId,
        msg: impl Into<Bytes>,
        deadline: Instant,
    ) -> Result<(), PeerSendError> {
        self.check(channel)?;
        self.conn.send_before(channel, msg, deadline).await.map_err(PeerSendError::Send)
    }

    /// Queues `msg` on `channel` if there is room now.
    pub fn try_send(&self, channel: ChannelId, msg: impl Into<Bytes>) -> Result<(), PeerSendError> {
        self.check(channel)?;
        self.conn.try_send(channel, msg).map_err(PeerSendError::Send)
    }

    /// Reserves room for one message on `channel` now (or fails with a full queue). Take it when accepting a request,
    /// and send the response through it: the response then fits whatever else was queued meanwhile. Dropping the
    /// permit unused gives the room back.
    pub fn reserve(&self, channel: ChannelId) -> Result<SendPermit, PeerSendError> {
        self.check(channel)?;
        self.conn.reserve(channel).map_err(PeerSendError::Send)
    }

    /// Free room in `channel`'s send queue, in messages (queued messages and held reservations take room).
    pub fn send_capacity(&self, channel: ChannelId) -> Result<usize, PeerSendError> {
        self.check(channel)?;
        self.conn.send_capacity(channel).map_err(PeerSendError::Send)
    }

    /// The connection's queues, counters and rates.
    pub fn status(&self) -> ConnectionStatus {
        self.conn.status()
    }

    /// Whether the connection is still open.
    pub fn is_connected(&self) -> bool {
        self.conn.close_reason().is_none()
    }
}
