//! `config.toml`: the node's configuration.
//!
//! The file is parsed in two steps: TOML into [`ConfigFile`] (unknown keys and wrong types are refused, naming the
//! key), then [`ConfigFile::resolve`] into a typed [`NodeConfig`], where every bad value is reported as
//! `section.key: reason`. A node with a bad value refuses to start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ledgerwire_p2p::{MConnectionConfig, SwitchConfig, TransportConfig};
use ledgerwire_types::{HostAddress, NodeId, WireProfile};
use serde::{Deserialize, Serialize};

use crate::duration;

/// The config file's location inside a home directory.
pub const CONFIG_FILE: &str = "config/config.toml";

/// The file as written: plain values, every key optional (defaults fill the gaps).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigFile {
    /// `tm2` or `cometbft`.
    pub profile: String,
    /// Network (chain) ID.
    pub network: String,
    /// Human-readable node name.
    pub moniker: String,
    /// Node key file, relative to home.
    pub node_key_file: String,
    /// `[log]`.
    pub log: LogSection,
    /// `[p2p]`.
    pub p2p: P2pSection,
    /// `[admin]`.
    pub admin: AdminSection,
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// `trace`, `debug`, `info`, `warn`, `error` or `critical`.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

/// `[p2p]`, with TM2's key names.
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
}

/// `[admin]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSection {
    /// Admin API address.
    pub laddr: String,
    /// Bearer token file, relative to home.
    pub token_file: String,
}

impl Default for ConfigFile {
    fn default() -> Self {
        ConfigFile {
            profile: "tm2".into(),
            network: "ledgerwire-devnet".into(),
            moniker: "ledgerwire-node".into(),
            node_key_file: "secrets/node_key.json".into(),
            log: LogSection::default(),
            p2p: P2pSection::default(),
            admin: AdminSection::default(),
        }
    }
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection { level: "info".into(), format: "text".into() }
    }
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
        }
    }
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection { laddr: "127.0.0.1:26658".into(), token_file: "config/admin_token".into() }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The home directory every relative path is resolved against.
    pub home: PathBuf,
    /// Wire profile.
    pub profile: WireProfile,
    /// Network ID.
    pub network: String,
    /// Moniker.
    pub moniker: String,
    /// Node key file.
    pub node_key_file: PathBuf,
    /// Log level.
    pub log_level: slog::Level,
    /// Log format.
    pub log_format: LogFormat,
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
    /// Connection limits and deadlines.
    pub max_inbound: usize,
    /// Connection limits and deadlines.
    pub max_outbound: usize,
    /// Per-connection settings.
    pub connection: MConnectionConfig,
    /// Transport deadlines.
    pub transport: TransportConfig,
    /// Admin API address.
    pub admin_laddr: SocketAddr,
    /// Admin token file.
    pub admin_token_file: PathBuf,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key or a wrong type.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (it names the key).
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("{key}: {reason}")]
    Invalid {
        /// `section.key`.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

fn invalid(key: &'static str, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid { key, reason: reason.to_string() }
}

fn strip_scheme(s: &str) -> &str {
    s.find("://").map_or(s, |i| &s[i + 3..])
}

fn socket_addr(key: &'static str, s: &str) -> Result<SocketAddr, ConfigError> {
    strip_scheme(s).parse().map_err(|_| invalid(key, format!("{s:?} is not ip:port (IPv6 in brackets)")))
}

fn list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|e| !e.is_empty())
}

fn duration_of(key: &'static str, s: &str, allow_zero: bool) -> Result<Duration, ConfigError> {
    let d = duration::parse(s).map_err(|e| invalid(key, e))?;
    if d.is_zero() && !allow_zero {
        return Err(invalid(key, "must be greater than zero"));
    }
    Ok(d)
}

fn usize_of(key: &'static str, v: u64) -> Result<usize, ConfigError> {
    usize::try_from(v).map_err(|_| invalid(key, "too large"))
}

