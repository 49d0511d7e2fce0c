//! ILPv4 packets (RFC 27): Prepare, Fulfill and Reject in canonical OER, decoded strictly.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use sha2::{Digest, Sha256};

use super::address::{Address, AddressError, MAX_ADDRESS_LEN};
use super::oer::{self, OerError, Reader};
use super::timestamp::{Timestamp, TimestampError};

/// The most end-to-end data a packet may carry.
pub const MAX_DATA_LEN: usize = 32_767;
/// The longest Reject message.
pub const MAX_MESSAGE_LEN: usize = 8_191;

const TYPE_PREPARE: u8 = 12;
const TYPE_FULFILL: u8 = 13;
const TYPE_REJECT: u8 = 14;

/// Why bytes are not a valid ILP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Malformed OER.
    #[error("{0}")]
    Oer(#[from] OerError),
    /// The type byte is not 12, 13 or 14.
    #[error("unknown packet type {0}")]
    UnknownType(u8),
    /// A Prepare was expected.
    #[error("invalid packet type received. type={0}")]
    NotAPrepare(u8),
    /// A Fulfill or Reject was expected.
    #[error("expected a Fulfill or Reject, got type {0}")]
    NotAReply(u8),
    /// Bytes left after the packet or inside its envelope.
    #[error("{0} unexpected trailing bytes")]
    TrailingBytes(usize),
    /// `expiresAt` is not a valid timestamp.
    #[error("expiresAt: {0}")]
    Timestamp(#[from] TimestampError),
    /// The destination or `triggeredBy` is not an ILP address.
    #[error("{field}: {source}")]
    Address {
        /// Which field.
        field: &'static str,
        /// Why.
        source: AddressError,
    },
    /// A Reject code that is not three characters of `A-Z0-9`.
    #[error("invalid error code {0:?}")]
    ErrorCode(String),
    /// A Reject message that is not UTF-8.
    #[error("reject message is not UTF-8")]
    MessageNotUtf8,
}

/// A 32-byte SHA-256 execution condition.
pub type Condition = [u8; 32];
/// The 32-byte preimage of a condition.
pub type Fulfillment = [u8; 32];

/// Whether `fulfillment` hashes to `condition`.
pub fn fulfills(fulfillment: &Fulfillment, condition: &Condition) -> bool {
    Sha256::digest(fulfillment).as_slice() == condition
}

/// The condition of a fulfillment.
pub fn condition_of(fulfillment: &Fulfillment) -> Condition {
    Sha256::digest(fulfillment).into()
}

/// An ILP error code (three characters: class letter and two digits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub [u8; 3]);

macro_rules! codes {
    ($($name:ident = $code:literal, $text:literal;)*) => {
        impl ErrorCode {
            $(#[doc = $text] pub const $name: ErrorCode = ErrorCode(*$code);)*
            /// The RFC name of a known code.
            pub fn name(self) -> Option<&'static str> {
                match &self.0 { $($code => Some($text),)* _ => None }
            }
            /// Every code RFC 27 defines.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),*];
        }
    };
}

codes! {
    F00_BAD_REQUEST = b"F00", "Bad Request";
    F01_INVALID_PACKET = b"F01", "Invalid Packet";
    F02_UNREACHABLE = b"F02", "Unreachable";
    F03_INVALID_AMOUNT = b"F03", "Invalid Amount";
    F04_INSUFFICIENT_DESTINATION_AMOUNT = b"F04", "Insufficient Destination Amount";
    F05_WRONG_CONDITION = b"F05", "Wrong Condition";
    F06_UNEXPECTED_PAYMENT = b"F06", "Unexpected Payment";
    F07_CANNOT_RECEIVE = b"F07", "Cannot Receive";
    F08_AMOUNT_TOO_LARGE = b"F08", "Amount Too Large";
    F99_APPLICATION_ERROR = b"F99", "Application Error";
    T00_INTERNAL_ERROR = b"T00", "Internal Error";
    T01_PEER_UNREACHABLE = b"T01", "Peer Unreachable";
    T02_PEER_BUSY = b"T02", "Peer Busy";
    T03_CONNECTOR_BUSY = b"T03", "Connector Busy";
    T04_INSUFFICIENT_LIQUIDITY = b"T04", "Insufficient Liquidity";
    T05_RATE_LIMITED = b"T05", "Rate Limited";
    T99_APPLICATION_ERROR = b"T99", "Application Error";
    R00_TRANSFER_TIMED_OUT = b"R00", "Transfer Timed Out";
    R01_INSUFFICIENT_SOURCE_AMOUNT = b"R01", "Insufficient Source Amount";
    R02_INSUFFICIENT_TIMEOUT = b"R02", "Insufficient Timeout";
    R99_APPLICATION_ERROR = b"R99", "Application Error";
}

impl ErrorCode {
    /// The code as text (`"F02"`).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ILP Prepare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepare {
    /// Amount in the link's asset and scale.
    pub amount: u64,
    /// When the sender stops waiting.
    pub expires_at: Timestamp,
    /// SHA-256 of the fulfillment that releases the money.
    pub execution_condition: Condition,
    /// Where the packet goes.
    pub destination: Address,
    /// End-to-end data (at most 32,767 bytes), never changed by connectors.
    pub data: Bytes,
}

/// An ILP Fulfill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fulfill {
    /// The preimage of the Prepare's condition.
    pub fulfillment: Fulfillment,
    /// End-to-end data.
    pub data: Bytes,
}

