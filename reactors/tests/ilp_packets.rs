//! Property tests for ILP packets: every valid packet round-trips byte for byte, the decoder is canonical (what it
//! accepts re-encodes to the same bytes), and arbitrary bytes never panic it.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use ledgerwire_reactors::ilp::{Address, ErrorCode, Fulfill, Packet, Prepare, Reject, Timestamp};
use proptest::prelude::*;

fn address() -> impl Strategy<Value = Address> {
    (
        prop::sample::select(vec!["g", "test", "example", "private", "peer", "local", "test3"]),
        prop::collection::vec("[a-zA-Z0-9_~-]{1,12}", 1..6),
    )
        .prop_map(|(scheme, segments)| Address::parse(&format!("{scheme}.{}", segments.join("."))).unwrap())
}

fn data() -> impl Strategy<Value = Bytes> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..200), prop::collection::vec(any::<u8>(), 32_700..=32_767),]
        .prop_map(Bytes::from)
}

fn packet() -> impl Strategy<Value = Packet> {
    let prepare =
        (any::<u64>(), Timestamp::MIN.unix_ms()..=Timestamp::MAX.unix_ms(), any::<[u8; 32]>(), address(), data())
            .prop_map(|(amount, t, execution_condition, destination, data)| {
                Packet::Prepare(Prepare {
                    amount,
                    expires_at: Timestamp::from_unix_ms(t),
                    execution_condition,
                    destination,
                    data,
                })
            });
    let fulfill =
        (any::<[u8; 32]>(), data()).prop_map(|(fulfillment, data)| Packet::Fulfill(Fulfill { fulfillment, data }));
    let reject = (prop::sample::select(ErrorCode::ALL.to_vec()), prop::option::of(address()), ".{0,40}", data())
        .prop_map(|(code, triggered_by, message, data)| Packet::Reject(Reject { code, triggered_by, message, data }));
    prop_oneof![prepare, fulfill, reject]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn every_valid_packet_round_trips_byte_for_byte(p in packet()) {
        let bytes = p.encode();
        let decoded = Packet::decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &p);
        prop_assert_eq!(&Packet::decode_shared(&bytes).unwrap(), &p);
        prop_assert_eq!(decoded.encode(), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_what_decodes_is_canonical(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let shared = Packet::decode_shared(&Bytes::from(bytes.clone()));
        prop_assert_eq!(&shared, &Packet::decode(&bytes));
        if let Ok(p) = Packet::decode(&bytes) {
            prop_assert_eq!(&p.encode()[..], &bytes[..]);
        }
    }

    #[test]
    fn mutated_valid_packets_never_panic_and_what_decodes_is_canonical(
        p in packet(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()
    ) {
        let mut bytes = p.encode().to_vec();
        let i = at.index(bytes.len());
        if cut { bytes.truncate(i) } else { bytes[i] = byte }
        if let Ok(q) = Packet::decode(&bytes) {
            prop_assert_eq!(&q.encode()[..], &bytes[..]);
        }
    }
}