impl ConfigFile {
    /// Parses TOML text.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Syntax { path: path.to_owned(), message: e.to_string() })
    }

    /// Checks every value and produces the typed configuration; `home` anchors relative paths.
    pub fn resolve(&self, home: &Path) -> Result<NodeConfig, ConfigError> {
        let profile: WireProfile = self.profile.parse().map_err(|e| invalid("profile", e))?;
        if self.network.trim().is_empty() || !self.network.bytes().all(|b| (33..=126).contains(&b)) {
            return Err(invalid("network", "must be non-empty printable ASCII without spaces"));
        }
        if self.moniker.trim().is_empty() || !self.moniker.bytes().all(|b| (32..=126).contains(&b)) {
            return Err(invalid("moniker", "must be non-empty printable ASCII"));
        }
        let log_level = match self.log.level.as_str() {
            "trace" => slog::Level::Trace,
            "debug" => slog::Level::Debug,
            "info" => slog::Level::Info,
            "warn" => slog::Level::Warning,
            "error" => slog::Level::Error,
            "critical" => slog::Level::Critical,
            other => {
                return Err(invalid(
                    "log.level",
                    format!("{other:?}: expected trace, debug, info, warn, error or critical"),
                ));
            }
        };
        let log_format = match self.log.format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(invalid("log.format", format!("{other:?}: expected text or json"))),
        };
        let p = &self.p2p;
        let laddr = socket_addr("p2p.laddr", &p.laddr)?;
        let external_address = match p.external_address.trim() {
            "" => None,
            s => Some(socket_addr("p2p.external_address", s)?),
        };
        let parse_peers = |key: &'static str, s: &str| {
            list(s)
                .map(|e| HostAddress::parse(e, profile).map_err(|err| invalid(key, format!("{e:?}: {err}"))))
                .collect::<Result<Vec<_>, _>>()
        };
        let persistent_peers = parse_peers("p2p.persistent_peers", &p.persistent_peers)?;
        let seeds = parse_peers("p2p.seeds", &p.seeds)?;
        let private_peer_ids = list(&p.private_peer_ids)
            .map(|e| NodeId::parse(e, profile).map_err(|err| invalid("p2p.private_peer_ids", err)))
            .collect::<Result<Vec<_>, _>>()?;
        let max_payload = usize_of("p2p.max_packet_msg_payload_size", p.max_packet_msg_payload_size)?;
        let connection = MConnectionConfig {
            max_packet_msg_payload_size: max_payload,
            send_rate: p.send_rate,
            recv_rate: p.recv_rate,
            flush_throttle: duration_of("p2p.flush_throttle_timeout", &p.flush_throttle_timeout, true)?,
            ..MConnectionConfig::default()
        };
        connection.validate().map_err(|e| invalid("p2p.max_packet_msg_payload_size", e))?;
        let transport = TransportConfig {
            handshake_timeout: duration_of("p2p.handshake_timeout", &p.handshake_timeout, false)?,
            dial_timeout: duration_of("p2p.dial_timeout", &p.dial_timeout, false)?,
            ..TransportConfig::default()
        };
        let path = |key: &'static str, s: &str| {
            if s.trim().is_empty() {
                return Err(invalid(key, "must not be empty"));
            }
            let p = Path::new(s);
            Ok(if p.is_absolute() { p.to_owned() } else { home.join(p) })
        };
        Ok(NodeConfig {
            home: home.to_owned(),
            profile,
            network: self.network.clone(),
            moniker: self.moniker.clone(),
            node_key_file: path("node_key_file", &self.node_key_file)?,
            log_level,
            log_format,
            laddr,
            external_address,
            persistent_peers,
            private_peer_ids,
            seeds,
            pex: p.pex,
            seed_mode: p.seed_mode,
            discovery_interval: duration_of("p2p.discovery_interval", &p.discovery_interval, false)?,
            addr_book_file: path("p2p.addr_book_file", &p.addr_book_file)?,
            max_inbound: usize_of("p2p.max_num_inbound_peers", p.max_num_inbound_peers)?,
            max_outbound: usize_of("p2p.max_num_outbound_peers", p.max_num_outbound_peers)?,
            connection,
            transport,
            admin_laddr: socket_addr("admin.laddr", &self.admin.laddr)?,
            admin_token_file: path("admin.token_file", &self.admin.token_file)?,
        })
    }
}

impl NodeConfig {
    /// Reads and validates `home/config/config.toml`.
    pub fn load(home: &Path) -> Result<NodeConfig, ConfigError> {
        let path = home.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
        ConfigFile::parse(&text, &path)?.resolve(home)
    }