/// An ILP Reject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The error code.
    pub code: ErrorCode,
    /// The address of the node that created the Reject; `None` when empty (some plugins send an empty string).
    pub triggered_by: Option<Address>,
    /// A human-readable message.
    pub message: String,
    /// Machine-readable data (F08: received and maximum amounts).
    pub data: Bytes,
}

impl Reject {
    /// A Reject created at `by`.
    pub fn new(code: ErrorCode, by: &Address, message: impl Into<String>) -> Reject {
        let mut message = message.into();
        if message.len() > MAX_MESSAGE_LEN {
            let mut end = MAX_MESSAGE_LEN;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        Reject { code, triggered_by: Some(by.clone()), message, data: Bytes::new() }
    }

    /// The same Reject with `data`.
    pub fn with_data(mut self, data: Bytes) -> Reject {
        self.data = data;
        self
    }
}

/// A Fulfill or a Reject: the answer to a Prepare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The payment went through.
    Fulfill(Fulfill),
    /// It did not.
    Reject(Reject),
}

impl Reply {
    /// Encodes the reply.
    pub fn encode(&self) -> Bytes {
        match self {
            Reply::Fulfill(f) => f.encode(),
            Reply::Reject(r) => r.encode(),
        }
    }

    /// Decodes a Fulfill or Reject.
    pub fn decode(bytes: &[u8]) -> Result<Reply, PacketError> {
        match Packet::decode(bytes)? {
            Packet::Fulfill(f) => Ok(Reply::Fulfill(f)),
            Packet::Reject(r) => Ok(Reply::Reject(r)),
            Packet::Prepare(_) => Err(PacketError::NotAReply(TYPE_PREPARE)),
        }
    }
}

/// Any ILP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// Type 12.
    Prepare(Prepare),
    /// Type 13.
    Fulfill(Fulfill),
    /// Type 14.
    Reject(Reject),
}

/// The size of a variable-length octet string of `n` bytes.
fn var_len(n: usize) -> usize {
    oer::length_size(n) + n
}

/// Writes a packet's envelope (type and contents length) and its contents straight into `out`, in one pass.
fn write_envelope(out: &mut BytesMut, kind: u8, contents_len: usize, contents: impl FnOnce(&mut BytesMut)) {
    out.reserve(1 + var_len(contents_len));
    out.put_u8(kind);
    oer::put_length(out, contents_len);
    contents(out);
}

/// A packet written straight into a buffer: [`Encode::encoded_len`] bytes by [`Encode::encode_into`], so that a
/// frame around it needs one allocation and no copy.
pub trait Encode {
    /// The size of the encoded packet.
    fn encoded_len(&self) -> usize;
    /// Appends the encoded packet to `out`.
    fn encode_into(&self, out: &mut BytesMut);
    /// The encoded packet.
    fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out.freeze()
    }
}

impl Encode for Prepare {
    fn encoded_len(&self) -> usize {
        let c = self.contents_len();
        1 + var_len(c)
    }

