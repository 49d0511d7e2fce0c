//! 500 connections that say nothing or garbage while two honest nodes keep talking; afterwards the process holds
//! exactly the file descriptors it held before. (Alone in its own test binary, so no other test opens descriptors
//! meanwhile.)
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ledgerwire_tests::{NodeOptions, PATIENCE, TestNode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_leaves_honest_peers_connected_and_no_descriptors_behind() {
    let mut honest = TestNode::spawn(NodeOptions::default()).await;
    let target = TestNode::spawn(NodeOptions {
        tweak: |c| {
            c.transport.handshake_timeout = Duration::from_secs(1);
            c.transport.max_pending_inbound = 64;
            c.transport.max_pending_inbound_per_ip = 32;
        },
        ..Default::default()
    })
    .await;
    honest.connect_to(&target).await;
    let listen = target.switch.listen_addr().unwrap();
    let baseline = open_fds();

    let mut flood = Vec::new();
    for i in 0..500 {
        let mut s = TcpStream::connect(listen).await.unwrap();
        if i % 2 == 1 {
            // Garbage: an HTTP request where a key exchange should be. The node may already have closed it.
            let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        }
        flood.push(s);
        if i % 100 == 0 {
            // The honest pair keeps working during the flood.
            assert_eq!(honest.echo_round_trip(target.id, b"during").await, b"during");
        }
    }
    for i in 0..20u8 {
        assert_eq!(honest.echo_round_trip(target.id, &[i; 100]).await, [i; 100]);
    }
    // Every flood connection is closed by the node: at once if over a limit or garbage, after the 1 s handshake
    // deadline if silent. Reading to the end proves the node's side is gone.
    for mut s in flood {
        let mut sink = Vec::new();
        let r = tokio::time::timeout(PATIENCE, s.read_to_end(&mut sink)).await;
        assert!(r.is_ok(), "the node kept a flood connection open");
    }
    assert_eq!(open_fds(), baseline, "every descriptor opened during the flood was closed");
    assert_eq!(target.peer_ids().await, vec![honest.id]);
    assert_eq!(honest.echo_round_trip(target.id, b"after").await, b"after");
}
