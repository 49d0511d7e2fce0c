//! Connected peers as reactors see them.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
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
    /// The limit the peer counts against (`max_inbound` or `max_outbound`): its direction, except for a connection
    /// that replaced one in the other direction while its own direction was full; that one keeps the old place.
    pub counted_as: Direction,
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

/// Room for one message to a peer, reserved with [`PeerHandle::reserve`]: the reply to a request the reactor
/// accepted. Sending through it never waits and never finds the queue full; a graceful close of the connection still
/// sends it. Dropping it unused gives the room back.
#[derive(Debug)]
#[must_use = "a reservation holds room for a reply; dropping it means the reply is never sent"]
pub struct Reservation {
    peer: NodeId,
    permit: SendPermit,
}

impl Reservation {
    /// The peer the reply goes to.
    pub fn peer(&self) -> NodeId {
        self.peer
    }

    /// The channel the room is on.
    pub fn channel(&self) -> ChannelId {
        self.permit.channel()
    }

    /// Queues `msg` in the reserved room. Fails only if the connection has closed (the reply cannot reach the peer
    /// any more); `Ok` means queued, and a connection that fails afterwards drops it with everything else queued.
    pub fn send(self, msg: impl Into<Bytes>) -> Result<(), PeerSendError> {
        self.permit.send(msg).map_err(PeerSendError::Send)
    }

    /// As [`Reservation::send`], but a closed connection gives the message back, so a reply can wait for the
    /// peer's next connection without a copy made in advance.
    pub fn send_or_return(self, msg: Bytes) -> Result<(), Bytes> {
        self.permit.send_or_return(msg).map_err(|(_, msg)| msg)
    }
}

/// A reactor's handle to one connected peer: its facts, and sending on the reactor's own channels.
#[derive(Clone, Debug)]
pub struct PeerHandle {
    info: Arc<PeerInfo>,
    conn: Arc<MConnection>,
    channels: Arc<[ChannelId]>,
    stop_reason: Arc<OnceLock<DisconnectReason>>,
}

impl PeerHandle {
    pub(crate) fn new(
        info: Arc<PeerInfo>,
        conn: Arc<MConnection>,
        channels: Arc<[ChannelId]>,
        stop_reason: Arc<OnceLock<DisconnectReason>>,
    ) -> Self {
        PeerHandle { info, conn, channels, stop_reason }
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
    /// that serves many peers should not wait on one of them: use [`PeerHandle::try_send`], a
    /// [reservation](PeerHandle::reserve) or [`PeerHandle::send_before`] with a short deadline.
    pub async fn send(&self, channel: ChannelId, msg: impl Into<Bytes>) -> Result<(), PeerSendError> {
        self.check(channel)?;
        self.conn.send(channel, msg).await.map_err(PeerSendError::Send)
    }

    /// Queues `msg` on `channel`, waiting for room until `deadline` at the latest (a request's expiry, say). The
    /// deadline is for queueing: the message then goes out in turn with the rest of the queue.
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
    /// reservation unused gives the room back. Each reservation holds a slot of the channel's `send_queue_capacity`
    /// (1 by default: size it for the requests you accept).
    pub fn reserve(&self, channel: ChannelId) -> Result<Reservation, PeerSendError> {
        self.check(channel)?;
        let permit = self.conn.reserve(channel).map_err(PeerSendError::Send)?;
        Ok(Reservation { peer: self.info.id, permit })
    }

    /// Whether the peer advertised `channel` (a reactor hears of every peer, also those that do not speak its
    /// channels).
    pub fn speaks(&self, channel: ChannelId) -> bool {
        self.info.node_info.channels.contains(&channel)
    }

    /// Disconnects the peer for misbehaving, at once and without waiting for anything: the reactor stays free to
    /// serve others. The switch reports the reason (`stopped for error: …`) and redials a persistent peer later.
    pub fn stop_for_error(&self, reason: impl Into<String>) {
        let _ = self.stop_reason.set(DisconnectReason::Error(reason.into()));
        self.conn.close();
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
