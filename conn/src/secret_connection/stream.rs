//! The secret connection over an async byte stream: the handshake driver and the buffered, full-duplex halves.
//!
//! **Read path.** [`SecretReader`] reads from the socket in chunks of up to 64 sealed frames, opens each frame in place
//! inside its buffer and hands out the plaintext without further copies ([`AsyncBufRead`]); [`AsyncRead`] copies once
//! into the caller's buffer.
//!
//! **Write path and flush policy.** [`SecretWriter`] packs written bytes into full 1024-byte frames, seals each frame
//! as soon as it is full, and keeps the sealed frames in one buffer. Bytes reach the socket when:
//! - the caller flushes ([`AsyncWriteExt::flush`](tokio::io::AsyncWriteExt::flush)): the partly filled frame is
//!   sealed as a short frame and the whole buffer is written, or
//! - 64 sealed frames (66,816 bytes) are waiting: the next write first drains the buffer, and waits while the socket
//!   cannot take it (back-pressure).
//!
//! So small writes between flushes share frames (a 100-byte message does not cost a 1044-byte frame), and a bulk
//! transfer costs one write system call per 64 frames. Frame boundaries carry no meaning to either reference
//! implementation; the auth message is still sealed alone into frame 0 because the handshake flushes right after it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use ledgerwire_types::{NodeId, NodeKey, PublicKey, WireProfile};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::SecretConnectionError;
use super::frame::{DATA_LEN_SIZE, DATA_MAX_SIZE, FrameOpener, FrameSealer, SEALED_FRAME_LEN};
use super::handshake::{EPHEMERAL_MESSAGE_LEN, Handshake, MAX_AUTH_MESSAGE_LEN};
use crate::length_prefixed::LengthPrefixedError;

/// Sealed frames the reader can take in with one read call, at most. The buffer starts at two frames (so a
/// connection that is still handshaking, or idle, costs about 2 KiB) and doubles whenever a read fills it.
pub const READ_BUFFER_FRAMES: usize = 64;
const INITIAL_READ_BUFFER_LEN: usize = 2 * SEALED_FRAME_LEN;
/// Sealed frames the writer holds before a write must wait for the socket.
pub const WRITE_BUFFER_FRAMES: usize = 64;

const READ_BUFFER_LEN: usize = READ_BUFFER_FRAMES * SEALED_FRAME_LEN;
const WRITE_HIGH_WATER: usize = WRITE_BUFFER_FRAMES * SEALED_FRAME_LEN;

/// A transport that splits into independently usable read and write halves.
///
/// Implemented for [`TcpStream`](tokio::net::TcpStream) and [`UnixStream`](tokio::net::UnixStream) (lock-free owned
/// halves), [`DuplexStream`](tokio::io::DuplexStream) (in-memory pipes for tests), and any `(reader, writer)` pair —
/// wrap other full-duplex streams with [`tokio::io::split`] and pass the pair.
pub trait IntoHalves {
    /// The read half.
    type Read: AsyncRead + Unpin;
    /// The write half.
    type Write: AsyncWrite + Unpin;
    /// Splits the transport.
    fn into_halves(self) -> (Self::Read, Self::Write);
}

impl IntoHalves for tokio::net::TcpStream {
    type Read = tokio::net::tcp::OwnedReadHalf;
    type Write = tokio::net::tcp::OwnedWriteHalf;
    fn into_halves(self) -> (Self::Read, Self::Write) {
        self.into_split()
    }
}

#[cfg(unix)]
impl IntoHalves for tokio::net::UnixStream {
    type Read = tokio::net::unix::OwnedReadHalf;
    type Write = tokio::net::unix::OwnedWriteHalf;
    fn into_halves(self) -> (Self::Read, Self::Write) {
        self.into_split()
    }
}

