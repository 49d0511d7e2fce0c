//! Several switches on loopback: TM2's switch_test.go behaviours, broadcasts, persistent peers, limits and
//! simultaneous dials.
#![allow(clippy::unwrap_used)]

use ledgerwire_p2p::{BroadcastFailure, Direction, DisconnectReason, RejectReason, SwitchError, SwitchEvent};
use ledgerwire_tests::{ECHO_CHANNEL, NodeOptions, TestNode, wait_for};
use ledgerwire_types::{NodeId, WireProfile};

fn connected(id: NodeId) -> impl Fn(&SwitchEvent) -> bool {
    move |e| matches!(e, SwitchEvent::PeerConnected { peer, .. } if *peer == id)
}

fn disconnected(id: NodeId) -> impl Fn(&SwitchEvent) -> bool {
    move |e| matches!(e, SwitchEvent::PeerDisconnected { peer, .. } if *peer == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_reaches_every_peer_and_reports_each_outcome() {
    let hub = TestNode::spawn(NodeOptions::default()).await;
    let mut spokes = Vec::new();
    for _ in 0..3 {
        let s = TestNode::spawn(NodeOptions::default()).await;
        hub.connect_to(&s).await;
        spokes.push(s);
    }
    let report = hub.switch.broadcast(ECHO_CHANNEL, vec![0u8, 42]).await.unwrap();
    assert_eq!(report.delivered(), 3, "{report:?}");
    let mut ids: Vec<_> = spokes.iter().map(|s| s.id).collect();
    ids.sort();
    assert_eq!(report.results.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids);
    // A channel nobody speaks is reported per peer, not silently dropped.
    let none = hub.switch.broadcast(0x55, vec![1]).await.unwrap();
    assert!(none.results.iter().all(|(_, r)| *r == Err(BroadcastFailure::NotSupported)));
    assert_eq!(hub.peer_ids().await, ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_peer_for_error_disconnects_it_and_only_persistent_peers_come_back() {
    let b = TestNode::spawn(NodeOptions::default()).await;
    let c = TestNode::spawn(NodeOptions::default()).await;
    let mut a = TestNode::spawn(NodeOptions { persistent: vec![b.address.clone()], ..Default::default() }).await;
    a.wait_for(connected(b.id)).await;
    a.connect_to(&c).await;

    assert!(a.switch.stop_peer_for_error(b.id, "misbehaved").await.unwrap());
    let e = a.wait_for(disconnected(b.id)).await;
    assert!(
        matches!(e, SwitchEvent::PeerDisconnected { reason: DisconnectReason::Error(ref r), .. } if r == "misbehaved")
    );
    a.wait_for(connected(b.id)).await; // persistent: redialed

    assert!(a.switch.stop_peer_for_error(c.id, "misbehaved").await.unwrap());
    a.wait_for(disconnected(c.id)).await;
    // Prove c stays gone: round-trip with b (which came back) and look at the peer list after it.
    assert_eq!(a.echo_round_trip(b.id, b"still here").await, b"still here");
    assert_eq!(a.peer_ids().await, vec![b.id]);
    assert!(!a.switch.stop_peer_for_error(c.id, "again").await.unwrap(), "not connected any more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_peer_that_restarts_is_reconnected_at_its_configured_address() {
    for profile in WireProfile::ALL {
        let b = TestNode::spawn(NodeOptions { profile, ..Default::default() }).await;
        let (b_key, b_listen) = (b.key.clone(), b.switch.listen_addr().unwrap());
        let mut a =
            TestNode::spawn(NodeOptions { profile, persistent: vec![b.address.clone()], ..Default::default() }).await;
        a.wait_for(connected(b.id)).await;
        b.switch.stop().await;
        drop(b);
        a.wait_for(disconnected(b_key.node_id(profile))).await;
        // Some dials fail while b is down; then b comes back on the same address with the same key.
        a.wait_for(|e| matches!(e, SwitchEvent::DialFailed { .. })).await;
        let b =
            TestNode::spawn(NodeOptions { profile, key: Some(b_key), listen: b_listen, ..Default::default() }).await;
        a.wait_for(connected(b.id)).await;
        assert_eq!(a.echo_round_trip(b.id, b"welcome back").await, b"welcome back");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_persistent_peer_that_drops_is_redialed_at_the_configured_address() {
    let mut a = TestNode::spawn(NodeOptions::default()).await;
    let b = TestNode::spawn(NodeOptions::default()).await;
    // b dials a: for a, an inbound connection.
    b.connect_to(&a).await;
    // Now the operator makes b persistent on a; a does not dial (already connected).
    a.switch.dial(b.address.clone(), true).await.unwrap();
    assert!(a.switch.stop_peer_for_error(b.id, "drop it").await.unwrap());
    a.wait_for(disconnected(b.id)).await;
    // b does not redial (its dial was not persistent): the reconnection is a's own dial to the configured address.
    let e = a.wait_for(connected(b.id)).await;
    assert!(matches!(e, SwitchEvent::PeerConnected { direction: Direction::Outbound, persistent: true, .. }), "{e:?}");
    let peer = &a.switch.peers().unwrap()[0];
    assert_eq!(peer.info.configured_address.as_ref(), Some(&b.address));
    assert_eq!(peer.info.remote_addr, b.switch.listen_addr().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_dials_end_with_exactly_one_connection_on_both_sides() {
    for round in 0..5 {
        let mut a = TestNode::spawn(NodeOptions::default()).await;
        let mut b = TestNode::spawn(NodeOptions::default()).await;
        // Both dial at once.
        let (ra, rb) = tokio::join!(a.switch.dial(b.address.clone(), true), b.switch.dial(a.address.clone(), true));
        ra.unwrap();
        rb.unwrap();
        a.wait_for(connected(b.id)).await;
        b.wait_for(connected(a.id)).await;
        // Each side handles two connections at most; drive both to a settled state with round trips.
        for _ in 0..3 {
            assert_eq!(a.echo_round_trip(b.id, b"x").await, b"x");
            assert_eq!(b.echo_round_trip(a.id, b"y").await, b"y");
        }
        let (pa, pb) = (a.switch.peers().unwrap(), b.switch.peers().unwrap());
        assert_eq!((pa.len(), pb.len()), (1, 1), "round {round}");
        assert_ne!(pa[0].info.direction, pb[0].info.direction, "round {round}: both ends of one connection");
        assert_eq!(
            pa[0].info.remote_addr.port() == b.switch.listen_addr().unwrap().port(),
            pa[0].info.direction == Direction::Outbound
        );
        // If both connections were made, the one dialed by the lower ID survived.
        let dialer = if pa[0].info.direction == Direction::Outbound { a.id } else { b.id };
        let both_made = |events: &mut ledgerwire_p2p::EventStream| {
            let mut n = 0;
            while let Some(Some(ledgerwire_p2p::EventItem::Event(e))) = futures_now(events) {
                if matches!(
                    e,
                    SwitchEvent::PeerRejected { reason: RejectReason::Duplicate, .. }
                        | SwitchEvent::PeerDisconnected { reason: DisconnectReason::Replaced, .. }
                ) {
                    n += 1;
                }
            }
            n > 0
        };
        if both_made(&mut a.events) || both_made(&mut b.events) {
            assert_eq!(dialer, a.id.min(b.id), "round {round}: the tie-break keeps the lower ID's dial");
        }
        // Nobody saw a real disconnect.
        a.switch.stop().await;
        b.switch.stop().await;
    }
}

/// The next already-available item of a stream, without waiting.
fn futures_now(events: &mut ledgerwire_p2p::EventStream) -> Option<Option<ledgerwire_p2p::EventItem>> {
    use std::future::Future;
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut fut = std::pin::pin!(events.recv());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(item) => Some(item),
        std::task::Poll::Pending => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbound_limit_closes_the_extras_but_not_persistent_peers() {
    let persistent_friend = TestNode::spawn(NodeOptions::default()).await;
    let mut hub = TestNode::spawn(NodeOptions {
        tweak: |c| c.max_inbound = 2,
        persistent: vec![persistent_friend.address.clone()],
        ..Default::default()
    })
    .await;
    hub.wait_for(connected(persistent_friend.id)).await; // outbound, and persistent anyway
    let mut others = Vec::new();
    for _ in 0..2 {
        let n = TestNode::spawn(NodeOptions::default()).await;
        n.connect_to(&hub).await;
        others.push(n);
    }
    let mut extra = TestNode::spawn(NodeOptions::default()).await;
    extra.switch.dial(hub.address.clone(), false).await.unwrap();
    let e = hub.wait_for(|e| matches!(e, SwitchEvent::PeerRejected { .. })).await;
    assert!(
        matches!(e, SwitchEvent::PeerRejected { reason: RejectReason::OverLimit("max_num_inbound_peers"), .. }),
        "{e:?}"
    );
    // The extra's view: the handshake completed, then the hub hung up.
    extra.wait_for(disconnected(hub.id)).await;
    let mut want: Vec<_> = others.iter().map(|n| n.id).chain([persistent_friend.id]).collect();
    want.sort();
    assert_eq!(hub.peer_ids().await, want);
    // A persistent peer dialing in is admitted beyond the limit.
    let vip = TestNode::spawn(NodeOptions::default()).await;
    hub.switch.dial(vip.address.clone(), true).await.unwrap();
    hub.wait_for(connected(vip.id)).await;
    assert_eq!(hub.switch.peers().unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_see_connects_and_disconnects_with_reasons() {
    let a = TestNode::spawn(NodeOptions::default()).await;
    let b = TestNode::spawn(NodeOptions::default()).await;
    let mut only_disconnects = a.switch.subscribe(|e| e.kind() == "peer_disconnected").unwrap();
    let mut all = a.switch.subscribe(|_| true).unwrap();
    a.connect_to(&b).await;
    let e = wait_for(&mut all, connected(b.id)).await;
    assert!(matches!(
        e,
        SwitchEvent::PeerConnected { direction: Direction::Outbound, persistent: false, private: false, .. }
    ));
    b.switch.stop().await;
    let e = wait_for(&mut only_disconnects, |_| true).await;
    assert!(
        matches!(e, SwitchEvent::PeerDisconnected { peer, reason: DisconnectReason::Connection(_), .. } if peer == b.id),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialing_ourselves_is_refused_and_the_outbound_limit_is_kept() {
    let mut a = TestNode::spawn(NodeOptions { tweak: |c| c.max_outbound = 1, ..Default::default() }).await;
    assert_eq!(a.switch.dial(a.address.clone(), false).await, Err(SwitchError::DialSelf));
    let b = TestNode::spawn(NodeOptions::default()).await;
    let c = TestNode::spawn(NodeOptions::default()).await;
    a.connect_to(&b).await;
    a.switch.dial(c.address.clone(), false).await.unwrap();
    let e = a.wait_for(|e| matches!(e, SwitchEvent::DialFailed { .. })).await;
    assert!(
        matches!(e, SwitchEvent::DialFailed { peer, reason: ledgerwire_p2p::DialError::Rejected(RejectReason::OverLimit(_)), .. } if peer == c.id)
    );
    assert_eq!(a.peer_ids().await, vec![b.id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_peers_are_marked_private() {
    let b = TestNode::spawn(NodeOptions::default()).await;
    let a = TestNode::spawn(NodeOptions { private: vec![b.id], ..Default::default() }).await;
    a.connect_to(&b).await;
    let peers = a.switch.peers().unwrap();
    assert!(peers[0].info.private);
    assert!(!b.switch.peers().unwrap()[0].info.private);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_switch_closes_every_connection_and_refuses_commands() {
    let a = TestNode::spawn(NodeOptions::default()).await;
    let mut b = TestNode::spawn(NodeOptions::default()).await;
    a.connect_to(&b).await;
    let listen = a.switch.listen_addr().unwrap();
    a.switch.stop().await;
    b.wait_for(disconnected(a.id)).await;
    assert!(tokio::net::TcpStream::connect(listen).await.is_err(), "the listener is closed");
    assert_eq!(a.switch.dial(b.address.clone(), false).await, Err(SwitchError::Stopped));
    a.switch.stop().await; // idempotent
}
