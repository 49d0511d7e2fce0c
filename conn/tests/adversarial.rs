//! Peers that break the protocol: every one ends the connection with a typed error, never a panic or a hang.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{ScriptedPeer, exchange_keys};
use ledgerwire_conn::secret_connection::handshake::{encode_auth_message, low_order_points};
use ledgerwire_conn::{SecretConnection, SecretConnectionError};
use ledgerwire_types::{NodeKey, WireProfile};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};

const DEADLINE: Duration = Duration::from_secs(3);

type Conn = SecretConnection<ReadHalf<DuplexStream>, WriteHalf<DuplexStream>>;

/// Runs our handshake against a scripted peer; returns our result and whatever the script returns.
async fn against<F, Fut, T>(profile: WireProfile, script: F) -> (Result<Conn, SecretConnectionError>, T)
where
    F: FnOnce(DuplexStream) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let key = NodeKey::generate();
    tokio::join!(SecretConnection::handshake(ours, &key, profile, DEADLINE), script(theirs))
}

/// Completes an honest handshake on the scripted side.
async fn honest_auth(peer: &mut ScriptedPeer<DuplexStream>, key: &NodeKey) {
    let auth = peer.handshake.auth_message(key);
    peer.send_frame(&auth).await;
    let _ours = peer.recv_frame().await;
}

#[tokio::test]
async fn a_signature_over_the_wrong_message_is_rejected() {
    for profile in WireProfile::ALL {
        let (r, _) = against(profile, |io| async move {
            let mut peer = exchange_keys(io, profile).await;
            let key = NodeKey::generate();
            let msg = encode_auth_message(profile, key.public_key().as_bytes(), &key.sign(b"not the challenge"));
            peer.send_frame(&msg).await;
            peer
        })
        .await;
        assert!(matches!(r, Err(SecretConnectionError::BadSignature)), "{profile}: {r:?}");
    }
}

#[tokio::test]
async fn a_signature_by_a_different_key_is_rejected() {
    for profile in WireProfile::ALL {
        let (r, _) = against(profile, |io| async move {
            let mut peer = exchange_keys(io, profile).await;
            let (claimed, signer) = (NodeKey::generate(), NodeKey::generate());
            let sig = signer.sign(peer.handshake.challenge());
            peer.send_frame(&encode_auth_message(profile, claimed.public_key().as_bytes(), &sig)).await;
            peer
        })
        .await;
        assert!(matches!(r, Err(SecretConnectionError::BadSignature)), "{profile}: {r:?}");
    }
}

#[tokio::test]
async fn each_low_order_ephemeral_key_is_rejected_and_the_stream_closed() {
    for profile in WireProfile::ALL {
        for point in low_order_points() {
            let (r, eof) = against(profile, |mut io| async move {
                let mut msg = vec![0x22, 0x0a, 0x20];
                msg.extend_from_slice(point);
                io.write_all(&msg).await.unwrap();
                // Our side must hang up: read until end of stream (its 35-byte key message comes first).
                let mut sink = Vec::new();
                io.read_to_end(&mut sink).await.map(|_| sink.len())
            })
            .await;
            assert!(matches!(r, Err(SecretConnectionError::LowOrderEphemeralKey)), "{profile} {point:02x?}: {r:?}");
            assert_eq!(eof.unwrap(), 35, "only our ephemeral key was sent before the close");
        }
    }
}

