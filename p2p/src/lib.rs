//! The peer-to-peer layer of ledgerwire.
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

pub use ledgerwire_conn::mconnection::{ChannelDescriptor, ChannelId, MConnectionConfig};
