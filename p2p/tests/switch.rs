//! The switch alone: the reactor API's guarantees, delivery to reactors that never wait for each other, and the
//! redial schedule in paused time.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use ledgerwire_p2p::node_info::NodeInfo;
use ledgerwire_p2p::{
    BroadcastFailure, BuildError, ChannelDescriptor, EventItem, MConnectionConfig, PeerHandle, PeerSendError,
    ReactorContext, ReactorError, ReactorEvent, SendError, Switch, SwitchBuilder, SwitchConfig, SwitchError,
    SwitchEvent, Transport, TransportConfig,
};
use ledgerwire_types::{HostAddress, NetAddress, NodeId, NodeKey, WireProfile};
use tokio::time::Instant;

/// How long anything that should take milliseconds may take before a test fails.
const PATIENCE: Duration = Duration::from_secs(20);

fn builder(config: SwitchConfig) -> SwitchBuilder {
    SwitchBuilder::new(Arc::new(NodeKey::generate()), WireProfile::Tm2, config, None)
}

fn local() -> SwitchConfig {
    let mut c = SwitchConfig::new(([127, 0, 0, 1], 0).into(), "net");
    c.connection = MConnectionConfig { flush_throttle: Duration::ZERO, ..Default::default() };
    // A stuck reactor holds a stop up for this long.
    c.stop_grace = Duration::from_millis(300);
    c
}

fn address_of(s: &Switch) -> HostAddress {
    HostAddress::parse(&format!("{}@{}", s.id(), s.listen_addr().unwrap()), WireProfile::Tm2).unwrap()
}

async fn next(ctx: &mut ReactorContext) -> ReactorEvent {
    tokio::time::timeout(PATIENCE, ctx.events.recv()).await.expect("an event in time").expect("the stream is open")
}

async fn peer_up(ctx: &mut ReactorContext) -> PeerHandle {
    match next(ctx).await {
        ReactorEvent::PeerUp(h) => h,
        other => panic!("expected PeerUp, got {other:?}"),
    }
}

#[tokio::test]
async fn a_channel_claimed_twice_or_too_many_channels_is_an_error_when_building() {
    let mut b = builder(local());
    b.add_reactor("first", &[ChannelDescriptor::new(0x20, 1)], 8).unwrap();
    let e =
        b.add_reactor("second", &[ChannelDescriptor::new(0x21, 1), ChannelDescriptor::new(0x20, 1)], 8).unwrap_err();
    assert!(
        matches!(e, BuildError::ChannelTaken { channel: 0x20, ref first, ref second } if first == "first" && second == "second")
    );
    // The refused registration left nothing behind: 0x21 is still free.
    b.add_reactor("third", &[ChannelDescriptor::new(0x21, 1)], 8).unwrap();

    let mut many = builder(local());
    let chans: Vec<_> = (0..17).map(|i| ChannelDescriptor::new(i, 1)).collect();
    let _ctx = many.add_reactor("greedy", &chans, 8).unwrap();
    assert!(matches!(many.start().await.unwrap_err(), BuildError::TooManyChannels(17)));
}

#[tokio::test]
async fn a_node_info_peers_would_refuse_or_a_bad_persistent_list_stops_the_start() {
    let mut c = local();
    c.moniker = "x".repeat(20_000);
    let mut b = builder(c);
    b.add_reactor("r", &[ChannelDescriptor::new(0x20, 1)], 8).unwrap();
    let e = b.start().await.unwrap_err();
    assert!(e.to_string().contains("exceeds the 10240-byte limit"), "{e}");

    let key = Arc::new(NodeKey::generate());
    let me = key.node_id(WireProfile::Tm2);
    let mut c = local();
    c.persistent_peers = vec![HostAddress::parse(&format!("{me}@127.0.0.1:1"), WireProfile::Tm2).unwrap()];
    let mut b = SwitchBuilder::new(key, WireProfile::Tm2, c, None);
    b.add_reactor("r", &[ChannelDescriptor::new(0x20, 1)], 8).unwrap();
    assert!(matches!(b.start().await.unwrap_err(), BuildError::Config(_)));

    let mut c = local();
    c.transport.handshake_timeout = Duration::from_nanos(1);
    let mut b = builder(c);
    b.add_reactor("r", &[ChannelDescriptor::new(0x20, 1)], 8).unwrap();
    let e = b.start().await.unwrap_err();
    assert!(e.to_string().contains("handshake_timeout must be at least"), "{e}");
}