impl IntoHalves for tokio::io::DuplexStream {
    type Read = tokio::io::ReadHalf<tokio::io::DuplexStream>;
    type Write = tokio::io::WriteHalf<tokio::io::DuplexStream>;
    fn into_halves(self) -> (Self::Read, Self::Write) {
        tokio::io::split(self)
    }
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> IntoHalves for (R, W) {
    type Read = R;
    type Write = W;
    fn into_halves(self) -> (R, W) {
        self
    }
}

/// An authenticated, encrypted connection: the result of a completed handshake.
///
/// It reads and writes like the stream it wraps ([`AsyncRead`], [`AsyncBufRead`], [`AsyncWrite`]); remember to
/// flush (see the module documentation for the flush policy). [`SecretConnection::split`] gives independent halves
/// for full-duplex use from two tasks.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ledgerwire_conn::SecretConnectionError> {
/// use std::time::Duration;
/// use ledgerwire_conn::SecretConnection;
/// use ledgerwire_types::{NodeKey, WireProfile};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// let (a, b) = tokio::io::duplex(64 * 1024);
/// let (key_a, key_b) = (NodeKey::generate(), NodeKey::generate());
/// let deadline = Duration::from_secs(3);
/// let (conn_a, conn_b) = tokio::try_join!(
///     SecretConnection::handshake(a, &key_a, WireProfile::Tm2, deadline),
///     SecretConnection::handshake(b, &key_b, WireProfile::Tm2, deadline),
/// )?;
/// assert_eq!(conn_a.remote_id(), key_b.node_id(WireProfile::Tm2));
///
/// let (_, mut tx) = conn_a.split();
/// let (mut rx, _) = conn_b.split();
/// tx.write_all(b"hello").await.unwrap();
/// tx.flush().await.unwrap();
/// let mut buf = [0u8; 5];
/// rx.read_exact(&mut buf).await.unwrap();
/// assert_eq!(&buf, b"hello");
/// # Ok(()) }
/// ```
pub struct SecretConnection<R, W> {
    reader: SecretReader<R>,
    writer: SecretWriter<W>,
    remote: PublicKey,
    profile: WireProfile,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> SecretConnection<R, W> {
    /// Runs the handshake over `io` as `key`, in `profile`'s wire format, and fails with
    /// [`SecretConnectionError::HandshakeTimeout`] if it takes longer than `deadline`.
    ///
    /// On any error the transport is dropped, which closes the socket.
    pub async fn handshake<S>(
        io: S,
        key: &NodeKey,
        profile: WireProfile,
        deadline: Duration,
    ) -> Result<Self, SecretConnectionError>
    where
        S: IntoHalves<Read = R, Write = W>,
    {
        let (r, w) = io.into_halves();
        Self::handshake_with(Handshake::new(profile), r, w, key, deadline).await
    }

    /// [`SecretConnection::handshake`] over separate halves with a prepared state machine (for example one with a
    /// fixed ephemeral key, to reproduce test vectors); the profile is the state machine's.
    pub async fn handshake_with(
        handshake: Handshake<super::handshake::AwaitingEphemeralKey>,
        reader: R,
        writer: W,
        key: &NodeKey,
        deadline: Duration,
    ) -> Result<Self, SecretConnectionError> {
        tokio::time::timeout(deadline, run_handshake(handshake, reader, writer, key))
            .await
            .map_err(|_| SecretConnectionError::HandshakeTimeout(deadline))?
    }

    /// The peer's authenticated public key.
    pub fn remote_public_key(&self) -> PublicKey {
        self.remote
    }

    /// The peer's node ID (in the connection's profile).
    pub fn remote_id(&self) -> NodeId {
        self.remote.node_id(self.profile)
    }

    /// The wire profile in use.
    pub fn profile(&self) -> WireProfile {
        self.profile
    }

    /// Splits into independent read and write halves.
    pub fn split(self) -> (SecretReader<R>, SecretWriter<W>) {
        (self.reader, self.writer)
    }

    /// Both halves, borrowed, to write and read at the same time without giving up the connection (for example to
    /// exchange NodeInfo before handing the connection to a multiplexer).
    pub fn halves_mut(&mut self) -> (&mut SecretReader<R>, &mut SecretWriter<W>) {
        (&mut self.reader, &mut self.writer)
    }
}

async fn run_handshake<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    handshake: Handshake<super::handshake::AwaitingEphemeralKey>,
    reader: R,
    mut writer: W,
    key: &NodeKey,
) -> Result<SecretConnection<R, W>, SecretConnectionError> {
    let io_err = SecretConnectionError::from_handshake_io;
    let profile = handshake.profile();
    let mut incoming = Incoming::new(reader);

    // 1. Exchange ephemeral keys, writing and reading at the same time (a synchronous pipe would deadlock otherwise).
    let ours = handshake.ephemeral_message();
    let send = async {
        writer.write_all(&ours).await?;
        writer.flush().await
    };
    let receive = async {
        // Check the first byte alone, so garbage fails at once instead of waiting for 35 bytes.
        incoming.fill_at_least(1).await.map_err(io_err)?;
        if incoming.available()[0] != ours[0] {
            return Err(SecretConnectionError::MalformedEphemeralKey("wrong length prefix (expected 34 bytes)"));
        }
        incoming.fill_at_least(EPHEMERAL_MESSAGE_LEN).await.map_err(io_err)?;
        let mut theirs = [0u8; EPHEMERAL_MESSAGE_LEN];
        theirs.copy_from_slice(&incoming.available()[..EPHEMERAL_MESSAGE_LEN]);
        incoming.consume(EPHEMERAL_MESSAGE_LEN);
        Ok(theirs)
    };
    let ((), theirs) = tokio::try_join!(async { send.await.map_err(io_err) }, receive)?;

    // 2. Derive keys and the challenge.
    let (handshake, sealer, opener) = handshake.got_ephemeral_message(&theirs)?;
    let mut writer = SecretWriter::new(writer, sealer);
    let mut reader = SecretReader::new(incoming, opener);

    // 3. Exchange auth messages through the encrypted channel; ours goes alone into frame 0.
    let auth = handshake.auth_message(key);
    let send = async {
        writer.write_all(&auth).await?;
        writer.flush().await
    };
    let ((), body) = tokio::try_join!(async { send.await.map_err(io_err) }, read_auth_body(&mut reader))?;

    // 4. Verify.
    let remote = handshake.got_auth_message(&body)?;
    Ok(SecretConnection { reader, writer, remote, profile })
}

/// Reads the auth message body, refusing lengths above [`MAX_AUTH_MESSAGE_LEN`] before reading the body.
async fn read_auth_body<R: AsyncRead + Unpin>(reader: &mut SecretReader<R>) -> Result<Vec<u8>, SecretConnectionError> {
    crate::length_prefixed::read(reader, MAX_AUTH_MESSAGE_LEN).await.map_err(|e| match e {
        LengthPrefixedError::Io(e) => SecretConnectionError::from_handshake_io(e),
        LengthPrefixedError::BadPrefix => {
            SecretConnectionError::MalformedAuthMessage("length prefix is not a valid uvarint".into())
        }
        LengthPrefixedError::TooLarge { len, max } => SecretConnectionError::AuthMessageTooLarge { len, max },
    })
}

impl<R, W> std::fmt::Debug for SecretConnection<R, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretConnection")
            .field("profile", &self.profile)
            .field("remote_id", &self.remote.node_id(self.profile))
            .finish_non_exhaustive()
    }
}

