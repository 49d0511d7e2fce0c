//! `config.toml`: the node's configuration.
//!
//! Each section lives in its own module, which owns its keys, their defaults, their one-line documentation and
//! their validation: [`general`] (the keys at the top), [`log`], [`p2p`], [`admin`], [`ilp`]. Adding a section means adding a
//! module and naming it in [`ConfigFile`] and in the list of sections (`SECTIONS`).
//!
//! The file is read in two steps: TOML into [`ConfigFile`] (unknown keys and wrong types are refused), then
//! [`ConfigFile::resolve`] into a typed [`NodeConfig`]. Every error is one line: `section.key: reason`, with a hint
//! where one helps (`p2p.dial_timeout: expected a duration in quotes; write "3s"`), or the line and column for
//! TOML syntax that names no key. A node with a bad value refuses to start.

pub mod admin;
pub mod general;
pub mod ilp;
pub mod log;
pub mod metrics;
pub mod p2p;
pub(crate) mod schema;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ledgerwire_p2p::SwitchConfig;
use ledgerwire_types::{NodeId, WireProfile};
use serde::{Deserialize, Serialize};

use crate::duration;
pub use admin::{AdminConfig, AdminSection};
pub use ilp::{IlpConfig, IlpSection};
pub use log::{LogConfig, LogFormat, LogSection};
pub use metrics::{MetricsConfig, MetricsSection};
pub use p2p::{P2pConfig, P2pSection};
use schema::SectionSchema;

/// The config file's location inside a home directory.
pub const CONFIG_FILE: &str = "config/config.toml";

/// Every section, in file order.
pub(crate) const SECTIONS: [SectionSchema; 6] =
    [general::SCHEMA, log::SCHEMA, p2p::SCHEMA, admin::SCHEMA, metrics::SCHEMA, ilp::SCHEMA];

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
    /// `[metrics]`.
    pub metrics: MetricsSection,
    /// `[ilp]`.
    pub ilp: IlpSection,
}

impl Default for ConfigFile {
    fn default() -> Self {
        ConfigFile {
            profile: general::PROFILE.into(),
            network: general::NETWORK.into(),
            moniker: general::MONIKER.into(),
            node_key_file: general::NODE_KEY_FILE.into(),
            log: LogSection::default(),
            p2p: P2pSection::default(),
            admin: AdminSection::default(),
            metrics: MetricsSection::default(),
            ilp: IlpSection::default(),
        }
    }
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
    /// `[log]`.
    pub log: LogConfig,
    /// `[p2p]`.
    pub p2p: P2pConfig,
    /// `[admin]`.
    pub admin: AdminConfig,
    /// `[metrics]`.
    pub metrics: MetricsConfig,
    /// `[ilp]`.
    pub ilp: IlpConfig,
}

/// Why a configuration was refused. Every variant prints as one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The home has no configuration.
    #[error(
        "no configuration at {0}: create the home with `ledgerwire init --home <dir>` (or `ledgerwire start --init`)"
    )]
    Missing(PathBuf),
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax that names no key.
    #[error("{}: {message}", at(path, *line))]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Line and column.
        line: Option<(usize, usize)>,
        /// The parser's message (its first line).
        message: String,
    },
    /// A value is out of range, malformed or of the wrong type, or a key is unknown.
    #[error("{key}: {reason}")]
    Invalid {
        /// `section.key`.
        key: String,
        /// Why, with a hint where one helps.
        reason: String,
    },
}

fn at(path: &Path, line: Option<(usize, usize)>) -> String {
    match line {
        Some((l, c)) => format!("{} line {l}, column {c}", path.display()),
        None => path.display().to_string(),
    }
}

pub(crate) fn invalid(key: impl Into<String>, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid { key: key.into(), reason: reason.to_string() }
}

fn strip_scheme(s: &str) -> &str {
    s.find("://").map_or(s, |i| &s[i + 3..])
}

pub(crate) fn socket_addr(key: &'static str, s: &str) -> Result<SocketAddr, ConfigError> {
    strip_scheme(s).parse().map_err(|_| invalid(key, format!("{s:?} is not ip:port (IPv6 in brackets)")))
}

/// A Go duration between `min` and `max`.
pub(crate) fn duration_in(key: &'static str, s: &str, min: Duration, max: Duration) -> Result<Duration, ConfigError> {
    let d = duration::parse(s).map_err(|e| invalid(key, e))?;
    if d < min || d > max {
        let range = format!("{} to {}", duration::format(min), duration::format(max));
        return Err(invalid(key, format!("{s:?} is out of range ({range})")));
    }
    Ok(d)
}

