//! A scripted peer for adversarial tests: it speaks the handshake through the public sans-I/O pieces, so each test
//! can deviate from the protocol at exactly one point.
#![allow(dead_code, clippy::unwrap_used)]

use ledgerwire_conn::secret_connection::frame::{DATA_LEN_SIZE, SEALED_FRAME_LEN};
use ledgerwire_conn::secret_connection::handshake::{AwaitingAuthMessage, EPHEMERAL_MESSAGE_LEN};
use ledgerwire_conn::secret_connection::{FrameOpener, FrameSealer, Handshake};
use ledgerwire_types::WireProfile;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A peer past the key exchange, holding the raw stream and both frame ciphers.
pub(crate) struct ScriptedPeer<S> {
    pub(crate) io: S,
    pub(crate) handshake: Handshake<AwaitingAuthMessage>,
    pub(crate) sealer: FrameSealer,
    pub(crate) opener: FrameOpener,
}

/// Exchanges ephemeral keys honestly.
pub(crate) async fn exchange_keys<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    profile: WireProfile,
) -> ScriptedPeer<S> {
    let hs = Handshake::new(profile);
    io.write_all(&hs.ephemeral_message()).await.unwrap();
    let mut theirs = [0u8; EPHEMERAL_MESSAGE_LEN];
    io.read_exact(&mut theirs).await.unwrap();
    let (handshake, sealer, opener) = hs.got_ephemeral_message(&theirs).unwrap();
    ScriptedPeer { io, handshake, sealer, opener }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ScriptedPeer<S> {
    /// Seals `data` (≤ 1024 bytes) into one frame and sends it.
    pub(crate) async fn send_frame(&mut self, data: &[u8]) -> [u8; SEALED_FRAME_LEN] {
        let frame = self.sealer.seal(data).unwrap();
        self.io.write_all(&frame).await.unwrap();
        frame
    }

    /// Reads and opens one frame; returns its data.
    pub(crate) async fn recv_frame(&mut self) -> Vec<u8> {
        let mut frame = [0u8; SEALED_FRAME_LEN];
        self.io.read_exact(&mut frame).await.unwrap();
        let len = self.opener.open_in_place(&mut frame).unwrap();
        frame[DATA_LEN_SIZE..DATA_LEN_SIZE + len].to_vec()
    }
}
