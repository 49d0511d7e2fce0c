//! The peer-to-peer layer of ledgerwire: a `Transport` that turns sockets into authenticated peers (secret connection
//! and NodeInfo exchange), a `Switch` that owns every dial and accept decision (limits, persistent and private peers,
//! a time-ordered dial queue), switch events, and the reactor API through which protocols plug in on channel IDs.
//!
//! This crate builds on `ledgerwire-conn` (secret and multiplexed connections) and `ledgerwire-types` (identities and
//! addresses). Its contents arrive with the transport and switch work; see `docs/architecture.md`.
#![forbid(unsafe_code)]
