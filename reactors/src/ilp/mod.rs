//! Interledger packets (ILPv4, RFC 27), addresses (RFC 15), timestamps and the canonical OER they are written in
//! (RFC 30). Pure encoding and validation, shared by forwarding, ILDCP and ILP-over-HTTP.

pub mod address;
pub mod oer;
pub mod packet;
pub mod timestamp;

pub use address::{Address, AddressError};
pub use packet::{
    Condition, ErrorCode, Fulfill, Fulfillment, Packet, PacketError, Prepare, Reject, Reply, condition_of, fulfills,
};
pub use timestamp::Timestamp;

/// The execution condition of peer protocols (ILDCP, CCP): SHA-256 of 32 zero bytes.
pub const PEER_PROTOCOL_CONDITION: Condition = [
    0x66, 0x68, 0x7a, 0xad, 0xf8, 0x62, 0xbd, 0x77, 0x6c, 0x8f, 0xc1, 0x8b, 0x8e, 0x9f, 0x8e, 0x20, 0x08, 0x97, 0x14,
    0x85, 0x6e, 0xe2, 0x33, 0xb3, 0x90, 0x2a, 0x59, 0x1d, 0x0d, 0x5f, 0x29, 0x25,
];

/// The fulfillment of peer protocols: 32 zero bytes.
pub const PEER_PROTOCOL_FULFILLMENT: Fulfillment = [0; 32];