    fn encode_into(&self, out: &mut BytesMut) {
        write_envelope(out, TYPE_PREPARE, self.contents_len(), |c| {
            c.put_u64(self.amount);
            c.put_slice(&self.expires_at.to_bytes());
            c.put_slice(&self.execution_condition);
            oer::put_var_octets(c, self.destination.as_str().as_bytes());
            oer::put_var_octets(c, &self.data);
        });
    }
}

impl Encode for Fulfill {
    fn encoded_len(&self) -> usize {
        1 + var_len(self.contents_len())
    }

    fn encode_into(&self, out: &mut BytesMut) {
        write_envelope(out, TYPE_FULFILL, self.contents_len(), |c| {
            c.put_slice(&self.fulfillment);
            oer::put_var_octets(c, &self.data);
        });
    }
}

impl Encode for Reject {
    fn encoded_len(&self) -> usize {
        1 + var_len(self.contents_len())
    }

    fn encode_into(&self, out: &mut BytesMut) {
        write_envelope(out, TYPE_REJECT, self.contents_len(), |c| {
            c.put_slice(&self.code.0);
            oer::put_var_octets(c, self.triggered_by_str().as_bytes());
            oer::put_var_octets(c, self.message.as_bytes());
            oer::put_var_octets(c, &self.data);
        });
    }
}

impl Encode for Reply {
    fn encoded_len(&self) -> usize {
        match self {
            Reply::Fulfill(f) => f.encoded_len(),
            Reply::Reject(r) => r.encoded_len(),
        }
    }

    fn encode_into(&self, out: &mut BytesMut) {
        match self {
            Reply::Fulfill(f) => f.encode_into(out),
            Reply::Reject(r) => r.encode_into(out),
        }
    }
}

fn address(bytes: &[u8], field: &'static str) -> Result<Address, PacketError> {
    Address::from_bytes(bytes).map_err(|source| PacketError::Address { field, source })
}

impl Prepare {
    /// Encodes the Prepare.
    pub fn encode(&self) -> Bytes {
        self.to_bytes()
    }

    fn contents_len(&self) -> usize {
        8 + 17 + 32 + var_len(self.destination.as_str().len()) + var_len(self.data.len())
    }

    /// Decodes a Prepare (any other type is [`PacketError::NotAPrepare`]).
    pub fn decode(bytes: &[u8]) -> Result<Prepare, PacketError> {
        match Packet::decode(bytes)? {
            Packet::Prepare(p) => Ok(p),
            Packet::Fulfill(_) => Err(PacketError::NotAPrepare(TYPE_FULFILL)),
            Packet::Reject(_) => Err(PacketError::NotAPrepare(TYPE_REJECT)),
        }
    }

    fn decode_contents(r: &mut Reader<'_>, share: Option<&Bytes>) -> Result<Prepare, PacketError> {
        let amount = r.u64("amount")?;
        let expires_at = Timestamp::parse(r.bytes(17, "expiresAt")?)?;
        let execution_condition = r.array("executionCondition")?;
        let destination = address(r.var_octets("destination", MAX_ADDRESS_LEN)?, "destination")?;
        let data = data_of(r.var_octets("data", MAX_DATA_LEN)?, share);
        Ok(Prepare { amount, expires_at, execution_condition, destination, data })
    }
}

impl Fulfill {
    /// Encodes the Fulfill.
    pub fn encode(&self) -> Bytes {
        self.to_bytes()
    }

    fn contents_len(&self) -> usize {
        32 + var_len(self.data.len())
    }
}

impl Reject {
    /// Encodes the Reject.
    pub fn encode(&self) -> Bytes {
        self.to_bytes()
    }

    fn triggered_by_str(&self) -> &str {
        self.triggered_by.as_ref().map(|a| a.as_str()).unwrap_or("")
    }

    fn contents_len(&self) -> usize {
        3 + var_len(self.triggered_by_str().len()) + var_len(self.message.len()) + var_len(self.data.len())
    }
}

impl Packet {
    /// Encodes the packet.
    pub fn encode(&self) -> Bytes {
        match self {
            Packet::Prepare(p) => p.encode(),
            Packet::Fulfill(f) => f.encode(),
            Packet::Reject(r) => r.encode(),
        }
    }

