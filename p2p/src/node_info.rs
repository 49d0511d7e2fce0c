//! NodeInfo: what two nodes tell each other right after the secret connection handshake.
//!
//! - **tm2**: an amino struct (protobuf-compatible): `1 repeated VersionInfo{1 name, 2 version, 3 optional}`,
//!   `2 net_address "id@host:port"`, `3 network`, `4 software`, `5 version`, `6 channels`, `7 moniker`,
//!   `8 other{1 tx_index, 2 rpc_address}`; empty fields omitted.
//! - **cometbft**: `tendermint.p2p.DefaultNodeInfo`: `1 protocol_version{1 p2p, 2 block, 3 app}`,
//!   `2 default_node_id`, `3 listen_addr`, `4 network`, `5 version`, `6 channels`, `7 moniker`,
//!   `8 other{1 tx_index, 2 rpc_address}`; fields 1 and 8 always present, as Go writes them.
//!
//! Both travel as one uvarint-length-prefixed message of at most [`MAX_NODE_INFO_SIZE`] bytes. A peer's advertised
//! listen address is parsed but never resolved: a host name there is kept as text and never dialed.

use std::net::SocketAddr;

use ledgerwire_types::{HostAddress, NetAddress, NodeId, WireProfile};
use prost::Message;

/// Largest NodeInfo accepted (length prefix excluded), as in both references.
pub const MAX_NODE_INFO_SIZE: usize = 10_240;
/// Most channels a NodeInfo may list.
pub const MAX_CHANNELS: usize = 16;
/// TM2's p2p protocol version, the one required entry of our tm2 VersionSet.
pub const TM2_P2P_VERSION: &str = "v1.0.0-rc.0";
/// CometBFT v0.34 – v0.38 p2p protocol version.
pub const COMETBFT_P2P_PROTOCOL: u64 = 8;
/// CometBFT v0.34 – v1.x block protocol version.
pub const COMETBFT_BLOCK_PROTOCOL: u64 = 11;

/// One entry of a tm2 VersionSet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    /// Protocol name: `p2p`, `app`, `bft`, …
    pub name: String,
    /// Semantic version, `v`-prefixed.
    pub version: String,
    /// Whether a peer lacking this entry is still compatible.
    pub optional: bool,
}

/// Protocol versions, per profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolVersions {
    /// tm2: a set of named versions; compatible when every name both sides have shares its major version, and every
    /// name only one side has is optional there.
    Tm2(Vec<VersionInfo>),
    /// cometbft: numbers; compatible when the block protocols are equal.
    CometBft {
        /// P2P protocol.
        p2p: u64,
        /// Block protocol.
        block: u64,
        /// Application protocol.
        app: u64,
    },
}

/// A node's self-description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// Protocol versions (decides the profile).
    pub versions: ProtocolVersions,
    /// The node ID.
    pub id: NodeId,
    /// The advertised listen address, `host:port` as the node wrote it (an optional `scheme://` prefix is kept).
    pub listen_addr: String,
    /// The network (chain ID); must match.
    pub network: String,
    /// The software (tm2 only).
    pub software: String,
    /// The software version.
    pub version: String,
    /// Channel IDs the node speaks.
    pub channels: Vec<u8>,
    /// A human-readable name.
    pub moniker: String,
    /// `on`, `off` or empty.
    pub tx_index: String,
    /// An RPC address, or empty.
    pub rpc_address: String,
}

