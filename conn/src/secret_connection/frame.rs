//! Sealed frames and their nonces, without I/O.
//!
//! Every frame on the wire is exactly [`SEALED_FRAME_LEN`] = 1044 bytes: ChaCha20-Poly1305 over a 1028-byte plaintext
//! (`u32` little-endian data length, up to 1024 data bytes, zero padding) followed by the 16-byte tag. The nonce is
//! four zero bytes and a little-endian `u64` counter that starts at 0 and grows by one per frame, separately in each
//! direction. When the counter is used up the direction fails with [`SecretConnectionError::NonceExhausted`]; a nonce
//! is never reused.

use zeroize::Zeroizing;

use super::SecretConnectionError;
use super::cipher::{FrameCipher, TAG_LEN};

/// Bytes of the little-endian data-length prefix inside a frame.
pub const DATA_LEN_SIZE: usize = 4;
/// Maximum data bytes per frame.
pub const DATA_MAX_SIZE: usize = 1024;
/// Plaintext frame length: length prefix, data and padding.
pub const FRAME_LEN: usize = DATA_LEN_SIZE + DATA_MAX_SIZE;
/// Poly1305 tag length.
pub const TAG_SIZE: usize = TAG_LEN;
/// Length of every frame on the wire.
pub const SEALED_FRAME_LEN: usize = FRAME_LEN + TAG_SIZE;

/// A direction's nonce counter.
///
/// Counter values 0 through `u64::MAX` are each handed out once; after that the counter is exhausted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nonce {
    next: Option<u64>,
}

impl Default for Nonce {
    fn default() -> Self {
        Nonce { next: Some(0) }
    }
}

impl Nonce {
    /// A counter that hands out `counter` next (tests use this to reach exhaustion quickly).
    pub fn starting_at(counter: u64) -> Self {
        Nonce { next: Some(counter) }
    }

    /// The counter value the next frame will use, or `None` once exhausted.
    pub fn peek(&self) -> Option<u64> {
        self.next
    }

    /// The 12-byte nonce for `counter`: four zero bytes, then the counter in little-endian order.
    pub fn bytes(counter: u64) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&counter.to_le_bytes());
        n
    }

    /// Takes the next counter value and advances.
    pub fn take(&mut self) -> Result<u64, SecretConnectionError> {
        let current = self.next.ok_or(SecretConnectionError::NonceExhausted)?;
        self.next = current.checked_add(1);
        Ok(current)
    }
}

/// Seals outgoing frames for one direction.
pub struct FrameSealer {
    cipher: FrameCipher,
    nonce: Nonce,
}

impl FrameSealer {
    /// A sealer with the direction's send key, starting at nonce 0.
    pub fn new(key: &Zeroizing<[u8; 32]>) -> Self {
        FrameSealer { cipher: FrameCipher::new(key), nonce: Nonce::default() }
    }

    /// A sealer whose next frame uses nonce counter `counter`.
    pub fn with_nonce(key: &Zeroizing<[u8; 32]>, nonce: Nonce) -> Self {
        FrameSealer { cipher: FrameCipher::new(key), nonce }
    }

    /// The next nonce counter value, or `None` once exhausted.
    pub fn next_nonce(&self) -> Option<u64> {
        self.nonce.peek()
    }

    /// Seals a frame in place. On entry `frame[DATA_LEN_SIZE..DATA_LEN_SIZE + len]` holds the data; this writes the
    /// length prefix, zeroes the padding, encrypts, and writes the tag into the last 16 bytes.
    ///
    /// # Panics
    /// If `len > DATA_MAX_SIZE` (a caller bug, never peer-controlled).
    pub fn seal_in_place(
        &mut self,
        frame: &mut [u8; SEALED_FRAME_LEN],
        len: usize,
    ) -> Result<(), SecretConnectionError> {
        assert!(len <= DATA_MAX_SIZE, "frame data of {len} bytes exceeds {DATA_MAX_SIZE}");
        let counter = self.nonce.take()?;
        let (plain, tag) = frame.split_at_mut(FRAME_LEN);
        // len <= 1024 fits in u32.
        plain[..DATA_LEN_SIZE].copy_from_slice(&(len as u32).to_le_bytes());
        plain[DATA_LEN_SIZE + len..].fill(0);
        tag.copy_from_slice(&self.cipher.seal(&Nonce::bytes(counter), plain));
        Ok(())
    }

