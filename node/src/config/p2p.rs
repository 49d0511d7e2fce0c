//! `[p2p]`: listening, peers, limits, discovery and the NodeInfo we advertise, with TM2's key names.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ledgerwire_p2p::{MConnectionConfig, TransportConfig};
use ledgerwire_types::{HostAddress, NodeId, WireProfile};
use serde::{Deserialize, Serialize};

use super::schema::{Key, Kind, SectionSchema};
use super::{ConfigError, duration_in, invalid, relative_path, socket_addr, within};

/// `[p2p]` as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct P2pSection {
    /// Listen address.
    pub laddr: String,
    /// Advertised address instead of `laddr`.
    pub external_address: String,
    /// Comma-separated `id@host:port`.
    pub persistent_peers: String,
    /// Comma-separated IDs.
    pub private_peer_ids: String,
    /// Most inbound non-persistent peers.
    pub max_num_inbound_peers: u64,
    /// Most outbound non-persistent peers.
    pub max_num_outbound_peers: u64,
    /// Flush throttle.
    pub flush_throttle_timeout: String,
    /// Largest packet payload.
    pub max_packet_msg_payload_size: u64,
    /// Send rate, bytes/s.
    pub send_rate: u64,
    /// Receive rate, bytes/s.
    pub recv_rate: u64,
    /// Peer discovery.
    pub pex: bool,
    /// Comma-separated seed nodes.
    pub seeds: String,
    /// Seed mode: crawl, answer each request once, disconnect.
    pub seed_mode: bool,
    /// How often discovery asks a peer for addresses.
    pub discovery_interval: String,
    /// Address book file, relative to home.
    pub addr_book_file: String,
    /// Handshake deadline.
    pub handshake_timeout: String,
    /// Dial deadline.
    pub dial_timeout: String,
    /// tm2: version-set entries advertised as required, name → version.
    pub advertise_versions: BTreeMap<String, String>,
}

impl Default for P2pSection {
    fn default() -> Self {
        P2pSection {
            laddr: "tcp://0.0.0.0:26656".into(),
            external_address: String::new(),
            persistent_peers: String::new(),
            private_peer_ids: String::new(),
            max_num_inbound_peers: 40,
            max_num_outbound_peers: 10,
            flush_throttle_timeout: "100ms".into(),
            max_packet_msg_payload_size: 1024,
            send_rate: 5_120_000,
            recv_rate: 5_120_000,
            pex: true,
            seeds: String::new(),
            seed_mode: false,
            discovery_interval: "30s".into(),
            addr_book_file: "config/addrbook.json".into(),
            handshake_timeout: "3s".into(),
            dial_timeout: "3s".into(),
            advertise_versions: BTreeMap::new(),
        }
    }
}

pub(crate) const SCHEMA: SectionSchema = SectionSchema {
    name: Some("p2p"),
    doc: "Peers: listening, dialing, limits, discovery.",
    keys: &[
        Key {
            name: "laddr",
            kind: Kind::Address,
            doc: "Address to accept peers on (\"tcp://\" optional; port 0 picks a free port).",
        },
        Key {
            name: "external_address",
            kind: Kind::Address,
            doc: "ip:port to advertise to peers instead of laddr (\"\" = advertise laddr; an unspecified IP there is read by peers as the IP we connect from).",
        },
        Key {
            name: "persistent_peers",
            kind: Kind::List,
            doc: "Comma-separated id@host:port peers to keep connected forever; host names are resolved at each dial.",
        },
        Key {
            name: "private_peer_ids",
            kind: Kind::List,
            doc: "Comma-separated node IDs never shared with other peers.",
        },
        Key {
            name: "max_num_inbound_peers",
            kind: Kind::Integer,
            doc: "Most inbound peers at once, 0 to 10000 (persistent peers are not counted).",
        },
        Key {
            name: "max_num_outbound_peers",
            kind: Kind::Integer,
            doc: "Most outbound peers at once, 0 to 1000 (persistent peers are not counted).",
        },
        Key {
            name: "flush_throttle_timeout",
            kind: Kind::Duration,
            doc: "Longest time written packets wait before being flushed to the socket, 0 to 10s (0 = flush when idle).",
        },
        Key {
            name: "max_packet_msg_payload_size",
            kind: Kind::Integer,
            doc: "Largest packet payload in bytes, 1 to 65536; must match the rest of the network.",
        },
        Key { name: "send_rate", kind: Kind::Integer, doc: "Bytes per second sent per connection (0 = unlimited)." },
        Key {
            name: "recv_rate",
            kind: Kind::Integer,
            doc: "Bytes per second received per connection (0 = unlimited).",
        },
        Key {
            name: "pex",
            kind: Kind::Bool,
            doc: "Peer discovery: exchange addresses with peers and keep an address book.",
        },
        Key {
            name: "seeds",
            kind: Kind::List,
            doc: "Comma-separated id@host:port seed nodes, dialed when the address book cannot supply enough peers.",
        },
        Key {
            name: "seed_mode",
            kind: Kind::Bool,
            doc: "Seed mode: crawl the network, answer each address request once, then disconnect the requester.",
        },
        Key {
            name: "discovery_interval",
            kind: Kind::Duration,
            doc: "How often to ask a peer for addresses and top up outbound peers, 1s to 1h.",
        },
        Key { name: "addr_book_file", kind: Kind::Path, doc: "Where the address book is kept." },
        Key {
            name: "handshake_timeout",
            kind: Kind::Duration,
            doc: "Deadline for each handshake step (secret connection, then NodeInfo) of every connection, 100ms to 5m.",
        },
        Key { name: "dial_timeout", kind: Kind::Duration, doc: "Deadline for the TCP connect of a dial, 100ms to 5m." },
        Key {
            name: "advertise_versions",
            kind: Kind::Table,
            doc: "tm2 only: version-set entries to advertise as required, name = version; a gno network needs its own set (see docs/configuration.md).",
        },
    ],
};

