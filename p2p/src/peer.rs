//! Connected peers as reactors see them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use ledgerwire_conn::mconnection::{ChannelId, CloseReason, ConnectionStatus, MConnection, SendError};
use ledgerwire_types::{HostAddress, NodeId};

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

    /// Queues `msg` on `channel`, waiting (up to the send timeout) for room.
    pub async fn send(&self, channel: ChannelId, msg: impl Into<Bytes>) -> Result<(), PeerSendError> {
        self.check(channel)?;
        self.conn.send(channel, msg).await.map_err(PeerSendError::Send)
    }

    /// Queues `msg` on `channel` if there is room now.
    pub fn try_send(&self, channel: ChannelId, msg: impl Into<Bytes>) -> Result<(), PeerSendError> {
        self.check(channel)?;
        self.conn.try_send(channel, msg).map_err(PeerSendError::Send)
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
