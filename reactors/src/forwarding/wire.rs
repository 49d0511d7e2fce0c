//! The forwarding channel's message: one ILP packet and the request ID that pairs a Prepare with its answer.
//!
//! ```text
//! message IlpFrame {
//!   uint64 request_id = 1;  // chosen by the sender of the Prepare; the Fulfill or Reject carries it back
//!   bytes  packet     = 2;  // an ILPv4 packet in OER: type 12 travels one way, 13 or 14 answers it
//! }
//! ```

use bytes::Bytes;
use prost::Message as _;

/// One frame on the forwarding channel.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IlpFrame {
    /// Pairs a Prepare with its answer.
    #[prost(uint64, tag = "1")]
    pub request_id: u64,
    /// The ILP packet.
    #[prost(bytes = "bytes", tag = "2")]
    pub packet: Bytes,
}

impl IlpFrame {
    /// Encodes the frame.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(self.encode_to_vec())
    }

    /// Decodes a frame.
    pub fn from_bytes(bytes: &[u8]) -> Result<IlpFrame, prost::DecodeError> {
        IlpFrame::decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_two_protobuf_fields() {
        let f = IlpFrame { request_id: 300, packet: Bytes::from_static(&[0x0d, 0x00]) };
        assert_eq!(&f.to_bytes()[..], &[0x08, 0xac, 0x02, 0x12, 0x02, 0x0d, 0x00]);
        assert_eq!(IlpFrame::from_bytes(&f.to_bytes()), Ok(f));
        assert!(IlpFrame::from_bytes(&[0x12, 0x05, 0x00]).is_err());
    }
}
