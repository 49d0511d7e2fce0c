//! Canonical OER (RFC 30), the subset ILP uses: fixed-width unsigned integers, length determinants, variable
//! octet strings and VarUInts. The reader is strict: non-canonical lengths and reads past the end are errors.

use bytes::{BufMut, BytesMut};

/// Why OER bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OerError {
    /// The input ended before the field did.
    #[error("truncated: {field} needs {needed} bytes, {available} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// A length prefix is not in its canonical (shortest) form.
    #[error("{field}: length prefix is not canonical")]
    NonCanonicalLength {
        /// The field being read.
        field: &'static str,
    },
    /// A length is larger than anything ILP allows.
    #[error("{field}: length {length} is too large")]
    TooLong {
        /// The field being read.
        field: &'static str,
        /// The announced length (saturated).
        length: u64,
    },
    /// A VarUInt is empty, has leading zeros or does not fit 64 bits.
    #[error("{field}: invalid variable-length integer")]
    BadVarUint {
        /// The field being read.
        field: &'static str,
    },
}

/// A cursor over OER bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], OerError> {
        if self.buf.len() < n {
            return Err(OerError::Truncated { field, needed: n, available: self.buf.len() });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// `N` bytes as an array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], OerError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N, field)?);
        Ok(out)
    }

    /// A UInt8.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, OerError> {
        Ok(self.array::<1>(field)?[0])
    }

    /// A big-endian UInt16.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, OerError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    /// A big-endian UInt32.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, OerError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// A big-endian UInt64.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, OerError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// A length determinant, refused above `max`.
    pub fn length(&mut self, field: &'static str, max: usize) -> Result<usize, OerError> {
        let first = self.u8(field)?;
        let length = if first & 0x80 == 0 {
            u64::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 8 {
                return Err(OerError::NonCanonicalLength { field });
            }
            let bytes = self.bytes(n, field)?;
            if bytes[0] == 0 {
                return Err(OerError::NonCanonicalLength { field });
            }
            let length = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            if length < 128 {
                return Err(OerError::NonCanonicalLength { field });
            }
            length
        };
        match usize::try_from(length) {
            Ok(l) if l <= max => Ok(l),
            _ => Err(OerError::TooLong { field, length }),
        }
    }

    /// A variable-length octet string of at most `max` bytes.
    pub fn var_octets(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], OerError> {
        let n = self.length(field, max)?;
        self.bytes(n, field)
    }

    /// A VarUInt (length determinant, then a big-endian integer without leading zeros; zero is `01 00`).
    pub fn var_uint(&mut self, field: &'static str) -> Result<u64, OerError> {
        let bytes = self.var_octets(field, 8).map_err(|e| match e {
            OerError::TooLong { .. } => OerError::BadVarUint { field },
            e => e,
        })?;
        if bytes.is_empty() || (bytes.len() > 1 && bytes[0] == 0) {
            return Err(OerError::BadVarUint { field });
        }
        Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }
}

/// Appends a length determinant in canonical form.
pub fn put_length(out: &mut BytesMut, length: usize) {
    if length < 128 {
        // Lossless: checked just above.
        out.put_u8(length as u8);
    } else {
        let bytes = (length as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.put_u8(0x80 | (8 - skip) as u8);
        out.put_slice(&bytes[skip..]);
    }
}

/// Appends a variable-length octet string.
pub fn put_var_octets(out: &mut BytesMut, bytes: &[u8]) {
    put_length(out, bytes.len());
    out.put_slice(bytes);
}

/// Appends a VarUInt.
pub fn put_var_uint(out: &mut BytesMut, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    put_var_octets(out, &bytes[skip..]);
}

/// The encoded size of a length determinant for `length`.
pub fn length_size(length: usize) -> usize {
    if length < 128 { 1 } else { 1 + (8 - (length as u64).leading_zeros() as usize / 8) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn length_of(bytes: &[u8]) -> Result<usize, OerError> {
        Reader::new(bytes).length("test", usize::MAX)
    }

    #[test]
    fn length_determinants_follow_rfc_30_examples() {
        assert_eq!(length_of(&[0x07]), Ok(7));
        assert_eq!(length_of(&[0x7f]), Ok(127));
        assert_eq!(length_of(&[0x81, 0x82]), Ok(130));
        assert_eq!(length_of(&[0x82, 0x12, 0x34]), Ok(4660));
        assert_eq!(length_of(&[0x83, 0xab, 0xcd, 0xef]), Ok(11_259_375));
        for n in [0usize, 7, 127, 128, 130, 4660, 11_259_375] {
            let mut out = BytesMut::new();
            put_length(&mut out, n);
            assert_eq!(out.len(), length_size(n));
            assert_eq!(length_of(&out), Ok(n), "{n}");
        }
    }

    #[test]
    fn non_canonical_lengths_are_refused() {
        for bad in [&[0x81u8, 0x05][..], &[0x82, 0x00, 0x90], &[0x80], &[0x89, 1, 1, 1, 1, 1, 1, 1, 1, 1]] {
            assert!(matches!(length_of(bad), Err(OerError::NonCanonicalLength { .. })), "{bad:?}");
        }
        assert!(matches!(length_of(&[0x82, 0x01]), Err(OerError::Truncated { .. })));
    }

    #[test]
    fn var_uints_encode_zero_as_one_byte_and_refuse_leading_zeros() {
        let mut out = BytesMut::new();
        put_var_uint(&mut out, 0);
        put_var_uint(&mut out, 2);
        put_var_uint(&mut out, 0x0100);
        assert_eq!(&out[..], &[0x01, 0x00, 0x01, 0x02, 0x02, 0x01, 0x00]);
        let mut r = Reader::new(&out);
        assert_eq!((r.var_uint("a"), r.var_uint("b"), r.var_uint("c")), (Ok(0), Ok(2), Ok(256)));
        assert!(Reader::new(&[0x00]).var_uint("x").is_err());
        assert!(Reader::new(&[0x02, 0x00, 0x01]).var_uint("x").is_err());
    }
}
