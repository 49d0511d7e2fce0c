//! Discovery messages on the wire, without I/O.
//!
//! - **tm2** (channel 0x50): amino `Any` — `/p2p.Request` (no value) and `/p2p.Response{1: repeated string}` where
//!   each string is `id@ip:port`.
//! - **cometbft** (channel 0x00, PEX): `tendermint.p2p.Message{oneof: pex_request = 1 {}, pex_addrs = 2
//!   {repeated NetAddress addrs = 1}}` with `NetAddress{1 id, 2 ip, 3 port}`.
//!
//! Addresses are parsed as IP literals only; nothing here resolves a name.

use ledgerwire_conn::amino::Any;
use ledgerwire_types::{NetAddress, NodeId, WireProfile};
use prost::Message as _;

const TM2_REQUEST: &str = "/p2p.Request";
const TM2_RESPONSE: &str = "/p2p.Response";

/// Most addresses accepted in one response (CometBFT sends up to 250; TM2 up to 30).
pub const MAX_ADDRESSES_ACCEPTED: usize = 250;

/// A discovery message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// "Tell me some peers."
    Request,
    /// Peers. Entries that did not parse are counted, not kept.
    Response {
        /// The addresses that parsed.
        addresses: Vec<NetAddress>,
        /// Entries that did not parse as `id@ip:port` of our profile.
        invalid: usize,
    },
}

/// Why a message was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not decodable.
    #[error("undecodable discovery message: {0}")]
    Decode(String),
    /// A type we do not know.
    #[error("unknown discovery message type {0}")]
    UnknownType(String),
    /// Too many addresses.
    #[error("{0} addresses in one response, at most 250 accepted")]
    TooManyAddresses(usize),
}

