//! The peer-to-peer layer of ledgerwire.
#![forbid(unsafe_code)]

pub mod node_info;
