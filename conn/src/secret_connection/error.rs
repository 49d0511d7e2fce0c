//! The secret connection layer's error type.

use std::io;
use std::sync::Arc;
use std::time::Duration;

/// Everything that can end a secret connection, during the handshake or afterwards.
///
/// After the handshake, errors surface through [`AsyncRead`](tokio::io::AsyncRead) and
/// [`AsyncWrite`](tokio::io::AsyncWrite) as [`io::Error`]s that wrap this type;
/// [`SecretConnectionError::from_io`] gets it back.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SecretConnectionError {
    /// The handshake did not finish within the caller's deadline; the socket was closed.
    #[error("handshake did not finish within {0:?}")]
    HandshakeTimeout(Duration),
    /// The transport failed.
    #[error("I/O error: {0}")]
    Io(Arc<io::Error>),
    /// The peer closed the connection before the handshake finished.
    #[error("peer closed the connection during the handshake")]
    ClosedDuringHandshake,
    /// The peer's ephemeral key message is not `0x22 0x0a 0x20` and 32 bytes, or reflects our own key.
    #[error("malformed ephemeral key message: {0}")]
    MalformedEphemeralKey(&'static str),
    /// The peer's ephemeral key is a low-order point (the shared secret would be known to everyone).
    #[error("peer's ephemeral key is a low-order point")]
    LowOrderEphemeralKey,
    /// The peer's auth message is longer than any valid one.
    #[error("auth message of {len} bytes exceeds the {max}-byte limit")]
    AuthMessageTooLarge {
        /// The length the peer announced.
        len: u64,
        /// Our limit.
        max: usize,
    },
    /// The peer's auth message does not decode.
    #[error("malformed auth message: {0} (a peer running the other wire profile fails here)")]
    MalformedAuthMessage(String),
    /// The peer authenticates with a key type other than Ed25519.
    #[error("peer uses an unsupported {0} key; only ed25519 node keys are accepted")]
    UnsupportedKeyType(&'static str),
    /// The peer's public key is not a valid Ed25519 point.
    #[error("peer's public key is not a valid ed25519 key")]
    InvalidPublicKey,
    /// The peer's signature over the challenge does not verify.
    #[error("peer's signature over the handshake challenge does not verify")]
    BadSignature,
    /// A frame failed authentication: corrupted, forged, reordered or replayed.
    #[error("frame {counter} failed authentication (corrupted, forged, reordered or replayed)")]
    FrameAuthentication {
        /// The nonce counter the frame should have used.
        counter: u64,
    },
    /// An authentic frame declares more than 1024 data bytes.
    #[error("frame declares {0} data bytes, more than the 1024 allowed")]
    FrameTooLarge(u32),
    /// The connection ended in the middle of a frame.
    #[error("connection ended inside a frame ({0} of 1044 bytes received)")]
    TruncatedFrame(usize),
    /// 2^64 frames were sent or received in one direction; the connection must be re-established.
    #[error("nonce counter exhausted; reconnect to continue")]
    NonceExhausted,
}

impl SecretConnectionError {
    /// The secret connection error inside an [`io::Error`] returned by a reader or writer, if there is one.
    pub fn from_io(e: &io::Error) -> Option<&SecretConnectionError> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<SecretConnectionError>())
    }

    pub(crate) fn into_io(self) -> io::Error {
        match self {
            SecretConnectionError::Io(e) => io::Error::new(e.kind(), SecretConnectionError::Io(e)),
            SecretConnectionError::TruncatedFrame(_) => io::Error::new(io::ErrorKind::UnexpectedEof, self),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

impl SecretConnectionError {
    /// Converts an I/O error met during the handshake: an early end of stream means the peer hung up.
    pub(crate) fn from_handshake_io(e: io::Error) -> Self {
        match e.get_ref().and_then(|inner| inner.downcast_ref::<SecretConnectionError>()) {
            Some(inner) => inner.clone(),
            None if e.kind() == io::ErrorKind::UnexpectedEof => SecretConnectionError::ClosedDuringHandshake,
            None => SecretConnectionError::Io(Arc::new(e)),
        }
    }
}
