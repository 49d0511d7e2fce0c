//! The ledgerwire node: configuration (`config.toml`), key management, the admin HTTP API, events, metrics and logs,
//! and the `ledgerwire` binary that runs a node.
//!
//! Until the switch lands, the runnable entry point of the project is the secret connection example in
//! `ledgerwire-conn` (`cargo run --release -p ledgerwire-conn --example handshake`); see the README.
#![forbid(unsafe_code)]
