//! Reactors for ledgerwire: peer discovery with a persistent address book, and the Interledger reactors (route
//! exchange with CCP semantics, packet forwarding with the semantics of the reference ilp-connector).
//!
//! Reactors plug into the `ledgerwire-p2p` switch on dedicated channel IDs. Their contents arrive with the discovery
//! and ILP work; see `docs/architecture.md`.
#![forbid(unsafe_code)]