/// Most entries in `advertise_versions`.
pub const MAX_ADVERTISED_VERSIONS: usize = 16;

/// The resolved `[p2p]` settings.
#[derive(Clone, Debug)]
pub struct P2pConfig {
    /// Listen address.
    pub laddr: SocketAddr,
    /// Advertised address.
    pub external_address: Option<SocketAddr>,
    /// Persistent peers.
    pub persistent_peers: Vec<HostAddress>,
    /// Private peers.
    pub private_peer_ids: Vec<NodeId>,
    /// Seed nodes.
    pub seeds: Vec<HostAddress>,
    /// Whether peer discovery runs.
    pub pex: bool,
    /// Seed mode.
    pub seed_mode: bool,
    /// Discovery interval.
    pub discovery_interval: Duration,
    /// Address book file.
    pub addr_book_file: PathBuf,
    /// Most inbound peers.
    pub max_inbound: usize,
    /// Most outbound peers.
    pub max_outbound: usize,
    /// Per-connection settings.
    pub connection: MConnectionConfig,
    /// Transport deadlines.
    pub transport: TransportConfig,
    /// Required version-set entries to advertise (tm2).
    pub advertise_versions: BTreeMap<String, String>,
}

fn list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|e| !e.is_empty())
}

/// A peer list: `id@host:port` entries separated by commas, each ID once.
fn peers(key: &'static str, s: &str, profile: WireProfile) -> Result<Vec<HostAddress>, ConfigError> {
    if s.contains(';') {
        return Err(invalid(key, "separate entries with commas, not semicolons"));
    }
    let mut seen = HashSet::new();
    list(s)
        .map(|e| {
            let address = HostAddress::parse(e, profile).map_err(|err| invalid(key, format!("{e:?}: {err}")))?;
            if !seen.insert(address.id()) {
                return Err(invalid(key, format!("{} is listed twice", address.id())));
            }
            Ok(address)
        })
        .collect()
}

fn version_text(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| (33..=126).contains(&b))
}

impl P2pSection {
    pub(crate) fn resolve(&self, profile: WireProfile, home: &Path) -> Result<P2pConfig, ConfigError> {
        let external_address = match self.external_address.trim() {
            "" => None,
            s => Some(socket_addr("p2p.external_address", s)?),
        };
        if self.private_peer_ids.contains(';') {
            return Err(invalid("p2p.private_peer_ids", "separate entries with commas, not semicolons"));
        }
        let private_peer_ids = list(&self.private_peer_ids)
            .map(|e| NodeId::parse(e, profile).map_err(|err| invalid("p2p.private_peer_ids", err)))
            .collect::<Result<Vec<_>, _>>()?;
        let payload = within("p2p.max_packet_msg_payload_size", self.max_packet_msg_payload_size, 1, 65_536)?;
        let connection = MConnectionConfig {
            max_packet_msg_payload_size: payload as usize,
            send_rate: self.send_rate,
            recv_rate: self.recv_rate,
            flush_throttle: duration_in(
                "p2p.flush_throttle_timeout",
                &self.flush_throttle_timeout,
                Duration::ZERO,
                Duration::from_secs(10),
            )?,
            ..MConnectionConfig::default()
        };
        let (short, long) = (Duration::from_millis(100), Duration::from_secs(300));
        let transport = TransportConfig {
            handshake_timeout: duration_in("p2p.handshake_timeout", &self.handshake_timeout, short, long)?,
            dial_timeout: duration_in("p2p.dial_timeout", &self.dial_timeout, short, long)?,
            ..TransportConfig::default()
        };
        if !self.advertise_versions.is_empty() && profile != WireProfile::Tm2 {
            return Err(invalid("p2p.advertise_versions", "only the tm2 profile advertises a version set"));
        }
        if self.advertise_versions.len() > MAX_ADVERTISED_VERSIONS {
            return Err(invalid("p2p.advertise_versions", format!("at most {MAX_ADVERTISED_VERSIONS} entries")));
        }
        for (name, version) in &self.advertise_versions {
            if !version_text(name) || !version_text(version) {
                return Err(invalid(
                    "p2p.advertise_versions",
                    format!(
                        "{name:?} = {version:?}: names and versions are 1 to 64 printable characters without spaces"
                    ),
                ));
            }
        }
        Ok(P2pConfig {
            laddr: socket_addr("p2p.laddr", &self.laddr)?,
            external_address,
            persistent_peers: peers("p2p.persistent_peers", &self.persistent_peers, profile)?,
            private_peer_ids,
            seeds: peers("p2p.seeds", &self.seeds, profile)?,
            pex: self.pex,
            seed_mode: self.seed_mode,
            discovery_interval: duration_in(
                "p2p.discovery_interval",
                &self.discovery_interval,
                Duration::from_secs(1),
                Duration::from_secs(3600),
            )?,
            addr_book_file: relative_path("p2p.addr_book_file", &self.addr_book_file, home)?,
            max_inbound: within("p2p.max_num_inbound_peers", self.max_num_inbound_peers, 0, 10_000)? as usize,
            max_outbound: within("p2p.max_num_outbound_peers", self.max_num_outbound_peers, 0, 1_000)? as usize,
            connection,
            transport,
            advertise_versions: self.advertise_versions.clone(),
        })
    }
}