/// Why a NodeInfo was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeInfoError {
    /// Longer than [`MAX_NODE_INFO_SIZE`].
    #[error("NodeInfo of {0} bytes exceeds the 10240-byte limit")]
    TooLarge(u64),
    /// Not decodable.
    #[error("undecodable NodeInfo: {0}")]
    Decode(String),
    /// The ID is not a valid ID of the profile.
    #[error("invalid node ID in NodeInfo: {0}")]
    Id(String),
    /// The listen address does not parse.
    #[error("invalid listen address {addr:?}: {reason}")]
    ListenAddr {
        /// What the node sent.
        addr: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A text field is not printable ASCII or is blank.
    #[error("invalid {0}: must be printable ASCII and not blank")]
    Text(&'static str),
    /// `tx_index` is not `on`, `off` or empty.
    #[error("invalid tx_index {0:?}: expected \"on\", \"off\" or empty")]
    TxIndex(String),
    /// More than [`MAX_CHANNELS`] channels.
    #[error("{0} channels listed, at most 16 allowed")]
    TooManyChannels(usize),
    /// A channel listed twice.
    #[error("channel {0:#04x} listed twice")]
    DuplicateChannel(u8),
}

/// Why two valid NodeInfos cannot talk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Incompatibility {
    /// Different networks.
    #[error("different networks: ours {ours:?}, theirs {theirs:?}")]
    Network {
        /// Ours.
        ours: String,
        /// Theirs.
        theirs: String,
    },
    /// Version sets or block protocols disagree.
    #[error("incompatible versions: {0}")]
    Versions(String),
    /// No channel in common.
    #[error("no channel in common")]
    NoCommonChannel,
    /// The two NodeInfos are of different profiles.
    #[error("different wire profiles")]
    Profile,
}

fn is_ascii_text(s: &str) -> bool {
    s.bytes().all(|b| (32..=126).contains(&b))
}

fn text_ok(s: &str, may_be_empty: bool) -> bool {
    if s.is_empty() {
        return may_be_empty;
    }
    is_ascii_text(s) && !s.trim().is_empty()
}

/// `vMAJOR` of a semantic version, or empty for anything that is not one (Go's `semver.Major` of `MajorMinor`).
fn semver_major(v: &str) -> &str {
    let Some(rest) = v.strip_prefix('v') else { return "" };
    let core = rest.split(['-', '+']).next().unwrap_or("");
    let mut parts = core.split('.');
    let major = parts.next().unwrap_or("");
    let numeric = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0'));
    if !numeric(major) || parts.clone().count() > 2 || !parts.all(numeric) {
        return "";
    }
    &v[..1 + major.len()]
}

impl NodeInfo {
    /// Our own NodeInfo for `profile`: the profile's protocol versions (tm2: `p2p` = [`TM2_P2P_VERSION`] required,
    /// `app` = `software_version` optional; cometbft: p2p 8, block 11).
    pub fn ours(
        profile: WireProfile,
        id: NodeId,
        listen: SocketAddr,
        network: &str,
        moniker: &str,
        channels: Vec<u8>,
        software_version: &str,
    ) -> Self {
        let versions = match profile {
            WireProfile::Tm2 => ProtocolVersions::Tm2(vec![
                VersionInfo { name: "app".into(), version: software_version.into(), optional: true },
                VersionInfo { name: "p2p".into(), version: TM2_P2P_VERSION.into(), optional: false },
            ]),
            WireProfile::CometBft => {
                ProtocolVersions::CometBft { p2p: COMETBFT_P2P_PROTOCOL, block: COMETBFT_BLOCK_PROTOCOL, app: 0 }
            }
        };
        NodeInfo {
            versions,
            id,
            listen_addr: listen.to_string(),
            network: network.into(),
            software: if profile == WireProfile::Tm2 { "ledgerwire".into() } else { String::new() },
            version: software_version.into(),
            channels,
            moniker: moniker.into(),
            tx_index: "off".into(),
            rpc_address: String::new(),
        }
    }

    /// tm2: adds each `name → version` as a required entry of the version set, replacing an entry of the same name,
    /// and keeps the set sorted by name as gno does. cometbft has no version set; its NodeInfo is returned unchanged.
    pub fn with_required_versions(mut self, versions: &std::collections::BTreeMap<String, String>) -> Self {
        if let ProtocolVersions::Tm2(set) = &mut self.versions {
            for (name, version) in versions {
                set.retain(|v| &v.name != name);
                set.push(VersionInfo { name: name.clone(), version: version.clone(), optional: false });
            }
            set.sort_by(|a, b| a.name.cmp(&b.name));
        }
        self
    }

