//! Handshake slots held from many addresses: 200 loopback addresses on 8 networks each keep two silent connections
//! open and reconnect the moment one is closed, so the pool of pending handshakes stays full. Honest newcomers from
//! another network must still connect, every time. (Alone in its own test binary: it opens about 700 sockets.)
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ledgerwire_p2p::{RejectReason, SwitchEvent};
use ledgerwire_tests::{NodeOptions, PATIENCE, TestNode};
use tokio::io::AsyncReadExt;
use tokio::net::TcpSocket;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// One flooding address: `sockets` silent connections, each reopened as soon as the node closes it, until `stop`
/// (and at most 100,000 times, so the loop is bounded even if the test forgets to stop it).
async fn flood(
    source: Ipv4Addr,
    target: SocketAddr,
    sockets: usize,
    stop: Arc<AtomicBool>,
    opened: Arc<watch::Sender<u64>>,
) {
    let mut held = JoinSet::new();
    for _ in 0..sockets {
        let (stop, opened) = (stop.clone(), opened.clone());
        held.spawn(async move {
            for _ in 0..100_000 {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(socket) = TcpSocket::new_v4() else { return };
                if socket.bind(SocketAddr::from((source, 0))).is_err() {
                    return;
                }
                let Ok(Ok(mut conn)) = tokio::time::timeout(PATIENCE, socket.connect(target)).await else { continue };
                opened.send_modify(|n| *n += 1);
                // Say nothing; read until the node closes the connection (its deadline, or an eviction).
                let mut buf = [0u8; 64];
                while let Ok(Ok(n)) = tokio::time::timeout(PATIENCE, conn.read(&mut buf)).await {
                    if n == 0 || stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
            }
        });
    }
    while held.join_next().await.is_some() {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_newcomers_connect_while_two_hundred_addresses_keep_every_handshake_slot_busy() {
    let mut target = TestNode::spawn(NodeOptions::default()).await;
    let mut existing = TestNode::spawn(NodeOptions::default()).await;
    existing.connect_to(&target).await;
    let listen = target.switch.listen_addr().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(watch::Sender::new(0u64));
    let mut opened_count = opened.subscribe();
    let mut flooders = JoinSet::new();
    for i in 0..200u8 {
        let source = Ipv4Addr::new(127, 1, i % 8, i / 8 + 1);
        flooders.spawn(flood(source, listen, 2, stop.clone(), opened.clone()));
    }
    // Every flooding socket is open (on two cores the flooders may still be connecting when the first refusals
    // arrive, so wait for the count itself) ...
    tokio::time::timeout(PATIENCE, opened_count.wait_for(|n| *n >= 400))
        .await
        .expect("the flood opens its 400 sockets in time")
        .unwrap();
    // ... and the pool is full: the node is refusing or evicting flood connections.
    for _ in 0..50 {
        target
            .wait_for(|e| {
                matches!(
                    e,
                    SwitchEvent::PeerRejected { reason: RejectReason::OverLimit(_) | RejectReason::Evicted, .. }
                )
            })
            .await;
    }

    // Six honest newcomers, one after the other, each from 127.0.0.1, each gets in.
    for n in 0..6 {
        let honest = TestNode::spawn(NodeOptions::default()).await;
        honest.connect_to(&target).await;
        assert!(target.peer_ids().await.contains(&honest.id), "newcomer {n}");
        honest.switch.stop().await;
    }
    // The peer that was connected before the flood never noticed.
    assert_eq!(existing.echo_round_trip(target.id, b"still here").await, b"still here");

    stop.store(true, Ordering::Relaxed);
    target.switch.stop().await;
    // A flooding socket whose last handshake packet the full backlog dropped never hears that the listener closed:
    // abort the flooders (dropping each one's JoinSet aborts its sockets) rather than wait out their read timeout.
    flooders.shutdown().await;
}
