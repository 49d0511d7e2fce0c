//! The node's long-lived Ed25519 identity key and its key file.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer, SigningKey};
use zeroize::Zeroizing;

use crate::{NodeId, PublicKey, WireProfile, atomic_file};

/// The amino/JSON type name CometBFT writes for an Ed25519 private key.
const COMETBFT_PRIV_KEY_TYPE: &str = "tendermint/PrivKeyEd25519";
/// The amino type URL TM2 uses for an Ed25519 private key inside an interface-typed field.
const TM2_PRIV_KEY_TYPE: &str = "/tm.PrivKeyEd25519";

/// A node's Ed25519 identity key. The secret half is wiped from memory when the key is dropped.
///
/// Key files use the reference implementations' JSON, so an operator can bring a key from an existing node:
/// - tm2 (gno): `{"priv_key": "<base64 of seed‖public key, 64 bytes>"}`
/// - cometbft: `{"priv_key": {"type": "tendermint/PrivKeyEd25519", "value": "<base64, 64 bytes>"}}`
///
/// [`NodeKey::load`] accepts either form; [`NodeKey::save`] writes the given profile's form.
pub struct NodeKey {
    signing: SigningKey,
}

/// Why a key file could not be read, parsed or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum NodeKeyError {
    /// The file does not exist.
    #[error("node key file {path} does not exist")]
    Missing {
        /// The key file.
        path: PathBuf,
    },
    /// The file exists but could not be read.
    #[error("cannot read node key file {path}: {source}")]
    Read {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file is not one of the accepted JSON forms.
    #[error("node key file {path} is malformed: {reason}")]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file's public half does not belong to its secret half.
    #[error("node key file {path} is inconsistent: {reason}")]
    Inconsistent {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file could not be written.
    #[error("cannot write node key file {path}: {source}")]
    Write {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

#[derive(serde::Deserialize)]
struct KeyFile {
    priv_key: KeyField,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum KeyField {
    Bare(String),
    CometTyped {
        #[serde(rename = "type")]
        ty: String,
        value: String,
    },
    AminoTyped {
        #[serde(rename = "@type")]
        ty: String,
        value: String,
    },
}

impl NodeKey {
    /// A fresh key from the operating system's random number generator.
    ///
    /// # Panics
    /// If the operating system cannot provide randomness, which leaves no safe way to create a key.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        #[allow(clippy::expect_used)]
        getrandom::fill(seed.as_mut()).expect("the operating system random number generator failed");
        Self::from_seed(&seed)
    }

    /// The key with the given 32-byte RFC 8032 seed (deterministic; for tests and key import).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        NodeKey { signing: SigningKey::from_bytes(seed) }
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_verifying_key(self.signing.verifying_key())
    }

    /// This node's ID in `profile`'s notation.
    pub fn node_id(&self, profile: WireProfile) -> NodeId {
        self.public_key().node_id(profile)
    }

    /// An Ed25519 signature over `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// Loads and validates a key file written by ledgerwire, gno or CometBFT.
    pub fn load(path: &Path) -> Result<Self, NodeKeyError> {
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                NodeKeyError::Missing { path: path.to_owned() }
            } else {
                NodeKeyError::Read { path: path.to_owned(), source }
            }
        })?);
        Self::from_json(&text).map_err(|e| e.with_path(path))
    }

    /// Loads the key file at `path`, or creates one (in `profile`'s form) if there is none.
    pub fn load_or_generate(path: &Path, profile: WireProfile) -> Result<Self, NodeKeyError> {
        match Self::load(path) {
            Err(NodeKeyError::Missing { .. }) => {
                let key = Self::generate();
                key.save(path, profile)?;
                Ok(key)
            }
            other => other,
        }
    }

    /// Writes the key file in `profile`'s form: atomically, with mode 0600, creating the parent directory (0700)
    /// if needed.
    pub fn save(&self, path: &Path, profile: WireProfile) -> Result<(), NodeKeyError> {
        let write_err = |source| NodeKeyError::Write { path: path.to_owned(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(write_err)?;
        }
        let json = Zeroizing::new(self.to_json(profile));
        atomic_file::write_atomic(path, json.as_bytes(), 0o600).map_err(write_err)
    }

    fn to_json(&self, profile: WireProfile) -> String {
        let mut raw = Zeroizing::new([0u8; 64]);
        raw[..32].copy_from_slice(self.signing.as_bytes());
        raw[32..].copy_from_slice(self.signing.verifying_key().as_bytes());
        let b64 = Zeroizing::new(BASE64.encode(raw.as_ref()));
        match profile {
            WireProfile::Tm2 => format!("{{\n  \"priv_key\": \"{}\"\n}}\n", b64.as_str()),
            WireProfile::CometBft => format!(
                "{{\n  \"priv_key\": {{\n    \"type\": \"{COMETBFT_PRIV_KEY_TYPE}\",\n    \"value\": \"{}\"\n  }}\n}}\n",
                b64.as_str()
            ),
        }
    }

    fn from_json(text: &str) -> Result<Self, KeyProblem> {
        let file: KeyFile = serde_json::from_str(text).map_err(|e| KeyProblem::Malformed(strip_secret(e)))?;
        let b64 = match &file.priv_key {
            KeyField::Bare(v) => v,
            KeyField::CometTyped { ty, value } | KeyField::AminoTyped { ty, value } => {
                if ty != COMETBFT_PRIV_KEY_TYPE && ty != TM2_PRIV_KEY_TYPE {
                    return Err(KeyProblem::Malformed(format!(
                        "unsupported key type {ty:?}; only ed25519 node keys exist"
                    )));
                }
                value
            }
        };
        let raw = Zeroizing::new(
            BASE64.decode(b64).map_err(|_| KeyProblem::Malformed("priv_key is not valid base64".into()))?,
        );
        if raw.len() != 64 {
            return Err(KeyProblem::Malformed(format!(
                "priv_key holds {} bytes, expected 64 (seed and public key)",
                raw.len()
            )));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&raw[..32]);
        let stored_public = &raw[32..];
        if stored_public.iter().all(|&b| b == 0) {
            return Err(KeyProblem::Inconsistent("the public half is all zeros".into()));
        }
        let key = Self::from_seed(&seed);
        if key.public_key().as_bytes() != stored_public {
            return Err(KeyProblem::Inconsistent("the public half does not belong to the private half".into()));
        }
        Ok(key)
    }
}

