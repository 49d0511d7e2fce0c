//! Node identifiers: the first 20 bytes of SHA-256 of the node's Ed25519 public key.

use std::fmt;

use bech32::{Bech32, Hrp};
use sha2::{Digest, Sha256};

use crate::{PublicKey, WireProfile};

/// Length in bytes of a node ID.
pub const NODE_ID_LEN: usize = 20;

/// The bech32 human-readable part of node IDs in the tm2 profile.
pub const TM2_ID_PREFIX: &str = "g";

/// A node's identity: `SHA-256(ed25519 public key)[0..20]`.
///
/// The ID remembers the profile it belongs to, so it always prints in that profile's notation: bech32 with prefix
/// `g` (`g1…`) for [`WireProfile::Tm2`], 40 lowercase hex digits for [`WireProfile::CometBft`]. Two IDs compare equal
/// when both the bytes and the profile are equal; ordering is by bytes first.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    bytes: [u8; NODE_ID_LEN],
    profile: WireProfile,
}

/// Why a string is not a node ID of the expected profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeIdError {
    /// The string is empty.
    #[error("node ID is empty")]
    Empty,
    /// The tm2 profile expects bech32 `g1…`, the string is something else.
    #[error("{id:?} is not a tm2 node ID (bech32 with prefix \"g\", like g1…): {reason}")]
    NotBech32 {
        /// The offending string.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The cometbft profile expects 40 lowercase hex digits, the string is something else.
    #[error("{id:?} is not a cometbft node ID (40 lowercase hex digits): {reason}")]
    NotHex {
        /// The offending string.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl NodeId {
    /// The ID of a public key.
    pub fn from_public_key(key: &PublicKey, profile: WireProfile) -> Self {
        let digest = Sha256::digest(key.as_bytes());
        let mut bytes = [0u8; NODE_ID_LEN];
        bytes.copy_from_slice(&digest[..NODE_ID_LEN]);
        NodeId { bytes, profile }
    }

    /// An ID from its raw 20 bytes.
    pub fn from_bytes(bytes: [u8; NODE_ID_LEN], profile: WireProfile) -> Self {
        NodeId { bytes, profile }
    }

    /// The raw 20 bytes.
    pub fn as_bytes(&self) -> &[u8; NODE_ID_LEN] {
        &self.bytes
    }

    /// The profile whose notation this ID uses.
    pub fn profile(&self) -> WireProfile {
        self.profile
    }

    /// Parses an ID written in `profile`'s notation, and only that notation.
    ///
    /// Upper-case forms are refused in both profiles: the reference implementations compare IDs as strings, so an
    /// upper-case ID would parse and then never match.
    pub fn parse(s: &str, profile: WireProfile) -> Result<Self, NodeIdError> {
        if s.is_empty() {
            return Err(NodeIdError::Empty);
        }
        match profile {
            WireProfile::Tm2 => parse_bech32(s),
            WireProfile::CometBft => parse_hex(s),
        }
    }
}

fn parse_bech32(s: &str) -> Result<NodeId, NodeIdError> {
    let fail = |reason: String| NodeIdError::NotBech32 { id: s.to_owned(), reason };
    if s.len() == 2 * NODE_ID_LEN && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(fail("this looks like a cometbft hex ID; the node runs the tm2 profile".into()));
    }
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(fail("upper-case letters are not accepted".into()));
    }
    let (hrp, data) = bech32::decode(s).map_err(|e| fail(e.to_string()))?;
    if hrp.as_str() != TM2_ID_PREFIX {
        return Err(fail(format!("prefix is {:?}", hrp.as_str())));
    }
    let bytes: [u8; NODE_ID_LEN] = data
        .as_slice()
        .try_into()
        .map_err(|_| fail(format!("decodes to {} bytes, expected {NODE_ID_LEN}", data.len())))?;
    Ok(NodeId { bytes, profile: WireProfile::Tm2 })
}

