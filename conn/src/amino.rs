//! The amino `Any` envelope that gno's Tendermint2 wraps every p2p message in.
//!
//! On the wire it is protobuf-compatible: `0a ‹len› type_url`, then `12 ‹len› value` unless the value is empty
//! (zero-valued fields are omitted). MConnection packets (`/p2p.Ping`, `/p2p.Pong`, `/p2p.Msg`) and the discovery
//! messages (`/p2p.Request`, `/p2p.Response`) all travel in it; docs/protocol.md lists the bytes.

use bytes::Bytes;

/// An amino `Any`: a type URL naming the message, and the message's own encoding.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    /// The message's registered name, such as `/p2p.Msg`.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The message's encoding (empty for messages without fields).
    #[prost(bytes = "bytes", tag = "2")]
    pub value: Bytes,
}

impl Any {
    /// An envelope for `value` under `type_url`.
    pub fn new(type_url: &str, value: impl Into<Bytes>) -> Self {
        Any { type_url: type_url.to_owned(), value: value.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn an_empty_value_is_omitted_and_a_value_follows_the_type_url() {
        assert_eq!(Any::new("/p2p.Ping", Bytes::new()).encode_to_vec(), b"\x0a\x09/p2p.Ping");
        assert_eq!(Any::new("/x", vec![1, 2]).encode_to_vec(), b"\x0a\x02/x\x12\x02\x01\x02");
        let back = Any::decode(&b"\x0a\x02/x\x12\x02\x01\x02"[..]).unwrap();
        assert_eq!(back, Any::new("/x", vec![1, 2]));
    }
}