    /// The switch settings this configuration describes.
    pub fn switch_config(&self) -> SwitchConfig {
        let mut c = SwitchConfig::new(self.laddr, &self.network);
        c.external_address = self.external_address;
        c.moniker = self.moniker.clone();
        c.max_inbound = self.max_inbound;
        c.max_outbound = self.max_outbound;
        c.persistent_peers = self.persistent_peers.clone();
        c.private_peer_ids = self.private_peer_ids.clone();
        c.transport = self.transport;
        c.connection = self.connection;
        c
    }
}

/// The `config.toml` that `ledgerwire init` writes: every key with its default and a one-line comment.
pub fn template(profile: WireProfile, network: &str, moniker: &str) -> String {
    let d = ConfigFile::default();
    let p = &d.p2p;
    let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
    format!(
        r#"# ledgerwire node configuration. Every key is listed with its default; paths are relative to the home directory.

# Wire profile: "tm2" (gno Tendermint2, g1... IDs) or "cometbft" (CometBFT v0.34+, hex IDs). Peers must match.
profile = {profile}
# Network (chain) ID; peers on another network are refused.
network = {network}
# Human-readable name shown to peers (printable ASCII).
moniker = {moniker}
# The node's Ed25519 key (gno and CometBFT key files are accepted).
node_key_file = {node_key_file}

[log]
# trace, debug, info, warn, error or critical.
level = {level}
# "text" for people, "json" for machines (the --log-format flag overrides this).
format = {format}

[p2p]
# Address to accept peers on ("tcp://" optional; port 0 picks a free port).
laddr = {laddr}
# ip:port to advertise to peers instead of laddr ("" = advertise laddr).
external_address = {external}
# Comma-separated id@host:port peers to keep connected forever; host names are resolved at each dial.
persistent_peers = {persistent}
# Comma-separated node IDs never shared with other peers.
private_peer_ids = {private}
# Most inbound peers at once (persistent peers are not counted).
max_num_inbound_peers = {max_in}
# Most outbound peers at once (persistent peers are not counted).
max_num_outbound_peers = {max_out}
# Longest time written packets wait before being flushed to the socket (Go duration; 0 = flush when idle).
flush_throttle_timeout = {flush}
# Largest packet payload in bytes; must match the rest of the network.
max_packet_msg_payload_size = {payload}
# Bytes per second sent per connection (0 = unlimited).
send_rate = {send_rate}
# Bytes per second received per connection (0 = unlimited).
recv_rate = {recv_rate}
# Peer discovery: exchange addresses with peers and keep an address book.
pex = {pex}
# Comma-separated id@host:port seed nodes, dialed when the address book cannot supply enough peers.
seeds = {seeds}
# Seed mode: crawl the network, answer each address request once, then disconnect the requester.
seed_mode = {seed_mode}
# How often to ask a peer for addresses and top up outbound peers (Go duration).
discovery_interval = {discovery_interval}
# Where the address book is kept.
addr_book_file = {addr_book}
# Deadline for each handshake step (secret connection, then NodeInfo) of every connection.
handshake_timeout = {handshake}
# Deadline for the TCP connect of a dial.
dial_timeout = {dial}

[admin]
# Admin HTTP API address; keep it on loopback or behind a firewall.
laddr = {admin_laddr}
# File with the bearer token every admin request must present.
token_file = {token_file}
"#,
        profile = q(profile.as_str()),
        network = q(network),
        moniker = q(moniker),
        node_key_file = q(&d.node_key_file),
        level = q(&d.log.level),
        format = q(&d.log.format),
        laddr = q(&p.laddr),
        external = q(&p.external_address),
        persistent = q(&p.persistent_peers),
        private = q(&p.private_peer_ids),
        max_in = p.max_num_inbound_peers,
        max_out = p.max_num_outbound_peers,
        flush = q(&p.flush_throttle_timeout),
        payload = p.max_packet_msg_payload_size,
        send_rate = p.send_rate,
        recv_rate = p.recv_rate,
        pex = p.pex,
        seeds = q(&p.seeds),
        seed_mode = p.seed_mode,
        discovery_interval = q(&p.discovery_interval),
        addr_book = q(&p.addr_book_file),
        handshake = q(&p.handshake_timeout),
        dial = q(&p.dial_timeout),
        admin_laddr = q(&d.admin.laddr),
        token_file = q(&d.admin.token_file),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str) -> Result<NodeConfig, ConfigError> {
        ConfigFile::parse(text, Path::new("config.toml"))?.resolve(Path::new("/home/node"))
    }

    #[test]
    fn the_template_lists_every_key_with_its_default_and_a_comment() {
        let text = template(WireProfile::Tm2, "ledgerwire-devnet", "ledgerwire-node");
        let parsed = ConfigFile::parse(&text, Path::new("t")).unwrap();
        assert_eq!(parsed, ConfigFile::default());
        // Every key line is preceded by a comment line.
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.starts_with('#') && line.contains(" = ") {
                assert!(lines[i - 1].starts_with('#'), "no comment above {line:?}");
            }
        }
        let keys = [
            "laddr",
            "external_address",
            "persistent_peers",
            "private_peer_ids",
            "max_num_inbound_peers",
            "max_num_outbound_peers",
            "flush_throttle_timeout",
            "max_packet_msg_payload_size",
            "send_rate",
            "recv_rate",
            "pex",
            "seeds",
            "addr_book_file",
            "handshake_timeout",
            "dial_timeout",
        ];
        for k in keys {
            assert!(text.contains(&format!("\n{k} = ")), "{k} missing");
        }
        let c = parsed.resolve(Path::new("/h")).unwrap();
        assert_eq!(c.node_key_file, Path::new("/h/secrets/node_key.json"));
        assert_eq!(c.connection, MConnectionConfig::default());
    }

    #[test]
    fn bad_values_name_the_key_and_the_reason() {
        let cases = [
            ("profile = \"tendermint\"", "profile:"),
            ("[p2p]\nsend_rate = -1", "send_rate"),
            ("[p2p]\nladdr = \"localhost\"", "p2p.laddr:"),
            ("[p2p]\nflush_throttle_timeout = \"fast\"", "p2p.flush_throttle_timeout:"),
            ("[p2p]\nhandshake_timeout = \"0\"", "p2p.handshake_timeout: must be greater than zero"),
            ("[p2p]\nmax_packet_msg_payload_size = 0", "p2p.max_packet_msg_payload_size:"),
            ("[p2p]\npersistent_peers = \"abc@1.2.3.4:1\"", "p2p.persistent_peers: \"abc@1.2.3.4:1\""),
            ("[p2p]\nprivate_peer_ids = \"nope\"", "p2p.private_peer_ids:"),
            ("[p2p]\nmax_num_inbound = 3", "unknown field `max_num_inbound`"),
            ("[admin]\nladdr = \"127.0.0.1\"", "admin.laddr:"),
            ("[log]\nlevel = \"loud\"", "log.level:"),
            ("network = \"two words\"", "network:"),
            ("moniker = \"\"", "moniker:"),
        ];
        for (text, want) in cases {
            let e = resolve(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?} gave {e:?}");
        }
    }

    #[test]
    fn peers_and_addresses_parse_in_the_profile_notation() {
        let id = ledgerwire_types::NodeKey::from_seed(&[3; 32]).node_id(WireProfile::CometBft);
        let text = format!(
            "profile = \"cometbft\"\n[p2p]\nladdr = \"tcp://[::1]:0\"\npersistent_peers = \"{id}@seed.example.org:26656, {id}@10.0.0.1:1,\"\nprivate_peer_ids = \"{id}\"\nexternal_address = \"1.2.3.4:26656\""
        );
        let c = resolve(&text).unwrap();
        assert_eq!(c.persistent_peers.len(), 2, "names are fine here, and empty entries are skipped");
        assert_eq!(c.private_peer_ids, vec![id]);
        assert_eq!(c.laddr, "[::1]:0".parse().unwrap());
        assert_eq!(c.external_address, Some("1.2.3.4:26656".parse().unwrap()));
        let s = c.switch_config();
        assert_eq!((s.max_inbound, s.max_outbound, s.persistent_peers.len()), (40, 10, 2));
    }
}
