//! The ledgerwire node: configuration (`config.toml`), key and token management, the admin HTTP API, logs, and the
//! `ledgerwire` binary that runs a node.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ledgerwire_node::config::NodeConfig;
//! use ledgerwire_types::WireProfile;
//!
//! let home = std::env::temp_dir().join(format!("ledgerwire-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&home);
//! let created = ledgerwire_node::node::init(&home, WireProfile::Tm2, "my-net", "node-0")?;
//! let config = NodeConfig::load(&home)?;
//! assert_eq!(config.network, "my-net");
//! assert!(created.id.starts_with("g1"));
//! # std::fs::remove_dir_all(&home)?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod admin;
pub mod client;
pub mod config;
pub mod duration;
pub mod localnet;
pub mod logging;
pub mod metrics;
pub mod node;
pub mod openapi;
pub mod testnet;
