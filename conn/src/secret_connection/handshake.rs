//! The station-to-station handshake as a state machine, without I/O.
//!
//! Both sides run the same steps (there are no initiator and responder roles):
//!
//! 1. [`Handshake::new`] makes an ephemeral X25519 key; send [`Handshake::ephemeral_message`] (35 bytes, plaintext)
//!    while reading the peer's.
//! 2. [`Handshake::got_ephemeral_message`] checks the peer's key, derives the session keys and the challenge, and
//!    returns the frame sealer and opener for the rest of the connection.
//! 3. Send [`Handshake::auth_message`] (our public key and our signature over the challenge), alone in the first
//!    encrypted frame, while reading the peer's.
//! 4. [`Handshake::got_auth_message`] verifies the peer's signature and returns its authenticated public key.
//!
//! The two wire profiles differ only in the challenge (tm2: HKDF output bytes 64..96; cometbft: a merlin transcript)
//! and in the encoding of the auth message. [`SecretConnection::handshake`](super::SecretConnection::handshake) drives
//! this machine over a socket.

use ledgerwire_types::{NodeKey, PublicKey, WireProfile};
use prost::Message;
use subtle::ConstantTimeEq;
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use super::SecretConnectionError;
use super::frame::{FrameOpener, FrameSealer};
use super::kdf;

/// Length of the ephemeral key message: `0x22 0x0a 0x20` and the 32-byte key.
pub const EPHEMERAL_MESSAGE_LEN: usize = 35;
/// The three bytes before the key: uvarint length 34, then protobuf field 1 (bytes) of length 32. This is both
/// amino's encoding of a `[32]byte` and CometBFT's length-delimited `gogoproto.BytesValue`.
const EPHEMERAL_PREFIX: [u8; 3] = [0x22, 0x0a, 0x20];

/// The largest auth message body we read. Real ones are 100 (tm2) or 102 (cometbft) bytes; the references allow
/// 1 MiB, which only helps an attacker.
pub const MAX_AUTH_MESSAGE_LEN: usize = 128;

/// The seven X25519 public keys of low order (<https://cr.yp.to/ecdh.html>): 0, 1, two points of order 8, p−1, p and
/// p+1, little-endian. A peer sending one would force a known shared secret.
const LOW_ORDER_POINTS: [[u8; 32]; 7] = [
    [0; 32],
    {
        let mut one = [0; 32];
        one[0] = 1;
        one
    },
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09,
        0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
    ],
    [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b, 0x04, 0x44,
        0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57,
    ],
    high_field_element(0xec),
    high_field_element(0xed),
    high_field_element(0xee),
];

/// `b ff ff … ff 7f`: p−1, p and p+1 for b = 0xec, 0xed, 0xee.
const fn high_field_element(low: u8) -> [u8; 32] {
    let mut e = [0xff; 32];
    e[0] = low;
    e[31] = 0x7f;
    e
}

/// The low-order X25519 points every handshake refuses (exposed for adversarial tests).
pub fn low_order_points() -> &'static [[u8; 32]; 7] {
    &LOW_ORDER_POINTS
}

/// A handshake in progress; `S` is the step it is waiting for.
pub struct Handshake<S> {
    profile: WireProfile,
    state: S,
}

/// Waiting for the peer's ephemeral key.
pub struct AwaitingEphemeralKey {
    secret: StaticSecret,
    public: [u8; 32],
}

/// Waiting for the peer's auth message.
pub struct AwaitingAuthMessage {
    challenge: [u8; 32],
}