/// An HTTP listener's limits from its section's keys (`[connections, header_read_timeout, idle_timeout]`): at most
/// `cap` connections, header timeouts of 100 ms to 5 min, idle timeouts of 100 ms to 1 h.
pub(crate) fn http_limits(
    keys: [&'static str; 3],
    values: (u64, &str, &str),
    cap: u64,
    max_body_bytes: usize,
) -> Result<ledgerwire_reactors::ilp_over_http::HttpLimits, ConfigError> {
    Ok(ledgerwire_reactors::ilp_over_http::HttpLimits {
        max_connections: within(keys[0], values.0, 1, cap)? as usize,
        header_read_timeout: duration_in(
            keys[1],
            values.1,
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(300),
        )?,
        idle_timeout: duration_in(
            keys[2],
            values.2,
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(3600),
        )?,
        max_body_bytes,
    })
}

/// A whole number between `min` and `max`.
pub(crate) fn within(key: &'static str, v: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
    if v < min || v > max {
        return Err(invalid(key, format!("{v} is out of range ({min} to {max})")));
    }
    Ok(v)
}

/// A non-empty path, relative to `home` unless absolute.
pub(crate) fn relative_path(key: &'static str, s: &str, home: &Path) -> Result<PathBuf, ConfigError> {
    if s.trim().is_empty() {
        return Err(invalid(key, "must not be empty"));
    }
    let p = Path::new(s);
    Ok(if p.is_absolute() { p.to_owned() } else { home.join(p) })
}

impl ConfigFile {
    /// Parses TOML text; errors are one line and name the key.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| schema::explain(&e, text, path, &SECTIONS))
    }

    /// Checks every value and produces the typed configuration; `home` anchors relative paths.
    pub fn resolve(&self, home: &Path) -> Result<NodeConfig, ConfigError> {
        let general = general::resolve(self, home)?;
        Ok(NodeConfig {
            home: home.to_owned(),
            log: self.log.resolve()?,
            p2p: self.p2p.resolve(general.profile, home)?,
            admin: self.admin.resolve(home)?,
            metrics: self.metrics.resolve()?,
            ilp: self.ilp.resolve(general.profile, home)?,
            profile: general.profile,
            network: general.network,
            moniker: general.moniker,
            node_key_file: general.node_key_file,
        })
    }

    /// The file as commented TOML: every key with its value and a one-line comment.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# ledgerwire node configuration. Every key is listed with its default; paths are relative to the home directory.\n\n",
        );
        let sections: [(&SectionSchema, toml::Value); 6] = [
            (&general::SCHEMA, to_value(self)),
            (&log::SCHEMA, to_value(&self.log)),
            (&p2p::SCHEMA, to_value(&self.p2p)),
            (&admin::SCHEMA, to_value(&self.admin)),
            (&metrics::SCHEMA, to_value(&self.metrics)),
            (&ilp::SCHEMA, to_value(&self.ilp)),
        ];
        for (schema, values) in sections {
            out.push_str(&schema.render(&values));
        }
        // Accounts and routes, as [[ilp.accounts]] and [[ilp.routes]] blocks at the end.
        #[derive(Serialize)]
        struct Tables<'a> {
            ilp: IlpTables<'a>,
        }
        #[derive(Serialize)]
        struct IlpTables<'a> {
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            accounts: &'a [ledgerwire_reactors::accounts::AccountSpec],
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            routes: &'a [ilp::RouteEntry],
        }
        if !self.ilp.accounts.is_empty() || !self.ilp.routes.is_empty() {
            let tables = Tables { ilp: IlpTables { accounts: &self.ilp.accounts, routes: &self.ilp.routes } };
            if let Ok(text) = toml::to_string(&tables) {
                out.push('\n');
                out.push_str(&text);
            }
        }
        out
    }

    /// Every key as the reference lists it, with its default: (`` `[p2p] laddr` ``, `"tcp://0.0.0.0:26656"`).
    pub fn documented_defaults() -> Vec<(String, String)> {
        let d = ConfigFile::default();
        let mut out = general::SCHEMA.defaults(&to_value(&d));
        out.extend(log::SCHEMA.defaults(&to_value(&d.log)));
        out.extend(p2p::SCHEMA.defaults(&to_value(&d.p2p)));
        out.extend(admin::SCHEMA.defaults(&to_value(&d.admin)));
        out.extend(metrics::SCHEMA.defaults(&to_value(&d.metrics)));
        out.extend(ilp::SCHEMA.defaults(&to_value(&d.ilp)));
        out
    }
}

