//! Switch events for operators and programs.
//!
//! Events are broadcast; subscribing never slows the switch. A subscriber that falls more than [`EVENT_BUFFER`]
//! events behind is told how many it missed (the reference drops them silently), then continues with the newest.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use ledgerwire_types::NodeId;
use tokio::sync::broadcast;
use tokio_stream::Stream;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::peer::DisconnectReason;
use crate::transport::{DialError, Direction, RejectReason};

/// Events a subscriber can fall behind by before it starts missing some.
pub const EVENT_BUFFER: usize = 1024;

/// Something that happened in the switch.
#[derive(Clone, Debug)]
pub enum SwitchEvent {
    /// A peer passed every check and its connection runs.
    PeerConnected {
        /// The peer.
        peer: NodeId,
        /// The socket's remote address.
        address: SocketAddr,
        /// Who dialed.
        direction: Direction,
        /// Whether it is a persistent peer.
        persistent: bool,
        /// Whether it is a private peer.
        private: bool,
        /// How long the handshake and the NodeInfo exchange took.
        handshake: std::time::Duration,
    },
    /// A connected peer went away.
    PeerDisconnected {
        /// The peer.
        peer: NodeId,
        /// The socket's remote address.
        address: SocketAddr,
        /// Why.
        reason: DisconnectReason,
    },
    /// A dial did not produce a peer.
    DialFailed {
        /// The dialed peer.
        peer: NodeId,
        /// The address dialed, as configured or given.
        address: String,
        /// Why.
        reason: DialError,
    },
    /// An inbound connection was turned away.
    PeerRejected {
        /// The socket's remote address.
        address: SocketAddr,
        /// The authenticated ID, if the handshake got that far.
        peer: Option<NodeId>,
        /// Why.
        reason: RejectReason,
    },
}

impl SwitchEvent {
    /// The event's name: `peer_connected`, `peer_disconnected`, `dial_failed` or `peer_rejected`.
    pub fn kind(&self) -> &'static str {
        match self {
            SwitchEvent::PeerConnected { .. } => "peer_connected",
            SwitchEvent::PeerDisconnected { .. } => "peer_disconnected",
            SwitchEvent::DialFailed { .. } => "dial_failed",
            SwitchEvent::PeerRejected { .. } => "peer_rejected",
        }
    }

    /// The peer the event is about, if known.
    pub fn peer(&self) -> Option<NodeId> {
        match self {
            SwitchEvent::PeerConnected { peer, .. }
            | SwitchEvent::PeerDisconnected { peer, .. }
            | SwitchEvent::DialFailed { peer, .. } => Some(*peer),
            SwitchEvent::PeerRejected { peer, .. } => *peer,
        }
    }
}

/// What an [`EventStream`] yields.
#[derive(Clone, Debug)]
pub enum EventItem {
    /// An event that passed the filter.
    Event(SwitchEvent),
    /// The subscriber was too slow: this many events (of any kind) were skipped.
    Missed(u64),
}

type Filter = Box<dyn Fn(&SwitchEvent) -> bool + Send + Sync>;

/// A subscription; dropping it unsubscribes.
pub struct EventStream {
    inner: BroadcastStream<SwitchEvent>,
    filter: Filter,
}

impl EventStream {
    pub(crate) fn new(rx: broadcast::Receiver<SwitchEvent>, filter: Filter) -> Self {
        EventStream { inner: BroadcastStream::new(rx), filter }
    }

    /// The next item, or `None` once the switch has stopped.
    pub async fn recv(&mut self) -> Option<EventItem> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for EventStream {
    type Item = EventItem;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<EventItem>> {
        loop {
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(e))) if (self.filter)(&e) => return Poll::Ready(Some(EventItem::Event(e))),
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(n)))) => {
                    return Poll::Ready(Some(EventItem::Missed(n)));
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerwire_types::{NodeKey, WireProfile};

    fn rejected(n: u16) -> SwitchEvent {
        SwitchEvent::PeerRejected {
            address: SocketAddr::from(([127, 0, 0, 1], n)),
            peer: None,
            reason: RejectReason::OverLimit("test"),
        }
    }

    fn port(item: Option<EventItem>) -> Option<u16> {
        match item {
            Some(EventItem::Event(SwitchEvent::PeerRejected { address, .. })) => Some(address.port()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn filtered_subscriptions_receive_only_matching_events() {
        let (tx, _) = broadcast::channel(16);
        let id = NodeKey::from_seed(&[1; 32]).node_id(WireProfile::Tm2);
        let mut all = EventStream::new(tx.subscribe(), Box::new(|_| true));
        let mut dials = EventStream::new(tx.subscribe(), Box::new(|e| e.kind() == "dial_failed"));
        tx.send(rejected(1)).unwrap();
        let dial = SwitchEvent::DialFailed { peer: id, address: "x".into(), reason: DialError::ConnectTimeout };
        tx.send(dial).unwrap();
        drop(tx);
        assert_eq!(port(all.recv().await), Some(1));
        assert!(matches!(all.recv().await, Some(EventItem::Event(SwitchEvent::DialFailed { peer, .. })) if peer == id));
        assert!(all.recv().await.is_none());
        assert!(matches!(dials.recv().await, Some(EventItem::Event(SwitchEvent::DialFailed { .. }))));
        assert!(dials.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_how_many_events_it_missed_and_never_blocks_the_sender() {
        let (tx, _) = broadcast::channel(4);
        let mut slow = EventStream::new(tx.subscribe(), Box::new(|_| true));
        for n in 0..10 {
            tx.send(rejected(n)).unwrap(); // never blocks
        }
        assert!(matches!(slow.recv().await, Some(EventItem::Missed(6))));
        assert_eq!(port(slow.recv().await), Some(6));
    }
}
