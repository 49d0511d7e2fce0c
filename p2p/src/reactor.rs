//! The reactor API: how protocols plug into the switch.
//!
//! A reactor is an ordinary task that owns its state. It registers its channel descriptors with
//! [`SwitchBuilder::add_reactor`](crate::SwitchBuilder::add_reactor) and gets a [`ReactorContext`]:
//! - `events` yields, per peer and in this order: [`ReactorEvent::PeerUp`] with a [`PeerHandle`], the peer's
//!   [`ReactorEvent::Message`]s on the reactor's channels (in order per channel), and [`ReactorEvent::PeerDown`]
//!   after the peer's last message;
//! - `switch` is a [`ReactorSwitch`]: broadcast on the reactor's channels, stop a misbehaving peer, queue dials.
//!
//! Per-peer state lives in the reactor (typically a `HashMap<NodeId, State>` filled on `PeerUp`), and sends go
//! through the `PeerHandle`, which only accepts the reactor's own channels. There is no key-value store on peers and
//! no peer list for the reactor to iterate and message by hand — the "flipped design" the TM2 README criticises.
//! Each reactor's inbox is bounded; a reactor that falls behind slows the delivery of its own channels only (see the
//! receive-queue policy in `ledgerwire_conn::mconnection`).
//!
//! A task that serves many peers should answer with [`PeerHandle::try_send`]: [`PeerHandle::send`] waits up to the
//! send timeout for queue room, so one peer that stops reading would hold up the replies to all the others.

use bytes::Bytes;
use ledgerwire_conn::mconnection::{ChannelDescriptor, ChannelId};
use ledgerwire_types::{HostAddress, NodeId};
use tokio::sync::mpsc;

use crate::peer::{DisconnectReason, PeerHandle};
use crate::switch::{BroadcastReport, Switch, SwitchError};

/// What a reactor hears from the switch.
#[derive(Debug)]
pub enum ReactorEvent {
    /// A peer connected; keep the handle to send to it.
    PeerUp(PeerHandle),
    /// A message arrived on one of the reactor's channels.
    Message {
        /// The sender.
        peer: NodeId,
        /// The channel.
        channel: ChannelId,
        /// The message.
        msg: Bytes,
    },
    /// A peer is gone; no more messages will come from this connection.
    PeerDown {
        /// The peer.
        peer: NodeId,
        /// Why.
        reason: DisconnectReason,
    },
}

/// A registered reactor's end of the switch.
#[derive(Debug)]
pub struct ReactorContext {
    /// The reactor's name.
    pub name: String,
    /// Peer and message events, in order.
    pub events: mpsc::Receiver<ReactorEvent>,
    /// Actions on the switch, scoped to the reactor's channels.
    pub switch: ReactorSwitch,
}

/// The switch, as one reactor may use it.
#[derive(Clone, Debug)]
pub struct ReactorSwitch {
    switch: Switch,
    channels: Vec<ChannelId>,
}

impl ReactorSwitch {
    pub(crate) fn new(switch: Switch, descriptors: &[ChannelDescriptor]) -> Self {
        ReactorSwitch { switch, channels: descriptors.iter().map(|d| d.id).collect() }
    }

    /// The channels this reactor owns.
    pub fn channels(&self) -> &[ChannelId] {
        &self.channels
    }

    /// Sends `msg` on one of the reactor's channels to every connected peer that speaks it, and reports each
    /// peer's outcome.
    pub async fn broadcast(&self, channel: ChannelId, msg: impl Into<Bytes>) -> Result<BroadcastReport, SwitchError> {
        if !self.channels.contains(&channel) {
            return Err(SwitchError::NotOurChannel(channel));
        }
        Ok(self.switch.broadcast(channel, msg).await)
    }

    /// Disconnects a misbehaving peer. A persistent peer is redialed later, as usual.
    pub async fn stop_peer_for_error(&self, peer: NodeId, reason: impl Into<String>) -> bool {
        self.switch.stop_peer_for_error(peer, reason).await
    }

    /// Queues a dial (discovery uses this; the switch stays the only owner of dialing, and ignores dials to
    /// persistent peers, which it redials itself).
    pub async fn dial(&self, address: HostAddress) -> Result<(), SwitchError> {
        self.switch.dial(address, false).await
    }

    /// Closes the connection to `peer` once everything queued for it is sent.
    pub async fn finish_peer(&self, peer: NodeId, reason: impl Into<String>) {
        self.switch.finish_peer(peer, reason).await
    }

    /// Disconnects `peer` and refuses it for `duration`.
    pub async fn ban(&self, peer: NodeId, duration: std::time::Duration, reason: impl Into<String>) {
        self.switch.ban(peer, duration, reason).await
    }

    /// Switch events (connections, dial failures, rejections) that pass `filter`.
    pub fn subscribe(
        &self,
        filter: impl Fn(&crate::SwitchEvent) -> bool + Send + Sync + 'static,
    ) -> crate::EventStream {
        self.switch.subscribe(filter)
    }

    /// Our node ID.
    pub fn local_id(&self) -> NodeId {
        self.switch.id()
    }
}
