//! Reserved room in a channel's send queue.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::send::Signals;
use super::{ChannelId, Lifecycle, SendError};
use crate::mconnection::CloseReason;

/// One reserved slot in a channel's send queue, taken with
/// [`MConnection::reserve`](super::MConnection::reserve).
///
/// While held, the slot counts as used: other senders see one slot less. Sending through the permit never waits and
/// never finds the queue full, so a request/response protocol can take a permit when it accepts a request and be
/// sure its response fits later. Dropping the permit unused gives the slot back.
#[derive(Debug)]
pub struct SendPermit {
    permit: mpsc::OwnedPermit<Bytes>,
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
        SendPermit { permit, channel, signals, lifecycle }
    }

    /// The channel the slot belongs to.
    pub fn channel(&self) -> ChannelId {
        self.channel
    }

    /// Queues `msg` in the reserved slot. Fails only if the connection has closed or is closing meanwhile (the message
    /// is then dropped, as everything queued on a closed connection is).
    pub fn send(self, msg: impl Into<Bytes>) -> Result<(), SendError> {
        if let Some(reason) = self.lifecycle.reason() {
            return Err(SendError::Closed(reason));
        }
        if self.signals.draining() {
            return Err(SendError::Closed(CloseReason::Local));
        }
        self.permit.send(msg.into());
        self.signals.data_queued();
        Ok(())
    }
}