fn to_value(v: &impl Serialize) -> toml::Value {
    toml::Value::try_from(v).unwrap_or(toml::Value::Table(toml::Table::new()))
}

impl NodeConfig {
    /// Reads and validates `home/config/config.toml`.
    pub fn load(home: &Path) -> Result<NodeConfig, ConfigError> {
        let path = home.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => ConfigError::Missing(path.clone()),
            _ => ConfigError::Read { path: path.clone(), source },
        })?;
        ConfigFile::parse(&text, &path)?.resolve(home)
    }

    /// Checks what needs the node's own ID: it must not be among its persistent peers or seeds.
    pub fn check_own_id(&self, id: NodeId) -> Result<(), ConfigError> {
        for (key, list) in [("p2p.persistent_peers", &self.p2p.persistent_peers), ("p2p.seeds", &self.p2p.seeds)] {
            if let Some(me) = list.iter().find(|a| a.id() == id) {
                return Err(invalid(key, format!("{me} is this node itself")));
            }
        }
        Ok(())
    }

    /// The switch settings this configuration describes.
    pub fn switch_config(&self) -> SwitchConfig {
        let p = &self.p2p;
        let mut c = SwitchConfig::new(p.laddr, &self.network);
        c.external_address = p.external_address;
        c.moniker = self.moniker.clone();
        c.max_inbound = p.max_inbound;
        c.max_outbound = p.max_outbound;
        c.persistent_peers = p.persistent_peers.clone();
        c.private_peer_ids = p.private_peer_ids.clone();
        c.transport = p.transport;
        c.connection = p.connection;
        c.advertise_versions = p.advertise_versions.clone();
        c
    }
}