impl<R: AsyncRead + Unpin, W: Unpin> AsyncRead for SecretConnection<R, W> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().reader).poll_read(cx, buf)
    }
}

impl<R: AsyncRead + Unpin, W: Unpin> AsyncBufRead for SecretConnection<R, W> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        Pin::new(&mut self.get_mut().reader).poll_fill_buf(cx)
    }
    fn consume(self: Pin<&mut Self>, amt: usize) {
        Pin::new(&mut self.get_mut().reader).consume(amt)
    }
}

impl<R: Unpin, W: AsyncWrite + Unpin> AsyncWrite for SecretConnection<R, W> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_shutdown(cx)
    }
}

/// Received bytes not yet processed, over the socket's read half.
struct Incoming<R> {
    io: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<R: AsyncRead + Unpin> Incoming<R> {
    fn new(io: R) -> Self {
        Incoming { io, buf: vec![0u8; INITIAL_READ_BUFFER_LEN], start: 0, end: 0 }
    }

    fn available(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Moves unprocessed bytes to the front and reads as much as the socket has, up to the buffer's size; a read
    /// that fills the buffer doubles it (up to [`READ_BUFFER_FRAMES`] frames). `Ok(0)` means end of stream.
    fn poll_read_more(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        // Callers read more only while less than one frame is buffered, and the buffer holds at least two frames, so
        // there is always room (an empty read buffer would look like end of stream).
        debug_assert!(self.end - self.start < SEALED_FRAME_LEN);
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let mut rb = ReadBuf::new(&mut self.buf[self.end..]);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut rb))?;
        let n = rb.filled().len();
        self.end += n;
        if self.end == self.buf.len() && self.buf.len() < READ_BUFFER_LEN {
            self.buf.resize((self.buf.len() * 2).min(READ_BUFFER_LEN), 0);
        }
        Poll::Ready(Ok(n))
    }

