//! The keys at the top of config.toml: wire profile, network, moniker and node key.

use std::path::{Path, PathBuf};

use ledgerwire_types::WireProfile;

use super::schema::{Key, Kind, SectionSchema};
use super::{ConfigError, ConfigFile, invalid, relative_path};

/// The top-level keys.
pub(crate) const SCHEMA: SectionSchema = SectionSchema {
    name: None,
    doc: "",
    keys: &[
        Key {
            name: "profile",
            kind: Kind::Text,
            doc: "Wire profile: \"tm2\" (gno Tendermint2, g1... IDs) or \"cometbft\" (CometBFT v0.34+, hex IDs). Peers must match.",
        },
        Key {
            name: "network",
            kind: Kind::Text,
            doc: "Network (chain) ID, at most 50 characters; peers on another network are refused.",
        },
        Key {
            name: "moniker",
            kind: Kind::Text,
            doc: "Human-readable name shown to peers (printable ASCII, at most 128 characters).",
        },
        Key {
            name: "node_key_file",
            kind: Kind::Path,
            doc: "The node's Ed25519 key (gno and CometBFT key files are accepted).",
        },
    ],
};

/// Default values.
pub(crate) const PROFILE: &str = "tm2";
pub(crate) const NETWORK: &str = "ledgerwire-devnet";
pub(crate) const MONIKER: &str = "ledgerwire-node";
pub(crate) const NODE_KEY_FILE: &str = "secrets/node_key.json";

/// Longest network ID (CometBFT's chain ID limit).
pub const MAX_NETWORK_LEN: usize = 50;
/// Longest moniker: a NodeInfo must stay far below the 10,240 bytes peers accept.
pub const MAX_MONIKER_LEN: usize = 128;

/// The resolved top-level settings.
#[derive(Clone, Debug)]
pub(crate) struct General {
    pub(crate) profile: WireProfile,
    pub(crate) network: String,
    pub(crate) moniker: String,
    pub(crate) node_key_file: PathBuf,
}

pub(crate) fn resolve(file: &ConfigFile, home: &Path) -> Result<General, ConfigError> {
    let profile: WireProfile = file.profile.parse().map_err(|e| invalid("profile", e))?;
    let network = &file.network;
    if network.is_empty() || network.len() > MAX_NETWORK_LEN || !network.bytes().all(|b| (33..=126).contains(&b)) {
        return Err(invalid(
            "network",
            format!("must be 1 to {MAX_NETWORK_LEN} printable ASCII characters without spaces"),
        ));
    }
    let moniker = &file.moniker;
    if moniker.trim().is_empty() || moniker.len() > MAX_MONIKER_LEN || !moniker.bytes().all(|b| (32..=126).contains(&b))
    {
        return Err(invalid("moniker", format!("must be 1 to {MAX_MONIKER_LEN} printable ASCII characters")));
    }
    Ok(General {
        profile,
        network: network.clone(),
        moniker: moniker.clone(),
        node_key_file: relative_path("node_key_file", &file.node_key_file, home)?,
    })
}
