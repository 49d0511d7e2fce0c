//! Our cometbft-profile MConnection against a peer built from the crates.io `tendermint-p2p` (secret connection) and
//! `tendermint-proto` (packets): pings and pongs cross both ways, and multi-packet messages on two channels cross in
//! both directions. The peer runs on blocking threads, as tendermint-p2p requires.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use bytes::Bytes;
use ledgerwire_conn::SecretConnection;
use ledgerwire_conn::mconnection::{ChannelDescriptor, MConnection, MConnectionConfig};
use ledgerwire_types::{NodeKey, WireProfile};
use prost::Message;
use tendermint_p2p::secret_connection::{SecretConnection as TmSecretConnection, Version};
use tendermint_proto::v0_38::p2p::{Packet, PacketMsg, PacketPing, PacketPong, packet::Sum};

const LIMIT: Duration = Duration::from_secs(30);

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect()
}

enum Event {
    Ping,
    Pong,
    Msg(u8, Vec<u8>),
}

fn encode(sum: Sum) -> Vec<u8> {
    Packet { sum: Some(sum) }.encode_length_delimited_to_vec()
}

/// Reads packets, reassembles messages per channel, and reports events to the writer thread.
fn tm_reader(mut rx: impl Read, events: std_mpsc::Sender<Event>) {
    let mut buf = Vec::new();
    let mut recving: HashMap<u8, Vec<u8>> = HashMap::new();
    let mut frame = [0u8; 1024]; // tendermint-p2p needs whole-frame reads
    loop {
        let Ok(n) = rx.read(&mut frame) else { return };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&frame[..n]);
        loop {
            let mut peek = &buf[..];
            let Ok(len) = prost::decode_length_delimiter(&mut peek) else { break };
            let prefix = buf.len() - peek.len();
            if peek.len() < len {
                break;
            }
            let packet = Packet::decode(&peek[..len]).unwrap();
            buf.drain(..prefix + len);
            let event = match packet.sum.unwrap() {
                Sum::PacketPing(_) => Event::Ping,
                Sum::PacketPong(_) => Event::Pong,
                Sum::PacketMsg(m) => {
                    assert!(len <= 1034, "a Go peer would refuse this {len}-byte packet");
                    let ch = u8::try_from(m.channel_id).unwrap();
                    let part = recving.entry(ch).or_default();
                    part.extend_from_slice(&m.data);
                    if !m.eof {
                        continue;
                    }
                    Event::Msg(ch, std::mem::take(part))
                }
            };
            if events.send(event).is_err() {
                return;
            }
        }
    }
}

/// The tendermint-rs side: ping us, send two multi-packet messages (interleaved packet by packet), answer our pings,
/// and report once it has our two messages, a pong for its ping and our second ping.
fn tendermint_peer(stream: std::net::TcpStream, seed: [u8; 32], expect: [(u8, Vec<u8>); 2]) -> Result<(), String> {
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    let conn = TmSecretConnection::new(stream, ed25519_consensus::SigningKey::from(seed), Version::V0_34).unwrap();
    let (mut tx, rx) = conn.split().unwrap();
    let (events_tx, events) = std_mpsc::channel();
    let reader = std::thread::spawn(move || tm_reader(rx, events_tx));

    tx.write_all(&encode(Sum::PacketPing(PacketPing {}))).unwrap();
    let (m20, m30) = (payload(3000, 1), payload(2500, 2));
    let chunks = |ch: u8, m: &Vec<u8>| -> Vec<Vec<u8>> {
        let parts: Vec<&[u8]> = m.chunks(1024).collect();
        let last = parts.len() - 1;
        parts
            .iter()
            .enumerate()
            .map(|(i, d)| encode(Sum::PacketMsg(PacketMsg { channel_id: ch.into(), eof: i == last, data: d.to_vec() })))
            .collect()
    };
    let (c20, c30) = (chunks(0x20, &m20), chunks(0x30, &m30));
    for i in 0..c20.len().max(c30.len()) {
        for c in [&c20, &c30] {
            if let Some(p) = c.get(i) {
                tx.write_all(p).unwrap();
            }
        }
    }
    tx.flush().unwrap();

    let (mut got, mut pongs, mut pings) = (Vec::new(), 0, 0);
    while got.len() < 2 || pongs < 1 || pings < 2 {
        match events
            .recv_timeout(LIMIT)
            .map_err(|e| format!("waiting: {e} (msgs {}, pongs {pongs}, pings {pings})", got.len()))?
        {
            Event::Ping => {
                pings += 1;
                tx.write_all(&encode(Sum::PacketPong(PacketPong {}))).unwrap();
            }
            Event::Pong => pongs += 1,
            Event::Msg(ch, data) => got.push((ch, data)),
        }
    }
    got.sort();
    if got != expect {
        return Err("messages from ledgerwire were corrupted".into());
    }
    // Tell the Rust side everything checked out, then wait for it to hang up.
    let done = encode(Sum::PacketMsg(PacketMsg { channel_id: 0x30, eof: true, data: b"done".to_vec() }));
    tx.write_all(&done).unwrap();
    reader.join().unwrap();
    Ok(())
}