    /// Seals `data` (at most [`DATA_MAX_SIZE`] bytes) into a new frame.
    ///
    /// # Panics
    /// If `data` is longer than [`DATA_MAX_SIZE`].
    pub fn seal(&mut self, data: &[u8]) -> Result<[u8; SEALED_FRAME_LEN], SecretConnectionError> {
        let mut frame = [0u8; SEALED_FRAME_LEN];
        frame[DATA_LEN_SIZE..DATA_LEN_SIZE + data.len()].copy_from_slice(data);
        self.seal_in_place(&mut frame, data.len())?;
        Ok(frame)
    }
}

impl std::fmt::Debug for FrameSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameSealer").field("next_nonce", &self.nonce.peek()).finish_non_exhaustive()
    }
}

/// Opens incoming frames for one direction.
pub struct FrameOpener {
    cipher: FrameCipher,
    nonce: Nonce,
}

impl FrameOpener {
    /// An opener with the direction's receive key, starting at nonce 0.
    pub fn new(key: &Zeroizing<[u8; 32]>) -> Self {
        FrameOpener { cipher: FrameCipher::new(key), nonce: Nonce::default() }
    }

    /// An opener whose next frame uses nonce counter `counter`.
    pub fn with_nonce(key: &Zeroizing<[u8; 32]>, nonce: Nonce) -> Self {
        FrameOpener { cipher: FrameCipher::new(key), nonce }
    }

    /// Authenticates and decrypts a sealed frame in place and returns the data length; the data is then at
    /// `frame[DATA_LEN_SIZE..DATA_LEN_SIZE + len]`.
    ///
    /// A frame that fails authentication (corrupted, forged, reordered or replayed: the nonce no longer matches)
    /// or declares more than [`DATA_MAX_SIZE`] bytes is an error; the connection must end.
    pub fn open_in_place(&mut self, frame: &mut [u8]) -> Result<usize, SecretConnectionError> {
        let len = frame.len();
        let frame: &mut [u8; SEALED_FRAME_LEN] =
            frame.try_into().map_err(|_| SecretConnectionError::TruncatedFrame(len))?;
        let Some(counter) = self.nonce.peek() else {
            return Err(SecretConnectionError::NonceExhausted);
        };
        let (plain, tag) = frame.split_at_mut(FRAME_LEN);
        let tag: &[u8; TAG_SIZE] = (&*tag).try_into().map_err(|_| SecretConnectionError::TruncatedFrame(FRAME_LEN))?;
        self.cipher
            .open(&Nonce::bytes(counter), plain, tag)
            .map_err(|_| SecretConnectionError::FrameAuthentication { counter })?;
        self.nonce.take()?;
        let mut len_bytes = [0u8; DATA_LEN_SIZE];
        len_bytes.copy_from_slice(&plain[..DATA_LEN_SIZE]);
        let len = u32::from_le_bytes(len_bytes);
        if len as usize > DATA_MAX_SIZE {
            return Err(SecretConnectionError::FrameTooLarge(len));
        }
        Ok(len as usize)
    }
}

