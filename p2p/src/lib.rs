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
//!   returns a [`ReactorContext`]: an event stream (`PeerUp`, ordered `Message`s, `PeerDown`) and a scoped
//!   [`ReactorSwitch`]. Per-peer state lives in the reactor's own map; peers carry no key-value store.
//! - **Sending is scoped.** A [`PeerHandle`] only sends on its reactor's channels, and only on channels the peer
//!   advertised. Broadcasts go through the switch, which reports each peer's outcome ([`BroadcastReport`]).
//! - **Delivery never runs on the read path.** Messages go through bounded per-channel queues, so a slow reactor
//!   delays only its own channels, never pings or other reactors (see `ledgerwire_conn::mconnection`).
//! - **One owner for every decision.** The switch actor alone admits connections, dials, redials persistent peers
//!   and enforces limits; everything else sends it messages. There are no shared locks to reason about.
//! - **Everything peers feed is bounded**: pending handshakes in total and per IP, the dial queue, channel queues,
//!   reactor inboxes and event buffers.
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
//!                 peer.send(CH, "ping").await.ok();
//!                 peers.insert(peer.id(), peer);
//!             }
//!             ReactorEvent::Message { peer, msg, .. } => match &msg[..] {
//!                 b"ping" => { peers[&peer].send(CH, "pong").await.ok(); }
//!                 b"pong" => { done.take().map(|d| d.send(())); }
//!                 _ => { ctx.switch.stop_peer_for_error(peer, "not a ping").await; }
//!             },
//!             ReactorEvent::PeerDown { peer, .. } => { peers.remove(&peer); }
//!         }
//!     }
//! }
//!
//! let log = slog::Logger::root(slog::Discard, slog::o!());
//! let mut nodes = Vec::new();
//! let mut pongs = Vec::new();
//! for _ in 0..2 {
//!     let config = SwitchConfig::new("127.0.0.1:0".parse()?, "example-net");
//!     let mut b = SwitchBuilder::new(Arc::new(NodeKey::generate()), WireProfile::Tm2, config, log.clone());
//!     let ctx = b.add_reactor("pingpong", &[ChannelDescriptor::new(CH, 1).with_low_latency()], 64)?;
//!     let (tx, rx) = tokio::sync::oneshot::channel();
//!     tokio::spawn(reactor(ctx, tx));
//!     pongs.push(rx);
//!     nodes.push(b.start().await?);
//! }
//! let b_addr = HostAddress::parse(&format!("{}@{}", nodes[1].id(), nodes[1].listen_addr().unwrap()), WireProfile::Tm2)?;
//! nodes[0].dial(b_addr, false).await?;
//! for rx in pongs {
//!     rx.await?; // each side got a pong back
//! }
//! for n in &nodes {
//!     n.stop().await;
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod backoff;
pub mod dial_queue;
pub mod events;
pub mod node_info;
pub mod peer;
pub mod reactor;
pub mod switch;
pub mod transport;

pub use events::{EventItem, EventStream, SwitchEvent};
pub use peer::{DisconnectReason, PeerHandle, PeerInfo, PeerSendError};
pub use reactor::{ReactorContext, ReactorEvent, ReactorSwitch};
pub use switch::{BroadcastFailure, BroadcastReport, PeerSummary, Switch, SwitchBuilder, SwitchConfig, SwitchError};
pub use transport::{DialError, Direction, RejectReason, Transport, TransportConfig};

pub use ledgerwire_conn::mconnection::{ChannelDescriptor, ChannelId, MConnectionConfig, SendError};