    /// The encoded size without the length prefix: what a peer checks against [`MAX_NODE_INFO_SIZE`].
    pub fn encoded_body_len(&self) -> usize {
        let encoded = self.encode();
        let mut peek = &encoded[..];
        match prost::decode_length_delimiter(&mut peek) {
            Ok(len) => len,
            Err(_) => encoded.len(),
        }
    }

    /// The profile this NodeInfo belongs to.
    pub fn profile(&self) -> WireProfile {
        match self.versions {
            ProtocolVersions::Tm2(_) => WireProfile::Tm2,
            ProtocolVersions::CometBft { .. } => WireProfile::CometBft,
        }
    }

    /// The message with its uvarint length prefix, ready to send.
    pub fn encode(&self) -> Vec<u8> {
        let other = |tx: &str, rpc: &str| (tx.to_owned(), rpc.to_owned());
        let (tx_index, rpc_address) = other(&self.tx_index, &self.rpc_address);
        match &self.versions {
            ProtocolVersions::Tm2(set) => {
                let empty_other = tx_index.is_empty() && rpc_address.is_empty();
                Tm2NodeInfo {
                    version_set: set
                        .iter()
                        .map(|v| Tm2VersionInfo {
                            name: v.name.clone(),
                            version: v.version.clone(),
                            optional: v.optional,
                        })
                        .collect(),
                    net_address: format!("{}@{}", self.id, strip_scheme(&self.listen_addr)),
                    network: self.network.clone(),
                    software: self.software.clone(),
                    version: self.version.clone(),
                    channels: self.channels.clone(),
                    moniker: self.moniker.clone(),
                    other: (!empty_other).then_some(Other { tx_index, rpc_address }),
                }
                .encode_length_delimited_to_vec()
            }
            ProtocolVersions::CometBft { p2p, block, app } => CometNodeInfo {
                protocol_version: Some(CometProtocolVersion { p2p: *p2p, block: *block, app: *app }),
                default_node_id: self.id.to_string(),
                listen_addr: self.listen_addr.clone(),
                network: self.network.clone(),
                version: self.version.clone(),
                channels: self.channels.clone(),
                moniker: self.moniker.clone(),
                other: Some(Other { tx_index, rpc_address }),
            }
            .encode_length_delimited_to_vec(),
        }
    }

    /// Decodes a NodeInfo body (without its length prefix) of `profile`. The ID must be a valid ID of the profile;
    /// everything else is checked by [`NodeInfo::validate`].
    pub fn decode(profile: WireProfile, body: &[u8]) -> Result<Self, NodeInfoError> {
        if body.len() > MAX_NODE_INFO_SIZE {
            return Err(NodeInfoError::TooLarge(body.len() as u64));
        }
        let bad = |e: prost::DecodeError| NodeInfoError::Decode(e.to_string());
        let id = |s: &str| NodeId::parse(s, profile).map_err(|e| NodeInfoError::Id(e.to_string()));
        match profile {
            WireProfile::Tm2 => {
                let m = Tm2NodeInfo::decode(body).map_err(bad)?;
                let (id_str, listen) = m.net_address.split_once('@').ok_or_else(|| NodeInfoError::ListenAddr {
                    addr: m.net_address.clone(),
                    reason: "expected id@host:port".into(),
                })?;
                let other = m.other.unwrap_or_default();
                Ok(NodeInfo {
                    versions: ProtocolVersions::Tm2(
                        m.version_set
                            .into_iter()
                            .map(|v| VersionInfo { name: v.name, version: v.version, optional: v.optional })
                            .collect(),
                    ),
                    id: id(id_str)?,
                    listen_addr: listen.to_owned(),
                    network: m.network,
                    software: m.software,
                    version: m.version,
                    channels: m.channels,
                    moniker: m.moniker,
                    tx_index: other.tx_index,
                    rpc_address: other.rpc_address,
                })
            }
            WireProfile::CometBft => {
                let m = CometNodeInfo::decode(body).map_err(bad)?;
                let pv = m.protocol_version.unwrap_or_default();
                let other = m.other.unwrap_or_default();
                Ok(NodeInfo {
                    versions: ProtocolVersions::CometBft { p2p: pv.p2p, block: pv.block, app: pv.app },
                    id: id(&m.default_node_id)?,
                    listen_addr: m.listen_addr,
                    network: m.network,
                    software: String::new(),
                    version: m.version,
                    channels: m.channels,
                    moniker: m.moniker,
                    tx_index: other.tx_index,
                    rpc_address: other.rpc_address,
                })
            }
        }
    }