    async fn fill_at_least(&mut self, n: usize) -> io::Result<()> {
        while self.end - self.start < n {
            if std::future::poll_fn(|cx| self.poll_read_more(cx)).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(())
    }
}

/// The receiving half of a [`SecretConnection`].
pub struct SecretReader<R> {
    incoming: Incoming<R>,
    opener: FrameOpener,
    /// The opened, not yet consumed plaintext of the current frame, as a range of `incoming.buf`.
    plain_start: usize,
    plain_end: usize,
    failed: Option<SecretConnectionError>,
}

impl<R: AsyncRead + Unpin> SecretReader<R> {
    fn new(incoming: Incoming<R>, opener: FrameOpener) -> Self {
        SecretReader { incoming, opener, plain_start: 0, plain_end: 0, failed: None }
    }

    fn fail(&mut self, e: SecretConnectionError) -> io::Error {
        self.failed = Some(e.clone());
        e.into_io()
    }
}

impl<R> std::fmt::Debug for SecretReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretReader")
            .field("opener", &self.opener)
            .field("buffered", &(self.incoming.end - self.incoming.start))
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl<R: AsyncRead + Unpin> AsyncBufRead for SecretReader<R> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        loop {
            if let Some(e) = &this.failed {
                return Poll::Ready(Err(e.clone().into_io()));
            }
            if this.plain_start < this.plain_end {
                break;
            }
            let inc = &mut this.incoming;
            if inc.end - inc.start >= SEALED_FRAME_LEN {
                let at = inc.start;
                match this.opener.open_in_place(&mut inc.buf[at..at + SEALED_FRAME_LEN]) {
                    Ok(len) => {
                        inc.start += SEALED_FRAME_LEN;
                        this.plain_start = at + DATA_LEN_SIZE;
                        this.plain_end = this.plain_start + len;
                        continue;
                    }
                    Err(e) => return Poll::Ready(Err(this.fail(e))),
                }
            }
            // Less than a frame is buffered and no plaintext is pending: read more.
            match ready!(inc.poll_read_more(cx)) {
                Ok(0) if inc.start == inc.end => return Poll::Ready(Ok(&[])),
                Ok(0) => {
                    let got = inc.end - inc.start;
                    return Poll::Ready(Err(this.fail(SecretConnectionError::TruncatedFrame(got))));
                }
                Ok(_) => {}
                Err(e) => return Poll::Ready(Err(this.fail(SecretConnectionError::Io(e.into())))),
            }
        }
        Poll::Ready(Ok(&this.incoming.buf[this.plain_start..this.plain_end]))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        this.plain_start = (this.plain_start + amt).min(this.plain_end);
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for SecretReader<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let available = ready!(self.as_mut().poll_fill_buf(cx))?;
        let n = available.len().min(buf.remaining());
        buf.put_slice(&available[..n]);
        self.consume(n);
        Poll::Ready(Ok(()))
    }
}

/// The sending half of a [`SecretConnection`]. See the module documentation for its flush policy.
pub struct SecretWriter<W> {
    io: W,
    sealer: FrameSealer,
    /// `buf[flushed..sealed_end]`: sealed frames not yet written. If `buf.len() > sealed_end`, the frame slot at
    /// `sealed_end` holds `open_len` bytes of data waiting for more.
    buf: Vec<u8>,
    flushed: usize,
    sealed_end: usize,
    open_len: usize,
    failed: Option<SecretConnectionError>,
}