/// The `config.toml` that `ledgerwire init` writes: every key with its default (the given profile, network and
/// moniker) and a one-line comment.
pub fn template(profile: WireProfile, network: &str, moniker: &str) -> String {
    ConfigFile {
        profile: profile.as_str().into(),
        network: network.into(),
        moniker: moniker.into(),
        ..ConfigFile::default()
    }
    .render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerwire_p2p::MConnectionConfig;

    fn resolve(text: &str) -> Result<NodeConfig, ConfigError> {
        ConfigFile::parse(text, Path::new("config.toml"))?.resolve(Path::new("/home/node"))
    }

    fn error(text: &str) -> String {
        let e = resolve(text).unwrap_err().to_string();
        assert!(!e.contains('\n'), "one line: {e:?}");
        e
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
        for (name, default) in ConfigFile::documented_defaults() {
            let key = name.rsplit(' ').next().unwrap();
            if default == "[]" && (key == "accounts" || key == "routes") {
                // Arrays of tables: documented by a comment, written as [[ilp.accounts]] blocks.
                assert!(text.contains(&format!("[[ilp.{key}]]")), "{key} not explained");
                continue;
            }
            assert!(text.contains(&format!("\n{key} = ")), "{key} missing");
        }
        let c = parsed.resolve(Path::new("/h")).unwrap();
        assert_eq!(c.node_key_file, Path::new("/h/secrets/node_key.json"));
        assert_eq!(c.p2p.connection, MConnectionConfig::default());
        // Values given to init are written as given.
        let custom = template(WireProfile::CometBft, "chain-7", "alice");
        let c = ConfigFile::parse(&custom, Path::new("t")).unwrap().resolve(Path::new("/h")).unwrap();
        assert_eq!((c.profile, c.network.as_str(), c.moniker.as_str()), (WireProfile::CometBft, "chain-7", "alice"));
    }

    #[test]
    fn bad_values_name_the_key_and_the_reason_in_one_line() {
        let cases = [
            ("profile = \"tendermint\"", "profile:"),
            ("[p2p]\nsend_rate = -1", "p2p.send_rate: expected a whole number"),
            ("[p2p]\nladdr = \"localhost\"", "p2p.laddr:"),
            ("[p2p]\nflush_throttle_timeout = \"fast\"", "p2p.flush_throttle_timeout:"),
            ("[p2p]\nhandshake_timeout = \"0\"", "p2p.handshake_timeout: \"0\" is out of range (100ms to 5m)"),
            ("[p2p]\nhandshake_timeout = \"1ns\"", "p2p.handshake_timeout: \"1ns\" is out of range"),
            ("[p2p]\ndiscovery_interval = \"3000000000000000h\"", "p2p.discovery_interval:"),
            ("[p2p]\nflush_throttle_timeout = \"3000000000000000h\"", "p2p.flush_throttle_timeout:"),
            ("[p2p]\nmax_packet_msg_payload_size = 0", "p2p.max_packet_msg_payload_size: 0 is out of range"),
            (
                "[p2p]\nmax_num_inbound_peers = 99999999999999999999999",
                "p2p.max_num_inbound_peers: the number is too large",
            ),
            ("[p2p]\npersistent_peers = \"abc@1.2.3.4:1\"", "p2p.persistent_peers: \"abc@1.2.3.4:1\""),
            ("[p2p]\nprivate_peer_ids = \"nope\"", "p2p.private_peer_ids:"),
            ("[p2p]\nmax_num_inbound = 3", "p2p.max_num_inbound: unknown key (did you mean max_num_inbound_peers?)"),
            ("[pp2p]\nladdr = \"x\"", "pp2p: unknown key (did you mean p2p?)"),
            ("[admin]\nladdr = \"127.0.0.1\"", "admin.laddr:"),
            ("[log]\nlevel = \"loud\"", "log.level:"),
            ("network = \"two words\"", "network:"),
            ("moniker = \"\"", "moniker:"),
            ("[p2p]\ndial_timeout = 3", "p2p.dial_timeout: expected a duration in quotes; write \"3s\""),
            ("[p2p]\npex = \"yes\"", "p2p.pex: expected true or false without quotes"),
            ("profile = tm2", "profile: expected a value in quotes"),
            ("[p2p]\nseeds = [\"a\"]", "p2p.seeds: expected one string of comma-separated entries"),
            ("[p2p]\nadvertise_versions = { app = 1 }", "p2p.advertise_versions: expected a table of names"),
            ("[p2p]\nadvertise_versions = { app = \"two words\" }", "p2p.advertise_versions:"),
            ("profile = \"cometbft\"\n[p2p]\nadvertise_versions = { app = \"dev\" }", "only the tm2 profile"),
            ("[p2p\nx = 1", "config.toml line 1, column"),
            ("[ilp]\naddress = \"g\"", "ilp.address:"),
            ("[ilp]\nspread = 0.002", "ilp.spread: expected a decimal in quotes; write \"0.002\""),
            ("[ilp]\nspread = \"1\"", "ilp.spread:"),
            ("[ilp]\nprices = { EUR = \"-1\" }", "ilp.prices: EUR:"),
            ("[ilp]\nmax_hold_time = \"1s\"", "ilp.max_hold_time: must be longer"),
            ("[ilp]\nhttp_laddr = \"nowhere\"", "ilp.http_laddr:"),
            (
                "[[ilp.accounts]]\nid = \"a\"\nrelation = \"friend\"\nasset_code = \"USD\"\nasset_scale = 9",
                "ilp.accounts",
            ),
            (
                "[[ilp.accounts]]\nid = \"a\"\nrelation = \"peer\"\nasset_code = \"USD\"\nasset_scale = 9",
                "ilp.accounts[0].node_id: an account needs node_id",
            ),
            ("[[ilp.routes]]\nprefix = \"g.x\"\naccount = \"nobody\"", "ilp.routes[0].account: no account \"nobody\""),
        ];
        for (text, want) in cases {
            let e = error(text);
            assert!(e.contains(want), "{text:?} gave {e:?}");
        }
        let long = format!("moniker = \"{}\"", "m".repeat(20_000));
        assert!(error(&long).starts_with("moniker: must be 1 to 128"));
        let long = format!("network = \"{}\"", "n".repeat(20_000));
        assert!(error(&long).starts_with("network: must be 1 to 50"));
    }

    #[test]
    fn peer_lists_are_separated_by_commas_and_name_each_peer_once() {
        let id = ledgerwire_types::NodeKey::from_seed(&[3; 32]).node_id(WireProfile::Tm2);
        let e = error(&format!("[p2p]\npersistent_peers = \"{id}@10.0.0.1:1; {id}@10.0.0.2:1\""));
        assert_eq!(e, "p2p.persistent_peers: separate entries with commas, not semicolons");
        let e = error(&format!("[p2p]\npersistent_peers = \"{id}@10.0.0.1:1, {id}@10.0.0.2:1\""));
        assert_eq!(e, format!("p2p.persistent_peers: {id} is listed twice"));
        let c = resolve(&format!("[p2p]\npersistent_peers = \"{id}@10.0.0.1:1\"")).unwrap();
        let own = c.check_own_id(id).unwrap_err().to_string();
        assert_eq!(own, format!("p2p.persistent_peers: {id}@10.0.0.1:1 is this node itself"));
    }

    #[test]
    fn peers_and_addresses_parse_in_the_profile_notation() {
        let id = ledgerwire_types::NodeKey::from_seed(&[3; 32]).node_id(WireProfile::CometBft);
        let other = ledgerwire_types::NodeKey::from_seed(&[4; 32]).node_id(WireProfile::CometBft);
        let text = format!(
            "profile = \"cometbft\"\n[p2p]\nladdr = \"tcp://[::1]:0\"\npersistent_peers = \"{id}@seed.example.org:26656, {other}@10.0.0.1:1,\"\nprivate_peer_ids = \"{id}\"\nexternal_address = \"1.2.3.4:26656\""
        );
        let c = resolve(&text).unwrap();
        assert_eq!(c.p2p.persistent_peers.len(), 2, "names are fine here, and empty entries are skipped");
        assert_eq!(c.p2p.private_peer_ids, vec![id]);
        assert_eq!(c.p2p.laddr, "[::1]:0".parse().unwrap());
        assert_eq!(c.p2p.external_address, Some("1.2.3.4:26656".parse().unwrap()));
        let s = c.switch_config();
        assert_eq!((s.max_inbound, s.max_outbound, s.persistent_peers.len()), (40, 10, 2));
    }

    #[test]
    fn a_gno_version_set_is_advertised_as_configured() {
        let text = "[p2p]\nadvertise_versions = { abci = \"v1.0.0-rc.0\", app = \"dev\", bft = \"v1.0.0-rc.0\", blockchain = \"v1.0.0-rc.0\" }";
        let c = resolve(text).unwrap();
        assert_eq!(c.switch_config().advertise_versions.get("app").map(String::as_str), Some("dev"));
        // The same as a sub-table.
        let c = resolve("[p2p.advertise_versions]\napp = \"dev\"").unwrap();
        assert_eq!(c.p2p.advertise_versions.len(), 1);
    }

    #[test]
    fn ilp_accounts_and_routes_come_from_arrays_of_tables() {
        let id = ledgerwire_types::NodeKey::from_seed(&[3; 32]).node_id(WireProfile::Tm2);
        let text = format!(
            "[ilp]\naddress = \"g.me\"\n[[ilp.accounts]]\nid = \"bob\"\nrelation = \"peer\"\nasset_code = \"USD\"\nasset_scale = 9\nnode_id = \"{id}\"\nmax_balance = 100\n[[ilp.accounts]]\nid = \"app\"\nrelation = \"child\"\nasset_code = \"USD\"\nasset_scale = 9\nhttp = {{ url = \"http://127.0.0.1:3000/\", incoming_token = \"0123456789abcdef\", outgoing_token = \"fedcba9876543210\" }}\n[[ilp.routes]]\nprefix = \"g.bob\"\naccount = \"bob\"\n"
        );
        let c = resolve(&text).unwrap();
        assert_eq!(c.ilp.address.as_ref().map(|a| a.to_string()).as_deref(), Some("g.me"));
        assert_eq!(c.ilp.accounts.len(), 2);
        assert_eq!(c.ilp.routes[0].0, "g.bob");
        let twice = text.replace("id = \"app\"", "id = \"bob\"");
        assert_eq!(error(&twice), "ilp.accounts[1].id: bob is listed twice");
        // A value of the wrong type names its entry as the checks after parsing do.
        let wrong = text.replace(
            "id = \"app\"\nrelation = \"child\"\nasset_code = \"USD\"\nasset_scale = 9",
            "id = \"app\"\nrelation = \"child\"\nasset_code = \"USD\"\nasset_scale = \"nine\"",
        );
        assert_ne!(wrong, text);
        assert!(error(&wrong).starts_with("ilp.accounts[1].asset_scale: "), "{}", error(&wrong));
        let first = text.replacen("asset_scale = 9", "asset_scale = -1", 1);
        assert!(error(&first).starts_with("ilp.accounts[0].asset_scale: "), "{}", error(&first));
    }

    /// docs/configuration.md documents exactly the keys the node accepts, with the same defaults.
    #[test]
    fn the_configuration_reference_lists_exactly_the_accepted_keys_and_defaults() {
        let doc = include_str!("../../../docs/configuration.md");
        let table = doc.split("## config.toml").nth(1).and_then(|rest| rest.split("\n## ").next()).unwrap();
        let mut documented: Vec<(String, String)> = table
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| {
                let cells: Vec<&str> = l.split(" | ").collect();
                let unquote = |s: &str| s.trim().trim_start_matches("| ").trim_matches('`').to_owned();
                (unquote(cells[0]), unquote(cells[1]))
            })
            .collect();
        let mut accepted = ConfigFile::documented_defaults();
        documented.sort();
        accepted.sort();
        assert_eq!(documented, accepted);
    }
}
