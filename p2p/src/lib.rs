//! The peer-to-peer layer of ledgerwire: a [`Transport`] that turns sockets into authenticated, described peers; a
//! [`Switch`] that owns every connection decision; [switch events](SwitchEvent); and the [reactor API](reactor)
//! through which protocols plug in on channel IDs.
//!
//! # Design
//!
//! The TM2 README describes its own p2p package as a "flipped design": modules receive `Peer` objects, iterate the
//! peer set to imitate broadcasts, store their per-peer state in a key-value map on the peer, and get messages
//! through a `Receive` callback that runs on the connection's read goroutine, so a slow module stalls pings and
//! gets healthy peers dropped. ledgerwire turns that around:
//!
//! - **Reactors are tasks that own their state.** [`SwitchBuilder::add_reactor`] registers a reactor's channels and
//!   returns a [`ReactorContext`]: an event stream (`PeerUp`, ordered `Message`s stamped with the instant they were
//!   read, `PeerDown`) and a scoped [`ReactorSwitch`]. Per-peer state lives in the reactor's own map.
//! - **Sending is scoped and never has to wait.** A [`PeerHandle`] only sends on its reactor's channels, and only on
//!   channels the peer advertised. Besides `send` (which waits for room) it offers `try_send`, `send_before` a
//!   deadline, `reserve` (room guaranteed for a later reply) and `send_capacity`; broadcasts report each peer's
//!   outcome, and `try_broadcast` never waits.
//! - **Delivery never runs on the read path, and reactors never wait for each other.** Messages go through bounded
//!   per-channel queues and per-reactor delivery tasks ([`delivery`]). A reactor that falls behind fills its own
//!   queues; when one overflows, the connection it overflowed on closes (see the [reactor docs](reactor) for the
//!   policy and for sizing a request/response reactor). Pings and other reactors are never delayed.
//! - **One owner for every decision.** The switch's decisions live in a pure state machine driven by one actor;
//!   everything else sends it messages. There are no shared locks to reason about.
//! - **Everything peers feed is bounded**: pending handshakes (shared fairly between hosts and networks), the dial
//!   queue, channel queues, reactor inboxes and event buffers. [`pending::PendingRequests`] bounds and times out a
//!   reactor's own requests.
//!
//! # Example
//!
//! A reactor that answers "ping" with "pong", and two nodes talking to it:
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ledgerwire_p2p::{ChannelDescriptor, ReactorContext, ReactorEvent, SwitchBuilder, SwitchConfig};
//! use ledgerwire_types::{HostAddress, NodeKey, WireProfile};
//!
//! const CH: u8 = 0x71;
//!
//! /// Answers every "ping" with "pong"; reports the first "pong" it hears.
//! async fn reactor(mut ctx: ReactorContext, done: tokio::sync::oneshot::Sender<()>) {
//!     let mut peers = std::collections::HashMap::new();
//!     let mut done = Some(done);
//!     while let Some(event) = ctx.events.recv().await {
//!         match event {
//!             ReactorEvent::PeerUp(peer) => {
//!                 // Never wait on one peer: a full queue means this peer is not reading; skip it.
//!                 let _ = peer.try_send(CH, "ping");
//!                 peers.insert(peer.id(), peer);
//!             }
//!             ReactorEvent::Message { peer, msg, .. } => match &msg[..] {
//!                 b"ping" => { let _ = peers[&peer].try_send(CH, "pong"); }
//!                 b"pong" => { done.take().map(|d| d.send(())); }
//!                 _ => { peers[&peer].stop_for_error("not a ping"); }
//!             },
//!             ReactorEvent::PeerDown { peer, .. } => { peers.remove(&peer); }
//!         }
//!     }
//! }
//!
//! let mut nodes = Vec::new();
//! let mut pongs = Vec::new();
//! for _ in 0..2 {
//!     let config = SwitchConfig::new("127.0.0.1:0".parse()?, "example-net");
//!     let mut b = SwitchBuilder::new(Arc::new(NodeKey::generate()), WireProfile::Tm2, config, None);
//!     // Room for our ping and the pong we owe (the default send queue holds one message).
//!     let channel = ChannelDescriptor::new(CH, 1).with_send_queue_capacity(4).with_low_latency();
//!     let ctx = b.add_reactor("pingpong", &[channel], 64)?;
//!     let (tx, rx) = tokio::sync::oneshot::channel();
//!     tokio::spawn(reactor(ctx, tx));
//!     pongs.push(rx);
//!     nodes.push(b.start().await?);
//! }
//! let b_addr = HostAddress::parse(&format!("{}@{}", nodes[1].id(), nodes[1].listen_addr().unwrap()), WireProfile::Tm2)?;
//! nodes[0].dial(b_addr, false).await?;
//! for rx in pongs {
//!     tokio::time::timeout(std::time::Duration::from_secs(10), rx).await??; // each side got a pong back
//! }
//! for n in &nodes {
//!     n.stop().await;
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod delivery;
pub mod events;
pub mod inbox;
pub mod log_limit;
pub mod node_info;
pub mod peer;
pub mod pending;
pub mod reactor;
pub mod switch;
pub mod transport;

pub use delivery::ReactorEvent;
pub use events::{EventItem, EventStream, SwitchEvent};
pub use inbox::Inbox;
pub use peer::{DisconnectReason, PeerHandle, PeerInfo, PeerSendError, Reservation};
pub use pending::{PendingRequests, RequestId};
pub use reactor::{ReactorContext, ReactorError, ReactorSwitch};
pub use switch::{
    Backoff, BanSummary, BroadcastFailure, BroadcastReport, BuildError, PeerSummary, ProbeError, Switch, SwitchBuilder,
    SwitchConfig, SwitchConfigError, SwitchError,
};
pub use transport::{DialError, Direction, RejectReason, Transport, TransportConfig};

pub use ledgerwire_conn::mconnection::{ChannelDescriptor, ChannelId, MConnectionConfig, SendError, SendPermit};