    /// The listen address as an operator-style address (the host may be a name; it is never resolved here).
    pub fn listen_host_address(&self) -> Result<HostAddress, NodeInfoError> {
        HostAddress::parse(&format!("{}@{}", self.id, strip_scheme(&self.listen_addr)), self.profile())
            .map_err(|e| NodeInfoError::ListenAddr { addr: self.listen_addr.clone(), reason: e.to_string() })
    }

    /// The advertised address if it is a dialable IP literal (what discovery may share); `None` for host names,
    /// unspecified or otherwise invalid addresses.
    pub fn advertised_address(&self) -> Option<NetAddress> {
        let addr = self.listen_host_address().ok()?.to_net_address()?;
        addr.validate().ok().map(|()| addr)
    }

    /// The reference's checks on a received NodeInfo: a parseable listen address (unspecified IPs tolerated, host
    /// names allowed but never resolved), printable version, moniker and RPC address, at most 16 distinct channels,
    /// and (cometbft) `tx_index` of `on`, `off` or empty.
    pub fn validate(&self) -> Result<(), NodeInfoError> {
        self.listen_host_address()?;
        if !text_ok(&self.version, true) {
            return Err(NodeInfoError::Text("version"));
        }
        if self.channels.len() > MAX_CHANNELS {
            return Err(NodeInfoError::TooManyChannels(self.channels.len()));
        }
        let mut seen = [false; 256];
        for &c in &self.channels {
            if std::mem::replace(&mut seen[usize::from(c)], true) {
                return Err(NodeInfoError::DuplicateChannel(c));
            }
        }
        if !text_ok(&self.moniker, false) {
            return Err(NodeInfoError::Text("moniker"));
        }
        if !text_ok(&self.rpc_address, true) {
            return Err(NodeInfoError::Text("rpc_address"));
        }
        if self.profile() == WireProfile::CometBft && !matches!(self.tx_index.as_str(), "" | "on" | "off") {
            return Err(NodeInfoError::TxIndex(self.tx_index.clone()));
        }
        Ok(())
    }

    /// Whether we (`self`) can talk to `other`: same network, compatible versions, and a channel in common.
    pub fn compatible_with(&self, other: &NodeInfo) -> Result<(), Incompatibility> {
        match (&self.versions, &other.versions) {
            (ProtocolVersions::Tm2(ours), ProtocolVersions::Tm2(theirs)) => version_sets_compatible(ours, theirs)?,
            (ProtocolVersions::CometBft { block: a, .. }, ProtocolVersions::CometBft { block: b, .. }) => {
                if a != b {
                    return Err(Incompatibility::Versions(format!("block protocol {a} vs {b}")));
                }
            }
            _ => return Err(Incompatibility::Profile),
        }
        if self.network != other.network {
            return Err(Incompatibility::Network { ours: self.network.clone(), theirs: other.network.clone() });
        }
        // tm2 requires a common channel even if we list none; cometbft only if we list some.
        let must_share = self.profile() == WireProfile::Tm2 || !self.channels.is_empty();
        if must_share && !self.channels.iter().any(|c| other.channels.contains(c)) {
            return Err(Incompatibility::NoCommonChannel);
        }
        Ok(())
    }
}

