//! ILP-over-HTTP (RFC 35, the synchronous mode existing tooling speaks): the listener apps send packets to, and
//! the client that delivers packets to apps.

pub mod client;
pub mod listener;
pub mod server;

pub use client::{HttpClient, SendError};
pub use listener::serve_bounded;
pub use server::{Credentials, HttpLimits, PacketHandler, serve};