    /// Decodes any ILP packet, strictly: canonical lengths, no trailing bytes, valid timestamps and addresses,
    /// data within 32,767 bytes.
    pub fn decode(bytes: &[u8]) -> Result<Packet, PacketError> {
        Packet::decode_from(bytes, None)
    }

    /// As [`Packet::decode`], but the data of the packet shares `bytes`' memory instead of being copied.
    pub fn decode_shared(bytes: &Bytes) -> Result<Packet, PacketError> {
        Packet::decode_from(bytes, Some(bytes))
    }

    /// As [`Packet::decode_shared`], for a packet that lies within `owner` (the frame it came in): its data is a
    /// slice of `owner`. `bytes` must be a part of `owner`'s memory (else this panics, as `Bytes::slice_ref` does).
    pub(crate) fn decode_shared_within(bytes: &[u8], owner: &Bytes) -> Result<Packet, PacketError> {
        Packet::decode_from(bytes, Some(owner))
    }

    fn decode_from(bytes: &[u8], share: Option<&Bytes>) -> Result<Packet, PacketError> {
        let mut outer = Reader::new(bytes);
        let kind = outer.u8("type")?;
        if !(TYPE_PREPARE..=TYPE_REJECT).contains(&kind) {
            return Err(PacketError::UnknownType(kind));
        }
        let contents = outer.var_octets("contents", usize::MAX)?;
        if outer.remaining() > 0 {
            return Err(PacketError::TrailingBytes(outer.remaining()));
        }
        let mut r = Reader::new(contents);
        let packet = match kind {
            TYPE_PREPARE => Packet::Prepare(Prepare::decode_contents(&mut r, share)?),
            TYPE_FULFILL => {
                let fulfillment = r.array("fulfillment")?;
                let data = data_of(r.var_octets("data", MAX_DATA_LEN)?, share);
                Packet::Fulfill(Fulfill { fulfillment, data })
            }
            _ => {
                let code: [u8; 3] = r.array("code")?;
                if !code.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
                    return Err(PacketError::ErrorCode(String::from_utf8_lossy(&code).into_owned()));
                }
                let by = r.var_octets("triggeredBy", MAX_ADDRESS_LEN)?;
                let triggered_by = if by.is_empty() { None } else { Some(address(by, "triggeredBy")?) };
                let message = std::str::from_utf8(r.var_octets("message", MAX_MESSAGE_LEN)?)
                    .map_err(|_| PacketError::MessageNotUtf8)?
                    .to_owned();
                let data = data_of(r.var_octets("data", MAX_DATA_LEN)?, share);
                Packet::Reject(Reject { code: ErrorCode(code), triggered_by, message, data })
            }
        };
        if r.remaining() > 0 {
            return Err(PacketError::TrailingBytes(r.remaining()));
        }
        Ok(packet)
    }
}

/// `slice` (a part of `share`, when given) as `Bytes`: shared if possible, else copied.
fn data_of(slice: &[u8], share: Option<&Bytes>) -> Bytes {
    match share {
        Some(b) => b.slice_ref(slice),
        None => Bytes::copy_from_slice(slice),
    }
}

