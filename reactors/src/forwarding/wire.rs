//! The forwarding channel's message: one ILP packet and the request ID that pairs a Prepare with its answer.
//!
//! ```text
//! message IlpFrame {
//!   uint64 request_id = 1;  // chosen by the sender of the Prepare; the Fulfill or Reject carries it back
//!   bytes  packet     = 2;  // an ILPv4 packet in OER: type 12 travels one way, 13 or 14 answers it
//! }
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message as _;
use prost::encoding::encoded_len_varint;

use crate::ilp::packet::Encode;

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

/// A frame as we and our peers write it (fields in order, each at most once, nothing else), read in place: the
/// request ID and where the packet lies in `frame`. `None` for any other layout, which [`IlpFrame::from_bytes`] then
/// reads (or refuses); whenever this answers, that gives the same answer (a property test checks). Reading in place
/// spares the reference counting of a slice of the connection's read buffer, which its reader touches too.
pub fn view(frame: &[u8]) -> Option<(u64, std::ops::Range<usize>)> {
    let mut rest = frame;
    let mut request_id = 0;
    if let Some(after) = rest.strip_prefix(&[0x08]) {
        rest = after;
        request_id = prost::encoding::decode_varint(&mut rest).ok()?;
    }
    if rest.is_empty() {
        return Some((request_id, frame.len()..frame.len()));
    }
    rest = rest.strip_prefix(&[0x12])?;
    let len = prost::encoding::decode_varint(&mut rest).ok()?;
    if len != rest.len() as u64 {
        return None;
    }
    Some((request_id, frame.len() - rest.len()..frame.len()))
}

/// The frame for `packet` with `request_id`, byte for byte what [`IlpFrame::to_bytes`] gives, with the packet
/// written straight into the frame (one allocation, no copy).
pub fn frame(request_id: u64, packet: &impl Encode) -> Bytes {
    let len = packet.encoded_len();
    let mut out = BytesMut::with_capacity(2 + encoded_len_varint(request_id) + encoded_len_varint(len as u64) + len);
    // proto3 leaves fields at their default value out, as prost does.
    if request_id != 0 {
        put_key_and_varint(&mut out, 0x08, request_id);
    }
    if len != 0 {
        put_key_and_varint(&mut out, 0x12, len as u64);
        packet.encode_into(&mut out);
    }
    out.freeze()
}

/// Appends a one-byte field key and a varint, written on the stack first and appended in one copy (appending byte
/// by byte costs a capacity check per byte).
fn put_key_and_varint(out: &mut BytesMut, key: u8, mut value: u64) {
    let mut buf = [0u8; 11];
    buf[0] = key;
    let mut n = 1;
    while value >= 0x80 {
        buf[n] = (value as u8) | 0x80;
        value >>= 7;
        n += 1;
    }
    buf[n] = value as u8;
    out.put_slice(&buf[..=n]);
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

    proptest::proptest! {
        #[test]
        fn reading_in_place_agrees_with_the_protobuf_decoder(
            id in proptest::prelude::any::<u64>(),
            packet in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            at in proptest::prelude::any::<usize>(),
            flip in proptest::prelude::any::<u8>(),
        ) {
            let bytes = IlpFrame { request_id: id, packet: Bytes::from(packet.clone()) }.to_bytes();
            let (got, range) = view(&bytes).expect("our own frames are read in place");
            proptest::prop_assert_eq!((got, &bytes[range]), (id, &packet[..]));
            let mut changed = bytes.to_vec();
            if !changed.is_empty() {
                let i = at % changed.len();
                changed[i] ^= flip;
            }
            for candidate in [changed, noise] {
                if let Some((got, range)) = view(&candidate) {
                    let full = IlpFrame::from_bytes(&candidate);
                    proptest::prop_assert_eq!(
                        full,
                        Ok(IlpFrame { request_id: got, packet: Bytes::copy_from_slice(&candidate[range]) })
                    );
                }
            }
        }
    }

    #[test]
    fn frames_written_in_place_are_the_protobuf_encoding() {
        use crate::ilp::{Address, Fulfill, Prepare, Timestamp};
        let prepare = Prepare {
            amount: 7,
            expires_at: Timestamp::from_unix_ms(1_700_000_000_000),
            execution_condition: [3; 32],
            destination: Address::parse("test.a.b").unwrap(),
            data: Bytes::from(vec![9u8; 300]),
        };
        let fulfill = Fulfill { fulfillment: [1; 32], data: Bytes::new() };
        for id in [0u64, 1, 300, u64::MAX] {
            assert_eq!(frame(id, &prepare), IlpFrame { request_id: id, packet: prepare.encode() }.to_bytes());
            assert_eq!(frame(id, &fulfill), IlpFrame { request_id: id, packet: fulfill.encode() }.to_bytes());
        }
    }
}