#[tokio::test]
async fn reactors_of_a_switch_that_fails_to_start_learn_it_never_will() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut b = builder(SwitchConfig::new(taken.local_addr().unwrap(), "net"));
    let mut ctx = b.add_reactor("r", &[ChannelDescriptor::new(0x20, 1)], 8).unwrap();
    let e = b.start().await.unwrap_err();
    assert!(matches!(e, BuildError::Listen { .. }), "{e}");
    assert!(std::error::Error::source(&e).is_some(), "the cause is kept");
    assert_eq!(ctx.switch.started().await, Err(ReactorError::Stopped));
    assert!(ctx.events.recv().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactors_see_peer_up_then_ordered_messages_then_peer_down_and_send_only_on_their_channels() {
    let chans = [ChannelDescriptor::new(0x30, 1).with_send_queue_capacity(256), ChannelDescriptor::new(0x31, 1)];
    let mut ba = builder(local());
    let mut a_main = ba.add_reactor("main", &chans[..1], 256).unwrap();
    let _a_other = ba.add_reactor("other", &chans[1..], 256).unwrap();
    let a = ba.start().await.unwrap();
    let mut bb = builder(local());
    let mut b_main = bb.add_reactor("main", &chans[..1], 1024).unwrap();
    let b = bb.start().await.unwrap();
    assert_eq!(b_main.switch.started().await, Ok(()));

    a.dial(address_of(&b), false).await.unwrap();
    let to_b = peer_up(&mut a_main).await;
    assert_eq!(to_b.id(), b.id());
    // Scoped sends: the other reactor's channel, and a channel b does not speak, are refused.
    assert_eq!(to_b.try_send(0x31, "x"), Err(PeerSendError::NotOurChannel(0x31)));
    assert!(matches!(to_b.reserve(0x31), Err(PeerSendError::NotOurChannel(0x31))));
    assert_eq!(to_b.send_capacity(0x30), Ok(256));
    let sent_at = Instant::now();
    for i in 0..200u32 {
        to_b.send(0x30, i.to_be_bytes().to_vec()).await.unwrap();
    }
    let from_a = peer_up(&mut b_main).await;
    assert_eq!(from_a.id(), a.id());
    assert_eq!(from_a.try_send(0x31, "x"), Err(PeerSendError::NotOurChannel(0x31)));
    for i in 0..200u32 {
        match next(&mut b_main).await {
            ReactorEvent::Message { peer, channel: 0x30, msg, received_at } if peer == a.id() => {
                assert_eq!(&msg[..], i.to_be_bytes());
                assert!(received_at >= sent_at && received_at <= Instant::now());
            }
            other => panic!("message {i}: {other:?}"),
        }
    }
    a.stop().await;
    match next(&mut b_main).await {
        ReactorEvent::PeerDown { peer, .. } => assert_eq!(peer, a.id()),
        other => panic!("{other:?}"),
    }
    assert!(!from_a.is_connected());
    let mut switch_events = b.subscribe(|_| true).unwrap();
    b.stop().await;
    // Once the switch has stopped, the reactor's event stream ends, and so does every event subscription.
    assert!(b_main.events.recv().await.is_none());
    while let Some(item) = switch_events.recv().await {
        assert!(matches!(item, EventItem::Event(_)));
    }
    // A stopped switch says so, the same way, to every request.
    assert!(matches!(b.subscribe(|_| true), Err(SwitchError::Stopped)));
    assert!(matches!(b.peers(), Err(SwitchError::Stopped)));
    assert!(matches!(b.broadcast(0x30, "x").await, Err(SwitchError::Stopped)));
    assert!(matches!(b.try_broadcast(0x30, "x"), Err(SwitchError::Stopped)));
    assert_eq!(b.dial(address_of(&a), false).await, Err(SwitchError::Stopped));
    assert_eq!(b.stop_peer_for_error(a.id(), "x").await, Err(SwitchError::Stopped));
    assert_eq!(b.disconnect(a.id()).await, Err(SwitchError::Stopped));
    assert_eq!(b.finish_peer(a.id(), "x").await, Err(SwitchError::Stopped));
    assert_eq!(b.ban(a.id(), Duration::from_secs(1), "x").await, Err(SwitchError::Stopped));
    assert_eq!(b.started().await, Err(SwitchError::Stopped));
    assert_eq!(b_main.switch.broadcast(0x30, "x").await.unwrap_err(), ReactorError::Stopped);
    assert_eq!(b_main.switch.stop_peer_for_error(a.id(), "x").await, Err(ReactorError::Stopped));
    b.stop().await; // idempotent
}

/// A reactor that never reads its inbox must not hold up another reactor's events in any way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reactor_that_stops_consuming_delays_none_of_another_reactors_events() {
    let stalled_channel = ChannelDescriptor::new(0x40, 1).with_recv_buffer_capacity(1 << 20);
    let live_channel = ChannelDescriptor::new(0x41, 1).with_send_queue_capacity(64);
    let mut ba = builder(local());
    // Registered first, with an inbox of one event: its first PeerUp fills it, and nothing ever reads it.
    let _stalled = ba.add_reactor("stalled", &[stalled_channel], 1).unwrap();
    let mut live = ba.add_reactor("live", &[live_channel], 64).unwrap();
    let a = ba.start().await.unwrap();

    for round in 0..3 {
        let mut bb = builder(local());
        let mut b_live = bb.add_reactor("live", &[live_channel], 64).unwrap();
        let _b_stalled_peer = bb.add_reactor("stalled", &[stalled_channel], 64).unwrap();
        let b = bb.start().await.unwrap();
        b.dial(address_of(&a), false).await.unwrap();
        // PeerUp, messages both ways, and PeerDown, while the stalled reactor holds its first PeerUp forever.
        let on_a = peer_up(&mut live).await;
        assert_eq!(on_a.id(), b.id(), "round {round}");
        let on_b = peer_up(&mut b_live).await;
        for i in 0..20u8 {
            on_b.try_send(0x41, vec![i]).unwrap();
            match next(&mut live).await {
                ReactorEvent::Message { msg, .. } => assert_eq!(&msg[..], [i]),
                other => panic!("round {round}: {other:?}"),
            }
        }
        on_a.try_send(0x41, "back").unwrap();
        assert!(matches!(next(&mut b_live).await, ReactorEvent::Message { msg, .. } if &msg[..] == b"back"));
        b.stop().await;
        match next(&mut live).await {
            ReactorEvent::PeerDown { peer, .. } => assert_eq!(peer, b.id(), "round {round}"),
            other => panic!("round {round}: {other:?}"),
        }
    }
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_broadcast_never_waits_and_reports_a_full_queue_per_peer() {
    let ch = ChannelDescriptor::new(0x50, 1).with_send_queue_capacity(1);
    let mut bh = builder(local());
    let hub_ctx = bh.add_reactor("r", &[ch], 64).unwrap();
    let hub = bh.start().await.unwrap();
    let mut spokes = Vec::new();
    for _ in 0..2 {
        let mut b = builder(local());
        let ctx = b.add_reactor("r", &[ch], 64).unwrap();
        let s = b.start().await.unwrap();
        hub.dial(address_of(&s), false).await.unwrap();
        spokes.push((s, ctx));
    }
    let mut connected = hub.subscribe(|e| matches!(e, SwitchEvent::PeerConnected { .. })).unwrap();
    while hub.peers().unwrap().len() < 2 {
        tokio::time::timeout(PATIENCE, connected.recv()).await.unwrap();
    }
    // Fill one peer's queue through a reservation that is never used.
    let handles: Vec<PeerHandle> = {
        let mut ctx = hub_ctx;
        let mut v = Vec::new();
        while v.len() < 2 {
            if let ReactorEvent::PeerUp(h) = next(&mut ctx).await {
                v.push(h);
            }
        }
        v
    };
    let held = handles[0].reserve(0x50).unwrap();
    assert_eq!(handles[0].send_capacity(0x50), Ok(0));
    let started = std::time::Instant::now();
    let report = hub.try_broadcast(0x50, "hello").unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    let full = handles[0].id();
    for (id, outcome) in &report.results {
        if *id == full {
            assert_eq!(*outcome, Err(BroadcastFailure::Send(SendError::QueueFull(0x50))));
        } else {
            assert_eq!(*outcome, Ok(()));
        }
    }
    assert_eq!(report.delivered(), 1);
    drop(held);
    hub.stop().await;
    for (s, _) in spokes {
        s.stop().await;
    }
}

/// At a full inbound limit, a peer we are connected to (outbound) dials us, and the tie-break keeps its dial. The
/// swap must leave us connected to it; before the fix, the old connection was closed first and the new one then
/// refused for the limit, and both were gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_swap_at_a_full_inbound_limit_keeps_the_peer() {
    // The hub must have the higher ID, so the peer's dial (inbound for the hub) wins the tie-break.
    let (hub_key, peer_key) = loop {
        let (x, y) = (Arc::new(NodeKey::generate()), Arc::new(NodeKey::generate()));
        if x.node_id(WireProfile::Tm2) > y.node_id(WireProfile::Tm2) {
            break (x, y);
        }
    };
    let mut c = local();
    c.max_inbound = 1;
    let mut bh = SwitchBuilder::new(hub_key, WireProfile::Tm2, c, None);
    let _hub_ctx = bh.add_reactor("r", &[ChannelDescriptor::new(0x60, 1)], 64).unwrap();
    let mut hub_events = bh.handle().subscribe(|_| true).unwrap();
    let hub = bh.start().await.unwrap();
    let start = |key: Arc<NodeKey>| {
        let mut b = SwitchBuilder::new(key, WireProfile::Tm2, local(), None);
        let ctx = b.add_reactor("r", &[ChannelDescriptor::new(0x60, 1)], 64).unwrap();
        (b, ctx)
    };
    // A filler takes the only inbound slot.
    let (fb, _filler_ctx) = start(Arc::new(NodeKey::generate()));
    let filler = fb.start().await.unwrap();
    filler.dial(address_of(&hub), false).await.unwrap();
    let (pb, _peer_ctx) = start(peer_key.clone());
    let peer = pb.start().await.unwrap();
    hub.dial(address_of(&peer), false).await.unwrap();
    let has = |hub: &Switch, id: NodeId| hub.peers().unwrap().iter().any(|p| p.info.id == id);
    while !(has(&hub, filler.id()) && has(&hub, peer.id())) {
        tokio::time::timeout(PATIENCE, hub_events.recv()).await.unwrap();
    }
    // The peer's key dials the hub from outside its switch (the switch itself does not dial a connected peer).
    let info =
        NodeInfo::ours(WireProfile::Tm2, peer.id(), "127.0.0.1:1".parse().unwrap(), "net", "p", vec![0x60], "v0");
    let dialer = Transport::new(peer_key, info, TransportConfig::default(), None);
    let hub_addr = NetAddress::new(hub.id(), hub.listen_addr().unwrap());
    let _new = dialer.dial(hub_addr).await.unwrap();
    // The swap is admitted: the peer's inbound connection is announced (before the fix: a rejection instead).
    while connected(&mut hub_events, peer.id()).await != ledgerwire_p2p::Direction::Inbound {}
    let peers = hub.peers().unwrap();
    let ids: Vec<_> = peers.iter().map(|p| p.info.id).collect();
    assert!(ids.contains(&peer.id()), "still connected to the peer: {ids:?}");
    assert!(ids.contains(&filler.id()), "the filler was not touched");
    for s in [&hub, &filler, &peer] {
        s.stop().await;
    }
}

