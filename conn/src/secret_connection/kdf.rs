//! Key and challenge derivation from the X25519 shared secret.
//!
//! `HKDF-SHA256(ikm = dh, salt = none, info = "TENDERMINT_SECRET_CONNECTION_KEY_AND_CHALLENGE_GEN")` yields 96 bytes:
//! the first two 32-byte blocks are the receive and send keys of the side whose ephemeral key sorts lower (swapped
//! for the other side), and the last block is the tm2 challenge. The cometbft profile instead signs a challenge
//! taken from a merlin transcript over both ephemeral keys and the shared secret.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

/// The HKDF `info` string, identical in TM2 and CometBFT.
pub(crate) const HKDF_INFO: &[u8] = b"TENDERMINT_SECRET_CONNECTION_KEY_AND_CHALLENGE_GEN";
/// The merlin transcript label (cometbft profile).
const TRANSCRIPT_LABEL: &[u8] = b"TENDERMINT_SECRET_CONNECTION_TRANSCRIPT_HASH";

/// The per-direction keys of one side, and the HKDF challenge.
pub(crate) struct SessionSecrets {
    pub(crate) recv_key: Zeroizing<[u8; 32]>,
    pub(crate) send_key: Zeroizing<[u8; 32]>,
    /// `okm[64..96]`: the value the tm2 profile signs.
    pub(crate) hkdf_challenge: [u8; 32],
}

/// Derives one side's keys from the shared secret. `local_is_least` says whether our ephemeral key sorts first.
pub(crate) fn derive_secrets(dh: &[u8; 32], local_is_least: bool) -> SessionSecrets {
    let mut okm = Zeroizing::new([0u8; 96]);
    // 96 bytes is far below HKDF-SHA256's 8160-byte output limit.
    #[allow(clippy::expect_used)]
    Hkdf::<Sha256>::new(None, dh).expand(HKDF_INFO, okm.as_mut()).expect("96 bytes is a valid HKDF-SHA256 length");
    let mut first = Zeroizing::new([0u8; 32]);
    let mut second = Zeroizing::new([0u8; 32]);
    first.copy_from_slice(&okm[..32]);
    second.copy_from_slice(&okm[32..64]);
    let mut hkdf_challenge = [0u8; 32];
    hkdf_challenge.copy_from_slice(&okm[64..]);
    let (recv_key, send_key) = if local_is_least { (first, second) } else { (second, first) };
    SessionSecrets { recv_key, send_key, hkdf_challenge }
}

/// The cometbft challenge: a merlin transcript over the sorted ephemeral keys and the shared secret.
pub(crate) fn merlin_challenge(lo: &[u8; 32], hi: &[u8; 32], dh: &[u8; 32]) -> [u8; 32] {
    let mut transcript = merlin::Transcript::new(TRANSCRIPT_LABEL);
    transcript.append_message(b"EPHEMERAL_LOWER_PUBLIC_KEY", lo);
    transcript.append_message(b"EPHEMERAL_UPPER_PUBLIC_KEY", hi);
    transcript.append_message(b"DH_SECRET", dh);
    let mut challenge = [0u8; 32];
    transcript.challenge_bytes(b"SECRET_CONNECTION_MAC", &mut challenge);
    challenge
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h32(s: &str) -> [u8; 32] {
        let mut b = [0u8; 32];
        hex::decode_to_slice(s, &mut b).unwrap();
        b
    }

    #[test]
    fn golden_file_from_cometbft_and_tm2_matches_all_columns() {
        // conn/testdata/TestDeriveSecretsAndChallengeGolden.golden (identical in TM2 and CometBFT):
        // dh, local_is_least, recv, send, hkdf_challenge.
        let golden = include_str!("../../tests/data/TestDeriveSecretsAndChallengeGolden.golden");
        let mut lines = 0;
        for line in golden.lines().filter(|l| !l.trim().is_empty()) {
            let cols: Vec<&str> = line.split(',').collect();
            assert_eq!(cols.len(), 5, "{line}");
            let s = derive_secrets(&h32(cols[0]), cols[1].parse().unwrap());
            assert_eq!(hex::encode(*s.recv_key), cols[2], "recv, line {lines}");
            assert_eq!(hex::encode(*s.send_key), cols[3], "send, line {lines}");
            assert_eq!(hex::encode(s.hkdf_challenge), cols[4], "challenge, line {lines}");
            lines += 1;
        }
        assert_eq!(lines, 32);
    }

    #[test]
    fn tm2_hkdf_split_for_a_counting_secret() {
        // The HKDF counting vector (dh = 00 01 .. 1f), computed independently of the Go code (docs/protocol.md).
        let mut dh = [0u8; 32];
        for (i, b) in dh.iter_mut().enumerate() {
            *b = i as u8;
        }
        let okm0 = "a780af6ec59555888a367147aa0a04e63fa4fe36e482d6f2bb44b430a02ada92";
        let okm1 = "9afd8e227434b443265069990ea1f43fad6483f4ba8382bff3fcd7c7b56263a9";
        let okm2 = "c416030041e5ff720eb3336522239dd7d5de700ee41fa4eadda775dbad37930d";
        let least = derive_secrets(&dh, true);
        assert_eq!((hex::encode(*least.recv_key).as_str(), hex::encode(*least.send_key).as_str()), (okm0, okm1));
        let other = derive_secrets(&dh, false);
        assert_eq!((hex::encode(*other.recv_key).as_str(), hex::encode(*other.send_key).as_str()), (okm1, okm0));
        assert_eq!(hex::encode(least.hkdf_challenge), okm2);
        assert_eq!(least.hkdf_challenge, other.hkdf_challenge, "both sides sign the same tm2 challenge");
    }

    #[test]
    fn merlin_is_the_standard_strobe_transcript() {
        // gtank/merlin TestSimpleTranscript, also curve25519-voi (the merlin of CometBFT v0.38).
        let mut t = merlin::Transcript::new(b"test protocol");
        t.append_message(b"some label", b"some data");
        let mut out = [0u8; 32];
        t.challenge_bytes(b"challenge", &mut out);
        assert_eq!(hex::encode(out), "d5a21972d0d5fe320c0d263fac7fffb8145aa640af6e9bca177c03c7efcf0615");
    }
}
