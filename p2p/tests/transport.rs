//! The transport against hand-rolled peers: every upgrade step and rejection of TM2's transport_test.go, plus the
//! inbound caps.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use ledgerwire_conn::{SecretConnection, SecretConnectionError};
use ledgerwire_p2p::node_info::NodeInfo;
use ledgerwire_p2p::transport::{Inbound, SecretTcp};
use ledgerwire_p2p::{DialError, Direction, RejectReason, Transport, TransportConfig};
use ledgerwire_types::{NetAddress, NodeKey, WireProfile};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const T: Duration = Duration::from_secs(10);

fn info_for(profile: WireProfile, key: &NodeKey, network: &str) -> NodeInfo {
    NodeInfo::ours(
        profile,
        key.node_id(profile),
        "127.0.0.1:26656".parse().unwrap(),
        network,
        "peer",
        vec![0x7e],
        "v0.1.0",
    )
}

/// A transport listening on 127.0.0.1:0 with its accept loop running.
async fn listening(
    profile: WireProfile,
    config: TransportConfig,
) -> (Arc<Transport>, std::net::SocketAddr, mpsc::Receiver<Inbound>) {
    let key = Arc::new(NodeKey::generate());
    let info = info_for(profile, &key, "net");
    let t = Arc::new(Transport::new(key, info, config, None));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(t.clone().accept_loop(l, tx));
    (t, addr, rx)
}

/// A peer that handshakes honestly as `key`, then sends `info` and returns the connection and our NodeInfo body.
async fn peer_sending(addr: std::net::SocketAddr, key: &NodeKey, info: &NodeInfo) -> (SecretTcp, Vec<u8>) {
    let socket = TcpStream::connect(addr).await.unwrap();
    let mut conn = SecretConnection::handshake(socket, key, info.profile(), T).await.unwrap();
    conn.write_all(&info.encode()).await.unwrap();
    conn.flush().await.unwrap();
    let body = ledgerwire_conn::length_prefixed::read(&mut conn, 10_240).await.unwrap_or_default();
    (conn, body)
}

async fn next_rejection(rx: &mut mpsc::Receiver<Inbound>) -> RejectReason {
    match tokio::time::timeout(T, rx.recv()).await.unwrap().unwrap() {
        Inbound::Rejected { reason, .. } => reason,
        Inbound::Upgraded(u) => panic!("accepted {:?}", u.node_info.id),
    }
}

#[tokio::test]
async fn a_valid_peer_is_upgraded_in_both_profiles() {
    for profile in WireProfile::ALL {
        let (t, addr, mut rx) = listening(profile, TransportConfig::default()).await;
        let key = NodeKey::generate();
        let (_conn, theirs) = peer_sending(addr, &key, &info_for(profile, &key, "net")).await;
        assert_eq!(NodeInfo::decode(profile, &theirs).unwrap(), *t.node_info());
        match rx.recv().await.unwrap() {
            Inbound::Upgraded(up) => {
                assert_eq!(up.node_info.id, key.node_id(profile));
                assert_eq!(up.direction, Direction::Inbound);
            }
            Inbound::Rejected { reason, .. } => panic!("{reason}"),
        }
    }
}

#[tokio::test]
async fn a_node_info_id_other_than_the_authenticated_key_is_rejected() {
    let (_t, addr, mut rx) = listening(WireProfile::Tm2, TransportConfig::default()).await;
    let (key, other) = (NodeKey::generate(), NodeKey::generate());
    peer_sending(addr, &key, &info_for(WireProfile::Tm2, &other, "net")).await;
    let (claimed, real) = (other.node_id(WireProfile::Tm2), key.node_id(WireProfile::Tm2));
    assert!(
        matches!(next_rejection(&mut rx).await, RejectReason::IdMismatch { claimed: c, key: k } if c == claimed && k == real)
    );
}

#[tokio::test]
async fn invalid_and_incompatible_node_infos_are_rejected() {
    let profile = WireProfile::CometBft;
    let (_t, addr, mut rx) = listening(profile, TransportConfig::default()).await;
    let key = NodeKey::generate();
    let mut no_addr = info_for(profile, &key, "net");
    no_addr.listen_addr = String::new();
    peer_sending(addr, &key, &no_addr).await;
    assert!(matches!(next_rejection(&mut rx).await, RejectReason::InvalidNodeInfo(_)));
    peer_sending(addr, &key, &info_for(profile, &key, "another-net")).await;
    assert!(matches!(next_rejection(&mut rx).await, RejectReason::Incompatible(_)));
    let mut no_common = info_for(profile, &key, "net");
    no_common.channels = vec![0x01];
    peer_sending(addr, &key, &no_common).await;
    assert!(matches!(next_rejection(&mut rx).await, RejectReason::Incompatible(_)));
}

