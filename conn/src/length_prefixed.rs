//! Reading one uvarint-length-prefixed message with a size limit checked before the body is read.
//!
//! The handshake's auth message and the NodeInfo both travel this way; a peer that announces more than the limit is
//! refused before it can make us allocate or wait for the body.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Why a length-prefixed message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LengthPrefixedError {
    /// The transport failed or ended.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The prefix is not a valid uvarint (more than 10 bytes).
    #[error("length prefix is not a valid uvarint")]
    BadPrefix,
    /// The announced length exceeds the limit.
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// The announced length.
        len: u64,
        /// The limit.
        max: usize,
    },
}

/// Reads a uvarint length, refuses it above `max`, then reads that many bytes.
pub async fn read<R: AsyncRead + Unpin>(reader: &mut R, max: usize) -> Result<Vec<u8>, LengthPrefixedError> {
    let mut len: u64 = 0;
    for i in 0..10 {
        let b = reader.read_u8().await?;
        len |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            break;
        }
        if i == 9 {
            return Err(LengthPrefixedError::BadPrefix);
        }
    }
    if len > max as u64 {
        return Err(LengthPrefixedError::TooLarge { len, max });
    }
    let mut body = vec![0u8; len as usize];
    reader.read_exact(&mut body).await?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_the_body_and_refuses_oversized_or_malformed_prefixes() {
        let mut ok: &[u8] = b"\x03abcrest";
        assert_eq!(read(&mut ok, 3).await.unwrap(), b"abc");
        assert_eq!(ok, b"rest", "nothing beyond the message is consumed");
        let mut two_bytes: &[u8] = &[0x80, 0x01];
        assert!(matches!(read(&mut two_bytes, 127).await, Err(LengthPrefixedError::TooLarge { len: 128, max: 127 })));
        let mut endless: &[u8] = &[0xff; 11];
        assert!(matches!(read(&mut endless, 10).await, Err(LengthPrefixedError::BadPrefix)));
        let mut short: &[u8] = b"\x05ab";
        assert!(
            matches!(read(&mut short, 10).await, Err(LengthPrefixedError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof)
        );
    }
}