/// A parse problem before the file name is attached.
enum KeyProblem {
    Malformed(String),
    Inconsistent(String),
}

impl KeyProblem {
    fn with_path(self, path: &Path) -> NodeKeyError {
        match self {
            KeyProblem::Malformed(reason) => NodeKeyError::Malformed { path: path.to_owned(), reason },
            KeyProblem::Inconsistent(reason) => NodeKeyError::Inconsistent { path: path.to_owned(), reason },
        }
    }
}

/// serde_json errors can quote input; report only the position so secrets never reach a log.
fn strip_secret(e: serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => "JSON without a usable \"priv_key\" field",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{what} (line {}, column {})", e.line(), e.column())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKey").field("public", &self.public_key()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// gno tm2/pkg/bft/config/toml.go test key (seed‖pub); its address is g1uvwz22t0l2fv9az93wutmlusrjv5zdwx2n32d5.
    const GNO_KEY_B64: &str =
        "Qq4Q9QH2flPSIJShbXPIocbrQtQ4S7Kdn31uI3sKZoJxW3rDcLUNZjDCQCKuduwvj0Kg57xPxlHYEIHwx44ZGA==";

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let p = dir.path().join(name);
        fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn generated_keys_differ_and_sign_verifiably() {
        let a = NodeKey::generate();
        let b = NodeKey::generate();
        assert_ne!(a.public_key(), b.public_key());
        let sig = a.sign(b"challenge");
        assert!(a.public_key().verify(b"challenge", &sig));
        assert!(!b.public_key().verify(b"challenge", &sig));
        assert!(!a.public_key().verify(b"challengf", &sig));
    }

    #[test]
    fn save_then_load_round_trips_in_both_profiles_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        for profile in WireProfile::ALL {
            let path = dir.path().join(format!("secrets-{profile}/node_key.json"));
            let key = NodeKey::generate();
            key.save(&path, profile).unwrap();
            let loaded = NodeKey::load(&path).unwrap();
            assert_eq!(loaded.public_key(), key.public_key());
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            }
        }
    }

    #[test]
    fn saved_files_have_the_reference_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let key = NodeKey::from_seed(&[9u8; 32]);
        let tm2 = dir.path().join("tm2.json");
        key.save(&tm2, WireProfile::Tm2).unwrap();
        let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&tm2).unwrap()).unwrap();
        assert!(v["priv_key"].is_string(), "{v}");
        let comet = dir.path().join("comet.json");
        key.save(&comet, WireProfile::CometBft).unwrap();
        let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&comet).unwrap()).unwrap();
        assert_eq!(v["priv_key"]["type"], "tendermint/PrivKeyEd25519");
        assert_eq!(BASE64.decode(v["priv_key"]["value"].as_str().unwrap()).unwrap().len(), 64);
    }

    #[test]
    fn loads_a_key_written_by_gno_and_by_cometbft() {
        let dir = tempfile::tempdir().unwrap();
        let gno = write(&dir, "gno.json", &format!("{{\"priv_key\": \"{GNO_KEY_B64}\"}}"));
        let key = NodeKey::load(&gno).unwrap();
        assert_eq!(key.node_id(WireProfile::Tm2).to_string(), "g1uvwz22t0l2fv9az93wutmlusrjv5zdwx2n32d5");
        let comet = write(
            &dir,
            "comet.json",
            &format!("{{\"priv_key\":{{\"type\":\"tendermint/PrivKeyEd25519\",\"value\":\"{GNO_KEY_B64}\"}}}}"),
        );
        assert_eq!(NodeKey::load(&comet).unwrap().public_key(), key.public_key());
    }

    #[test]
    fn missing_malformed_and_inconsistent_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent.json");
        let e = NodeKey::load(&missing).unwrap_err();
        assert!(matches!(e, NodeKeyError::Missing { .. }));
        assert!(e.to_string().contains("absent.json"), "{e}");

        let mut swapped = BASE64.decode(GNO_KEY_B64).unwrap();
        swapped[40] ^= 1;
        let mut zero_pub = BASE64.decode(GNO_KEY_B64).unwrap();
        zero_pub[32..].fill(0);
        let cases = [
            ("not-json.json", "priv_key = 1".to_string(), "not valid JSON"),
            ("no-field.json", "{\"key\": \"x\"}".to_string(), "priv_key"),
            ("bad-b64.json", "{\"priv_key\": \"@@@\"}".to_string(), "base64"),
            ("short.json", format!("{{\"priv_key\": \"{}\"}}", BASE64.encode([1u8; 32])), "32 bytes"),
            (
                "secp.json",
                format!("{{\"priv_key\":{{\"type\":\"tendermint/PrivKeySecp256k1\",\"value\":\"{GNO_KEY_B64}\"}}}}"),
                "unsupported key type",
            ),
            ("mismatch.json", format!("{{\"priv_key\": \"{}\"}}", BASE64.encode(&swapped)), "does not belong"),
            ("zero.json", format!("{{\"priv_key\": \"{}\"}}", BASE64.encode(&zero_pub)), "all zeros"),
        ];
        for (name, text, needle) in cases {
            let p = write(&dir, name, &text);
            let e = NodeKey::load(&p).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(name), "{msg}");
            assert!(msg.contains(needle), "{name}: {msg}");
        }
    }

    #[test]
    fn malformed_json_errors_never_quote_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "k.json", &format!("{{\"priv_key\": 5, \"x\": \"{GNO_KEY_B64}\"}}"));
        let msg = NodeKey::load(&p).unwrap_err().to_string();
        assert!(!msg.contains("Qq4Q9"), "{msg}");
    }

    #[test]
    fn load_or_generate_creates_once_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config/node_key.json");
        let first = NodeKey::load_or_generate(&path, WireProfile::Tm2).unwrap();
        let second = NodeKey::load_or_generate(&path, WireProfile::Tm2).unwrap();
        assert_eq!(first.public_key(), second.public_key());
        // A corrupt file is an error, never silently replaced by a new identity.
        fs::write(&path, "garbage").unwrap();
        assert!(NodeKey::load_or_generate(&path, WireProfile::Tm2).is_err());
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let key = NodeKey::from_seed(&[0x42; 32]);
        let dbg = format!("{key:?}");
        assert!(!dbg.contains("4242424242"), "{dbg}");
    }
}
