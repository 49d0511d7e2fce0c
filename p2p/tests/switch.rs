//! The switch alone: the reactor API's guarantees and the redial schedule in paused time.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use ledgerwire_p2p::{
    ChannelDescriptor, EventItem, MConnectionConfig, PeerSendError, ReactorEvent, SwitchBuilder, SwitchConfig,
    SwitchError, SwitchEvent,
};
use ledgerwire_types::{HostAddress, NodeKey, WireProfile};
use tokio::time::Instant;

fn log() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

fn builder(config: SwitchConfig) -> SwitchBuilder {
    SwitchBuilder::new(Arc::new(NodeKey::generate()), WireProfile::Tm2, config, log())
}

fn local() -> SwitchConfig {
    let mut c = SwitchConfig::new(([127, 0, 0, 1], 0).into(), "net");
    c.connection = MConnectionConfig { flush_throttle: Duration::ZERO, ..Default::default() };
    c
}

#[tokio::test]
async fn a_channel_claimed_twice_or_too_many_channels_is_an_error_when_building() {
    let mut b = builder(local());
    b.add_reactor("first", &[ChannelDescriptor::new(0x20, 1)], 8).unwrap();
    let e =
        b.add_reactor("second", &[ChannelDescriptor::new(0x21, 1), ChannelDescriptor::new(0x20, 1)], 8).unwrap_err();
    assert_eq!(e, SwitchError::ChannelTaken { channel: 0x20, first: "first".into(), second: "second".into() });
    // The refused registration left nothing behind: 0x21 is still free.
    b.add_reactor("third", &[ChannelDescriptor::new(0x21, 1)], 8).unwrap();

    let mut many = builder(local());
    let chans: Vec<_> = (0..17).map(|i| ChannelDescriptor::new(i, 1)).collect();
    let _ctx = many.add_reactor("greedy", &chans, 8).unwrap();
    assert_eq!(many.start().await.unwrap_err(), SwitchError::TooManyChannels(17));
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

    let addr = HostAddress::parse(&format!("{}@{}", b.id(), b.listen_addr().unwrap()), WireProfile::Tm2).unwrap();
    a.dial(addr, false).await.unwrap();
    let Some(ReactorEvent::PeerUp(to_b)) = a_main.events.recv().await else { panic!("PeerUp first") };
    assert_eq!(to_b.id(), b.id());
    // Scoped sends: the other reactor's channel, and a channel b does not speak, are refused.
    assert_eq!(to_b.try_send(0x31, "x"), Err(PeerSendError::NotOurChannel(0x31)));
    for i in 0..200u32 {
        to_b.send(0x30, i.to_be_bytes().to_vec()).await.unwrap();
    }
    let Some(ReactorEvent::PeerUp(from_a)) = b_main.events.recv().await else { panic!("PeerUp first") };
    assert_eq!(from_a.id(), a.id());
    assert_eq!(from_a.try_send(0x31, "x"), Err(PeerSendError::NotOurChannel(0x31)));
    for i in 0..200u32 {
        match b_main.events.recv().await.unwrap() {
            ReactorEvent::Message { peer, channel: 0x30, msg } if peer == a.id() => {
                assert_eq!(&msg[..], i.to_be_bytes())
            }
            other => panic!("message {i}: {other:?}"),
        }
    }
    a.stop().await;
    match b_main.events.recv().await.unwrap() {
        ReactorEvent::PeerDown { peer, .. } => assert_eq!(peer, a.id()),
        other => panic!("{other:?}"),
    }
    assert!(!from_a.is_connected());
    let mut switch_events = b.subscribe(|_| true);
    b.stop().await;
    // Once the switch has stopped, the reactor's event stream ends, and so does every event subscription.
    assert!(b_main.events.recv().await.is_none());
    while let Some(item) = switch_events.recv().await {
        assert!(matches!(item, EventItem::Event(_)));
    }
    assert!(b.subscribe(|_| true).recv().await.is_none(), "subscribing to a stopped switch yields nothing");
}

#[tokio::test(start_paused = true)]
async fn persistent_redials_follow_the_backoff_schedule_forever() {
    // Port 0 fails address validation at once, so every attempt fails at a precise virtual instant.
    let missing = NodeKey::generate().node_id(WireProfile::Tm2);
    let mut config = local();
    config.persistent_peers = vec![HostAddress::parse(&format!("{missing}@127.0.0.1:0"), WireProfile::Tm2).unwrap()];
    let mut b = builder(config);
    let _ctx = b.add_reactor("x", &[ChannelDescriptor::new(0x7e, 1)], 8).unwrap();
    let mut failures = b.handle().subscribe(|e| matches!(e, SwitchEvent::DialFailed { .. }));
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
