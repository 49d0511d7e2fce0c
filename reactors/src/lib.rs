//! Reactors for ledgerwire: protocols that plug into the `ledgerwire-p2p` switch on their own channels.
//!
//! - [`ping`]: application-level round-trip times to every peer; the smallest complete reactor and the template
//!   for the others.
//! - [`discovery`]: peer discovery (TM2 discovery or CometBFT PEX on the wire) with a persistent address book.
//!
//! - Interledger: [`ilp`] (packets, addresses, OER), [`accounts`] (accounts and their durable store),
//!   [`forwarding`] (the connector: a pure forwarding core and the reactor that drives it on channel `0x71`),
//!   [`ildcp`], and [`ilp_over_http`] (the listener apps pay through, and the client that delivers to them).
//!
//! - [`routing`]: route exchange (CCP semantics) on channel `0x72`, feeding the connector's forwarding table.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ledgerwire_p2p::{SwitchBuilder, SwitchConfig};
//! use ledgerwire_reactors::ping::{self, PingConfig};
//! use ledgerwire_types::{NodeKey, WireProfile};
//!
//! let config = SwitchConfig::new("127.0.0.1:0".parse()?, "my-net");
//! let mut builder = SwitchBuilder::new(Arc::new(NodeKey::generate()), WireProfile::Tm2, config, None);
//! let pings = ping::register(&mut builder, PingConfig::default(), None)?;
//! let switch = builder.start().await?;
//! for (peer, stats) in pings.snapshot().await.iter() {
//!     println!("{peer}: {:?}", stats.rtt);
//! }
//! # switch.stop().await; Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod accounts;
pub mod discovery;
pub mod forwarding;
pub mod ildcp;
pub mod ilp;
pub mod ilp_over_http;
pub mod ping;
pub mod routing;