#[derive(Clone, PartialEq, prost::Message)]
struct Tm2Response {
    #[prost(string, repeated, tag = "1")]
    peers: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PexMessage {
    #[prost(oneof = "PexSum", tags = "1, 2")]
    sum: Option<PexSum>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum PexSum {
    #[prost(message, tag = "1")]
    Request(PexRequest),
    #[prost(message, tag = "2")]
    Addrs(PexAddrs),
}

#[derive(Clone, PartialEq, prost::Message)]
struct PexRequest {}

#[derive(Clone, PartialEq, prost::Message)]
struct PexAddrs {
    #[prost(message, repeated, tag = "1")]
    addrs: Vec<PexNetAddress>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PexNetAddress {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    ip: String,
    #[prost(uint32, tag = "3")]
    port: u32,
}

/// Encodes a message.
pub fn encode(profile: WireProfile, msg: &Message) -> Vec<u8> {
    match (profile, msg) {
        (WireProfile::Tm2, Message::Request) => Any::new(TM2_REQUEST, Vec::new()).encode_to_vec(),
        (WireProfile::Tm2, Message::Response { addresses, .. }) => {
            let peers = addresses.iter().map(NetAddress::to_string).collect();
            Any::new(TM2_RESPONSE, Tm2Response { peers }.encode_to_vec()).encode_to_vec()
        }
        (WireProfile::CometBft, Message::Request) => {
            PexMessage { sum: Some(PexSum::Request(PexRequest {})) }.encode_to_vec()
        }
        (WireProfile::CometBft, Message::Response { addresses, .. }) => PexMessage {
            sum: Some(PexSum::Addrs(PexAddrs {
                addrs: addresses
                    .iter()
                    .map(|a| PexNetAddress { id: a.id().to_string(), ip: a.ip().to_string(), port: a.port().into() })
                    .collect(),
            })),
        }
        .encode_to_vec(),
    }
}

/// Decodes a message of `profile`.
pub fn decode(profile: WireProfile, bytes: &[u8]) -> Result<Message, WireError> {
    let bad = |e: prost::DecodeError| WireError::Decode(e.to_string());
    let parsed: Vec<Result<NetAddress, ()>> = match profile {
        WireProfile::Tm2 => {
            let any = Any::decode(bytes).map_err(bad)?;
            match any.type_url.as_str() {
                TM2_REQUEST => return Ok(Message::Request),
                TM2_RESPONSE => {
                    let r = Tm2Response::decode(any.value).map_err(bad)?;
                    if r.peers.len() > MAX_ADDRESSES_ACCEPTED {
                        return Err(WireError::TooManyAddresses(r.peers.len()));
                    }
                    r.peers.iter().map(|s| NetAddress::parse(s, profile).map_err(|_| ())).collect()
                }
                other => return Err(WireError::UnknownType(format!("{other:?}"))),
            }
        }
        WireProfile::CometBft => match PexMessage::decode(bytes).map_err(bad)?.sum {
            Some(PexSum::Request(_)) => return Ok(Message::Request),
            Some(PexSum::Addrs(a)) => {
                if a.addrs.len() > MAX_ADDRESSES_ACCEPTED {
                    return Err(WireError::TooManyAddresses(a.addrs.len()));
                }
                a.addrs
                    .iter()
                    .map(|n| {
                        let id = NodeId::parse(&n.id, profile).map_err(|_| ())?;
                        let ip: std::net::IpAddr = n.ip.parse().map_err(|_| ())?;
                        let port = u16::try_from(n.port).map_err(|_| ())?;
                        Ok(NetAddress::new(id, (ip, port).into()))
                    })
                    .collect()
            }
            None => return Err(WireError::UnknownType("empty oneof".into())),
        },
    };
    let invalid = parsed.iter().filter(|r| r.is_err()).count();
    Ok(Message::Response { addresses: parsed.into_iter().flatten().collect(), invalid })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerwire_types::NodeKey;

    fn addr(profile: WireProfile, seed: u8, ip: &str) -> NetAddress {
        let id = NodeKey::from_seed(&[seed; 32]).node_id(profile);
        NetAddress::parse(&format!("{id}@{ip}"), profile).unwrap()
    }

    #[test]
    fn tm2_bytes_match_the_spec() {
        // docs/protocol.md, "Peer discovery": a Request is 0a 0c "/p2p.Request" (gno tm2/pkg/p2p/discovery).
        assert_eq!(hex::encode(encode(WireProfile::Tm2, &Message::Request)), "0a0c2f7032702e52657175657374");
        let a = addr(WireProfile::Tm2, 1, "1.2.3.4:26656");
        let bytes = encode(WireProfile::Tm2, &Message::Response { addresses: vec![a], invalid: 0 });
        let s = a.to_string();
        let mut want = vec![0x0a, 13];
        want.extend_from_slice(b"/p2p.Response");
        want.extend_from_slice(&[0x12, (s.len() + 2) as u8, 0x0a, s.len() as u8]);
        want.extend_from_slice(s.as_bytes());
        assert_eq!(bytes, want);
    }

    #[test]
    fn cometbft_bytes_match_the_spec() {
        // The vector's PEX request inside a PacketMsg carries 0a 00.
        assert_eq!(encode(WireProfile::CometBft, &Message::Request), vec![0x0a, 0x00]);
        let a = addr(WireProfile::CometBft, 2, "[2001:4860::1]:26656");
        let bytes = encode(WireProfile::CometBft, &Message::Response { addresses: vec![a], invalid: 0 });
        assert_eq!(bytes[0], 0x12);
        assert_eq!(
            decode(WireProfile::CometBft, &bytes).unwrap(),
            Message::Response { addresses: vec![a], invalid: 0 }
        );
    }

    #[test]
    fn round_trips_and_invalid_entries_are_counted_not_kept() {
        for profile in WireProfile::ALL {
            assert_eq!(decode(profile, &encode(profile, &Message::Request)).unwrap(), Message::Request);
            let addrs: Vec<_> = (1..=5).map(|i| addr(profile, i, &format!("10.0.0.{i}:1"))).collect();
            let m = Message::Response { addresses: addrs.clone(), invalid: 0 };
            assert_eq!(decode(profile, &encode(profile, &m)).unwrap(), m);
        }
        // A host name, a bad ID and a bad port among good ones.
        let good = addr(WireProfile::Tm2, 1, "1.2.3.4:1");
        let value = Tm2Response {
            peers: vec![good.to_string(), format!("{}@seed.example.org:1", good.id()), "nope@1.1.1.1:1".into()],
        }
        .encode_to_vec();
        let bytes = Any::new(TM2_RESPONSE, value).encode_to_vec();
        assert_eq!(decode(WireProfile::Tm2, &bytes).unwrap(), Message::Response { addresses: vec![good], invalid: 2 });
        let pex = PexMessage {
            sum: Some(PexSum::Addrs(PexAddrs {
                addrs: vec![PexNetAddress { id: "ab".repeat(20), ip: "1.2.3.4".into(), port: 70_000 }],
            })),
        }
        .encode_to_vec();
        assert_eq!(decode(WireProfile::CometBft, &pex).unwrap(), Message::Response { addresses: vec![], invalid: 1 });
    }

    #[test]
    fn garbage_unknown_types_and_floods_are_errors() {
        assert!(decode(WireProfile::Tm2, &[0xff; 4]).is_err());
        let other = Any::new("/p2p.Other", Vec::new()).encode_to_vec();
        assert!(matches!(decode(WireProfile::Tm2, &other), Err(WireError::UnknownType(_))));
        assert!(matches!(decode(WireProfile::CometBft, &[]), Err(WireError::UnknownType(_))));
        let many = Tm2Response { peers: vec!["x".into(); 251] }.encode_to_vec();
        let bytes = Any::new(TM2_RESPONSE, many).encode_to_vec();
        assert_eq!(decode(WireProfile::Tm2, &bytes), Err(WireError::TooManyAddresses(251)));
    }
}
