//! Why a multiplexed connection closed, and why a send failed.

use super::ChannelId;
use super::packet::PacketError;
use crate::SecretConnectionError;

/// Why a connection ended. Read it with [`MConnection::closed`](super::MConnection::closed).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CloseReason {
    /// We closed it ([`MConnection::close`](super::MConnection::close), a graceful close, or the handle was dropped).
    #[error("closed locally")]
    Local,
    /// The peer closed the connection cleanly between packets.
    #[error("peer closed the connection")]
    PeerClosed,
    /// The secret connection failed (I/O, a forged or truncated frame, …).
    #[error("secret connection: {0}")]
    Secret(#[from] SecretConnectionErrorEq),
    /// The peer sent a bad packet.
    #[error("bad packet: {0}")]
    Packet(#[from] PacketError),
    /// The peer sent a packet on a channel we do not have.
    #[error("peer sent a packet on unknown channel {0:#04x}")]
    UnknownChannel(ChannelId),
    /// A reassembled message exceeded the channel's `recv_message_capacity`.
    #[error("message on channel {channel:#04x} exceeds {max} bytes")]
    MessageTooLarge {
        /// The channel.
        channel: ChannelId,
        /// The channel's limit.
        max: usize,
    },
    /// The peer did not answer our ping in time.
    #[error("no pong within the pong timeout")]
    PongTimeout,
    /// A channel's consumer left its receive queue full and another message arrived (see the module documentation
    /// for this policy).
    #[error("receive queue of channel {0:#04x} is full: its consumer is not keeping up")]
    RecvQueueFull(ChannelId),
}

/// A [`SecretConnectionError`] that compares by its message, so close reasons can be compared in tests.
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
pub struct SecretConnectionErrorEq(pub SecretConnectionError);

impl PartialEq for SecretConnectionErrorEq {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

impl From<SecretConnectionError> for CloseReason {
    fn from(e: SecretConnectionError) -> Self {
        CloseReason::Secret(SecretConnectionErrorEq(e))
    }
}

/// Why a message could not be queued for sending.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// The connection has no such channel.
    #[error("unknown channel {0:#04x}")]
    UnknownChannel(ChannelId),
    /// The channel's send queue is full (`try_send`).
    #[error("send queue of channel {0:#04x} is full")]
    QueueFull(ChannelId),
    /// The channel's send queue stayed full until the deadline (`send`: the configured send timeout;
    /// `send_before`: the caller's deadline).
    #[error("send queue of channel {0:#04x} stayed full until the send deadline")]
    Timeout(ChannelId),
    /// The connection is closed or closing.
    #[error("connection closed: {0}")]
    Closed(CloseReason),
}