/// Waits for the next `PeerConnected` (`connected`) or `PeerDisconnected` (not `connected`).
async fn until(events: &mut ledgerwire_p2p::EventStream, connected: bool) {
    loop {
        match tokio::time::timeout(PATIENCE, events.recv()).await.unwrap().unwrap() {
            EventItem::Event(SwitchEvent::PeerConnected { .. }) if connected => return,
            EventItem::Event(SwitchEvent::PeerDisconnected { .. }) if !connected => return,
            _ => {}
        }
    }
}

/// Waits for `id`'s next `PeerConnected` and returns its direction.
async fn connected(events: &mut ledgerwire_p2p::EventStream, id: NodeId) -> ledgerwire_p2p::Direction {
    loop {
        match tokio::time::timeout(PATIENCE, events.recv()).await.unwrap().unwrap() {
            EventItem::Event(SwitchEvent::PeerConnected { peer, direction, .. }) if peer == id => return direction,
            _ => {}
        }
    }
}

#[tokio::test(start_paused = true)]
async fn persistent_redials_follow_the_backoff_schedule_forever() {
    // Port 0 fails address validation at once, so every attempt fails at a precise virtual instant.
    let missing = NodeKey::generate().node_id(WireProfile::Tm2);
    let mut config = local();
    config.persistent_peers = vec![HostAddress::parse(&format!("{missing}@127.0.0.1:0"), WireProfile::Tm2).unwrap()];
    let mut b = builder(config);
    let _ctx = b.add_reactor("x", &[ChannelDescriptor::new(0x7e, 1)], 8).unwrap();
    let mut failures = b.handle().subscribe(|e| matches!(e, SwitchEvent::DialFailed { .. })).unwrap();
    let switch = b.start().await.unwrap();
    let mut times = Vec::new();
    for _ in 0..14 {
        match failures.recv().await.unwrap() {
            EventItem::Event(_) => times.push(Instant::now()),
            EventItem::Missed(n) => panic!("missed {n}"),
        }
    }
    let gaps: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    let want: [f64; 13] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 600.0, 600.0, 600.0];
    for (i, (got, want)) in gaps.iter().zip(want).enumerate() {
        let jitter = (want * 0.1).min(10.0);
        assert!((got - want).abs() <= jitter + 1e-3, "retry {i}: waited {got:.3} s, expected {want} ± {jitter}");
    }
    switch.stop().await;
}

