//! The STS "secret connection": an authenticated, encrypted byte stream between two node keys.
//!
//! - [`handshake`]: the handshake as a state machine without I/O ([`Handshake`]).
//! - [`frame`]: 1044-byte sealed frames and their nonces ([`FrameSealer`], [`FrameOpener`]).
//! - [`SecretConnection`]: the handshake driven over an async stream, then buffered full-duplex halves
//!   ([`SecretReader`], [`SecretWriter`]).
//!
//! Byte layouts follow `docs/protocol.md`; both wire profiles share everything except the signed challenge and the
//! auth message encoding.

mod cipher;
mod error;
pub mod frame;
pub mod handshake;
mod kdf;
mod stream;

pub use error::SecretConnectionError;
pub use frame::{FrameOpener, FrameSealer, Nonce};
pub use handshake::Handshake;
pub use stream::{IntoHalves, READ_BUFFER_FRAMES, SecretConnection, SecretReader, SecretWriter, WRITE_BUFFER_FRAMES};
