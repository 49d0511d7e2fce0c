//! Discovery against what an attack run and a first-time user found: addresses peers claim on other hosts, nodes
//! that advertise `0.0.0.0`, an address book that outlived its configuration, and a failed start that still wrote
//! the book.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ledgerwire_p2p::node_info::NodeInfo;
use ledgerwire_p2p::{SwitchBuilder, SwitchConfig, SwitchEvent, Transport, TransportConfig};
use ledgerwire_reactors::discovery::book::Source;
use ledgerwire_reactors::discovery::{self, DiscoveryConfig, DiscoveryEvent};
use ledgerwire_tests::{DiscoveryOptions, NodeOptions, PATIENCE, TestNode, logger};
use ledgerwire_types::{HostAddress, NodeId, NodeKey, WireProfile};
use tokio::net::TcpListener;
use tokio::time::Instant;

fn with_discovery(d: DiscoveryOptions) -> NodeOptions {
    NodeOptions { discovery: Some(d), ..Default::default() }
}

fn connected(id: NodeId) -> impl Fn(&SwitchEvent) -> bool {
    move |e| matches!(e, SwitchEvent::PeerConnected { peer, .. } if *peer == id)
}

/// A free port on 127.0.0.1 (bound and released; the caller binds it again at once).
async fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port()
}

/// Inbound peers with fresh keys advertise listen addresses on another host (bystanders' ports on 127.0.0.2). The
/// node must not store, share or dial them, except for one probe per bystander, a few per interval; a real peer that
/// listens on another host than it connects from is verified by its probe, then stored and shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_claimed_on_other_hosts_are_probed_at_a_bounded_rate_and_never_shared_unverified() {
    // Twenty bystanders count every connection they receive.
    let hits = Arc::new(AtomicUsize::new(0));
    let mut victims = Vec::new();
    let mut bystanders = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let bystander = TcpListener::bind("127.0.0.2:0").await.unwrap();
        victims.push(bystander.local_addr().unwrap());
        let counter = hits.clone();
        bystanders.spawn(async move {
            while let Ok((socket, _)) = bystander.accept().await {
                counter.fetch_add(1, Ordering::Relaxed);
                drop(socket);
            }
        });
    }
    let interval = Duration::from_millis(100);
    let mut target = TestNode::spawn(NodeOptions {
        tweak: |c| c.max_inbound = 100,
        ..with_discovery(DiscoveryOptions { interval, ..Default::default() })
    })
    .await;
    let target_addr = target.address.to_net_address().unwrap();

    // Forty poisoners: bare connections whose NodeInfo claims a bystander's address, each bystander twice.
    let mut poisoners = Vec::new();
    let mut poisoner_ids = Vec::new();
    for i in 0..40 {
        let key = Arc::new(NodeKey::generate());
        let id = key.node_id(WireProfile::Tm2);
        let channels = vec![discovery::channel(WireProfile::Tm2)];
        let info = NodeInfo::ours(WireProfile::Tm2, id, victims[i % 20], "test-net", "poison", channels, "v0");
        let transport = Transport::new(key, info, TransportConfig::default(), None);
        poisoners.push(transport.dial(target_addr).await.unwrap());
        poisoner_ids.push(id);
    }
    // A real peer that listens on 127.0.0.3 but connects from 127.0.0.1.
    let elsewhere: SocketAddr = "127.0.0.3:0".parse().unwrap();
    let real = TestNode::spawn(NodeOptions { listen: elsewhere, ..Default::default() }).await;
    real.connect_to(&target).await;
    let started = Instant::now();

    // Every claim is noticed; none is stored.
    for _ in 0..41 {
        target.wait_for_discovery(|e| matches!(e, DiscoveryEvent::Unverified { .. })).await;
    }
    // Probes go out two per interval, one per bystander however many claim it: ten take at least four intervals.
    let mut probed = Vec::new();
    let mut real_verified = false;
    while probed.len() < 10 || !real_verified {
        if let DiscoveryEvent::Probed { address, verified } =
            target.wait_for_discovery(|e| matches!(e, DiscoveryEvent::Probed { .. })).await
        {
            if address.id() == real.id {
                assert!(verified, "the real peer answers where it said it listens");
                real_verified = true;
            } else {
                assert!(!verified, "a bystander never proves a poisoner's key");
                assert!(!probed.contains(&address.socket_addr()), "{address} probed twice");
                probed.push(address.socket_addr());
            }
        }
    }
    assert!(started.elapsed() >= interval * 4, "{} probes in {:?}", probed.len(), started.elapsed());
    // The bystanders were only ever reached by probes, never dialed as peers.
    let (hits, probes) = (hits.load(Ordering::Relaxed), probed.len());
    assert!(hits <= probes + 2, "{hits} connections for {probes} probes (and at most two in flight)");

    // Nothing a poisoner claimed is in the book; the real peer is, proven.
    let book = target.discovery.as_ref().unwrap().address_book().await;
    assert!(book.iter().all(|e| !poisoner_ids.contains(&e.address.id())), "{book:?}");
    let real_entry = target.wait_for_book_entry(real.id, |e| e.last_success.is_some()).await;
    assert_eq!(real_entry.address.ip(), elsewhere.ip());
    assert_eq!(real_entry.source, Source::SelfReported);

    // What the node tells others never names a bystander, and does name the verified peer.
    let asker = TestNode::spawn(with_discovery(DiscoveryOptions { interval, ..Default::default() })).await;
    asker.connect_to(&target).await;
    let asker_id = asker.id;
    let mut named_real = false;
    for _ in 0..5 {
        let e = target
            .wait_for_discovery(|e| matches!(e, DiscoveryEvent::Answered { peer, .. } if *peer == asker_id))
            .await;
        let DiscoveryEvent::Answered { addresses, .. } = e else { unreachable!() };
        assert!(addresses.iter().all(|a| !victims.contains(&a.socket_addr())), "{addresses:?}");
        named_real |= addresses.iter().any(|a| a.id() == real.id && a.ip() == elsewhere.ip());
    }
    assert!(named_real, "the verified address is shared");
    drop(poisoners);
    bystanders.abort_all();
}

