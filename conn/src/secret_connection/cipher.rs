//! The ChaCha20-Poly1305 backend that seals and opens frames.
//!
//! The RustCrypto `chacha20poly1305` crate is the default. The `ring` cargo feature switches connections to ring's
//! assembly implementation, about 2.5× faster on the machines we measured (`docs/performance.md`). Both produce
//! identical bytes (IETF ChaCha20-Poly1305, 12-byte nonce, empty associated data). With the feature on, both are
//! compiled and a test checks them against each other; the golden vectors run against whichever one connections use.

use zeroize::Zeroizing;

/// Length of a Poly1305 tag.
pub(crate) const TAG_LEN: usize = 16;

/// The tag did not authenticate the ciphertext.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenFailed;

/// The backend connections use.
#[cfg(not(feature = "ring"))]
pub(crate) type FrameCipher = RustCryptoCipher;
/// The backend connections use.
#[cfg(feature = "ring")]
pub(crate) type FrameCipher = RingCipher;

/// ChaCha20-Poly1305 from the RustCrypto `chacha20poly1305` crate.
#[cfg_attr(feature = "ring", allow(dead_code))]
pub(crate) struct RustCryptoCipher(chacha20poly1305::ChaCha20Poly1305);

#[cfg_attr(feature = "ring", allow(dead_code))]
impl RustCryptoCipher {
    /// A cipher for `key`.
    pub(crate) fn new(key: &Zeroizing<[u8; 32]>) -> Self {
        use chacha20poly1305::KeyInit;
        RustCryptoCipher(chacha20poly1305::ChaCha20Poly1305::new(&(**key).into()))
    }

    /// Encrypts `buf` in place and returns the tag.
    pub(crate) fn seal(&self, nonce: &[u8; 12], buf: &mut [u8]) -> [u8; TAG_LEN] {
        use chacha20poly1305::aead::AeadInOut;
        // Only messages longer than 256 GiB can fail; frames are 1028 bytes.
        #[allow(clippy::expect_used)]
        let tag = self
            .0
            .encrypt_inout_detached(nonce.into(), &[], buf.into())
            .expect("a frame is far below the ChaCha20-Poly1305 message limit");
        tag.into()
    }

    /// Authenticates and decrypts `buf` in place.
    pub(crate) fn open(&self, nonce: &[u8; 12], buf: &mut [u8], tag: &[u8; TAG_LEN]) -> Result<(), OpenFailed> {
        use chacha20poly1305::aead::AeadInOut;
        self.0.decrypt_inout_detached(nonce.into(), &[], buf.into(), tag.into()).map_err(|_| OpenFailed)
    }
}

/// ChaCha20-Poly1305 from ring.
#[cfg(feature = "ring")]
pub(crate) struct RingCipher(ring::aead::LessSafeKey);

#[cfg(feature = "ring")]
impl RingCipher {
    /// A cipher for `key`.
    pub(crate) fn new(key: &Zeroizing<[u8; 32]>) -> Self {
        use ring::aead::{CHACHA20_POLY1305, LessSafeKey, UnboundKey};
        // A 32-byte key is always the right length for ChaCha20-Poly1305.
        #[allow(clippy::expect_used)]
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, key.as_ref()).expect("32-byte key");
        RingCipher(LessSafeKey::new(unbound))
    }

    /// Encrypts `buf` in place and returns the tag.
    pub(crate) fn seal(&self, nonce: &[u8; 12], buf: &mut [u8]) -> [u8; TAG_LEN] {
        use ring::aead::{Aad, Nonce};
        #[allow(clippy::expect_used)]
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*nonce), Aad::empty(), buf)
            .expect("a frame is far below the ChaCha20-Poly1305 message limit");
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Authenticates and decrypts `buf` in place.
    pub(crate) fn open(&self, nonce: &[u8; 12], buf: &mut [u8], tag: &[u8; TAG_LEN]) -> Result<(), OpenFailed> {
        use ring::aead::{Aad, Nonce, Tag};
        self.0
            .open_in_place_separate_tag(Nonce::assume_unique_for_key(*nonce), Aad::empty(), Tag::from(*tag), buf, 0..)
            .map(|_| ())
            .map_err(|_| OpenFailed)
    }
}

#[cfg(all(test, feature = "ring"))]
mod tests {
    use super::*;

    #[test]
    fn ring_and_rustcrypto_produce_identical_frames() {
        for i in 0..64u8 {
            let key = Zeroizing::new([i.wrapping_mul(37); 32]);
            let nonce = [i; 12];
            let plain: Vec<u8> = (0..1028).map(|j| (j as u8).wrapping_mul(i).wrapping_add(5)).collect();
            let (rc, rg) = (RustCryptoCipher::new(&key), RingCipher::new(&key));
            let (mut a, mut b) = (plain.clone(), plain.clone());
            let (ta, tb) = (rc.seal(&nonce, &mut a), rg.seal(&nonce, &mut b));
            assert_eq!((&a, ta), (&b, tb), "case {i}");
            rg.open(&nonce, &mut a, &ta).unwrap();
            rc.open(&nonce, &mut b, &tb).unwrap();
            assert_eq!(a, plain);
            assert_eq!(b, plain);
            let mut bad = ta;
            bad[0] ^= 1;
            assert!(rc.open(&nonce, &mut b.clone(), &bad).is_err());
            assert!(rg.open(&nonce, &mut b.clone(), &bad).is_err());
        }
    }
}