fn parse_hex(s: &str) -> Result<NodeId, NodeIdError> {
    let fail = |reason: String| NodeIdError::NotHex { id: s.to_owned(), reason };
    if s.starts_with("g1") {
        return Err(fail("this looks like a tm2 bech32 ID; the node runs the cometbft profile".into()));
    }
    if s.len() != 2 * NODE_ID_LEN {
        return Err(fail(format!("{} characters", s.len())));
    }
    if let Some(c) = s.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(fail(format!("character {c:?} is not a lowercase hex digit")));
    }
    let mut bytes = [0u8; NODE_ID_LEN];
    hex::decode_to_slice(s, &mut bytes).map_err(|e| fail(e.to_string()))?;
    Ok(NodeId { bytes, profile: WireProfile::CometBft })
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.profile {
            WireProfile::Tm2 => {
                let hrp = Hrp::parse_unchecked(TM2_ID_PREFIX);
                bech32::encode_lower_to_fmt::<Bech32, _>(f, hrp, &self.bytes).map_err(|_| fmt::Error)
            }
            WireProfile::CometBft => {
                for b in self.bytes {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(hex_str: &str) -> PublicKey {
        let mut b = [0u8; 32];
        hex::decode_to_slice(hex_str, &mut b).unwrap();
        PublicKey::from_bytes(&b).unwrap()
    }

    #[test]
    fn cometbft_id_matches_tendermint_rs_vector() {
        // tendermint-rs test/src/test/unit/p2p/secret_connection/public_key.rs
        let pk = key("f7feb0b5ba0760b2c58893e329475d1ea81781dd636e37144b6d599ad38aa825");
        let id = pk.node_id(WireProfile::CometBft);
        assert_eq!(id.to_string(), "117c95c4fd7e636c38d303493302d2c271a39669");
        assert_eq!(NodeId::parse(&id.to_string(), WireProfile::CometBft), Ok(id));
    }

    #[test]
    fn tm2_id_is_bech32_g_of_the_same_bytes() {
        let pk = key("f7feb0b5ba0760b2c58893e329475d1ea81781dd636e37144b6d599ad38aa825");
        let tm2 = pk.node_id(WireProfile::Tm2);
        let s = tm2.to_string();
        assert!(s.starts_with("g1"), "{s}");
        assert_eq!(s.len(), 2 + 32 + 6, "hrp + separator + 32 data chars + 6 checksum chars");
        let parsed = NodeId::parse(&s, WireProfile::Tm2).unwrap();
        assert_eq!(parsed, tm2);
        assert_eq!(parsed.as_bytes(), pk.node_id(WireProfile::CometBft).as_bytes());
    }

    #[test]
    fn tm2_id_matches_gno_address_of_known_key() {
        // gno tm2/pkg/bft/config/toml.go: pubkey cVt6w3C1…GRg= has address g1uvwz22t0l2fv9az93wutmlusrjv5zdwx2n32d5.
        let pk = key("715b7ac370b50d6630c24022ae76ec2f8f42a0e7bc4fc651d81081f0c78e1918");
        assert_eq!(pk.node_id(WireProfile::Tm2).to_string(), "g1uvwz22t0l2fv9az93wutmlusrjv5zdwx2n32d5");
    }

    #[test]
    fn each_profile_refuses_the_other_notation_with_a_clear_error() {
        let pk = key("f7feb0b5ba0760b2c58893e329475d1ea81781dd636e37144b6d599ad38aa825");
        let hex_id = pk.node_id(WireProfile::CometBft).to_string();
        let bech_id = pk.node_id(WireProfile::Tm2).to_string();
        let e = NodeId::parse(&hex_id, WireProfile::Tm2).unwrap_err();
        assert!(e.to_string().contains("cometbft hex ID"), "{e}");
        let e = NodeId::parse(&bech_id, WireProfile::CometBft).unwrap_err();
        assert!(e.to_string().contains("tm2 bech32 ID"), "{e}");
    }

    #[test]
    fn malformed_ids_are_rejected() {
        let cases_tm2 =
            ["", "g1", "cosmos1uvwz22t0l2fv9az93wutmlusrjv5zdwx2n32d5", "g1uvwz22t0l2fv9az93wutmlusrjv5zdwx2n32d6"];
        for c in cases_tm2 {
            assert!(NodeId::parse(c, WireProfile::Tm2).is_err(), "{c:?} accepted");
        }
        assert!(NodeId::parse("G1UVWZ22T0L2FV9AZ93WUTMLUSRJV5ZDWX2N32D5", WireProfile::Tm2).is_err());
        // A valid bech32 string with the right prefix but 32 bytes of data.
        let long = bech32::encode::<Bech32>(Hrp::parse("g").unwrap(), &[7u8; 32]).unwrap();
        let e = NodeId::parse(&long, WireProfile::Tm2).unwrap_err();
        assert!(e.to_string().contains("32 bytes"), "{e}");

        let cases_hex = [
            "",
            "117c95c4fd7e636c38d303493302d2c271a3966",
            "117C95C4FD7E636C38D303493302D2C271A39669",
            "117c95c4fd7e636c38d303493302d2c271a3966z",
        ];
        for c in cases_hex {
            assert!(NodeId::parse(c, WireProfile::CometBft).is_err(), "{c:?} accepted");
        }
    }
}
