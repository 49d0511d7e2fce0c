//! Reserved room in a channel's send queue.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::send::Signals;
use super::{ChannelId, Lifecycle, SendError};

/// One reserved slot in a channel's send queue, taken with
/// [`MConnection::reserve`](super::MConnection::reserve).
///
/// While held, the slot counts as used: other senders see one slot less. Sending through the permit never waits and
/// never finds the queue full, so a request/response protocol can take a permit when it accepts a request and be
/// sure its response fits later. A graceful close (`close_gracefully`) still sends what permits taken before it
/// carry, and waits for them (as long as its caller lets it). Dropping the permit unused gives the slot back.
#[derive(Debug)]
#[must_use = "a reservation holds a slot until it sends or is dropped; dropping it loses the reply it was for"]
pub struct SendPermit {
    /// Taken by `send`.
    permit: Option<mpsc::OwnedPermit<Bytes>>,
    channel: ChannelId,
    signals: Arc<Signals>,
    lifecycle: Arc<Lifecycle>,
}

impl SendPermit {
    pub(super) fn new(
        permit: mpsc::OwnedPermit<Bytes>,
        channel: ChannelId,
        signals: Arc<Signals>,
        lifecycle: Arc<Lifecycle>,
    ) -> Self {
        signals.permit_taken();
        SendPermit { permit: Some(permit), channel, signals, lifecycle }
    }

    /// The channel the slot belongs to.
    pub fn channel(&self) -> ChannelId {
        self.channel
    }

    /// Queues `msg` in the reserved slot; never waits. During a graceful close the message still goes out. Fails if
    /// the connection has closed; `Ok` means queued, and a connection that fails afterwards drops it, as it drops
    /// everything still queued.
    pub fn send(self, msg: impl Into<Bytes>) -> Result<(), SendError> {
        self.send_or_return(msg.into()).map_err(|(e, _)| e)
    }

    /// As [`SendPermit::send`], but a closed connection gives the message back (to keep it for a later
    /// connection without a copy made in advance).
    pub fn send_or_return(mut self, msg: Bytes) -> Result<(), (SendError, Bytes)> {
        if let Some(reason) = self.lifecycle.reason() {
            return Err((SendError::Closed(reason), msg));
        }
        if let Some(permit) = self.permit.take() {
            permit.send(msg);
        }
        self.signals.data_queued();
        Ok(())
    }
}

impl Drop for SendPermit {
    fn drop(&mut self) {
        self.signals.permit_released();
    }
}