/// A peer reconnects three times while a reactor is slow: the first connection's messages are still waiting for
/// the reactor, the second ends at once, the third stays. The reactor must hear the first connection's `PeerDown`
/// before the third's `PeerUp`, and nothing of the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reactor_hears_each_connections_down_before_the_next_ones_up() {
    let ch = ChannelDescriptor::new(0x60, 1).with_send_queue_capacity(64).with_recv_buffer_capacity(1 << 20);
    let mut bh = builder(local());
    // Inbox of one event, not read until the end.
    let mut slow = bh.add_reactor("slow", &[ch], 1).unwrap();
    let mut hub_events = bh.handle().subscribe(|_| true).unwrap();
    let hub = bh.start().await.unwrap();
    let key = Arc::new(NodeKey::generate());
    let peer_id = key.node_id(WireProfile::Tm2);
    let visit = |stay: bool| {
        let (key, hub_addr) = (key.clone(), address_of(&hub));
        async move {
            let mut b = SwitchBuilder::new(key, WireProfile::Tm2, local(), None);
            let ctx = b.add_reactor("slow", &[ch], 64).unwrap();
            let s = b.start().await.unwrap();
            s.dial(hub_addr, false).await.unwrap();
            (s, ctx, stay)
        }
    };
    // First connection: five messages the reactor has not taken yet.
    let (first, mut ctx, _) = visit(true).await;
    until(&mut hub_events, true).await;
    let to_hub = peer_up(&mut ctx).await;
    for i in 0..5u8 {
        to_hub.try_send(0x60, vec![i]).unwrap();
    }
    let deadline = Instant::now() + PATIENCE;
    while hub.peers().unwrap().first().is_none_or(|p| p.status.channels[0].messages_received < 5) {
        assert!(Instant::now() < deadline, "the messages did not arrive");
        tokio::task::yield_now().await;
    }
    first.stop().await;
    until(&mut hub_events, false).await;
    // Second connection: in and out at once.
    let (second, _ctx, _) = visit(false).await;
    until(&mut hub_events, true).await;
    second.stop().await;
    until(&mut hub_events, false).await;
    // Third connection: stays.
    let (third, _ctx, _) = visit(true).await;
    until(&mut hub_events, true).await;

    let mut seen = Vec::new();
    while seen.len() < 8 {
        seen.push(match next(&mut slow).await {
            ReactorEvent::PeerUp(h) => {
                assert_eq!(h.id(), peer_id);
                "up".to_owned()
            }
            ReactorEvent::Message { msg, .. } => format!("msg {}", msg[0]),
            ReactorEvent::PeerDown { .. } => "down".to_owned(),
        });
    }
    assert_eq!(seen, ["up", "msg 0", "msg 1", "msg 2", "msg 3", "msg 4", "down", "up"]);
    third.stop().await;
    hub.stop().await;
}
