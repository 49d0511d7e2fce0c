//! ILDCP (RFC 31): a child asks its parent for its ILP address and asset with a Prepare to `peer.config`; the
//! parent answers with a Fulfill (32 zero bytes) whose data is the address, the asset scale and the asset code.

use bytes::{BufMut, Bytes, BytesMut};

use crate::ilp::oer::{self, Reader};
use crate::ilp::{
    Address, Fulfill, PEER_PROTOCOL_CONDITION, PEER_PROTOCOL_FULFILLMENT, PacketError, Prepare, Timestamp,
};

/// The destination of ILDCP requests.
pub const DESTINATION: &str = "peer.config";

/// What a parent tells its child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IldcpResponse {
    /// The child's ILP address.
    pub client_address: Address,
    /// Its asset scale.
    pub asset_scale: u8,
    /// Its asset code.
    pub asset_code: String,
}

/// Why an ILDCP response could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IldcpError {
    /// Malformed bytes.
    #[error("ILDCP response: {0}")]
    Packet(#[from] PacketError),
    /// The fulfillment is not 32 zero bytes.
    #[error("ILDCP response: the fulfillment is not the peer-protocol fulfillment")]
    Fulfillment,
    /// The asset code is not UTF-8.
    #[error("ILDCP response: the asset code is not UTF-8")]
    AssetCode,
}

impl IldcpResponse {
    /// The Fulfill that carries this response.
    pub fn to_fulfill(&self) -> Fulfill {
        let address = self.client_address.as_str().as_bytes();
        let mut data = BytesMut::with_capacity(3 + address.len() + 1 + 1 + self.asset_code.len());
        oer::put_var_octets(&mut data, address);
        data.put_u8(self.asset_scale);
        oer::put_var_octets(&mut data, self.asset_code.as_bytes());
        Fulfill { fulfillment: PEER_PROTOCOL_FULFILLMENT, data: data.freeze() }
    }

    /// Reads the response from a Fulfill (as a child does).
    pub fn from_fulfill(fulfill: &Fulfill) -> Result<IldcpResponse, IldcpError> {
        if fulfill.fulfillment != PEER_PROTOCOL_FULFILLMENT {
            return Err(IldcpError::Fulfillment);
        }
        let mut r = Reader::new(&fulfill.data);
        let address = r.var_octets("clientAddress", crate::ilp::address::MAX_ADDRESS_LEN).map_err(PacketError::from)?;
        let client_address =
            Address::from_bytes(address).map_err(|source| PacketError::Address { field: "clientAddress", source })?;
        let asset_scale = r.u8("assetScale").map_err(PacketError::from)?;
        let code = r.var_octets("assetCode", 255).map_err(PacketError::from)?;
        let asset_code = std::str::from_utf8(code).map_err(|_| IldcpError::AssetCode)?.to_owned();
        if r.remaining() > 0 {
            return Err(PacketError::TrailingBytes(r.remaining()).into());
        }
        Ok(IldcpResponse { client_address, asset_scale, asset_code })
    }
}

/// An ILDCP request expiring at `expires_at`.
pub fn request(expires_at: Timestamp) -> Prepare {
    Prepare {
        amount: 0,
        expires_at,
        execution_condition: PEER_PROTOCOL_CONDITION,
        destination: Address::parse(DESTINATION).unwrap_or_else(|_| unreachable!("a valid constant")),
        data: Bytes::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_31_response_vector_round_trips() {
        let response = IldcpResponse {
            client_address: Address::parse("test.a.sender").unwrap(),
            asset_scale: 9,
            asset_code: "XRP".into(),
        };
        let bytes = response.to_fulfill().encode();
        let mut expected = vec![0x0d, 0x34];
        expected.extend([0u8; 32]);
        expected.extend([0x13, 0x0d]);
        expected.extend(b"test.a.sender");
        expected.extend([0x09, 0x03]);
        expected.extend(b"XRP");
        assert_eq!(&bytes[..], &expected[..]);
        let crate::ilp::Packet::Fulfill(f) = crate::ilp::Packet::decode(&bytes).unwrap() else { panic!() };
        assert_eq!(IldcpResponse::from_fulfill(&f), Ok(response));
    }

    #[test]
    fn the_request_matches_the_rfc_layout() {
        let p = request(Timestamp::parse(b"20171223012140549").unwrap());
        let bytes = p.encode();
        assert_eq!(&bytes[..10], &[0x0c, 0x46, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[27..59], &PEER_PROTOCOL_CONDITION);
        assert_eq!(&bytes[59..], b"\x0bpeer.config\x00");
        assert_eq!(crate::ilp::condition_of(&PEER_PROTOCOL_FULFILLMENT), PEER_PROTOCOL_CONDITION);
    }
}