impl<W: AsyncWrite + Unpin> SecretWriter<W> {
    fn new(io: W, sealer: FrameSealer) -> Self {
        SecretWriter {
            io,
            sealer,
            // Grows with use, up to the high-water mark and one open frame.
            buf: Vec::new(),
            flushed: 0,
            sealed_end: 0,
            open_len: 0,
            failed: None,
        }
    }

    /// Bytes accepted but not yet handed to the socket (sealed frames plus the open frame's data).
    pub fn buffered_len(&self) -> usize {
        self.sealed_end - self.flushed + self.open_len
    }

    fn fail(&mut self, e: SecretConnectionError) -> io::Error {
        self.failed = Some(e.clone());
        e.into_io()
    }

    /// Copies `data` into frames, sealing each one that fills up.
    fn append(&mut self, mut data: &[u8]) -> Result<(), SecretConnectionError> {
        while !data.is_empty() {
            if self.buf.len() == self.sealed_end {
                self.buf.resize(self.sealed_end + SEALED_FRAME_LEN, 0);
            }
            let at = self.sealed_end + DATA_LEN_SIZE + self.open_len;
            let n = data.len().min(DATA_MAX_SIZE - self.open_len);
            self.buf[at..at + n].copy_from_slice(&data[..n]);
            self.open_len += n;
            data = &data[n..];
            if self.open_len == DATA_MAX_SIZE {
                self.seal_open_frame()?;
            }
        }
        Ok(())
    }

    fn seal_open_frame(&mut self) -> Result<(), SecretConnectionError> {
        // The open frame, if any, is the exactly-one-frame slot after the sealed frames.
        let Some(frame) = self.buf[self.sealed_end..].first_chunk_mut::<SEALED_FRAME_LEN>() else {
            return Ok(());
        };
        self.sealer.seal_in_place(frame, self.open_len)?;
        self.sealed_end += SEALED_FRAME_LEN;
        self.open_len = 0;
        Ok(())
    }

    /// Writes sealed frames to the socket until none are left (`Ready`) or the socket is full (`Pending`).
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.flushed < self.sealed_end {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.buf[self.flushed..self.sealed_end]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.flushed += n;
        }
        // Everything sealed is out: move the open frame (if any) to the front.
        self.buf.drain(..self.sealed_end);
        self.flushed = 0;
        self.sealed_end = 0;
        Poll::Ready(Ok(()))
    }
}

impl<W> std::fmt::Debug for SecretWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretWriter")
            .field("sealer", &self.sealer)
            .field("buffered", &(self.sealed_end - self.flushed + self.open_len))
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for SecretWriter<W> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(e) = &this.failed {
            return Poll::Ready(Err(e.clone().into_io()));
        }
        if this.sealed_end - this.flushed >= WRITE_HIGH_WATER
            && let Err(e) = ready!(this.poll_drain(cx))
        {
            return Poll::Ready(Err(this.fail(SecretConnectionError::Io(e.into()))));
        }
        // A partial drain leaves written bytes at the front; drop them before the buffer grows past its bound.
        if this.flushed >= WRITE_HIGH_WATER {
            this.buf.drain(..this.flushed);
            this.sealed_end -= this.flushed;
            this.flushed = 0;
        }
        // Accept what fits under the high-water mark, and always at least one frame's worth.
        let pending = this.sealed_end - this.flushed;
        let room_frames = (WRITE_HIGH_WATER.saturating_sub(pending) / SEALED_FRAME_LEN).max(1);
        let n = data.len().min(room_frames * DATA_MAX_SIZE);
        if let Err(e) = this.append(&data[..n]) {
            return Poll::Ready(Err(this.fail(e)));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = &this.failed {
            return Poll::Ready(Err(e.clone().into_io()));
        }
        if let Err(e) = this.seal_open_frame() {
            return Poll::Ready(Err(this.fail(e)));
        }
        if let Err(e) = ready!(this.poll_drain(cx)) {
            return Poll::Ready(Err(this.fail(SecretConnectionError::Io(e.into()))));
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