fn strip_scheme(s: &str) -> &str {
    s.find("://").map_or(s, |i| &s[i + 3..])
}

fn version_sets_compatible(ours: &[VersionInfo], theirs: &[VersionInfo]) -> Result<(), Incompatibility> {
    let mut problems = Vec::new();
    for a in ours {
        match theirs.iter().find(|b| b.name == a.name) {
            Some(b) if semver_major(&a.version) != semver_major(&b.version) => {
                problems.push(format!("{} {} vs {}", a.name, a.version, b.version));
            }
            Some(_) => {}
            None if !a.optional => problems.push(format!("we require {} {}", a.name, a.version)),
            None => {}
        }
    }
    for b in theirs {
        if !b.optional && !ours.iter().any(|a| a.name == b.name) {
            problems.push(format!("they require {} {}", b.name, b.version));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(Incompatibility::Versions(problems.join("; "))) }
}

#[derive(Clone, PartialEq, prost::Message)]
struct Tm2NodeInfo {
    #[prost(message, repeated, tag = "1")]
    version_set: Vec<Tm2VersionInfo>,
    #[prost(string, tag = "2")]
    net_address: String,
    #[prost(string, tag = "3")]
    network: String,
    #[prost(string, tag = "4")]
    software: String,
    #[prost(string, tag = "5")]
    version: String,
    #[prost(bytes = "vec", tag = "6")]
    channels: Vec<u8>,
    #[prost(string, tag = "7")]
    moniker: String,
    #[prost(message, optional, tag = "8")]
    other: Option<Other>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Tm2VersionInfo {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    version: String,
    #[prost(bool, tag = "3")]
    optional: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Other {
    #[prost(string, tag = "1")]
    tx_index: String,
    #[prost(string, tag = "2")]
    rpc_address: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CometNodeInfo {
    #[prost(message, optional, tag = "1")]
    protocol_version: Option<CometProtocolVersion>,
    #[prost(string, tag = "2")]
    default_node_id: String,
    #[prost(string, tag = "3")]
    listen_addr: String,
    #[prost(string, tag = "4")]
    network: String,
    #[prost(string, tag = "5")]
    version: String,
    #[prost(bytes = "vec", tag = "6")]
    channels: Vec<u8>,
    #[prost(string, tag = "7")]
    moniker: String,
    #[prost(message, optional, tag = "8")]
    other: Option<Other>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CometProtocolVersion {
    #[prost(uint64, tag = "1")]
    p2p: u64,
    #[prost(uint64, tag = "2")]
    block: u64,
    #[prost(uint64, tag = "3")]
    app: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerwire_types::NodeKey;

    fn info(profile: WireProfile) -> NodeInfo {
        let id = NodeKey::from_seed(&[5; 32]).node_id(profile);
        NodeInfo::ours(
            profile,
            id,
            "127.0.0.1:26656".parse().unwrap(),
            "test-chain",
            "node0",
            vec![0x40, 0x50],
            "v0.1.0",
        )
    }

    fn body(encoded: &[u8]) -> &[u8] {
        let mut peek = encoded;
        prost::decode_length_delimiter(&mut peek).unwrap();
        peek
    }

    #[test]
    fn cometbft_encoding_matches_the_go_bytes() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../conn/tests/data/cometbft-handshake-vectors.json")).unwrap();
        let ex = &doc["wire_examples"]["node_info_example"];
        let f = &ex["fields"];
        let n = NodeInfo {
            versions: ProtocolVersions::CometBft {
                p2p: f["p2p"].as_u64().unwrap(),
                block: f["block"].as_u64().unwrap(),
                app: f["app"].as_u64().unwrap(),
            },
            id: NodeId::parse(f["id"].as_str().unwrap(), WireProfile::CometBft).unwrap(),
            listen_addr: f["listen_addr"].as_str().unwrap().into(),
            network: f["network"].as_str().unwrap().into(),
            software: String::new(),
            version: f["version"].as_str().unwrap().into(),
            channels: hex::decode(f["channels"].as_str().unwrap()).unwrap(),
            moniker: f["moniker"].as_str().unwrap().into(),
            tx_index: f["tx_index"].as_str().unwrap().into(),
            rpc_address: f["rpc_address"].as_str().unwrap().into(),
        };
        let wire = hex::decode(ex["delimited"].as_str().unwrap()).unwrap();
        assert_eq!(hex::encode(n.encode()), hex::encode(&wire));
        let back = NodeInfo::decode(WireProfile::CometBft, body(&wire)).unwrap();
        assert_eq!(back, n);
        assert_eq!(back.validate(), Ok(()));
        assert_eq!(back.advertised_address().unwrap().to_string(), format!("{}@127.0.0.1:26656", n.id));
    }

    #[test]
    fn tm2_encoding_has_the_amino_shape() {
        let n = info(WireProfile::Tm2);
        let wire = n.encode();
        let b = body(&wire);
        // Field 1: VersionInfo{app, v0.1.0, optional}, then VersionInfo{p2p, v1.0.0-rc.0}.
        assert_eq!(&b[..2], &[0x0a, 0x0f]);
        assert_eq!(&b[2..17], b"\x0a\x03app\x12\x06v0.1.0\x18\x01");
        assert_eq!(&b[17..19], &[0x0a, 0x12]);
        assert_eq!(&b[19..37], b"\x0a\x03p2p\x12\x0bv1.0.0-rc.0");
        // Field 2: "id@127.0.0.1:26656".
        let addr = format!("{}@127.0.0.1:26656", n.id);
        assert_eq!((b[37], b[38] as usize), (0x12, addr.len()));
        assert_eq!(&b[39..39 + addr.len()], addr.as_bytes());
        // Field 8 (tx_index "off") closes the message.
        assert!(b.ends_with(b"\x42\x05\x0a\x03off"));
        assert_eq!(NodeInfo::decode(WireProfile::Tm2, b).unwrap(), n);
        // An empty Other is omitted, as amino does.
        let mut bare = n.clone();
        bare.tx_index.clear();
        assert!(!body(&bare.encode()).windows(2).any(|w| w == [0x42, 0x00]));
    }

    #[test]
    fn validation_follows_the_references() {
        for profile in WireProfile::ALL {
            let ok = info(profile);
            assert_eq!(ok.validate(), Ok(()));
            let check = |f: &dyn Fn(&mut NodeInfo), want: &str| {
                let mut n = ok.clone();
                f(&mut n);
                let e = n.validate().unwrap_err().to_string();
                assert!(e.contains(want), "{profile}: {e}");
            };
            check(&|n| n.moniker = "  ".into(), "moniker");
            check(&|n| n.moniker = "caf\u{e9}".into(), "moniker");
            check(&|n| n.version = "\t".into(), "version");
            check(&|n| n.rpc_address = "\x01".into(), "rpc_address");
            check(&|n| n.channels = (0..17).collect(), "17 channels");
            check(&|n| n.channels = vec![1, 2, 1], "listed twice");
            check(&|n| n.listen_addr = "nope".into(), "listen address");
            // Unspecified IPs and host names are valid, but neither is advertised for dialing.
            let mut n = ok.clone();
            n.listen_addr = "0.0.0.0:26656".into();
            assert_eq!((n.validate(), n.advertised_address()), (Ok(()), None));
            n.listen_addr = "tcp://seed.example.org:26656".into();
            assert_eq!((n.validate(), n.advertised_address()), (Ok(()), None));
        }
        let mut n = info(WireProfile::CometBft);
        n.tx_index = "maybe".into();
        assert!(matches!(n.validate(), Err(NodeInfoError::TxIndex(_))));
        let mut t = info(WireProfile::Tm2);
        t.tx_index = "maybe".into();
        assert_eq!(t.validate(), Ok(()), "tm2 does not check tx_index");
    }

    #[test]
    fn compatibility_follows_the_references() {
        for profile in WireProfile::ALL {
            let a = info(profile);
            let mut b = info(profile);
            assert_eq!(a.compatible_with(&b), Ok(()));
            b.network = "other".into();
            assert!(matches!(a.compatible_with(&b), Err(Incompatibility::Network { .. })));
            let mut b = info(profile);
            b.channels = vec![0x20];
            assert_eq!(a.compatible_with(&b), Err(Incompatibility::NoCommonChannel));
        }
        let tm2 = info(WireProfile::Tm2);
        let with = |versions: Vec<(&str, &str, bool)>| {
            let mut n = info(WireProfile::Tm2);
            n.versions = ProtocolVersions::Tm2(
                versions
                    .into_iter()
                    .map(|(a, b, o)| VersionInfo { name: a.into(), version: b.into(), optional: o })
                    .collect(),
            );
            n
        };
        // A gno node: required abci/bft/blockchain/app entries we lack make it incompatible (they require them).
        let gno = with(vec![
            ("abci", "v1.0.0-rc.0", false),
            ("app", "", false),
            ("bft", "v1.0.0-rc.0", false),
            ("p2p", "v1.0.0-rc.0", false),
        ]);
        assert!(
            matches!(tm2.compatible_with(&gno), Err(Incompatibility::Versions(e)) if e.contains("they require abci"))
        );
        // Same major p2p, other minors and optional extras: compatible.
        assert_eq!(tm2.compatible_with(&with(vec![("p2p", "v1.3.2", false), ("x", "v9", true)])), Ok(()));
        // A different p2p major is not.
        assert!(tm2.compatible_with(&with(vec![("p2p", "v2.0.0", false)])).is_err());
        // Missing our required p2p entry is not.
        assert!(tm2.compatible_with(&with(vec![])).is_err());
        // Non-semver versions collapse to "": two of them compare equal, one against a semver version does not.
        let mut gno_app = tm2.clone();
        gno_app.versions = with(vec![("p2p", "v1.0.0-rc.0", false), ("app", "gno-1", false)]).versions;
        assert_eq!(
            gno_app.compatible_with(&with(vec![("p2p", "v1.0.0-rc.0", false), ("app", "not-semver", false)])),
            Ok(())
        );
        assert!(tm2.compatible_with(&with(vec![("p2p", "v1.0.0-rc.0", false), ("app", "not-semver", false)])).is_err());
        let mut comet = info(WireProfile::CometBft);
        comet.versions = ProtocolVersions::CometBft { p2p: 9, block: 12, app: 1 };
        assert!(matches!(info(WireProfile::CometBft).compatible_with(&comet), Err(Incompatibility::Versions(_))));
        comet.versions = ProtocolVersions::CometBft { p2p: 9, block: 11, app: 1 };
        assert_eq!(info(WireProfile::CometBft).compatible_with(&comet), Ok(()), "p2p and app are not compared");
    }

    #[test]
    fn semver_major_matches_go() {
        assert_eq!(semver_major("v1.0.0-rc.0"), "v1");
        assert_eq!(semver_major("v12.3"), "v12");
        assert_eq!(semver_major("v2"), "v2");
        for bad in ["1.0.0", "v", "vx.1", "v01.2.3", "v1.2.3.4", ""] {
            assert_eq!(semver_major(bad), "", "{bad}");
        }
    }

    #[test]
    fn oversized_and_garbage_node_infos_are_refused() {
        assert!(matches!(NodeInfo::decode(WireProfile::Tm2, &vec![0u8; 10_241]), Err(NodeInfoError::TooLarge(10_241))));
        assert!(matches!(NodeInfo::decode(WireProfile::CometBft, &[0xff; 20]), Err(NodeInfoError::Decode(_))));
        // A cometbft NodeInfo read as tm2 fails on the ID.
        let c = info(WireProfile::CometBft).encode();
        assert!(NodeInfo::decode(WireProfile::Tm2, body(&c)).is_err());
    }
}