impl Handshake<AwaitingEphemeralKey> {
    /// Starts a handshake with a fresh ephemeral key from the operating system's random number generator.
    ///
    /// # Panics
    /// If the operating system cannot provide randomness.
    pub fn new(profile: WireProfile) -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        #[allow(clippy::expect_used)]
        getrandom::fill(secret.as_mut()).expect("the operating system random number generator failed");
        Self::with_ephemeral_secret(profile, *secret)
    }

    /// Starts a handshake with a given ephemeral secret. Reusing an ephemeral secret destroys forward secrecy;
    /// this exists for reproducible test vectors.
    pub fn with_ephemeral_secret(profile: WireProfile, secret: [u8; 32]) -> Self {
        let secret = StaticSecret::from(secret);
        let public = x25519_dalek::PublicKey::from(&secret).to_bytes();
        Handshake { profile, state: AwaitingEphemeralKey { secret, public } }
    }

    /// The wire profile this handshake speaks.
    pub fn profile(&self) -> WireProfile {
        self.profile
    }

    /// Our ephemeral public key.
    pub fn ephemeral_public_key(&self) -> [u8; 32] {
        self.state.public
    }

    /// The 35-byte plaintext message carrying our ephemeral key.
    pub fn ephemeral_message(&self) -> [u8; EPHEMERAL_MESSAGE_LEN] {
        let mut msg = [0u8; EPHEMERAL_MESSAGE_LEN];
        msg[..3].copy_from_slice(&EPHEMERAL_PREFIX);
        msg[3..].copy_from_slice(&self.state.public);
        msg
    }

    /// Takes the peer's ephemeral key message and returns the next state together with the frame sealer (our send
    /// key) and opener (our receive key).
    pub fn got_ephemeral_message(
        self,
        message: &[u8; EPHEMERAL_MESSAGE_LEN],
    ) -> Result<(Handshake<AwaitingAuthMessage>, FrameSealer, FrameOpener), SecretConnectionError> {
        let remote = parse_ephemeral_message(message)?;
        let local = self.state.public;
        if bool::from(remote.ct_eq(&local)) {
            return Err(SecretConnectionError::MalformedEphemeralKey("the peer sent our own ephemeral key back"));
        }
        let shared = self.state.secret.diffie_hellman(&x25519_dalek::PublicKey::from(remote));
        if !shared.was_contributory() {
            return Err(SecretConnectionError::LowOrderEphemeralKey);
        }
        let dh = Zeroizing::new(shared.to_bytes());
        let (lo, hi) = if local < remote { (local, remote) } else { (remote, local) };
        let secrets = kdf::derive_secrets(&dh, local == lo);
        let challenge = match self.profile {
            WireProfile::Tm2 => secrets.hkdf_challenge,
            WireProfile::CometBft => kdf::merlin_challenge(&lo, &hi, &dh),
        };
        Ok((
            Handshake { profile: self.profile, state: AwaitingAuthMessage { challenge } },
            FrameSealer::new(&secrets.send_key),
            FrameOpener::new(&secrets.recv_key),
        ))
    }
}

/// Checks an ephemeral key message and returns the key it carries.
pub fn parse_ephemeral_message(message: &[u8; EPHEMERAL_MESSAGE_LEN]) -> Result<[u8; 32], SecretConnectionError> {
    if message[0] != EPHEMERAL_PREFIX[0] {
        return Err(SecretConnectionError::MalformedEphemeralKey("wrong length prefix (expected 34 bytes)"));
    }
    if message[1..3] != EPHEMERAL_PREFIX[1..] {
        return Err(SecretConnectionError::MalformedEphemeralKey("not a 32-byte key in field 1"));
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&message[3..]);
    let low_order = LOW_ORDER_POINTS.iter().fold(subtle::Choice::from(0), |acc, p| acc | p.ct_eq(&key));
    if bool::from(low_order) {
        return Err(SecretConnectionError::LowOrderEphemeralKey);
    }
    Ok(key)
}

impl Handshake<AwaitingAuthMessage> {
    /// The value both sides sign.
    pub fn challenge(&self) -> &[u8; 32] {
        &self.state.challenge
    }

    /// Our auth message, length-delimited, ready to be sealed alone into the first frame.
    pub fn auth_message(&self, key: &NodeKey) -> Vec<u8> {
        encode_auth_message(self.profile, key.public_key().as_bytes(), &key.sign(&self.state.challenge))
    }