async fn run(we_dial: bool) {
    let key = NodeKey::generate();
    let tm_seed = [0x44; 32];
    let tm_id = NodeKey::from_seed(&tm_seed).node_id(WireProfile::CometBft);
    let expect = [(0x20u8, payload(4000, 3)), (0x30u8, payload(1500, 4))];
    let expect_for_tm = expect.clone();

    let (socket, tm) = if we_dial {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let tm = std::thread::spawn(move || tendermint_peer(listener.accept().unwrap().0, tm_seed, expect_for_tm));
        (tokio::net::TcpStream::connect(addr).await.unwrap(), tm)
    } else {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tm = std::thread::spawn(move || {
            tendermint_peer(std::net::TcpStream::connect(addr).unwrap(), tm_seed, expect_for_tm)
        });
        (listener.accept().await.unwrap().0, tm)
    };
    socket.set_nodelay(true).unwrap();
    let secret = SecretConnection::handshake(socket, &key, WireProfile::CometBft, LIMIT).await.unwrap();
    assert_eq!(secret.remote_id(), tm_id);
    // We ping every second; a missed pong would close the connection before the second ping.
    let config = MConnectionConfig {
        ping_interval: Duration::from_secs(1),
        pong_timeout: Duration::from_millis(900),
        flush_throttle: Duration::from_millis(10),
        ..Default::default()
    };
    let channels = [ChannelDescriptor::new(0x20, 5).with_send_queue_capacity(4), ChannelDescriptor::new(0x30, 1)];
    let (conn, mut inbox) = MConnection::spawn(secret, &channels, config, None).unwrap();
    for (ch, data) in &expect {
        conn.send(*ch, data.clone()).await.unwrap();
    }
    let from_tm = tokio::time::timeout(LIMIT, async {
        let a = inbox[0].recv().await.unwrap().data;
        let b = inbox[1].recv().await.unwrap().data;
        let done = match inbox[1].recv().await {
            Some(d) => d.data,
            None => panic!("closed: {:?}", conn.closed().await),
        };
        (a, b, done)
    })
    .await
    .expect("messages from tendermint-rs");
    assert_eq!(from_tm.0, Bytes::from(payload(3000, 1)));
    assert_eq!(from_tm.1, Bytes::from(payload(2500, 2)));
    assert_eq!(from_tm.2, Bytes::from_static(b"done"));
    assert_eq!(conn.close_reason(), None);
    conn.close();
    conn.closed().await;
    let result = tokio::task::spawn_blocking(move || tm.join().unwrap()).await.unwrap();
    result.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tendermint_rs_peer_exchanges_pings_pongs_and_multi_packet_messages_when_we_dial() {
    run(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tendermint_rs_peer_exchanges_pings_pongs_and_multi_packet_messages_when_it_dials() {
    run(false).await;
}