#[tokio::test]
async fn connecting_to_ourselves_is_rejected() {
    let key = Arc::new(NodeKey::generate());
    let info = info_for(WireProfile::Tm2, &key, "net");
    let t = Arc::new(Transport::new(key.clone(), info.clone(), TransportConfig::default(), None));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, mut rx) = mpsc::channel(4);
    tokio::spawn(t.clone().accept_loop(l, tx));
    let dial = t.dial(NetAddress::new(key.node_id(WireProfile::Tm2), addr)).await;
    assert!(matches!(dial, Err(DialError::Rejected(RejectReason::SelfConnection))), "{dial:?}");
    assert!(matches!(next_rejection(&mut rx).await, RejectReason::SelfConnection));
}

#[tokio::test]
async fn a_dialed_id_mismatch_is_caught_before_we_send_our_node_info() {
    let profile = WireProfile::Tm2;
    let (key, impostor) = (Arc::new(NodeKey::generate()), NodeKey::generate());
    let t = Transport::new(key.clone(), info_for(profile, &key, "net"), TransportConfig::default(), None);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let mut conn = SecretConnection::handshake(s, &impostor, profile, T).await.unwrap();
        let mut rest = Vec::new();
        let _ = conn.read_to_end(&mut rest).await;
        rest
    });
    let expected = NodeKey::generate().node_id(profile);
    let r = t.dial(NetAddress::new(expected, addr)).await;
    assert!(
        matches!(r, Err(DialError::Rejected(RejectReason::WrongPeer { dialed, .. })) if dialed == expected),
        "{r:?}"
    );
    assert!(server.await.unwrap().is_empty(), "the impostor learned nothing about us");
}

#[tokio::test]
async fn dial_errors_are_typed() {
    let (t, _, _) = listening(WireProfile::Tm2, TransportConfig::default()).await;
    let id = NodeKey::generate().node_id(WireProfile::Tm2);
    // A port nobody listens on.
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let refused = t.dial(NetAddress::new(id, free)).await.unwrap_err();
    assert!(matches!(refused, DialError::Connect(_)));
    let cause = std::error::Error::source(&refused).and_then(|e| e.downcast_ref::<Arc<std::io::Error>>());
    assert_eq!(cause.map(|e| e.kind()), Some(std::io::ErrorKind::ConnectionRefused), "the cause is kept");
    let zero = NetAddress::parse(&format!("{id}@127.0.0.1:0"), WireProfile::Tm2).unwrap();
    assert!(matches!(t.dial(zero).await, Err(DialError::Address(_))));
}

#[tokio::test(start_paused = true)]
async fn silent_and_garbage_clients_are_closed_and_over_limit_ones_at_once() {
    let config = TransportConfig {
        max_pending_inbound_per_ip: 2,
        handshake_timeout: Duration::from_secs(3),
        ..TransportConfig::default()
    };
    let (_t, addr, mut rx) = listening(WireProfile::Tm2, config).await;
    // Two silent clients fill this IP's slots; a third is refused at once.
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut third = TcpStream::connect(addr).await.unwrap();
    assert!(matches!(
        next_rejection(&mut rx).await,
        RejectReason::OverLimit("pending inbound handshakes from one host")
    ));
    let mut buf = [0u8; 64];
    assert_eq!(third.read(&mut buf).await.unwrap(), 0, "closed without a word");
    // The silent ones time out and are closed after our 35-byte key message.
    for _ in 0..2 {
        assert!(matches!(
            next_rejection(&mut rx).await,
            RejectReason::Handshake(SecretConnectionError::HandshakeTimeout(_))
        ));
    }
    for mut s in silent {
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), 35);
    }
    // Garbage fails at the first byte.
    let mut junk = TcpStream::connect(addr).await.unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    assert!(matches!(next_rejection(&mut rx).await, RejectReason::Handshake(_)));
}

#[tokio::test]
async fn the_accept_loop_stops_when_its_outlet_closes() {
    let key = Arc::new(NodeKey::generate());
    let t = Arc::new(Transport::new(
        key.clone(),
        info_for(WireProfile::Tm2, &key, "net"),
        TransportConfig::default(),
        None,
    ));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(1);
    let task = tokio::spawn(t.accept_loop(l, tx));
    drop(rx);
    tokio::time::timeout(T, task).await.unwrap().unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed");
}

#[tokio::test]
async fn a_probe_proves_who_listens_without_ever_being_admitted() {
    for profile in WireProfile::ALL {
        let (target, addr, mut rx) = listening(profile, TransportConfig::default()).await;
        let key = Arc::new(NodeKey::generate());
        let prober = Transport::new(key.clone(), info_for(profile, &key, "net"), TransportConfig::default(), None);
        prober.probe(NetAddress::new(target.id(), addr)).await.unwrap();
        // The target saw a handshake end before the NodeInfo exchange: never an upgraded peer.
        assert!(matches!(next_rejection(&mut rx).await, RejectReason::Handshake(_)));
        // Someone else at the address: the probe says who answered.
        let other = NodeKey::generate().node_id(profile);
        let wrong = prober.probe(NetAddress::new(other, addr)).await.unwrap_err();
        assert!(
            matches!(wrong, DialError::Rejected(RejectReason::WrongPeer { dialed, reached }) if dialed == other && reached == target.id())
        );
        let free = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        assert!(matches!(prober.probe(NetAddress::new(other, free)).await, Err(DialError::Connect(_))));
    }
}
