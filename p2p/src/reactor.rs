//! The reactor API: how protocols plug into the switch.
//!
//! A reactor is an ordinary task that owns its state. It registers its channel descriptors with
//! [`SwitchBuilder::add_reactor`] and gets a [`ReactorContext`]:
//! - `events` yields, per peer and in this order: [`ReactorEvent::PeerUp`] with a [`PeerHandle`](crate::PeerHandle),
//!   the peer's [`ReactorEvent::Message`]s on the reactor's channels (in order per channel, each stamped with the
//!   instant it was read), and [`ReactorEvent::PeerDown`] after the peer's last message. Each reactor's events flow
//!   on their own: a reactor that falls behind never delays another's (see [`delivery`](crate::delivery)).
//! - `switch` is a [`ReactorSwitch`]: broadcast on the reactor's channels, stop a misbehaving peer, queue dials,
//!   probe addresses.
//!
//! Per-peer state lives in the reactor (typically a `HashMap<NodeId, State>` filled on `PeerUp`), and sends go
//! through the `PeerHandle`, which only accepts the reactor's own channels. There is no key-value store on peers and
//! no peer list for the reactor to iterate and message by hand — the "flipped design" the TM2 README criticises.
//!
//! # Overload
//!
//! Nothing a peer sends waits for a reactor on the read path, and nothing is dropped silently. A reactor that falls
//! behind first fills its inbox (`inbox_capacity` events), then the receive queues of its channels on each
//! connection (`recv_buffer_capacity` bytes per channel, each message counting its length plus 64 bytes). When a
//! message arrives for a full receive queue, **that connection closes** with `RecvQueueFull`: the wire protocol has
//! no per-channel flow control, and the alternatives are to stall every channel of the connection (pings included)
//! or to drop messages the peer expects to arrive. Other connections, and other reactors, are not affected.
//!
//! # Sizing a request/response reactor
//!
//! Bound what each peer may have in flight, and size the queues so that an honest peer within those bounds never
//! fills them. With at most `N_in` of the peer's requests in hand, at most `N_out` of ours in flight to it, and
//! messages of at most `M` bytes, on one channel for both directions:
//! - receive: `recv_message_capacity = M`, and `recv_buffer_capacity ≥ (N_in + N_out) × (M + 64)`, so a burst of
//!   requests and answers that arrives while the reactor is busy fits (the default message limit is 21 MiB: set it);
//! - send: `send_queue_capacity ≥ N_in + 1 + N_out` (the default is 1: set it). Take a reservation
//!   ([`PeerHandle::reserve`](crate::PeerHandle::reserve)) when accepting a request and send the answer through it;
//!   the `+ 1` is room for answering a request over the limit at once ("busy"), through a reservation too. If even
//!   that reservation fails, the peer has broken the limit: disconnect it
//!   ([`PeerHandle::stop_for_error`](crate::PeerHandle::stop_for_error), which does not wait);
//! - keep the reactor's own requests in a [`PendingRequests`](crate::pending::PendingRequests) table with their
//!   deadlines; compute deadlines of requests that came in from
//!   [`ReactorEvent::Message::received_at`](ReactorEvent::Message);
//! - the inbox (`inbox_capacity`) is shared by all peers: a few hundred events absorb bursts, and the receive queues
//!   behind it hold the rest;
//! - the reactor must keep up with all its peers together. If it cannot (not enough CPU for the traffic), peers'
//!   receive queues fill and their connections close; cap what they may send with `recv_rate`, or tell them to slow
//!   down in the protocol itself (a "busy" answer) before it comes to that.
//!
//! `p2p/examples/request_response.rs` is a reactor built this way, with a test that every call ends exactly once.
//!
//! A task that serves many peers must never wait on one of them: reply with [`PeerHandle::try_send`] or a
//! reservation, or [`PeerHandle::send_before`] with a short deadline; broadcast with
//! [`ReactorSwitch::try_broadcast`]; disconnect with [`PeerHandle::stop_for_error`](crate::PeerHandle::stop_for_error).
//! [`PeerHandle::send`] waits up to the send timeout (10 s) for room, so one peer that stops reading would hold up
//! everyone else. A broadcast goes to the switch's current connections, which may include a peer whose `PeerUp`
//! the reactor has not taken yet; a reactor that keeps per-peer state sends through the handles it holds instead.
//!
//! [`PeerHandle::try_send`]: crate::PeerHandle::try_send
//! [`PeerHandle::send_before`]: crate::PeerHandle::send_before
//! [`PeerHandle::send`]: crate::PeerHandle::send

use std::time::Duration;

use bytes::Bytes;
use ledgerwire_conn::mconnection::{ChannelDescriptor, ChannelId};
use ledgerwire_types::{HostAddress, NetAddress, NodeId};

use crate::events::{EventStream, SwitchEvent};
use crate::inbox::Inbox;
use crate::node_info::NodeInfo;
use crate::switch::{BroadcastReport, BuildError, ProbeError, Switch, SwitchBuilder, SwitchError};

pub use crate::delivery::ReactorEvent;

/// A registered reactor's end of the switch.
#[derive(Debug)]
pub struct ReactorContext {
    /// The reactor's name.
    pub name: String,
    /// Peer and message events, in order.
    pub events: Inbox,
    /// Actions on the switch, scoped to the reactor's channels.
    pub switch: ReactorSwitch,
}

