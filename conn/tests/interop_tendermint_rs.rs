//! Interoperability with tendermint-rs's `tendermint-p2p` (CometBFT v0.34+ wire, blocking I/O on its own thread):
//! our cometbft profile completes the handshake as dialer and as listener, and data crosses both ways.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::time::Duration;

use ledgerwire_conn::SecretConnection;
use ledgerwire_types::{NodeKey, WireProfile};
use tendermint_p2p::secret_connection::{SecretConnection as TmSecretConnection, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEADLINE: Duration = Duration::from_secs(10);
/// Enough to cross many frames in both directions.
const BULK: usize = 300_000;

fn bulk(seed: u8) -> Vec<u8> {
    (0..BULK).map(|i| (i % 251) as u8 ^ seed).collect()
}

/// The tendermint-rs side: handshake, check our ID, read our bulk data, send its own, and report what it saw.
fn tendermint_side(stream: std::net::TcpStream, seed: [u8; 32], expect_peer_id: String) -> Vec<u8> {
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let key = ed25519_consensus::SigningKey::from(seed);
    let mut conn = TmSecretConnection::new(stream, key, Version::V0_34).unwrap();
    assert_eq!(conn.remote_pubkey().peer_id().to_string(), expect_peer_id);

    // tendermint-p2p panics if a read buffer is smaller than a frame's data, so read with full-frame buffers.
    let mut got = Vec::with_capacity(BULK);
    let mut buf = [0u8; 1024];
    while got.len() < BULK {
        let n = conn.read(&mut buf).unwrap();
        assert_ne!(n, 0);
        got.extend_from_slice(&buf[..n]);
    }
    conn.write_all(&bulk(0x5a)).unwrap();
    conn.flush().unwrap();
    got
}

async fn our_side<S: ledgerwire_conn::secret_connection::IntoHalves>(io: S, key: &NodeKey, tm_id: &str)
where
    S::Read: Send + 'static,
    S::Write: Send + 'static,
{
    let conn = SecretConnection::handshake(io, key, WireProfile::CometBft, DEADLINE).await.unwrap();
    assert_eq!(conn.remote_id().to_string(), tm_id);
    let (mut r, mut w) = conn.split();
    w.write_all(&bulk(0xa5)).await.unwrap();
    w.flush().await.unwrap();
    let mut got = vec![0u8; BULK];
    r.read_exact(&mut got).await.unwrap();
    assert!(got == bulk(0x5a), "data from tendermint-p2p corrupted");
}

fn tm_identity() -> ([u8; 32], String) {
    let seed = [0x33; 32];
    let id = NodeKey::from_seed(&seed).node_id(WireProfile::CometBft).to_string();
    (seed, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_listen_and_tendermint_rs_dials() {
    let key = NodeKey::generate();
    let our_id = key.node_id(WireProfile::CometBft).to_string();
    let (tm_seed, tm_id) = tm_identity();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tm = std::thread::spawn(move || {
        let stream = std::net::TcpStream::connect(addr).unwrap();
        tendermint_side(stream, tm_seed, our_id)
    });
    let (socket, _) = listener.accept().await.unwrap();
    our_side(socket, &key, &tm_id).await;
    let seen = tokio::task::spawn_blocking(move || tm.join().unwrap()).await.unwrap();
    assert!(seen == bulk(0xa5), "data to tendermint-p2p corrupted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tendermint_rs_listens_and_we_dial() {
    let key = NodeKey::generate();
    let our_id = key.node_id(WireProfile::CometBft).to_string();
    let (tm_seed, tm_id) = tm_identity();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let tm = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        tendermint_side(stream, tm_seed, our_id)
    });
    let socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    our_side(socket, &key, &tm_id).await;
    let seen = tokio::task::spawn_blocking(move || tm.join().unwrap()).await.unwrap();
    assert!(seen == bulk(0xa5), "data to tendermint-p2p corrupted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tendermint_rs_rejects_a_tm2_peer_and_we_reject_it_back() {
    // The profiles are deliberately incompatible: both sides must fail cleanly, neither may hang.
    let key = NodeKey::generate();
    let (tm_seed, _) = tm_identity();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let tm = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        TmSecretConnection::new(stream, ed25519_consensus::SigningKey::from(tm_seed), Version::V0_34).is_err()
    });
    let socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let ours = SecretConnection::handshake(socket, &key, WireProfile::Tm2, DEADLINE).await;
    assert!(ours.is_err());
    assert!(
        tokio::task::spawn_blocking(move || tm.join().unwrap()).await.unwrap(),
        "tendermint-p2p accepted a tm2 peer"
    );
}
