//! Peer discovery between real switches: TM2's discovery_test.go behaviours, seeds, seed mode, private peers, and
//! abusive peers.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use ledgerwire_p2p::{
    ChannelDescriptor, DisconnectReason, PeerHandle, ReactorContext, ReactorEvent, Switch, SwitchBuilder, SwitchConfig,
    SwitchEvent,
};
use ledgerwire_reactors::discovery::wire::{self, Message};
use ledgerwire_reactors::discovery::{self, DiscoveryEvent, book::Source};
use ledgerwire_tests::{DiscoveryOptions, NodeOptions, PATIENCE, TestNode, fast, logger};
use ledgerwire_types::{HostAddress, NetAddress, NodeId, NodeKey, WireProfile};

fn with_discovery(profile: WireProfile, d: DiscoveryOptions) -> NodeOptions {
    NodeOptions { profile, discovery: Some(d), ..Default::default() }
}

fn connected(id: NodeId) -> impl Fn(&SwitchEvent) -> bool {
    move |e| matches!(e, SwitchEvent::PeerConnected { peer, .. } if *peer == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_ask_periodically_answer_and_dial_and_persist_what_they_learn() {
    for profile in WireProfile::ALL {
        let dir = tempfile::tempdir().unwrap();
        let book = dir.path().join("a-book.json");
        let mut a = TestNode::spawn(with_discovery(
            profile,
            DiscoveryOptions { book_file: Some(book.clone()), ..Default::default() },
        ))
        .await;
        let hub = TestNode::spawn(with_discovery(profile, DiscoveryOptions::default())).await;
        // c runs no discovery, so the only way a and c meet is a dialing the address the hub gives it.
        let c = TestNode::spawn(NodeOptions { profile, ..Default::default() }).await;
        a.connect_to(&hub).await;
        c.connect_to(&hub).await;
        // a asks the hub, which answers with c (a connected peer), and a dials c.
        let hub_id = hub.id;
        a.wait_for_discovery(|e| matches!(e, DiscoveryEvent::Asked { peer } if *peer == hub_id)).await;
        a.wait_for(connected(c.id)).await;
        let entry = a.wait_for_book_entry(c.id, |e| e.last_success.is_some()).await;
        assert!(matches!(entry.source, Source::SelfReported | Source::Peer(_)));
        // What was learned is on disk, readable JSON.
        a.switch.stop().await;
        // The reactor writes the book once more when the switch stops.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let text = std::fs::read_to_string(&book).unwrap_or_default();
            if text.contains(&c.id.to_string()) {
                assert!(text.contains("\"last_success\""), "{text}");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "c never reached the saved book: {text}");
            tokio::task::yield_now().await;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn nothing_is_asked_or_dialed_without_peers_seeds_or_addresses() {
    let mut a = TestNode::spawn(with_discovery(WireProfile::Tm2, DiscoveryOptions::default())).await;
    tokio::time::sleep(Duration::from_secs(10)).await; // a hundred intervals
    let rx = a.discovery_events.as_mut().unwrap();
    assert!(matches!(rx.try_recv(), Err(tokio::sync::broadcast::error::TryRecvError::Empty)), "no discovery activity");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_peers_never_appear_in_answers() {
    let secret = TestNode::spawn(with_discovery(WireProfile::Tm2, DiscoveryOptions::default())).await;
    let other = TestNode::spawn(with_discovery(WireProfile::Tm2, DiscoveryOptions::default())).await;
    let mut hub = TestNode::spawn(NodeOptions {
        private: vec![secret.id],
        discovery: Some(DiscoveryOptions::default()),
        ..Default::default()
    })
    .await;
    secret.connect_to(&hub).await;
    other.connect_to(&hub).await;
    let asker = TestNode::spawn(with_discovery(WireProfile::Tm2, DiscoveryOptions::default())).await;
    asker.connect_to(&hub).await;
    // Several answers from the hub: none mentions the private peer, and the other peer is shared.
    let mut shared_other = false;
    for _ in 0..5 {
        let asker_id = asker.id;
        let e =
            hub.wait_for_discovery(|e| matches!(e, DiscoveryEvent::Answered { peer, .. } if *peer == asker_id)).await;
        let DiscoveryEvent::Answered { addresses, .. } = e else { unreachable!() };
        assert!(addresses.iter().all(|a| a.id() != secret.id), "{addresses:?}");
        assert!(addresses.iter().all(|a| a.id() != asker_id), "never the requester itself");
        shared_other |= addresses.iter().any(|a| a.id() == other.id);
    }
    assert!(shared_other);
    let book = asker.discovery.as_ref().unwrap().address_book().await;
    assert!(book.iter().all(|e| !(e.address.id() == secret.id && e.source == Source::Peer(hub.id))));
}

/// A switch with a discovery-channel reactor the test drives by hand.
async fn hand_driven(profile: WireProfile) -> (Switch, ReactorContext) {
    let mut config = SwitchConfig::new(([127, 0, 0, 1], 0).into(), "test-net");
    fast(&mut config);
    let mut b = SwitchBuilder::new(Arc::new(NodeKey::generate()), profile, config, logger());
    let ctx = b
        .add_reactor(
            "hand",
            &[discovery::descriptor(profile), ChannelDescriptor::new(ledgerwire_tests::ECHO_CHANNEL, 1)],
            1024,
        )
        .unwrap();
    (b.start().await.unwrap(), ctx)
}

async fn peer_up(ctx: &mut ReactorContext) -> PeerHandle {
    loop {
        match tokio::time::timeout(PATIENCE, ctx.events.recv()).await.unwrap().unwrap() {
            ReactorEvent::PeerUp(h) => return h,
            _ => continue,
        }
    }
}

fn fake(profile: WireProfile, n: u8) -> NetAddress {
    let id = NodeKey::from_seed(&[n; 32]).node_id(profile);
    NetAddress::parse(&format!("{id}@10.9.9.{n}:26656"), profile).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsolicited_and_invalid_responses_are_ignored() {
    for profile in WireProfile::ALL {
        let ch = discovery::channel(profile);
        let mut target = TestNode::spawn(with_discovery(
            profile,
            DiscoveryOptions { interval: Duration::from_secs(3600), ..Default::default() },
        ))
        .await;
        let (evil, mut ctx) = hand_driven(profile).await;
        evil.dial(target.address.clone(), false).await.unwrap();
        let to_target = peer_up(&mut ctx).await;
        // Unsolicited: dropped, nothing learned.
        let planted = fake(profile, 7);
        to_target
            .send(ch, wire::encode(profile, &Message::Response { addresses: vec![planted], invalid: 0 }))
            .await
            .unwrap();
        let evil_id = evil.id();
        let e =
            target.wait_for_discovery(|e| matches!(e, DiscoveryEvent::Dropped { peer, .. } if *peer == evil_id)).await;
        assert_eq!(e, DiscoveryEvent::Dropped { peer: evil_id, reason: "unsolicited response" });
        let book = target.discovery.as_ref().unwrap().address_book().await;
        assert!(book.iter().all(|e| e.address.id() != planted.id()), "unsolicited addresses are not stored");
        // Malformed bytes: dropped as well.
        to_target.send(ch, vec![0xff, 0xff, 0xff]).await.unwrap();
        target.wait_for_discovery(|e| matches!(e, DiscoveryEvent::Dropped { reason: "malformed message", .. })).await;
        evil.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_flood_is_dropped_then_banned_while_honest_peers_are_served() {
    let profile = WireProfile::CometBft;
    let ch = discovery::channel(profile);
    let mut target = TestNode::spawn(with_discovery(
        profile,
        DiscoveryOptions { interval: Duration::from_secs(3600), ..Default::default() },
    ))
    .await;
    let honest = TestNode::spawn(with_discovery(profile, DiscoveryOptions::default())).await;
    honest.connect_to(&target).await;
    let (evil, mut ctx) = hand_driven(profile).await;
    let mut evil_events = evil.subscribe(|_| true).unwrap();
    evil.dial(target.address.clone(), false).await.unwrap();
    let to_target = peer_up(&mut ctx).await;
    for _ in 0..40 {
        if to_target.send(ch, wire::encode(profile, &Message::Request)).await.is_err() {
            break;
        }
    }
    let evil_id = evil.id();
    // One answer, drops, then a ban (not on the first offence).
    target.wait_for_discovery(|e| matches!(e, DiscoveryEvent::Answered { peer, .. } if *peer == evil_id)).await;
    target
        .wait_for_discovery(
            |e| matches!(e, DiscoveryEvent::Dropped { peer, reason: "request too soon" } if *peer == evil_id),
        )
        .await;
    target.wait_for_discovery(|e| matches!(e, DiscoveryEvent::Banned { peer } if *peer == evil_id)).await;
    let e = target.wait_for(|e| matches!(e, SwitchEvent::PeerDisconnected { peer, .. } if *peer == evil_id)).await;
    assert!(matches!(e, SwitchEvent::PeerDisconnected { reason: DisconnectReason::Banned(_), .. }), "{e:?}");
    // The banned peer cannot come back for now. It redials once its side has seen the close (a dial to a peer it
    // still counts as connected would be dropped, and the target would see nothing).
    let _ = ledgerwire_tests::wait_for(&mut evil_events, |e| matches!(e, SwitchEvent::PeerDisconnected { .. })).await;
    evil.dial(target.address.clone(), false).await.unwrap();
    let e = target.wait_for(|e| matches!(e, SwitchEvent::PeerRejected { peer: Some(p), .. } if *p == evil_id)).await;
    assert!(matches!(e, SwitchEvent::PeerRejected { reason: ledgerwire_p2p::RejectReason::Banned, .. }), "{e:?}");
    // The honest peer is still connected and still gets answers.
    let honest_id = honest.id;
    target.wait_for_discovery(|e| matches!(e, DiscoveryEvent::Answered { peer, .. } if *peer == honest_id)).await;
    assert_eq!(target.peer_ids().await, vec![honest.id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_are_dialed_when_the_book_is_short_and_dropped_once_they_answer() {
    for profile in WireProfile::ALL {
        let known = TestNode::spawn(with_discovery(profile, DiscoveryOptions::default())).await;
        let seed = TestNode::spawn(with_discovery(profile, DiscoveryOptions::default())).await;
        known.connect_to(&seed).await;
        let mut fresh = TestNode::spawn(with_discovery(
            profile,
            DiscoveryOptions { seeds: vec![seed.address.clone()], ..Default::default() },
        ))
        .await;
        let seed_id = seed.id;
        fresh
            .wait_for_discovery(
                |e| matches!(e, DiscoveryEvent::Dialing { seed: true, address } if address.id() == seed_id),
            )
            .await;
        fresh.wait_for(connected(seed.id)).await;
        // The seed answers; fresh hangs up on it and dials what it learned. The two happen concurrently, so take
        // them in either order.
        let known_id = known.id;
        let (mut seed_gone, mut known_up) = (false, false);
        while !(seed_gone && known_up) {
            let e = fresh
                .wait_for(|e| {
                    matches!(e, SwitchEvent::PeerDisconnected { peer, .. } if *peer == seed_id)
                        || connected(known_id)(e)
                })
                .await;
            if let SwitchEvent::PeerDisconnected { reason, .. } = &e {
                assert!(matches!(reason, DisconnectReason::Finished(r) if r == "seed answered"), "{e:?}");
                seed_gone = true;
            } else {
                known_up = true;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_in_seed_mode_answers_once_then_disconnects_the_requester() {
    // cometbft: a node with nothing to share still answers (with an empty list), so a crawl always completes.
    let profile = WireProfile::CometBft;
    let mut seed =
        TestNode::spawn(with_discovery(profile, DiscoveryOptions { seed_mode: true, ..Default::default() })).await;
    // member uses the seed; the seed learns member's address, then crawls it: dials, asks, hangs up after the answer.
    let member = TestNode::spawn(with_discovery(
        profile,
        DiscoveryOptions { seeds: vec![seed.address.clone()], ..Default::default() },
    ))
    .await;
    let member_id = member.id;
    seed.wait_for_discovery(|e| matches!(e, DiscoveryEvent::Learned { peer, .. } if *peer == member_id)).await;
    // A visitor asks; the seed answers with what it knows, then hangs up.
    let (visitor, mut ctx) = hand_driven(profile).await;
    let mut visitor_events = visitor.subscribe(|_| true).unwrap();
    visitor.dial(seed.address.clone(), false).await.unwrap();
    let to_seed = peer_up(&mut ctx).await;
    to_seed.send(discovery::channel(profile), wire::encode(profile, &Message::Request)).await.unwrap();
    // (The seed may ask us for addresses too; skip its requests.)
    let answer = loop {
        match tokio::time::timeout(PATIENCE, ctx.events.recv()).await.unwrap().unwrap() {
            ReactorEvent::Message { msg, .. } => match wire::decode(profile, &msg).unwrap() {
                Message::Request => continue,
                response => break response,
            },
            ReactorEvent::PeerDown { reason, .. } => panic!("disconnected before an answer: {reason}"),
            ReactorEvent::PeerUp(_) => continue,
        }
    };
    assert!(
        matches!(answer, Message::Response { ref addresses, .. } if addresses.iter().any(|a| a.id() == member_id)),
        "{answer:?}"
    );
    let seed_id = seed.id;
    ledgerwire_tests::wait_for(
        &mut visitor_events,
        |e| matches!(e, SwitchEvent::PeerDisconnected { peer, .. } if *peer == seed_id),
    )
    .await;
    visitor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_leaves_persistent_peers_to_the_switch() {
    // b is persistent for a at its configured address; a gossiped address for b must not be dialed.
    let b = TestNode::spawn(with_discovery(WireProfile::Tm2, DiscoveryOptions::default())).await;
    let mut a = TestNode::spawn(NodeOptions {
        persistent: vec![b.address.clone()],
        discovery: Some(DiscoveryOptions::default()),
        ..Default::default()
    })
    .await;
    a.wait_for(connected(b.id)).await;
    let gossip = HostAddress::from(NetAddress::parse(&format!("{}@10.1.1.1:1", b.id), WireProfile::Tm2).unwrap());
    a.switch.dial(gossip, false).await.unwrap();
    // The switch ignored it: no dial failure for 10.1.1.1 shows up, and b stays connected.
    assert_eq!(a.echo_round_trip(b.id, b"still").await, b"still");
    let mut stream = a.switch.subscribe(|e| matches!(e, SwitchEvent::DialFailed { .. })).unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(300), stream.recv()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_that_stops_reading_loses_its_answers_and_stalls_nobody() {
    use ledgerwire_conn::mconnection::packet::{self, Packet};
    use ledgerwire_p2p::node_info::NodeInfo;
    use ledgerwire_p2p::{Direction, Transport, TransportConfig};
    use tokio::io::AsyncWriteExt;

    let profile = WireProfile::CometBft;
    let ch = discovery::channel(profile);
    // No request limit, so that the evil peer can ask as fast as it writes.
    let options = DiscoveryOptions { min_request_interval: Duration::ZERO, ..Default::default() };
    let mut target = TestNode::spawn(with_discovery(profile, options)).await;
    let honest = TestNode::spawn(with_discovery(profile, DiscoveryOptions::default())).await;
    honest.connect_to(&target).await;
    // The evil peer is a bare connection with a small receive window that never reads.
    let key = Arc::new(NodeKey::generate());
    let info =
        NodeInfo::ours(profile, key.node_id(profile), ([127, 0, 0, 1], 9).into(), "test-net", "evil", vec![ch], "0");
    let evil_id = info.id;
    let transport = Transport::new(key, info, TransportConfig::default(), logger());
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(target.address.to_net_address().unwrap().socket_addr()).await.unwrap();
    let mut conn = transport.upgrade(stream, Direction::Outbound, Some(target.id)).await.unwrap().conn;
    let request = Packet::Msg { channel: ch, eof: true, data: wire::encode(profile, &Message::Request).into() };
    // Fewer than the send queue holds, so only a peer that stops reading can fill it.
    const BURST: usize = 10;
    let burst = packet::encode(profile, &request).repeat(BURST);
    // It asks in bursts, each once the last was handled (a faster flood would overrun the target's receive queue and
    // be disconnected for that). Its answers fill the kernel's socket buffers (a few MB), then the send queue; from
    // then on they are dropped, not waited for ...
    let mut dropped = false;
    let mut bursts = 0;
    while !dropped {
        assert!(bursts < 100_000, "the send queue of a peer that does not read never filled");
        bursts += 1;
        conn.write_all(&burst).await.unwrap();
        conn.flush().await.unwrap();
        let mut handled = 0;
        while handled < BURST {
            match target
                .wait_for_discovery(|e| {
                    matches!(e, DiscoveryEvent::Answered { peer, .. } | DiscoveryEvent::Dropped { peer, .. }
                        if *peer == evil_id)
                })
                .await
            {
                DiscoveryEvent::Dropped { reason: "send queue full", .. } => dropped = true,
                DiscoveryEvent::Answered { .. } => {}
                e => panic!("{e:?}"),
            }
            handled += 1;
        }
    }
    // ... so the honest peer keeps getting answers meanwhile.
    let honest_id = honest.id;
    for _ in 0..3 {
        target.wait_for_discovery(|e| matches!(e, DiscoveryEvent::Answered { peer, .. } if *peer == honest_id)).await;
    }
    assert!(target.peer_ids().await.contains(&evil_id), "dropping answers is not a reason to disconnect");
    drop(conn);
}
