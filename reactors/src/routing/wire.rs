//! The route-exchange channel's messages: CCP's route control and route update, carried as protobuf instead of
//! ILP Prepares to `peer.route.*` (the link is already authenticated and ordered, so no condition, expiry or
//! Fulfill is needed; see docs/protocol.md).
//!
//! ```text
//! message CcpMessage {
//!   oneof kind {
//!     RouteControl control = 1;
//!     RouteUpdate  update  = 2;
//!   }
//! }
//! message RouteControl {            // "send me your routes" (or stop)
//!   uint32 mode = 1;                // 0 = idle, 1 = sync
//!   bytes  last_known_routing_table_id = 2;   // 16 bytes, or empty for "none"
//!   uint32 last_known_epoch = 3;
//!   repeated string features = 4;
//! }
//! message RouteUpdate {
//!   bytes  routing_table_id = 1;    // 16 bytes
//!   uint32 current_epoch = 2;
//!   uint32 from_epoch = 3;
//!   uint32 to_epoch = 4;
//!   uint32 hold_down_time_ms = 5;
//!   string speaker = 6;             // the sender's ILP address
//!   repeated Route new_routes = 7;
//!   repeated string withdrawn_routes = 8;
//! }
//! message Route {
//!   string prefix = 1;
//!   repeated string path = 2;       // ILP addresses of the connectors on the way, the speaker first
//!   bytes  auth = 3;                // 32 bytes
//! }
//! ```

use bytes::Bytes;
use prost::Message as _;

/// Route control mode: stop sending updates.
pub const MODE_IDLE: u32 = 0;
/// Route control mode: send updates.
pub const MODE_SYNC: u32 = 1;

/// One message on the route-exchange channel.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CcpMessage {
    /// The message.
    #[prost(oneof = "Kind", tags = "1, 2")]
    pub kind: Option<Kind>,
}

/// The two CCP messages.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Kind {
    /// Route control.
    #[prost(message, tag = "1")]
    Control(RouteControl),
    /// Route update.
    #[prost(message, tag = "2")]
    Update(RouteUpdate),
}

/// Asks the peer to send its routes (sync) or to stop (idle), from the table and epoch we last saw.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RouteControl {
    /// [`MODE_IDLE`] or [`MODE_SYNC`].
    #[prost(uint32, tag = "1")]
    pub mode: u32,
    /// The peer's routing table ID we last applied (16 bytes), empty for none.
    #[prost(bytes = "vec", tag = "2")]
    pub last_known_routing_table_id: Vec<u8>,
    /// The last epoch of that table we applied.
    #[prost(uint32, tag = "3")]
    pub last_known_epoch: u32,
    /// Feature names (none defined).
    #[prost(string, repeated, tag = "4")]
    pub features: Vec<String>,
}

/// The changes of the speaker's routing table from one epoch to another.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RouteUpdate {
    /// The speaker's routing table ID (16 bytes; a new one after a restart).
    #[prost(bytes = "vec", tag = "1")]
    pub routing_table_id: Vec<u8>,
    /// The speaker's latest epoch.
    #[prost(uint32, tag = "2")]
    pub current_epoch: u32,
    /// The epoch these changes start after.
    #[prost(uint32, tag = "3")]
    pub from_epoch: u32,
    /// The epoch the receiver is at once it applied them.
    #[prost(uint32, tag = "4")]
    pub to_epoch: u32,
    /// How long the routes stay valid without another update (milliseconds).
    #[prost(uint32, tag = "5")]
    pub hold_down_time_ms: u32,
    /// The speaker's ILP address.
    #[prost(string, tag = "6")]
    pub speaker: String,
    /// Routes added or changed.
    #[prost(message, repeated, tag = "7")]
    pub new_routes: Vec<WireRoute>,
    /// Prefixes no longer reachable through the speaker.
    #[prost(string, repeated, tag = "8")]
    pub withdrawn_routes: Vec<String>,
}

/// One advertised route.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WireRoute {
    /// The address prefix.
    #[prost(string, tag = "1")]
    pub prefix: String,
    /// The connectors on the way, the speaker first.
    #[prost(string, repeated, tag = "2")]
    pub path: Vec<String>,
    /// CCP's route authentication value (32 bytes).
    #[prost(bytes = "vec", tag = "3")]
    pub auth: Vec<u8>,
}

impl CcpMessage {
    /// A control message.
    pub fn control(c: RouteControl) -> CcpMessage {
        CcpMessage { kind: Some(Kind::Control(c)) }
    }

    /// An update message.
    pub fn update(u: RouteUpdate) -> CcpMessage {
        CcpMessage { kind: Some(Kind::Update(u)) }
    }

    /// Encodes the message.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(self.encode_to_vec())
    }

    /// Decodes a message.
    pub fn from_bytes(bytes: &[u8]) -> Result<CcpMessage, prost::DecodeError> {
        CcpMessage::decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_update_round_trips_and_its_bytes_are_stable() {
        let update = RouteUpdate {
            routing_table_id: vec![0xbf; 16],
            current_epoch: 5,
            from_epoch: 0,
            to_epoch: 5,
            hold_down_time_ms: 45_000,
            speaker: "test.b".into(),
            new_routes: vec![WireRoute { prefix: "test.c".into(), path: vec!["test.b".into()], auth: vec![7; 32] }],
            withdrawn_routes: vec!["test.d".into()],
        };
        let bytes = CcpMessage::update(update.clone()).to_bytes();
        assert_eq!(CcpMessage::from_bytes(&bytes).unwrap(), CcpMessage::update(update));
        // Field 2 (update), then the table ID as field 1 of the inner message.
        assert_eq!(&bytes[..4], &[0x12, bytes[1], 0x0a, 0x10]);
        let control = CcpMessage::control(RouteControl { mode: MODE_SYNC, ..Default::default() });
        assert_eq!(control.to_bytes().as_ref(), &[0x0a, 0x02, 0x08, 0x01]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(CcpMessage::from_bytes(&[0x12, 0xff]).is_err());
        assert!(CcpMessage::from_bytes(&[0xff; 7]).is_err());
    }
}
