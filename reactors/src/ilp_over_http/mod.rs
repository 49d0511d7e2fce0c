//! ILP-over-HTTP (RFC 35, the synchronous mode existing tooling speaks): the listener apps send packets to, and
//! the client that delivers packets to apps.

pub mod client;
pub mod server;

pub use client::{HttpClient, SendError};
pub use server::{Credentials, HttpLimits, PacketHandler, serve};