/// The 16-byte data of an F08 Reject: the amount received and the maximum, both in the rejecting hop's units.
pub fn amount_too_large_data(received: u64, maximum: u64) -> Bytes {
    let mut out = BytesMut::with_capacity(16);
    out.put_u64(received);
    out.put_u64(maximum);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    // RFC 27's example values: 107 units to example.alice, 2017-12-23T01:21:40.549Z, data "hello world"; the
    // condition is the SHA-256 of the fulfillment below.
    const FULFILLMENT_HEX: &str = "117b434f1a54e9044f4f54923b2cff9e4a6d420ae281d5025d7bb040c4b4c04a";

    fn example_prepare() -> Prepare {
        let fulfillment: Fulfillment = hex(FULFILLMENT_HEX).try_into().unwrap();
        Prepare {
            amount: 107,
            expires_at: Timestamp::parse(b"20171223012140549").unwrap(),
            execution_condition: condition_of(&fulfillment),
            destination: Address::parse("example.alice").unwrap(),
            data: Bytes::from_static(b"hello world"),
        }
    }

    #[test]
    fn a_prepare_encodes_to_the_rfc_layout() {
        let bytes = example_prepare().encode();
        let mut expected = hex("0c 53 000000000000006b 3230313731323233303132313430353439");
        expected.extend_from_slice(&example_prepare().execution_condition);
        expected.extend(hex("0d 6578616d706c652e616c696365 0b 68656c6c6f20776f726c64"));
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(Prepare::decode(&bytes), Ok(example_prepare()));
    }

    #[test]
    fn fulfill_and_reject_encode_to_the_rfc_layout() {
        let f = Fulfill { fulfillment: [0; 32], data: Bytes::new() };
        let mut expected = hex("0d 21");
        expected.extend([0u8; 32]);
        expected.push(0);
        assert_eq!(&f.encode()[..], &expected[..]);

        let r = Reject::new(ErrorCode::F08_AMOUNT_TOO_LARGE, &Address::parse("test.conn").unwrap(), "too large")
            .with_data(amount_too_large_data(1234, 1000));
        assert_eq!(
            &r.encode()[..],
            &hex("0e 28 463038 09 746573742e636f6e6e 09 746f6f206c61726765 10 00000000000004d2 00000000000003e8")[..]
        );
        assert_eq!(Packet::decode(&r.encode()), Ok(Packet::Reject(r)));
    }

    #[test]
    fn large_data_uses_long_form_lengths() {
        let mut p = example_prepare();
        p.data = Bytes::from(vec![7u8; MAX_DATA_LEN]);
        let bytes = p.encode();
        assert_eq!(&bytes[..2], &[0x0c, 0x82]);
        assert_eq!(Prepare::decode(&bytes), Ok(p.clone()));
        // One byte over the limit is refused.
        let mut c = BytesMut::new();
        c.put_u64(1);
        c.put_slice(&p.expires_at.to_bytes());
        c.put_slice(&p.execution_condition);
        oer::put_var_octets(&mut c, b"example.alice");
        oer::put_var_octets(&mut c, &vec![0u8; MAX_DATA_LEN + 1]);
        let mut too_big = BytesMut::new();
        write_envelope(&mut too_big, TYPE_PREPARE, c.len(), |out| out.put_slice(&c));
        assert!(matches!(Prepare::decode(&too_big), Err(PacketError::Oer(OerError::TooLong { field: "data", .. }))));
    }

    #[test]
    fn strictness_gives_typed_errors() {
        let good = example_prepare().encode().to_vec();
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(Prepare::decode(&trailing), Err(PacketError::TrailingBytes(1)));
        // A byte inside the envelope after the data.
        let mut inner = good.clone();
        inner[1] += 1;
        inner.push(0);
        assert_eq!(Prepare::decode(&inner), Err(PacketError::TrailingBytes(1)));
        let mut month13 = good.clone();
        month13[14..16].copy_from_slice(b"13");
        assert!(matches!(Prepare::decode(&month13), Err(PacketError::Timestamp(_))));
        let mut bang = good.clone();
        let at = bang.len() - 13;
        bang[at] = b'!';
        assert!(matches!(Prepare::decode(&bang), Err(PacketError::Address { field: "destination", .. })));
        assert!(matches!(Prepare::decode(&good[..48]), Err(PacketError::Oer(OerError::Truncated { .. }))));
        assert_eq!(Packet::decode(&[15, 0]), Err(PacketError::UnknownType(15)));
        let fulfill = Fulfill { fulfillment: [1; 32], data: Bytes::new() }.encode();
        assert_eq!(Prepare::decode(&fulfill), Err(PacketError::NotAPrepare(13)));
    }

    #[test]
    fn an_empty_triggered_by_is_accepted_as_none() {
        let r = Reject {
            code: ErrorCode::F99_APPLICATION_ERROR,
            triggered_by: None,
            message: String::new(),
            data: Bytes::new(),
        };
        let bytes = r.encode();
        assert_eq!(&bytes[..], &hex("0e 06 463939 00 00 00")[..]);
        assert_eq!(Reply::decode(&bytes), Ok(Reply::Reject(r)));
    }

    #[test]
    fn every_error_code_has_its_rfc_name() {
        assert_eq!(ErrorCode::ALL.len(), 21);
        for code in ErrorCode::ALL {
            assert!(code.name().is_some());
        }
        assert_eq!(ErrorCode::T04_INSUFFICIENT_LIQUIDITY.to_string(), "T04");
    }
}
