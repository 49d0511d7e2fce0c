//! Connections between ledgerwire nodes.
//!
//! - [`secret_connection`]: the STS handshake (X25519, HKDF-SHA256, Ed25519) and ChaCha20-Poly1305 frames, in the
//!   `tm2` and `cometbft` wire profiles, byte-compatible with gno's Tendermint2 and CometBFT v0.34+.
//! - [`mconnection`]: channels with priorities multiplexed over a secret connection, with fragmentation, ping/pong
//!   liveness, a flush throttle and rate limits.
//! - [`amino`] and [`length_prefixed`]: the envelope and the framing that gno's messages and the handshake share.
//!
//! The crate is I/O-agnostic at its core: the handshake and the frame codec are plain state machines, and
//! [`SecretConnection`] drives them over any tokio [`AsyncRead`](tokio::io::AsyncRead) +
//! [`AsyncWrite`](tokio::io::AsyncWrite) transport.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use ledgerwire_conn::SecretConnection;
//! use ledgerwire_types::{NodeKey, WireProfile};
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//! use tokio::net::{TcpListener, TcpStream};
//!
//! let listener = TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let server_key = NodeKey::generate();
//! let server_id = server_key.node_id(WireProfile::CometBft);
//! let server = tokio::spawn(async move {
//!     let (socket, _) = listener.accept().await?;
//!     let conn = SecretConnection::handshake(socket, &server_key, WireProfile::CometBft, Duration::from_secs(3)).await?;
//!     let (reader, mut writer) = conn.split();
//!     let mut line = String::new();
//!     BufReader::new(reader).read_line(&mut line).await?;
//!     writer.write_all(line.to_uppercase().as_bytes()).await?;
//!     writer.flush().await?;
//!     Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
//! });
//!
//! let socket = TcpStream::connect(addr).await?;
//! let mut conn = SecretConnection::handshake(socket, &NodeKey::generate(), WireProfile::CometBft, Duration::from_secs(3)).await?;
//! assert_eq!(conn.remote_id(), server_id);
//! conn.write_all(b"hello\n").await?;
//! conn.flush().await?;
//! let mut reply = String::new();
//! conn.read_line(&mut reply).await?;
//! assert_eq!(reply, "HELLO\n");
//! server.await?.map_err(|e| e.to_string())?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod amino;
pub mod length_prefixed;
pub mod mconnection;
pub mod secret_connection;

pub use mconnection::{ChannelDescriptor, ChannelReceiver, CloseReason, MConnection, MConnectionConfig, SendError};
pub use secret_connection::{SecretConnection, SecretConnectionError, SecretReader, SecretWriter};