impl std::fmt::Debug for FrameOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameOpener").field("next_nonce", &self.nonce.peek()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Zeroizing<[u8; 32]> {
        Zeroizing::new([b; 32])
    }

    #[test]
    fn nonce_layout_matches_the_go_implementation() {
        // tm2 secret_connection_compat_test.go and tendermint-rs nonce.rs checkpoints: the value after N+1 increments.
        let cases: [(u64, &str); 6] = [
            (1, "000000000100000000000000"),
            (2, "000000000200000000000000"),
            (255, "00000000ff00000000000000"),
            (256, "000000000001000000000000"),
            (511, "00000000ff01000000000000"),
            (65536, "000000000000010000000000"),
        ];
        for (counter, want) in cases {
            assert_eq!(hex::encode(Nonce::bytes(counter)), want, "counter {counter}");
        }
        let mut n = Nonce::default();
        for expect in 0..1024 {
            assert_eq!(n.take().unwrap(), expect);
        }
        assert_eq!(hex::encode(Nonce::bytes(n.peek().unwrap())), "000000000004000000000000");
    }

    #[test]
    fn nonce_is_never_reused_after_exhaustion() {
        let mut n = Nonce::starting_at(u64::MAX - 1);
        assert_eq!(n.take().unwrap(), u64::MAX - 1);
        assert_eq!(n.take().unwrap(), u64::MAX);
        assert!(matches!(n.take(), Err(SecretConnectionError::NonceExhausted)));
        assert!(matches!(n.take(), Err(SecretConnectionError::NonceExhausted)));
    }

    #[test]
    fn sealed_frames_are_1044_bytes_and_padding_is_zeroed() {
        let mut sealer = FrameSealer::new(&key(1));
        let mut opener = FrameOpener::new(&key(1));
        // Fill the buffer with junk first: seal must not leak it (TM2's Go code does: gno tm2/pkg/p2p/conn/secret_connection.go reuses pooled frames).
        let mut frame = [0xAAu8; SEALED_FRAME_LEN];
        frame[DATA_LEN_SIZE..DATA_LEN_SIZE + 3].copy_from_slice(b"abc");
        sealer.seal_in_place(&mut frame, 3).unwrap();
        assert_eq!(frame.len(), 1044);
        let len = opener.open_in_place(&mut frame).unwrap();
        assert_eq!(len, 3);
        assert_eq!(&frame[..DATA_LEN_SIZE], &3u32.to_le_bytes());
        assert_eq!(&frame[DATA_LEN_SIZE..DATA_LEN_SIZE + 3], b"abc");
        assert!(frame[DATA_LEN_SIZE + 3..FRAME_LEN].iter().all(|&b| b == 0), "padding must be zero");
    }

    #[test]
    fn tampering_replay_and_wrong_keys_fail_authentication() {
        let mut sealer = FrameSealer::new(&key(1));
        let f0 = sealer.seal(b"zero").unwrap();
        let f1 = sealer.seal(b"one").unwrap();

        let mut opener = FrameOpener::new(&key(1));
        let mut flipped = f0;
        flipped[100] ^= 0x01;
        assert!(matches!(
            opener.open_in_place(&mut flipped),
            Err(SecretConnectionError::FrameAuthentication { counter: 0 })
        ));

        let mut opener = FrameOpener::new(&key(1));
        assert_eq!(opener.open_in_place(&mut f0.clone()).unwrap(), 4);
        // Replaying frame 0 where frame 1 is due fails: the nonce moved on.
        assert!(matches!(
            opener.open_in_place(&mut f0.clone()),
            Err(SecretConnectionError::FrameAuthentication { counter: 1 })
        ));

        let mut other = FrameOpener::new(&key(2));
        assert!(other.open_in_place(&mut f1.clone()).is_err());
    }

    #[test]
    fn an_authentic_frame_claiming_too_much_data_is_rejected() {
        let mut sealer = FrameSealer::new(&key(3));
        let mut frame = sealer.seal(b"").unwrap();
        // Re-seal by hand with a bogus length, as a malicious peer holding the key could.
        let mut evil = FrameSealer::new(&key(3));
        frame[..DATA_LEN_SIZE].copy_from_slice(&2000u32.to_le_bytes());
        let counter = evil.nonce.take().unwrap();
        let (plain, tag) = frame.split_at_mut(FRAME_LEN);
        tag.copy_from_slice(&evil.cipher.seal(&Nonce::bytes(counter), plain));
        let mut opener = FrameOpener::new(&key(3));
        assert!(matches!(opener.open_in_place(&mut frame), Err(SecretConnectionError::FrameTooLarge(2000))));
    }

    #[test]
    fn sealing_after_exhaustion_fails_instead_of_reusing_a_nonce() {
        let mut sealer = FrameSealer::with_nonce(&key(4), Nonce::starting_at(u64::MAX));
        assert!(sealer.seal(b"last").is_ok());
        assert!(matches!(sealer.seal(b"one too many"), Err(SecretConnectionError::NonceExhausted)));
    }
}
