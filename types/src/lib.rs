//! Identities, addresses and wire profiles shared by every ledgerwire crate.
//!
//! - [`WireProfile`]: which real network's bytes a node speaks (`tm2` or `cometbft`), chosen once per node.
//! - [`NodeKey`]: the node's Ed25519 identity key and its JSON key file (compatible with gno and CometBFT).
//! - [`NodeId`]: `SHA-256(public key)[0..20]`, printed as bech32 `g1…` (tm2) or lowercase hex (cometbft).
//! - [`NetAddress`] and [`HostAddress`]: `id@host:port`; only the operator's own addresses may name a host.
//! - [`atomic_file`]: crash-safe file replacement used for keys and the address book.
//! - [`random`]: nonces, jitter and shuffles; [`deadline`]: the optional-deadline timer of `select!` loops;
//!   [`wall_clock`]: wall-clock time that follows tokio's clock.
//!
//! ```
//! use ledgerwire_types::{NetAddress, NodeKey, WireProfile};
//!
//! let key = NodeKey::from_seed(&[7; 32]);
//! let id = key.node_id(WireProfile::Tm2);
//! assert!(id.to_string().starts_with("g1"));
//!
//! let addr = NetAddress::parse(&format!("{id}@127.0.0.1:26656"), WireProfile::Tm2)?;
//! assert_eq!(addr.id(), id);
//! assert!(addr.validate().is_ok() && !addr.is_routable());
//! # Ok::<(), ledgerwire_types::AddressError>(())
//! ```
#![forbid(unsafe_code)]

pub mod atomic_file;
pub mod deadline;
mod net_address;
mod node_id;
mod node_key;
mod public_key;
pub mod random;
pub mod wall_clock;
mod wire_profile;

pub use net_address::{AddressError, Host, HostAddress, NetAddress};
pub use node_id::{NODE_ID_LEN, NodeId, NodeIdError, TM2_ID_PREFIX};
pub use node_key::{NodeKey, NodeKeyError};
pub use public_key::{InvalidPublicKey, PublicKey};
pub use wire_profile::{UnknownProfile, WireProfile};
