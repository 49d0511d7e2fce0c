//! The ChaCha20-Poly1305 backend that seals and opens frames.
//!
//! The RustCrypto `chacha20poly1305` crate is the default. The `ring` cargo feature switches to ring's assembly
//! implementation; `docs/performance.md` has the measurements behind the choice. Both backends produce identical
//! bytes (IETF ChaCha20-Poly1305, 12-byte nonce, empty associated data), and the golden-vector tests run against
//! whichever one is compiled in.

use zeroize::Zeroizing;

/// Length of a Poly1305 tag.
pub(crate) const TAG_LEN: usize = 16;

/// One direction's AEAD key.
pub(crate) struct FrameCipher {
    #[cfg(not(feature = "ring"))]
    inner: chacha20poly1305::ChaCha20Poly1305,
    #[cfg(feature = "ring")]
    inner: ring::aead::LessSafeKey,
}

/// The tag did not authenticate the ciphertext.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenFailed;

impl FrameCipher {
    /// A cipher for `key`. The caller's copy of the key should be a [`Zeroizing`] buffer.
    pub(crate) fn new(key: &Zeroizing<[u8; 32]>) -> Self {
        #[cfg(not(feature = "ring"))]
        {
            use chacha20poly1305::KeyInit;
            FrameCipher {
                inner: chacha20poly1305::ChaCha20Poly1305::new(&(**key).into()),
            }
        }
        #[cfg(feature = "ring")]
        {
            use ring::aead::{CHACHA20_POLY1305, LessSafeKey, UnboundKey};
            // A 32-byte key is always the right length for ChaCha20-Poly1305.
            #[allow(clippy::expect_used)]
            let unbound = UnboundKey::new(&CHACHA20_POLY1305, key.as_ref()).expect("32-byte key");
            FrameCipher {
                inner: LessSafeKey::new(unbound),
            }
        }
    }

    /// Encrypts `buf` in place and returns the tag.
    pub(crate) fn seal(&self, nonce: &[u8; 12], buf: &mut [u8]) -> [u8; TAG_LEN] {
        #[cfg(not(feature = "ring"))]
        {
            use chacha20poly1305::aead::AeadInOut;
            // Only messages longer than 256 GiB can fail; frames are 1028 bytes.
            #[allow(clippy::expect_used)]
            let tag = self
                .inner
                .encrypt_inout_detached(nonce.into(), &[], buf.into())
                .expect("a frame is far below the ChaCha20-Poly1305 message limit");
            tag.into()
        }
        #[cfg(feature = "ring")]
        {
            use ring::aead::{Aad, Nonce};
            #[allow(clippy::expect_used)]
            let tag = self
                .inner
                .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*nonce), Aad::empty(), buf)
                .expect("a frame is far below the ChaCha20-Poly1305 message limit");
            let mut out = [0u8; TAG_LEN];
            out.copy_from_slice(tag.as_ref());
            out
        }
    }

    /// Authenticates and decrypts `buf` in place.
    pub(crate) fn open(
        &self,
        nonce: &[u8; 12],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), OpenFailed> {
        #[cfg(not(feature = "ring"))]
        {
            use chacha20poly1305::aead::AeadInOut;
            self.inner
                .decrypt_inout_detached(nonce.into(), &[], buf.into(), tag.into())
                .map_err(|_| OpenFailed)
        }
        #[cfg(feature = "ring")]
        {
            use ring::aead::{Aad, Nonce, Tag};
            self.inner
                .open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::empty(),
                    Tag::from(*tag),
                    buf,
                    0..,
                )
                .map(|_| ())
                .map_err(|_| OpenFailed)
        }
    }
}
