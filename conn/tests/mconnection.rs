//! The multiplexed connection end to end over in-memory pipes, with tokio's clock paused so that pings, pongs, rate
//! limits and slow consumers run in simulated time. Mirrors TM2's connection_test.go and adds the contention,
//! slow-consumer and rate-limit cases.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ledgerwire_conn::mconnection::packet::{self, Packet, PacketLimits};
use ledgerwire_conn::mconnection::{
    ChannelDescriptor, ChannelReceiver, CloseReason, ConfigError, MConnection, MConnectionConfig, SendError,
};
use ledgerwire_conn::{SecretConnection, SecretReader, SecretWriter};
use ledgerwire_types::{NodeKey, WireProfile};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::time::{Instant, sleep};

async fn secret_pair(
    profile: WireProfile,
) -> (
    SecretConnection<ReadHalf<DuplexStream>, WriteHalf<DuplexStream>>,
    SecretConnection<ReadHalf<DuplexStream>, WriteHalf<DuplexStream>>,
) {
    let (x, y) = tokio::io::duplex(256 * 1024);
    let (ka, kb) = (NodeKey::generate(), NodeKey::generate());
    let t = Duration::from_secs(3600);
    tokio::try_join!(SecretConnection::handshake(x, &ka, profile, t), SecretConnection::handshake(y, &kb, profile, t))
        .unwrap()
}

struct Side {
    conn: MConnection,
    inbox: Vec<ChannelReceiver>,
}

async fn pair(
    profile: WireProfile,
    channels: &[ChannelDescriptor],
    a: MConnectionConfig,
    b: MConnectionConfig,
) -> (Side, Side) {
    let (x, y) = secret_pair(profile).await;
    let (conn, inbox) = MConnection::spawn(x, channels, a, None).unwrap();
    let sa = Side { conn, inbox };
    let (conn, inbox) = MConnection::spawn(y, channels, b, None).unwrap();
    (sa, Side { conn, inbox })
}

/// A peer that speaks raw packets over its own secret connection.
struct RawPeer {
    reader: SecretReader<ReadHalf<DuplexStream>>,
    writer: SecretWriter<WriteHalf<DuplexStream>>,
    limits: PacketLimits,
    buf: BytesMut,
    profile: WireProfile,
}

impl RawPeer {
    async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
        self.writer.flush().await.unwrap();
    }

    async fn send_packet(&mut self, p: Packet) {
        let bytes = packet::encode(self.profile, &p);
        self.send(&bytes).await;
    }

    /// The next packet, or `None` at end of stream.
    async fn recv(&mut self) -> Option<Packet> {
        loop {
            if let Some(p) = packet::decode(&self.limits, &mut self.buf).unwrap() {
                return Some(p);
            }
            let mut chunk = [0u8; 4096];
            let n = self.reader.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Answers pings until end of stream; returns how many it answered.
    async fn answer_pings(mut self) -> usize {
        let mut n = 0;
        while let Some(p) = self.recv().await {
            if p == Packet::Ping {
                let pong = packet::encode(self.profile, &Packet::Pong);
                if self.writer.write_all(&pong).await.is_err() || self.writer.flush().await.is_err() {
                    break;
                }
                n += 1;
            }
        }
        n
    }
}

async fn with_raw_peer(
    profile: WireProfile,
    channels: &[ChannelDescriptor],
    config: MConnectionConfig,
) -> (Side, RawPeer) {
    let (x, y) = secret_pair(profile).await;
    let (conn, inbox) = MConnection::spawn(x, channels, config, None).unwrap();
    let (reader, writer) = y.split();
    let raw = RawPeer { reader, writer, limits: PacketLimits::new(profile, 1024), buf: BytesMut::new(), profile };
    (Side { conn, inbox }, raw)
}

fn unlimited() -> MConnectionConfig {
    MConnectionConfig { send_rate: 0, recv_rate: 0, ..Default::default() }
}

fn big(id: u8, priority: u32) -> ChannelDescriptor {
    ChannelDescriptor::new(id, priority)
        .with_send_queue_capacity(4096)
        .with_recv_buffer_capacity(64 << 20)
        .with_recv_message_capacity(1 << 20)
}

fn payload(len: usize, seed: u8) -> Bytes {
    (0..len).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed)).collect::<Vec<u8>>().into()
}