/// What can go wrong when a reactor asks something of the switch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReactorError {
    /// The switch has stopped (or never started).
    #[error("the switch has stopped")]
    Stopped,
    /// The reactor used a channel it does not own.
    #[error("channel {0:#04x} does not belong to this reactor")]
    NotOurChannel(ChannelId),
    /// A dial to ourselves.
    #[error("refusing to dial ourselves")]
    DialSelf,
    /// The dial queue is full.
    #[error("the dial queue is full")]
    DialQueueFull,
    /// The ban table is full of operators' bans. [`ReactorSwitch::ban`] never returns it (a reactor's ban is not
    /// answered); it is here so that every [`SwitchError`] has its counterpart.
    #[error("too many bans in force")]
    TooManyBans,
}

impl From<SwitchError> for ReactorError {
    fn from(e: SwitchError) -> Self {
        match e {
            SwitchError::Stopped => ReactorError::Stopped,
            SwitchError::DialSelf => ReactorError::DialSelf,
            SwitchError::DialQueueFull => ReactorError::DialQueueFull,
            SwitchError::TooManyBans => ReactorError::TooManyBans,
        }
    }
}

impl SwitchBuilder {
    /// Registers a reactor owning `channels`; its inbox holds up to `inbox_capacity` events. A channel already
    /// claimed is an error.
    pub fn add_reactor(
        &mut self,
        name: &str,
        channels: &[ChannelDescriptor],
        inbox_capacity: usize,
    ) -> Result<ReactorContext, BuildError> {
        let events = self.claim(name, channels, inbox_capacity)?;
        let switch = ReactorSwitch { switch: self.handle(), channels: channels.iter().map(|d| d.id).collect() };
        Ok(ReactorContext { name: name.into(), events, switch })
    }
}

/// The switch, as one reactor may use it.
#[derive(Clone, Debug)]
pub struct ReactorSwitch {
    switch: Switch,
    channels: Vec<ChannelId>,
}

impl ReactorSwitch {
    /// The channels this reactor owns.
    pub fn channels(&self) -> &[ChannelId] {
        &self.channels
    }

    /// Our node ID.
    pub fn local_id(&self) -> NodeId {
        self.switch.id()
    }

    /// Our NodeInfo, once the switch has started.
    pub fn node_info(&self) -> Option<&NodeInfo> {
        self.switch.node_info()
    }

    /// Waits until the switch runs. A reactor that persists state should wait here before touching it: if the
    /// switch never starts, this fails with [`ReactorError::Stopped`] and the reactor should leave everything as it
    /// found it.
    pub async fn started(&self) -> Result<(), ReactorError> {
        Ok(self.switch.started().await?)
    }

    fn own(&self, channel: ChannelId) -> Result<(), ReactorError> {
        if self.channels.contains(&channel) { Ok(()) } else { Err(ReactorError::NotOurChannel(channel)) }
    }

    /// Sends `msg` on one of the reactor's channels to every connected peer that speaks it, each waiting up to the
    /// send timeout for room, and reports each peer's outcome.
    pub async fn broadcast(&self, channel: ChannelId, msg: impl Into<Bytes>) -> Result<BroadcastReport, ReactorError> {
        self.own(channel)?;
        Ok(self.switch.broadcast(channel, msg).await?)
    }

    /// Sends `msg` on one of the reactor's channels to every connected peer that speaks it and has room now;
    /// never waits. Each peer's outcome is reported (a full queue as `QueueFull`).
    pub fn try_broadcast(&self, channel: ChannelId, msg: impl Into<Bytes>) -> Result<BroadcastReport, ReactorError> {
        self.own(channel)?;
        Ok(self.switch.try_broadcast(channel, msg)?)
    }

    /// Disconnects a misbehaving peer (a persistent peer is redialed later, as usual), waiting for the switch to
    /// confirm; returns whether it was connected. With the peer's handle at hand, prefer
    /// [`PeerHandle::stop_for_error`](crate::PeerHandle::stop_for_error), which does not wait.
    pub async fn stop_peer_for_error(&self, peer: NodeId, reason: impl Into<String>) -> Result<bool, ReactorError> {
        Ok(self.switch.stop_peer_for_error(peer, reason).await?)
    }

    /// Closes the connection to `peer` once everything queued for it is sent (and reservations taken before are used
    /// or dropped); only queues the request.
    pub async fn finish_peer(&self, peer: NodeId, reason: impl Into<String>) -> Result<(), ReactorError> {
        Ok(self.switch.finish_peer(peer, reason).await?)
    }

    /// Disconnects `peer` and refuses it for `duration`; only queues the request. See [`Switch::ban`]: a ban never
    /// shortens one in force, and operators' bans take precedence when the ban table is full.
    pub async fn ban(&self, peer: NodeId, duration: Duration, reason: impl Into<String>) -> Result<(), ReactorError> {
        Ok(self.switch.ban(peer, duration, reason).await?)
    }

    /// Queues a dial (the switch stays the only owner of dialing, and ignores dials to persistent peers, which it
    /// redials itself).
    pub async fn dial(&self, address: HostAddress) -> Result<(), ReactorError> {
        Ok(self.switch.dial(address, false).await?)
    }

    /// Checks that `address.id()` answers at `address`, without admitting a connection (see
    /// [`Switch::probe`]).
    pub async fn probe(&self, address: NetAddress) -> Result<(), ProbeError> {
        self.switch.probe(address).await
    }

    /// Switch events (connections, dial failures, rejections) that pass `filter`.
    pub fn subscribe(
        &self,
        filter: impl Fn(&SwitchEvent) -> bool + Send + Sync + 'static,
    ) -> Result<EventStream, ReactorError> {
        Ok(self.switch.subscribe(filter)?)
    }
}
