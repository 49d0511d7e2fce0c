//! Ed25519 public keys of nodes.

use std::fmt;

use ed25519_dalek::{Signature, VerifyingKey};

use crate::{NodeId, WireProfile};

/// A node's Ed25519 public key, as authenticated by the secret connection handshake.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

/// The error for 32 bytes that are not a valid Ed25519 public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid ed25519 public key")]
pub struct InvalidPublicKey;

impl PublicKey {
    /// Parses a compressed Ed25519 point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, InvalidPublicKey> {
        VerifyingKey::from_bytes(bytes).map(PublicKey).map_err(|_| InvalidPublicKey)
    }

    /// The 32-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The 32-byte compressed encoding, borrowed.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Verifies `signature` over `message` with the strict RFC 8032 rules (canonical encodings, no small-order
    /// components), which every honest Go or Rust Tendermint peer satisfies.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.0.verify_strict(message, &Signature::from_bytes(signature)).is_ok()
    }

    /// The node ID this key stands for, in the given profile's notation.
    pub fn node_id(&self, profile: WireProfile) -> NodeId {
        NodeId::from_public_key(self, profile)
    }

    pub(crate) fn from_verifying_key(key: VerifyingKey) -> Self {
        PublicKey(key)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.as_bytes()))
    }
}