#[tokio::test(start_paused = true)]
async fn messages_round_trip_in_order_per_channel_in_both_profiles() {
    for profile in WireProfile::ALL {
        let channels = [big(0x20, 1), big(0xf0, 3)];
        let (a, mut b) = pair(profile, &channels, unlimited(), unlimited()).await;
        let sizes = [0usize, 1, 100, 1023, 1024, 1025, 4096, 5000, 70_000];
        for (i, &len) in sizes.iter().enumerate() {
            a.conn.send(0x20, payload(len, i as u8)).await.unwrap();
            a.conn.try_send(0xf0, payload(len, 100 + i as u8)).unwrap();
        }
        for (i, &len) in sizes.iter().enumerate() {
            assert_eq!(b.inbox[0].recv().await.unwrap().data, payload(len, i as u8), "{profile} ch 0x20 #{i}");
            assert_eq!(b.inbox[1].recv().await.unwrap().data, payload(len, 100 + i as u8), "{profile} ch 0xf0 #{i}");
        }
        assert_eq!(a.conn.send(0x99, "x").await, Err(SendError::UnknownChannel(0x99)));
    }
}

#[tokio::test(start_paused = true)]
async fn graceful_close_delivers_everything_queued_then_the_peer_sees_the_close() {
    let channels = [big(0x01, 1)];
    let (a, mut b) = pair(WireProfile::Tm2, &channels, unlimited(), unlimited()).await;
    for i in 0..50u8 {
        a.conn.try_send(0x01, payload(3000, i)).unwrap();
    }
    assert_eq!(a.conn.close_gracefully().await, CloseReason::Local);
    for i in 0..50u8 {
        assert_eq!(b.inbox[0].recv().await.unwrap().data, payload(3000, i));
    }
    assert_eq!(b.conn.closed().await, CloseReason::PeerClosed);
    assert_eq!(b.inbox[0].recv().await, None, "the queue ends once the connection is gone");
    assert!(matches!(a.conn.try_send(0x01, "late"), Err(SendError::Closed(CloseReason::Local))));
}

#[tokio::test(start_paused = true)]
async fn closing_reports_a_reason_on_both_sides() {
    let (a, b) = pair(WireProfile::CometBft, &[big(1, 1)], unlimited(), unlimited()).await;
    assert_eq!(a.conn.close_reason(), None);
    a.conn.close();
    assert_eq!(a.conn.closed().await, CloseReason::Local);
    assert_eq!(b.conn.closed().await, CloseReason::PeerClosed);
    drop(b);
    // Dropping the handle closes the connection too.
    let (a, b) = pair(WireProfile::CometBft, &[big(1, 1)], unlimited(), unlimited()).await;
    drop(a);
    assert_eq!(b.conn.closed().await, CloseReason::PeerClosed);
}

