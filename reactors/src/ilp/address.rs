//! ILP addresses (RFC 15): a scheme, then one or more dot-separated segments of `A-Za-z0-9_~-`, 1,023 bytes at most.

use std::fmt;
use std::sync::Arc;

/// The longest ILP address, in bytes.
pub const MAX_ADDRESS_LEN: usize = 1023;

const SCHEMES: [&str; 10] = ["g", "private", "example", "peer", "self", "test", "test1", "test2", "test3", "local"];

/// Why a string is not an ILP address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Empty, or longer than 1,023 bytes.
    #[error("an ILP address has 1 to 1023 characters, this one has {0}")]
    Length(usize),
    /// The first segment is not one of the RFC 15 schemes.
    #[error("unknown ILP address scheme {0:?} (expected g, private, example, peer, self, test, test1-3 or local)")]
    Scheme(String),
    /// No segment after the scheme.
    #[error("an ILP address needs at least one segment after the scheme")]
    NoSegment,
    /// An empty segment or a character outside `A-Za-z0-9_~-`.
    #[error("invalid ILP address segment {0:?} (allowed: letters, digits, _ ~ -)")]
    Segment(String),
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(segment_byte)
}

fn segment_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'~' | b'-')
}

/// Whether `bytes` is an ILP address, in one pass and without allocating (the rules of [`Address::parse`]).
fn valid_bytes(bytes: &[u8]) -> bool {
    if bytes.is_empty() || bytes.len() > MAX_ADDRESS_LEN {
        return false;
    }
    let Some(dot) = bytes.iter().position(|&b| b == b'.') else { return false };
    if !SCHEMES.iter().any(|s| s.as_bytes() == &bytes[..dot]) {
        return false;
    }
    let mut segment_len = 0;
    for &b in &bytes[dot + 1..] {
        if b == b'.' {
            if segment_len == 0 {
                return false;
            }
            segment_len = 0;
        } else if segment_byte(b) {
            segment_len += 1;
        } else {
            return false;
        }
    }
    segment_len > 0
}

/// A valid ILP address. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(Arc<str>);

impl Address {
    /// Validates `s` as an ILP address.
    pub fn parse(s: &str) -> Result<Address, AddressError> {
        if s.is_empty() || s.len() > MAX_ADDRESS_LEN {
            return Err(AddressError::Length(s.len()));
        }
        let mut parts = s.split('.');
        let scheme = parts.next().unwrap_or_default();
        if !SCHEMES.contains(&scheme) {
            return Err(AddressError::Scheme(scheme.chars().take(32).collect()));
        }
        let mut segments = 0;
        for segment in parts {
            if !valid_segment(segment) {
                return Err(AddressError::Segment(segment.chars().take(64).collect()));
            }
            segments += 1;
        }
        if segments == 0 {
            return Err(AddressError::NoSegment);
        }
        Ok(Address(s.into()))
    }

    /// Validates raw bytes (from a packet) as an ILP address.
    pub fn from_bytes(bytes: &[u8]) -> Result<Address, AddressError> {
        // Every packet carries an address: one pass over the bytes accepts exactly what `parse` accepts (every
        // allowed byte is ASCII, so valid bytes are valid UTF-8); anything else goes the long way, for its error.
        if valid_bytes(bytes)
            && let Ok(s) = std::str::from_utf8(bytes)
        {
            return Ok(Address(s.into()));
        }
        match std::str::from_utf8(bytes) {
            Ok(s) => Address::parse(s),
            Err(_) => Err(AddressError::Segment(String::from_utf8_lossy(bytes).chars().take(64).collect())),
        }
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This address with one more segment (`g.conn` + `alice` = `g.conn.alice`).
    pub fn with_suffix(&self, segment: &str) -> Result<Address, AddressError> {
        Address::parse(&format!("{}.{segment}", self.0))
    }

    /// Whether the address starts with the `peer.` scheme (link-local: never forwarded).
    pub fn is_peer_protocol(&self) -> bool {
        self.0.starts_with("peer.")
    }

    /// Whether `prefix` covers this address on a segment boundary: equal, or followed by a dot.
    pub fn starts_with_prefix(&self, prefix: &str) -> bool {
        self.0.len() >= prefix.len()
            && self.0.as_bytes().starts_with(prefix.as_bytes())
            && (self.0.len() == prefix.len() || self.0.as_bytes()[prefix.len()] == b'.')
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", self.0)
    }
}

/// Validates a routing prefix: an address, or a bare scheme (`g`, `test`) for a default route.
pub fn validate_prefix(prefix: &str) -> Result<(), AddressError> {
    if SCHEMES.contains(&prefix) {
        return Ok(());
    }
    Address::parse(prefix).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_15_examples_parse_and_bad_ones_name_the_problem() {
        for ok in ["g.acme.bob", "test.a", "test3.x~y_z-1", "peer.config", "private.a.b.c"] {
            assert!(Address::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(Address::parse("g"), Err(AddressError::NoSegment));
        assert_eq!(Address::parse(""), Err(AddressError::Length(0)));
        assert!(matches!(Address::parse("x.y"), Err(AddressError::Scheme(_))));
        assert!(matches!(Address::parse("g..a"), Err(AddressError::Segment(_))));
        assert!(matches!(Address::parse("test.a!"), Err(AddressError::Segment(_))));
        assert!(matches!(Address::parse("test.a."), Err(AddressError::Segment(_))));
        let long = format!("g.{}", "a".repeat(1021));
        assert!(Address::parse(&long).is_ok());
        assert_eq!(Address::parse(&format!("{long}b")), Err(AddressError::Length(1024)));
    }

    proptest::proptest! {
        #[test]
        fn bytes_are_accepted_exactly_when_the_text_parses(
            scheme in proptest::sample::select(vec!["g", "test", "test3", "peer", "x", "", "g."]),
            rest in proptest::collection::vec(proptest::sample::select(b"ab.Z9_~-.!\xc3\xa9 ".to_vec()), 0..12),
        ) {
            let mut bytes = scheme.as_bytes().to_vec();
            bytes.extend(&rest);
            let slow = match std::str::from_utf8(&bytes) {
                Ok(s) => Address::parse(s),
                Err(_) => Err(AddressError::Segment(String::from_utf8_lossy(&bytes).chars().take(64).collect())),
            };
            proptest::prop_assert_eq!(Address::from_bytes(&bytes), slow);
        }
    }

    #[test]
    fn prefixes_match_on_segment_boundaries_only() {
        let a = Address::parse("test.abc.d").unwrap();
        assert!(a.starts_with_prefix("test.abc"));
        assert!(a.starts_with_prefix("test"));
        assert!(a.starts_with_prefix("test.abc.d"));
        assert!(!a.starts_with_prefix("test.ab"));
        assert!(validate_prefix("g").is_ok());
        assert!(validate_prefix("g.").is_err());
    }
}