#[tokio::test]
async fn an_oversized_auth_message_is_refused_before_its_body_is_read() {
    for profile in WireProfile::ALL {
        let (r, _) = against(profile, |io| async move {
            let mut peer = exchange_keys(io, profile).await;
            // Announce a 1 MiB message (the reference's limit) and send only the prefix.
            peer.send_frame(&[0x80, 0x80, 0x40]).await;
            peer
        })
        .await;
        match r {
            Err(SecretConnectionError::AuthMessageTooLarge { len, max }) => {
                assert_eq!((len, max), (1 << 20, 128))
            }
            other => panic!("{profile}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn garbage_auth_messages_are_rejected() {
    for profile in WireProfile::ALL {
        // Each garbage frame holds a whole (announced) body, or an overlong length prefix.
        for garbage in [vec![5, 1, 2, 3, 4, 5], vec![100; 101], vec![0xff; 11], vec![3, 0x0a, 0x05, 0x01]] {
            let g = garbage.clone();
            let (r, _) = against(profile, |io| async move {
                let mut peer = exchange_keys(io, profile).await;
                peer.send_frame(&g).await;
                peer
            })
            .await;
            assert!(
                matches!(
                    r,
                    Err(SecretConnectionError::MalformedAuthMessage(_) | SecretConnectionError::ClosedDuringHandshake)
                ),
                "{profile} {garbage:?}: {r:?}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_auth_message_announced_but_never_sent_ends_at_the_deadline() {
    let (r, _) = against(WireProfile::Tm2, |io| async move {
        let mut peer = exchange_keys(io, WireProfile::Tm2).await;
        peer.send_frame(&[0x64]).await;
        peer
    })
    .await;
    assert!(matches!(r, Err(SecretConnectionError::HandshakeTimeout(_))), "{r:?}");
}

#[tokio::test]
async fn garbage_instead_of_an_ephemeral_key_fails_at_the_first_byte() {
    let (r, _) = against(WireProfile::Tm2, |mut io| async move {
        io.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        io
    })
    .await;
    assert!(matches!(r, Err(SecretConnectionError::MalformedEphemeralKey(_))), "{r:?}");
}

#[tokio::test]
async fn the_other_profile_fails_authentication() {
    // A cometbft peer meeting a tm2 node: same frames, different challenge and auth encoding.
    let (r, _) = against(WireProfile::Tm2, |io| async move {
        let mut peer = exchange_keys(io, WireProfile::CometBft).await;
        honest_auth(&mut peer, &NodeKey::generate()).await;
    })
    .await;
    assert!(matches!(r, Err(SecretConnectionError::MalformedAuthMessage(_))), "{r:?}");
}

/// An established connection whose peer is scripted.
async fn established(profile: WireProfile) -> (Conn, ScriptedPeer<DuplexStream>) {
    let (r, peer) = against(profile, |io| async move {
        let mut peer = exchange_keys(io, profile).await;
        honest_auth(&mut peer, &NodeKey::generate()).await;
        peer
    })
    .await;
    (r.unwrap(), peer)
}

async fn read_error(conn: Conn) -> SecretConnectionError {
    let (mut reader, _writer) = conn.split();
    let mut buf = vec![0u8; 4096];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) => panic!("clean end of stream, expected an error"),
            Ok(_) => continue,
            Err(e) => {
                // Errors are sticky: the next read reports the same failure.
                let again = reader.read(&mut buf).await.unwrap_err();
                assert_eq!(again.to_string(), e.to_string());
                return SecretConnectionError::from_io(&e).cloned().expect("a typed error");
            }
        }
    }
}

#[tokio::test]
async fn a_truncated_frame_is_an_error_not_a_clean_close() {
    for profile in WireProfile::ALL {
        let (conn, mut peer) = established(profile).await;
        let frame = peer.sealer.seal(b"cut short").unwrap();
        peer.io.write_all(&frame[..500]).await.unwrap();
        drop(peer);
        assert!(matches!(read_error(conn).await, SecretConnectionError::TruncatedFrame(500)));
    }
}

#[tokio::test]
async fn one_flipped_bit_in_a_sealed_frame_ends_the_connection() {
    for profile in WireProfile::ALL {
        let (conn, mut peer) = established(profile).await;
        let mut frame = peer.sealer.seal(b"payload").unwrap();
        frame[700] ^= 0x10;
        peer.io.write_all(&frame).await.unwrap();
        assert!(matches!(read_error(conn).await, SecretConnectionError::FrameAuthentication { counter: 1 }));
    }
}

#[tokio::test]
async fn a_replayed_frame_ends_the_connection_after_the_original_is_delivered() {
    for profile in WireProfile::ALL {
        let (conn, mut peer) = established(profile).await;
        let frame = peer.send_frame(b"pay me once").await;
        peer.io.write_all(&frame).await.unwrap();
        let (mut reader, _w) = conn.split();
        let mut got = [0u8; 11];
        reader.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pay me once");
        let e = reader.read(&mut [0u8; 16]).await.unwrap_err();
        assert!(matches!(
            SecretConnectionError::from_io(&e),
            Some(SecretConnectionError::FrameAuthentication { counter: 2 })
        ));
    }
}

#[tokio::test(start_paused = true)]
async fn a_peer_silent_mid_handshake_hits_the_deadline_and_is_hung_up_on() {
    for profile in WireProfile::ALL {
        let started = tokio::time::Instant::now();
        let (r, leftover) = against(profile, |io| async move {
            // Exchange ephemeral keys, then say nothing.
            let mut peer = exchange_keys(io, profile).await;
            let mut rest = Vec::new();
            peer.io.read_to_end(&mut rest).await.map(|_| rest.len())
        })
        .await;
        assert!(matches!(r, Err(SecretConnectionError::HandshakeTimeout(d)) if d == DEADLINE), "{r:?}");
        assert_eq!(started.elapsed(), DEADLINE, "the deadline, not some other timer, ended it");
        // The peer saw our auth frame and then end of stream: the socket was closed.
        assert_eq!(leftover.unwrap(), 1044);
    }
}

#[tokio::test(start_paused = true)]
async fn a_tcp_peer_that_never_speaks_is_disconnected_at_the_deadline() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (socket, _) = listener.accept().await.unwrap();
    let key = NodeKey::generate();
    let r = SecretConnection::handshake(socket, &key, WireProfile::Tm2, DEADLINE).await;
    assert!(matches!(r, Err(SecretConnectionError::HandshakeTimeout(_))), "{r:?}");
    let mut got = Vec::new();
    silent.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len(), 35, "our ephemeral key, then the close");
}

#[tokio::test]
async fn a_peer_that_hangs_up_mid_handshake_is_reported_as_such() {
    let (r, _) = against(WireProfile::CometBft, |mut io| async move {
        io.write_all(&[0x22, 0x0a, 0x20, 1, 2, 3]).await.unwrap();
    })
    .await;
    assert!(matches!(r, Err(SecretConnectionError::ClosedDuringHandshake)), "{r:?}");
}