#[tokio::test(start_paused = true)]
async fn try_send_refuses_a_full_queue_and_send_times_out() {
    // 1 byte/s: the send task sends one packet (the burst) and then waits for about 1000 s.
    let config =
        MConnectionConfig { send_rate: 1, recv_rate: 0, send_timeout: Duration::from_secs(10), ..Default::default() };
    let ch = ChannelDescriptor::new(0x01, 1); // send queue of 1
    let (a, _b) = pair(WireProfile::Tm2, &[ch], config, unlimited()).await;
    let msg = || payload(1000, 0);
    assert_eq!(a.conn.send_capacity(0x01), Ok(1));
    a.conn.try_send(0x01, msg()).unwrap();
    assert_eq!(a.conn.send_capacity(0x01), Ok(0));
    assert_eq!(a.conn.try_send(0x01, msg()), Err(SendError::QueueFull(0x01)));
    // The task sends the first message within the burst, takes the second and waits ~1000 s to pay for it.
    a.conn.send(0x01, msg()).await.unwrap();
    sleep(Duration::from_millis(1)).await;
    a.conn.send(0x01, msg()).await.unwrap();
    let started = Instant::now();
    assert_eq!(a.conn.send(0x01, msg()).await, Err(SendError::Timeout(0x01)));
    assert_eq!(started.elapsed(), Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn status_reports_queues_counters_and_rates() {
    let channels = [big(0x10, 2), big(0x11, 1)];
    let (a, mut b) = pair(WireProfile::Tm2, &channels, unlimited(), unlimited()).await;
    let t0 = Instant::now();
    for _ in 0..10 {
        a.conn.send(0x10, payload(2000, 1)).await.unwrap();
    }
    for _ in 0..10 {
        b.inbox[0].recv().await.unwrap();
    }
    sleep(Duration::from_secs(5)).await;
    let sa = a.conn.status();
    let sb = b.conn.status();
    assert_eq!(sa.duration, t0.elapsed());
    assert_eq!((sa.channels[0].messages_sent, sa.channels[0].bytes_sent), (10, 20_000));
    assert_eq!((sb.channels[0].messages_received, sb.channels[0].bytes_received), (10, 20_000));
    assert_eq!(sa.channels[1].messages_sent, 0);
    assert!(sa.bytes_sent > 20_000 && sb.bytes_received == sa.bytes_sent, "{} {}", sa.bytes_sent, sb.bytes_received);
    assert!(
        sa.channels[0].recently_sent > 0 && sa.channels[0].recently_sent < 20_500,
        "decayed: {}",
        sa.channels[0].recently_sent
    );
    assert!(sa.send_rate > 0 && sb.recv_rate > 0);
    // A message nobody has taken yet shows in the receive queue.
    a.conn.send(0x11, payload(100, 0)).await.unwrap();
    sleep(Duration::from_millis(200)).await;
    let ch = &b.conn.status().channels[1];
    assert_eq!((ch.recv_queue_len, ch.recv_queue_bytes), (1, 164));
    b.inbox[1].recv().await.unwrap();
    assert_eq!(b.conn.status().channels[1].recv_queue_len, 0);
}

#[tokio::test(start_paused = true)]
async fn a_missing_pong_closes_the_connection_at_the_pong_timeout() {
    for profile in WireProfile::ALL {
        let (a, mut raw) = with_raw_peer(profile, &[big(1, 1)], unlimited()).await;
        let started = Instant::now();
        // The raw peer reads our ping and stays silent.
        assert_eq!(raw.recv().await, Some(Packet::Ping));
        assert_eq!(started.elapsed(), Duration::from_secs(60));
        assert_eq!(a.conn.closed().await, CloseReason::PongTimeout);
        assert_eq!(started.elapsed(), Duration::from_secs(105));
    }
}

#[tokio::test(start_paused = true)]
async fn unsolicited_pongs_are_tolerated_and_answered_pings_keep_it_alive() {
    for profile in WireProfile::ALL {
        let (a, mut raw) = with_raw_peer(profile, &[big(1, 1)], unlimited()).await;
        for _ in 0..3 {
            raw.send_packet(Packet::Pong).await;
        }
        let peer = tokio::spawn(raw.answer_pings());
        sleep(Duration::from_secs(3630)).await;
        assert_eq!(a.conn.close_reason(), None, "{profile}");
        a.conn.close();
        assert_eq!(peer.await.unwrap(), 60, "one ping a minute, each answered");
    }
}

#[tokio::test(start_paused = true)]
async fn a_pong_timeout_shorter_than_the_stats_period_is_met_by_prompt_pongs() {
    // Regression: a pong must clear the deadline at once, not at the next 2 s statistics tick.
    let config = MConnectionConfig {
        ping_interval: Duration::from_secs(5),
        pong_timeout: Duration::from_millis(500),
        ..unlimited()
    };
    let (a, b) = pair(WireProfile::CometBft, &[big(1, 1)], config, config).await;
    sleep(Duration::from_secs(600)).await;
    assert_eq!((a.conn.close_reason(), b.conn.close_reason()), (None, None));
}

#[tokio::test(start_paused = true)]
async fn every_ping_is_answered_with_a_pong() {
    for profile in WireProfile::ALL {
        let (a, mut raw) = with_raw_peer(profile, &[big(1, 1)], unlimited()).await;
        for _ in 0..3 {
            raw.send_packet(Packet::Ping).await;
            assert_eq!(raw.recv().await, Some(Packet::Pong));
        }
        assert_eq!(a.conn.close_reason(), None);
    }
}

#[tokio::test(start_paused = true)]
async fn a_ping_flood_costs_at_most_ten_pongs_a_second() {
    for profile in WireProfile::ALL {
        let (a, mut raw) = with_raw_peer(profile, &[big(1, 1)], unlimited()).await;
        let started = Instant::now();
        // 5000 pings, each in its own flushed frame, as fast as the pipe takes them.
        for _ in 0..5000 {
            raw.send_packet(Packet::Ping).await;
        }
        let mut pongs = 0;
        while let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(500), raw.recv()).await {
            assert_eq!(p, Packet::Pong);
            pongs += 1;
        }
        let secs = started.elapsed().as_secs_f64();
        assert!(pongs >= 1 && pongs as f64 <= secs * 10.0 + 1.0, "{profile}: {pongs} pongs in {secs:.2} s");
        assert_eq!(a.conn.close_reason(), None, "a ping flood is absorbed, not fatal");
    }
}

#[tokio::test(start_paused = true)]
async fn two_idle_nodes_stay_connected_through_hours_of_pings() {
    let (a, b) = pair(WireProfile::CometBft, &[big(1, 1)], unlimited(), unlimited()).await;
    sleep(Duration::from_secs(3 * 3600 + 30)).await;
    assert_eq!((a.conn.close_reason(), b.conn.close_reason()), (None, None));
    // 180 pings and 180 pongs of 3 bytes each way.
    assert_eq!(a.conn.status().bytes_sent, 180 * 3 * 2);
}

/// Bad input from the peer closes the connection with a reason the caller can read.
async fn closed_by(profile: WireProfile, bytes: Vec<u8>) -> CloseReason {
    let channels = [ChannelDescriptor::new(0x20, 1).with_recv_message_capacity(2000)];
    let (a, mut raw) = with_raw_peer(profile, &channels, unlimited()).await;
    raw.send(&bytes).await;
    let reason = a.conn.closed().await;
    // And the peer sees the close.
    assert_eq!(raw.recv().await, None);
    reason
}

#[tokio::test(start_paused = true)]
async fn read_errors_close_the_connection_with_typed_reasons() {
    for profile in WireProfile::ALL {
        let msg = |ch, eof, len| packet::encode(profile, &Packet::Msg { channel: ch, eof, data: payload(len, 0) });
        // Unknown channel.
        assert_eq!(closed_by(profile, msg(0x21, true, 10)).await, CloseReason::UnknownChannel(0x21));
        // A message longer than recv_message_capacity (2000), across two packets.
        let too_long = [msg(0x20, false, 1024), msg(0x20, true, 1000)].concat();
        assert_eq!(closed_by(profile, too_long).await, CloseReason::MessageTooLarge { channel: 0x20, max: 2000 });
        // Bad encoding.
        assert!(matches!(closed_by(profile, vec![3, 0xff, 0xff, 0xff]).await, CloseReason::Packet(_)));
        // An oversized packet is refused from its length prefix.
        assert!(matches!(
            closed_by(profile, vec![0xff, 0x7f]).await,
            CloseReason::Packet(packet::PacketError::TooLarge { .. })
        ));
    }
    // Unknown packet types.
    let hello = [&[0x0c, 0x0a, 0x0a][..], b"/p2p.Hello"].concat();
    assert!(matches!(
        closed_by(WireProfile::Tm2, hello).await,
        CloseReason::Packet(packet::PacketError::UnknownType(_))
    ));
    // cometbft: field 4 of Packet is not in the oneof.
    assert!(matches!(
        closed_by(WireProfile::CometBft, vec![2, 0x22, 0x00]).await,
        CloseReason::Packet(packet::PacketError::UnknownType(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn bandwidth_is_shared_by_priority_under_contention() {
    // The link is the bottleneck (1 MB/s); both channels always have data queued.
    let config = MConnectionConfig { send_rate: 1_000_000, recv_rate: 0, ..Default::default() };
    let channels = [big(0x01, 1), big(0x05, 5)];
    let (a, mut b) = pair(WireProfile::Tm2, &channels, config, unlimited()).await;
    for _ in 0..3000 {
        a.conn.try_send(0x01, payload(1000, 1)).unwrap();
        a.conn.try_send(0x05, payload(1000, 5)).unwrap();
    }
    let drain = |mut rx: ChannelReceiver| tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let _d5 = drain(b.inbox.pop().unwrap());
    let _d1 = drain(b.inbox.pop().unwrap());
    sleep(Duration::from_secs(3)).await;
    let s = b.conn.status();
    let (low, high) = (s.channels[0].bytes_received as f64, s.channels[1].bytes_received as f64);
    let ratio = high / low;
    assert!((4.5..=5.5).contains(&ratio), "priority 5 : priority 1 = {ratio:.2} ({high} / {low})");
    assert!(high + low > 2_500_000.0, "the link stayed busy: {}", high + low);
}

#[tokio::test(start_paused = true)]
async fn a_slow_consumer_delays_neither_other_channels_nor_pongs() {
    let channels = [big(0x01, 1), big(0x02, 1)];
    let (a, mut b) = pair(WireProfile::CometBft, &channels, unlimited(), unlimited()).await;
    let mut fast = b.inbox.pop().unwrap();
    let mut slow = b.inbox.pop().unwrap();
    // The slow consumer takes a second per message.
    let slow_task = tokio::spawn(async move {
        let mut n = 0;
        while slow.recv().await.is_some() {
            sleep(Duration::from_secs(1)).await;
            n += 1;
        }
        n
    });
    for i in 0..300u32 {
        a.conn.send(0x01, payload(500, i as u8)).await.unwrap();
    }
    // While 300 s of slow work is queued, the other channel is delivered within the flush throttle.
    for i in 0..20u8 {
        let sent = Instant::now();
        a.conn.send(0x02, payload(100, i)).await.unwrap();
        assert_eq!(fast.recv().await.unwrap().data, payload(100, i));
        assert!(sent.elapsed() <= Duration::from_millis(100), "{:?}", sent.elapsed());
        sleep(Duration::from_secs(10)).await;
    }
    let depth = b.conn.status().channels[0].recv_queue_len;
    assert!(depth > 50, "the slow channel's own queue holds the backlog: {depth}");
    // Five minutes with pings both ways: nobody timed out.
    sleep(Duration::from_secs(300)).await;
    assert_eq!((a.conn.close_reason(), b.conn.close_reason()), (None, None));
    a.conn.close();
    assert_eq!(slow_task.await.unwrap(), 300, "every slow message was delivered");
}

#[tokio::test(start_paused = true)]
async fn low_latency_channels_skip_the_flush_throttle_and_bulk_channels_wait_for_it() {
    let channels = [big(0x01, 1), big(0x02, 1).with_low_latency()];
    let (a, mut b) =
        pair(WireProfile::Tm2, &channels, MConnectionConfig::default(), MConnectionConfig::default()).await;
    let sent = Instant::now();
    a.conn.send(0x02, "urgent").await.unwrap();
    b.inbox[1].recv().await.unwrap();
    assert_eq!(sent.elapsed(), Duration::ZERO, "flushed at once");
    let sent = Instant::now();
    a.conn.send(0x01, "bulk").await.unwrap();
    b.inbox[0].recv().await.unwrap();
    assert_eq!(sent.elapsed(), Duration::from_millis(100), "waited for the 100 ms throttle");
}

#[tokio::test(start_paused = true)]
async fn a_consumer_that_stops_closes_the_connection_once_its_queue_is_full() {
    let channels =
        [ChannelDescriptor::new(0x01, 1).with_send_queue_capacity(100).with_recv_buffer_capacity(10_000), big(0x02, 1)];
    let (a, b) = pair(WireProfile::Tm2, &channels, unlimited(), unlimited()).await;
    // Nobody reads channel 0x01 on b: 1064 bytes per message, so the tenth still fits and the eleventh does not.
    for _ in 0..11 {
        a.conn.send(0x01, payload(1000, 0)).await.unwrap();
    }
    assert_eq!(b.conn.closed().await, CloseReason::RecvQueueFull(0x01));
    assert_eq!(b.conn.status().channels[0].recv_queue_len, 9);
    assert!(matches!(a.conn.closed().await, CloseReason::PeerClosed | CloseReason::Secret(_)));
}

#[tokio::test(start_paused = true)]
async fn send_and_receive_rates_are_limited() {
    for (send, recv) in [(100_000u64, 0u64), (0, 100_000)] {
        let cfg_a = MConnectionConfig { send_rate: send, recv_rate: 0, ..Default::default() };
        let cfg_b = MConnectionConfig { send_rate: 0, recv_rate: recv, ..Default::default() };
        let (a, mut b) = pair(WireProfile::Tm2, &[big(1, 1)], cfg_a, cfg_b).await;
        let started = Instant::now();
        for i in 0..100u8 {
            a.conn.send(1, payload(10_000, i)).await.unwrap();
        }
        for i in 0..100u8 {
            assert_eq!(b.inbox[0].recv().await.unwrap().data, payload(10_000, i));
        }
        // About 1 MB at 100 kB/s (plus framing, minus the first burst).
        let secs = started.elapsed().as_secs_f64();
        assert!((9.0..12.0).contains(&secs), "send {send} recv {recv}: {secs:.2} s");
    }
}

#[tokio::test(start_paused = true)]
async fn cometbft_packets_on_high_channels_stay_within_the_go_reader_limit() {
    let channels = [big(0xf0, 1)];
    let (a, mut raw) = with_raw_peer(WireProfile::CometBft, &channels, unlimited()).await;
    a.conn.send(0xf0, payload(5000, 7)).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 5000 {
        match raw.recv().await.unwrap() {
            Packet::Msg { channel: 0xf0, data, .. } => {
                let body = packet::msg_packet_len(WireProfile::CometBft, 0xf0, true, data.len()) - 2;
                assert!(body <= 1034, "a packet body of {body} bytes would be refused by CometBFT");
                got.extend_from_slice(&data);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(Bytes::from(got), payload(5000, 7));
}

#[tokio::test]
async fn bad_channel_sets_and_settings_are_refused_when_the_connection_is_built() {
    let cases: [(Vec<ChannelDescriptor>, MConnectionConfig, &str); 4] = [
        (vec![ChannelDescriptor::new(1, 0)], unlimited(), "priority"),
        (vec![ChannelDescriptor::new(1, 1), ChannelDescriptor::new(1, 2)], unlimited(), "declared twice"),
        (vec![ChannelDescriptor::new(1, 1).with_send_queue_capacity(0)], unlimited(), "send_queue_capacity"),
        (
            vec![ChannelDescriptor::new(1, 1)],
            MConnectionConfig { pong_timeout: Duration::from_secs(90), ..unlimited() },
            "pong_timeout",
        ),
    ];
    for (channels, config, needle) in cases {
        let (x, _y) = secret_pair(WireProfile::Tm2).await;
        let err: ConfigError = MConnection::spawn(x, &channels, config, None).unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_reserved_slot_guarantees_a_later_send_and_dropping_it_gives_the_slot_back() {
    // 1 byte/s: after the first burst nothing leaves the queue, so the slots are exactly what we reserve.
    let config = MConnectionConfig { send_rate: 1, recv_rate: 0, ..Default::default() };
    let ch = ChannelDescriptor::new(0x01, 1).with_send_queue_capacity(2);
    let (a, _b) = pair(WireProfile::Tm2, &[ch], config, unlimited()).await;
    // The first message goes out in the burst; the task takes the second and waits ~1000 s to pay for it.
    for i in 0..2 {
        a.conn.try_send(0x01, payload(1000, i)).unwrap();
        sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(a.conn.send_capacity(0x01), Ok(2));
    let first = a.conn.reserve(0x01).unwrap();
    let second = a.conn.reserve(0x01).unwrap();
    assert_eq!(a.conn.send_capacity(0x01), Ok(0));
    assert_eq!(a.conn.reserve(0x01).unwrap_err(), SendError::QueueFull(0x01));
    assert_eq!(a.conn.try_send(0x01, "no room"), Err(SendError::QueueFull(0x01)), "reserved slots are taken");
    drop(second);
    assert_eq!(a.conn.send_capacity(0x01), Ok(1), "an unused permit gives its slot back");
    assert_eq!(first.channel(), 0x01);
    first.send("the reply").unwrap();
    assert_eq!(a.conn.send_capacity(0x01), Ok(1), "the reply sits in the slot its permit held");
    a.conn.try_send(0x01, "fits").unwrap();
    assert_eq!(a.conn.send_capacity(0x01), Ok(0));
    assert_eq!(a.conn.reserve(0x99).unwrap_err(), SendError::UnknownChannel(0x99));
    // A permit whose connection closed meanwhile reports it.
    let (a, _b) = pair(WireProfile::Tm2, &[ch], config, unlimited()).await;
    let permit = a.conn.reserve(0x01).unwrap();
    a.conn.close();
    assert_eq!(permit.send("too late"), Err(SendError::Closed(CloseReason::Local)));
    assert_eq!(a.conn.send_capacity(0x01), Ok(0), "a closing connection has no room");
}

#[tokio::test(start_paused = true)]
async fn a_send_waits_for_room_until_its_own_deadline() {
    let config =
        MConnectionConfig { send_rate: 1, recv_rate: 0, send_timeout: Duration::from_secs(10), ..Default::default() };
    let (a, _b) = pair(WireProfile::CometBft, &[ChannelDescriptor::new(0x01, 1)], config, unlimited()).await;
    // The first message goes out in the burst, the task holds the second for ~1000 s, the third fills the queue.
    for i in 0..3 {
        a.conn.try_send(0x01, payload(1000, i)).unwrap();
        sleep(Duration::from_millis(1)).await;
    }
    let started = Instant::now();
    let deadline = started + Duration::from_millis(1500);
    assert_eq!(a.conn.send_before(0x01, "x", deadline).await, Err(SendError::Timeout(0x01)));
    assert_eq!(started.elapsed(), Duration::from_millis(1500), "the caller's deadline, not the 10 s send timeout");
    assert_eq!(
        a.conn.send_before(0x01, "x", started).await,
        Err(SendError::Timeout(0x01)),
        "a past deadline fails at once"
    );
}

#[tokio::test(start_paused = true)]
async fn a_message_carries_the_instant_it_was_read_however_long_it_waits() {
    let (a, mut b) = pair(WireProfile::Tm2, &[big(0x01, 1).with_low_latency()], unlimited(), unlimited()).await;
    let sent = Instant::now();
    a.conn.send(0x01, "early").await.unwrap();
    sleep(Duration::from_secs(30)).await; // the consumer is busy elsewhere
    let msg = b.inbox[0].recv().await.unwrap();
    assert_eq!(&msg.data[..], b"early");
    assert_eq!(msg.received_at, sent, "read the moment it arrived, not when it was taken 30 s later");
}

#[tokio::test(start_paused = true)]
async fn a_graceful_close_waits_for_reserved_replies_and_sends_them() {
    let (a, mut b) = pair(WireProfile::Tm2, &[big(0x01, 1)], unlimited(), unlimited()).await;
    let reply = a.conn.reserve(0x01).unwrap();
    let unused = a.conn.reserve(0x01).unwrap();
    let closing = tokio::spawn(async move {
        let reason = a.conn.close_gracefully().await;
        (a, reason)
    });
    sleep(Duration::from_secs(5)).await;
    assert!(!closing.is_finished(), "the close waits for the reservations");
    reply.send("answer to an accepted request").unwrap();
    sleep(Duration::from_secs(5)).await;
    assert!(!closing.is_finished(), "one reservation is still held");
    drop(unused);
    let (a, reason) = closing.await.unwrap();
    assert_eq!(reason, CloseReason::Local);
    assert_eq!(&b.inbox[0].recv().await.unwrap().data[..], b"answer to an accepted request");
    assert!(matches!(a.conn.try_send(0x01, "new work"), Err(SendError::Closed(_))), "no new messages once closing");
}