    /// Verifies the peer's auth message body (without its length prefix) and returns the peer's public key.
    pub fn got_auth_message(self, body: &[u8]) -> Result<PublicKey, SecretConnectionError> {
        let (key, signature) = decode_auth_message(self.profile, body)?;
        let key = PublicKey::from_bytes(&key).map_err(|_| SecretConnectionError::InvalidPublicKey)?;
        if !key.verify(&self.state.challenge, &signature) {
            return Err(SecretConnectionError::BadSignature);
        }
        Ok(key)
    }
}

/// TM2's amino `AuthSigMessage{Key PubKeyEd25519; Sig []byte}`; the key is a concrete type, so no type prefix.
#[derive(Clone, PartialEq, prost::Message)]
struct Tm2AuthSig {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    sig: Vec<u8>,
}

/// CometBFT's `tendermint.p2p.AuthSigMessage`.
#[derive(Clone, PartialEq, prost::Message)]
struct CometAuthSig {
    #[prost(message, optional, tag = "1")]
    pub_key: Option<CometPublicKey>,
    #[prost(bytes = "vec", tag = "2")]
    sig: Vec<u8>,
}

/// CometBFT's `tendermint.crypto.PublicKey`.
#[derive(Clone, PartialEq, prost::Message)]
struct CometPublicKey {
    #[prost(oneof = "CometPublicKeySum", tags = "1, 2")]
    sum: Option<CometPublicKeySum>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum CometPublicKeySum {
    #[prost(bytes = "vec", tag = "1")]
    Ed25519(Vec<u8>),
    #[prost(bytes = "vec", tag = "2")]
    Secp256k1(Vec<u8>),
}

/// Encodes an auth message, length-delimited: `64 0a20‹key› 1240‹sig›` (tm2, 101 bytes) or
/// `66 0a22 0a20‹key› 1240‹sig›` (cometbft, 103 bytes).
pub fn encode_auth_message(profile: WireProfile, key: &[u8; 32], signature: &[u8; 64]) -> Vec<u8> {
    match profile {
        WireProfile::Tm2 => Tm2AuthSig { key: key.to_vec(), sig: signature.to_vec() }.encode_length_delimited_to_vec(),
        WireProfile::CometBft => CometAuthSig {
            pub_key: Some(CometPublicKey { sum: Some(CometPublicKeySum::Ed25519(key.to_vec())) }),
            sig: signature.to_vec(),
        }
        .encode_length_delimited_to_vec(),
    }
}

/// Decodes an auth message body (without its length prefix) into the key and signature bytes.
pub fn decode_auth_message(profile: WireProfile, body: &[u8]) -> Result<([u8; 32], [u8; 64]), SecretConnectionError> {
    if body.len() > MAX_AUTH_MESSAGE_LEN {
        return Err(SecretConnectionError::AuthMessageTooLarge { len: body.len() as u64, max: MAX_AUTH_MESSAGE_LEN });
    }
    let malformed = |e: prost::DecodeError| SecretConnectionError::MalformedAuthMessage(e.to_string());
    let (key, sig) = match profile {
        WireProfile::Tm2 => {
            let m = Tm2AuthSig::decode(body).map_err(malformed)?;
            (m.key, m.sig)
        }
        WireProfile::CometBft => {
            let m = CometAuthSig::decode(body).map_err(malformed)?;
            let key = match m.pub_key.and_then(|k| k.sum) {
                Some(CometPublicKeySum::Ed25519(k)) => k,
                Some(CometPublicKeySum::Secp256k1(_)) => {
                    return Err(SecretConnectionError::UnsupportedKeyType("secp256k1"));
                }
                None => {
                    return Err(SecretConnectionError::MalformedAuthMessage("no public key".into()));
                }
            };
            (key, m.sig)
        }
    };
    let key: [u8; 32] = key.as_slice().try_into().map_err(|_| {
        SecretConnectionError::MalformedAuthMessage(format!("public key of {} bytes, expected 32", key.len()))
    })?;
    let sig: [u8; 64] = sig.as_slice().try_into().map_err(|_| {
        SecretConnectionError::MalformedAuthMessage(format!("signature of {} bytes, expected 64", sig.len()))
    })?;
    Ok((key, sig))
}

impl<S> std::fmt::Debug for Handshake<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("profile", &self.profile)
            .field("step", &std::any::type_name::<S>().rsplit("::").next().unwrap_or("?"))
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AwaitingEphemeralKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwaitingEphemeralKey").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AwaitingAuthMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwaitingAuthMessage").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::{DATA_LEN_SIZE, SEALED_FRAME_LEN};
    use super::*;

    fn unhex<const N: usize>(v: &serde_json::Value) -> [u8; N] {
        let mut out = [0u8; N];
        hex::decode_to_slice(v.as_str().unwrap(), &mut out).unwrap();
        out
    }

    /// The full deterministic CometBFT handshakes in cometbft-handshake-vectors.json (generated with tendermint-p2p).
    #[test]
    fn cometbft_full_handshake_vectors() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/cometbft-handshake-vectors.json")).unwrap();
        let vectors = doc["vectors"].as_array().unwrap();
        assert!(vectors.len() >= 3);
        for v in vectors {
            let name = v["name"].as_str().unwrap();
            for (me, peer) in [("a", "b"), ("b", "a")] {
                let m = &v[me];
                let p = &v[peer];
                let key = NodeKey::from_seed(&unhex(&m["ed25519_seed"]));
                assert_eq!(key.public_key().to_bytes(), unhex::<32>(&m["ed25519_pub"]), "{name}/{me}");
                assert_eq!(key.node_id(WireProfile::CometBft).to_string(), m["node_id"].as_str().unwrap());

                let hs = Handshake::with_ephemeral_secret(WireProfile::CometBft, unhex(&m["eph_secret"]));
                assert_eq!(hs.ephemeral_public_key(), unhex::<32>(&m["eph_pub"]), "{name}/{me}");
                assert_eq!(hs.ephemeral_message(), unhex::<35>(&m["initial_msg"]), "{name}/{me}");

                let (hs, mut sealer, mut opener) = hs.got_ephemeral_message(&unhex(&p["initial_msg"])).unwrap();
                assert_eq!(hs.challenge(), &unhex::<32>(&v["merlin_challenge"]), "{name}/{me}");
                let auth = hs.auth_message(&key);
                assert_eq!(hex::encode(&auth), m["auth_sig_msg"].as_str().unwrap(), "{name}/{me}");
                assert_eq!(auth.len(), 103);

                // Our first two frames are byte-identical to tendermint-p2p's.
                assert_eq!(sealer.seal(&auth).unwrap(), unhex::<SEALED_FRAME_LEN>(&m["frame0_sealed"]), "{name}/{me}");
                let plain = m["frame1_plain"].as_str().unwrap().as_bytes();
                assert_eq!(sealer.seal(plain).unwrap(), unhex::<SEALED_FRAME_LEN>(&m["frame1_sealed"]), "{name}/{me}");

                // And we open the peer's frames and accept its signature.
                let mut f0 = unhex::<SEALED_FRAME_LEN>(&p["frame0_sealed"]);
                let len = opener.open_in_place(&mut f0).unwrap();
                let peer_auth = &f0[DATA_LEN_SIZE..DATA_LEN_SIZE + len];
                assert_eq!(peer_auth[0] as usize, peer_auth.len() - 1, "length prefix");
                let remote = hs.got_auth_message(&peer_auth[1..]).unwrap();
                assert_eq!(remote.to_bytes(), unhex::<32>(&p["ed25519_pub"]));
                let mut f1 = unhex::<SEALED_FRAME_LEN>(&p["frame1_sealed"]);
                let len = opener.open_in_place(&mut f1).unwrap();
                assert_eq!(&f1[DATA_LEN_SIZE..DATA_LEN_SIZE + len], p["frame1_plain"].as_str().unwrap().as_bytes());
            }
        }
    }

    #[test]
    fn tm2_messages_have_the_documented_bytes() {
        // docs/protocol.md, "Secret connection handshake": ephemeral message 22 0a 20 ‹32›; AuthSig 64 0a 20 ‹pub› 12 40 ‹sig›.
        let hs = Handshake::with_ephemeral_secret(WireProfile::Tm2, [2; 32]);
        let msg = hs.ephemeral_message();
        assert_eq!(&msg[..3], &[0x22, 0x0a, 0x20]);
        assert_eq!(msg[3..], hs.ephemeral_public_key());

        let auth = encode_auth_message(WireProfile::Tm2, &[0x11; 32], &[0x22; 64]);
        let mut want = vec![0x64, 0x0a, 0x20];
        want.extend([0x11; 32]);
        want.extend([0x12, 0x40]);
        want.extend([0x22; 64]);
        assert_eq!(auth, want);
        assert_eq!(auth.len(), 101);
        assert_eq!(decode_auth_message(WireProfile::Tm2, &auth[1..]).unwrap(), ([0x11; 32], [0x22; 64]));
    }

    #[test]
    fn tm2_signs_the_hkdf_challenge_and_cometbft_the_merlin_one() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/cometbft-handshake-vectors.json")).unwrap();
        let v = &doc["vectors"][0];
        let a = Handshake::with_ephemeral_secret(WireProfile::Tm2, unhex(&v["a"]["eph_secret"]));
        let (a, _, _) = a.got_ephemeral_message(&unhex(&v["b"]["initial_msg"])).unwrap();
        assert_eq!(a.challenge(), &unhex::<32>(&v["hkdf_challenge_legacy"]));
    }

    #[test]
    fn both_sides_agree_on_keys_and_authenticate_each_other() {
        for profile in WireProfile::ALL {
            let (ka, kb) = (NodeKey::generate(), NodeKey::generate());
            let (a, b) = (Handshake::new(profile), Handshake::new(profile));
            let (ma, mb) = (a.ephemeral_message(), b.ephemeral_message());
            let (a, mut seal_a, mut open_a) = a.got_ephemeral_message(&mb).unwrap();
            let (b, mut seal_b, mut open_b) = b.got_ephemeral_message(&ma).unwrap();
            assert_eq!(a.challenge(), b.challenge());
            let mut fa = seal_a.seal(&a.auth_message(&ka)).unwrap();
            let mut fb = seal_b.seal(&b.auth_message(&kb)).unwrap();
            let la = open_b.open_in_place(&mut fa).unwrap();
            let lb = open_a.open_in_place(&mut fb).unwrap();
            assert_eq!(b.got_auth_message(&fa[DATA_LEN_SIZE + 1..DATA_LEN_SIZE + la]).unwrap(), ka.public_key());
            assert_eq!(a.got_auth_message(&fb[DATA_LEN_SIZE + 1..DATA_LEN_SIZE + lb]).unwrap(), kb.public_key());
        }
    }

    #[test]
    fn every_low_order_point_is_rejected_in_both_profiles() {
        for profile in WireProfile::ALL {
            for point in low_order_points() {
                let mut msg = [0u8; EPHEMERAL_MESSAGE_LEN];
                msg[..3].copy_from_slice(&EPHEMERAL_PREFIX);
                msg[3..].copy_from_slice(point);
                let r = Handshake::new(profile).got_ephemeral_message(&msg);
                assert!(matches!(r, Err(SecretConnectionError::LowOrderEphemeralKey)), "{}", hex::encode(point));
            }
        }
    }

    #[test]
    fn low_order_points_with_the_ignored_top_bit_set_are_caught_by_the_zero_secret_check() {
        // X25519 ignores bit 255, so 0 | 0x80.. is the point 0 in disguise; it is not on the list.
        let mut msg = [0u8; EPHEMERAL_MESSAGE_LEN];
        msg[..3].copy_from_slice(&EPHEMERAL_PREFIX);
        msg[EPHEMERAL_MESSAGE_LEN - 1] = 0x80;
        let r = Handshake::new(WireProfile::Tm2).got_ephemeral_message(&msg);
        assert!(matches!(r, Err(SecretConnectionError::LowOrderEphemeralKey)));
    }

    #[test]
    fn malformed_ephemeral_messages_and_reflection_are_rejected() {
        let hs = Handshake::new(WireProfile::CometBft);
        let mut amino_v033 = hs.ephemeral_message();
        amino_v033[0] = 0x21;
        assert!(parse_ephemeral_message(&amino_v033).is_err());
        let mut wrong_field = hs.ephemeral_message();
        wrong_field[1] = 0x12;
        assert!(parse_ephemeral_message(&wrong_field).is_err());
        let own = hs.ephemeral_message();
        assert!(matches!(hs.got_ephemeral_message(&own), Err(SecretConnectionError::MalformedEphemeralKey(_))));
    }

    #[test]
    fn auth_message_decoding_rejects_bad_shapes() {
        let good = encode_auth_message(WireProfile::CometBft, &[1; 32], &[2; 64]);
        assert!(decode_auth_message(WireProfile::CometBft, &good[1..]).is_ok());
        // The tm2 decoder reads the cometbft wrapper as a 34-byte key.
        assert!(matches!(
            decode_auth_message(WireProfile::Tm2, &good[1..]),
            Err(SecretConnectionError::MalformedAuthMessage(_))
        ));
        let secp = CometAuthSig {
            pub_key: Some(CometPublicKey { sum: Some(CometPublicKeySum::Secp256k1(vec![3; 33])) }),
            sig: vec![0; 64],
        }
        .encode_to_vec();
        assert!(matches!(
            decode_auth_message(WireProfile::CometBft, &secp),
            Err(SecretConnectionError::UnsupportedKeyType("secp256k1"))
        ));
        let short_sig = Tm2AuthSig { key: vec![1; 32], sig: vec![2; 63] }.encode_to_vec();
        assert!(decode_auth_message(WireProfile::Tm2, &short_sig).is_err());
        assert!(decode_auth_message(WireProfile::Tm2, &[0xff; 40]).is_err());
        assert!(matches!(
            decode_auth_message(WireProfile::Tm2, &[0; 200]),
            Err(SecretConnectionError::AuthMessageTooLarge { len: 200, .. })
        ));
        let empty_key = CometAuthSig { pub_key: None, sig: vec![0; 64] }.encode_to_vec();
        assert!(decode_auth_message(WireProfile::CometBft, &empty_key).is_err());
    }

    #[test]
    fn a_signature_by_another_key_or_over_another_challenge_fails() {
        let (honest, other) = (NodeKey::generate(), NodeKey::generate());
        let a = Handshake::new(WireProfile::Tm2);
        let b = Handshake::new(WireProfile::Tm2);
        let mb = b.ephemeral_message();
        let (a, _, _) = a.got_ephemeral_message(&mb).unwrap();
        // Claims `honest`'s key, signed by `other`.
        let forged = encode_auth_message(WireProfile::Tm2, honest.public_key().as_bytes(), &other.sign(a.challenge()));
        assert!(matches!(a.got_auth_message(&forged[1..]), Err(SecretConnectionError::BadSignature)));

        let a = Handshake::new(WireProfile::Tm2);
        let (a, _, _) = a.got_ephemeral_message(&mb).unwrap();
        let wrong_msg = encode_auth_message(WireProfile::Tm2, honest.public_key().as_bytes(), &honest.sign(b"other"));
        assert!(matches!(a.got_auth_message(&wrong_msg[1..]), Err(SecretConnectionError::BadSignature)));

        let a = Handshake::new(WireProfile::Tm2);
        let (a, _, _) = a.got_ephemeral_message(&mb).unwrap();
        // Not a point on the curve: y = 2 has no x.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        let bad_key = encode_auth_message(WireProfile::Tm2, &not_a_point, &[0; 64]);
        assert!(matches!(a.got_auth_message(&bad_key[1..]), Err(SecretConnectionError::InvalidPublicKey)));
    }
}