/// Three nodes listen on all interfaces without an external address, so each advertises `0.0.0.0:port`. Around a
/// hub they must still find each other: the hub reads each one's address as the IP it connected from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_advertising_an_unspecified_address_still_find_each_other_through_a_hub() {
    let hub = TestNode::spawn(with_discovery(DiscoveryOptions::default())).await;
    let mut spokes = Vec::new();
    for _ in 0..3 {
        let port = free_port().await;
        let spoke = TestNode::spawn(NodeOptions {
            listen: ([127, 0, 0, 1], port).into(),
            external_address: Some(([0, 0, 0, 0], port).into()),
            discovery: Some(DiscoveryOptions { seeds: vec![], ..Default::default() }),
            ..Default::default()
        })
        .await;
        spoke.connect_to(&hub).await;
        spokes.push(spoke);
    }
    let ids: Vec<NodeId> = spokes.iter().map(|s| s.id).collect();
    for spoke in &mut spokes {
        let me = spoke.id;
        for other in ids.iter().filter(|id| **id != me) {
            if !spoke.peer_ids().await.contains(other) {
                spoke.wait_for(connected(*other)).await;
            }
        }
    }
}

/// A persistent peer moves, and its address is corrected in the configuration: the book follows, and the old
/// address (which had worked) is neither kept as configured nor credited with the new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_book_follows_a_corrected_persistent_peer_address() {
    let dir = tempfile::tempdir().unwrap();
    let book_file = dir.path().join("addrbook.json");
    let key = Arc::new(NodeKey::generate());
    let peer_key = Arc::new(NodeKey::generate());
    let options = |persistent: HostAddress| NodeOptions {
        key: Some(key.clone()),
        persistent: vec![persistent],
        discovery: Some(DiscoveryOptions { book_file: Some(book_file.clone()), ..Default::default() }),
        ..Default::default()
    };
    // First run: the peer at its old address, reached.
    let peer = TestNode::spawn(NodeOptions { key: Some(peer_key.clone()), ..Default::default() }).await;
    let old = peer.address.to_net_address().unwrap();
    let mut first = TestNode::spawn(options(peer.address.clone())).await;
    first.wait_for(connected(peer.id)).await;
    first.wait_for_book_entry(peer.id, |e| e.source == Source::Config && e.last_success.is_some()).await;
    first.switch.stop().await;
    first.discovery.as_ref().unwrap().stopped().await;
    // The peer moves to another port; the operator corrects the configuration.
    peer.switch.stop().await;
    let moved = TestNode::spawn(NodeOptions { key: Some(peer_key), ..Default::default() }).await;
    let mut second = TestNode::spawn(options(moved.address.clone())).await;
    second.wait_for(connected(moved.id)).await;
    let new = moved.address.to_net_address().unwrap();
    let entry = second.wait_for_book_entry(moved.id, |e| e.address == new && e.last_success.is_some()).await;
    assert_eq!(entry.source, Source::Config);
    let book = second.discovery.as_ref().unwrap().address_book().await;
    assert!(book.iter().all(|e| e.address != old), "the old address is gone: {book:?}");
}

/// A switch that fails to start leaves the address book as it was: not rewritten, not moved aside even if corrupt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_fails_leaves_the_address_book_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let book_file = dir.path().join("addrbook.json");
    std::fs::write(&book_file, "{ not json").unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut builder = SwitchBuilder::new(
        Arc::new(NodeKey::generate()),
        WireProfile::Tm2,
        SwitchConfig::new(taken.local_addr().unwrap(), "test-net"),
        logger(),
    );
    let mut config = DiscoveryConfig::new(WireProfile::Tm2, 10);
    config.book_file = Some(book_file.clone());
    let handle = discovery::register(&mut builder, config, logger()).unwrap();
    assert!(builder.start().await.is_err(), "the port is taken");
    tokio::time::timeout(PATIENCE, handle.stopped()).await.unwrap();
    assert_eq!(std::fs::read_to_string(&book_file).unwrap(), "{ not json");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing moved aside or written beside it");
}
