//! Switch benchmark, printed as one JSON document.
//!
//! ```text
//! cargo bench -p ledgerwire-p2p --bench switch            # ~20 s
//! cargo bench -p ledgerwire-p2p --bench switch -- --quick
//! ```
//!
//! - **Connection setup**: distinct clients dial one switch with 8 dials in flight; a connection counts once the
//!   switch has added the peer (its `PeerConnected` event). Next to it, measured in the same run: bare TCP
//!   connect+accept, and the secret connection handshake alone, at the same concurrency.
//! - **Full mesh**: 10 switches started at once, each configured with the other 9 as persistent peers; the time
//!   until every switch has 9 peers.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledgerwire_conn::SecretConnection;
use ledgerwire_p2p::node_info::NodeInfo;
use ledgerwire_p2p::{
    ChannelDescriptor, EventItem, MConnectionConfig, SwitchBuilder, SwitchConfig, SwitchEvent, Transport,
    TransportConfig,
};
use ledgerwire_types::{HostAddress, NetAddress, NodeKey, WireProfile};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

const CONCURRENCY: usize = 8;

fn config(listen: SocketAddr) -> SwitchConfig {
    let mut c = SwitchConfig::new(listen, "bench");
    c.max_inbound = 100_000;
    c.transport.max_pending_inbound = 256;
    c.transport.max_pending_inbound_per_ip = 256;
    c.transport.max_pending_inbound_per_subnet = 256;
    c.connection = MConnectionConfig { flush_throttle: Duration::ZERO, ..Default::default() };
    c
}

const CH: u8 = 0x7e;

/// Connections per second from TCP connect until the switch added the peer.
async fn switch_setup_rate(profile: WireProfile, n: usize) -> f64 {
    let mut b = SwitchBuilder::new(Arc::new(NodeKey::generate()), profile, config(([127, 0, 0, 1], 0).into()), None);
    let ctx = b.add_reactor("bench", &[ChannelDescriptor::new(CH, 1)], 1 << 16).unwrap();
    let mut events = b.handle().subscribe(|e| matches!(e, SwitchEvent::PeerConnected { .. })).unwrap();
    let switch = b.start().await.unwrap();
    let target = switch.listen_addr().unwrap();
    let server_id = switch.id();
    // Client identities and transports are prepared outside the timed part.
    let clients: Vec<Arc<Transport>> = (0..n)
        .map(|_| {
            let key = Arc::new(NodeKey::generate());
            let info = NodeInfo::ours(
                profile,
                key.node_id(profile),
                "127.0.0.1:1".parse().unwrap(),
                "bench",
                "c",
                vec![CH],
                "v0",
            );
            Arc::new(Transport::new(key, info, TransportConfig::default(), None))
        })
        .collect();
    let start = Instant::now();
    let mut dials = JoinSet::new();
    let mut kept = Vec::with_capacity(n);
    let mut next = clients.into_iter();
    for t in next.by_ref().take(CONCURRENCY) {
        dials.spawn(async move { t.dial(NetAddress::new(server_id, target)).await });
    }
    while let Some(done) = dials.join_next().await {
        kept.push(done.unwrap().unwrap()); // keep the connection open
        if let Some(t) = next.next() {
            dials.spawn(async move { t.dial(NetAddress::new(server_id, target)).await });
        }
    }
    let mut added = 0;
    while added < n {
        match events.recv().await.unwrap() {
            EventItem::Event(_) => added += 1,
            EventItem::Missed(m) => added += m as usize,
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(kept);
    switch.stop().await;
    drop(ctx);
    rate
}

async fn tcp_rate(n: usize) -> f64 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let acceptor = tokio::spawn(async move {
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            held.push(l.accept().await.unwrap().0);
        }
        held
    });
    let start = Instant::now();
    let mut set = JoinSet::new();
    let mut held = Vec::with_capacity(n);
    let mut remaining = n;
    for _ in 0..CONCURRENCY.min(n) {
        set.spawn(TcpStream::connect(addr));
        remaining -= 1;
    }
    while let Some(s) = set.join_next().await {
        held.push(s.unwrap().unwrap());
        if remaining > 0 {
            set.spawn(TcpStream::connect(addr));
            remaining -= 1;
        }
    }
    let _server = acceptor.await.unwrap();
    n as f64 / start.elapsed().as_secs_f64()
}

async fn handshake_rate(profile: WireProfile, n: usize) -> f64 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let server_key = Arc::new(NodeKey::generate());
    let server = tokio::spawn(async move {
        let mut set = JoinSet::new();
        for _ in 0..n {
            let (s, _) = l.accept().await.unwrap();
            let k = server_key.clone();
            set.spawn(
                async move { SecretConnection::handshake(s, &k, profile, Duration::from_secs(10)).await.unwrap() },
            );
        }
        set.join_all().await
    });
    let keys: Vec<_> = (0..n).map(|_| Arc::new(NodeKey::generate())).collect();
    let start = Instant::now();
    let mut set = JoinSet::new();
    let mut held = Vec::with_capacity(n);
    let mut next = keys.into_iter();
    let dial = move |k: Arc<NodeKey>| async move {
        let s = TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        SecretConnection::handshake(s, &k, profile, Duration::from_secs(10)).await.unwrap()
    };
    for k in next.by_ref().take(CONCURRENCY) {
        set.spawn(dial(k));
    }
    while let Some(c) = set.join_next().await {
        held.push(c.unwrap());
        if let Some(k) = next.next() {
            set.spawn(dial(k));
        }
    }
    let _ = server.await.unwrap();
    n as f64 / start.elapsed().as_secs_f64()
}

/// Milliseconds from starting 10 fully-meshed persistent switches until every one has all 9 peers.
async fn full_mesh_ms(profile: WireProfile) -> f64 {
    const N: usize = 10;
    let keys: Vec<_> = (0..N).map(|_| Arc::new(NodeKey::generate())).collect();
    // Reserve free ports, then release them for the switches.
    let ports: Vec<u16> = {
        let ls: Vec<_> = (0..N).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
        ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
    };
    let addrs: Vec<HostAddress> = (0..N)
        .map(|i| HostAddress::parse(&format!("{}@127.0.0.1:{}", keys[i].node_id(profile), ports[i]), profile).unwrap())
        .collect();
    let mut builders = Vec::new();
    let mut streams = Vec::new();
    let mut contexts = Vec::new();
    for i in 0..N {
        let mut c = config(([127, 0, 0, 1], ports[i]).into());
        c.persistent_peers = addrs.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, a)| a.clone()).collect();
        c.backoff.base = Duration::from_millis(100);
        let mut b = SwitchBuilder::new(keys[i].clone(), profile, c, None);
        contexts.push(b.add_reactor("bench", &[ChannelDescriptor::new(CH, 1)], 1024).unwrap());
        streams.push(b.handle().subscribe(|_| true).unwrap());
        builders.push(b);
    }
    let start = Instant::now();
    let mut switches = Vec::new();
    for b in builders {
        switches.push(b.start().await.unwrap());
    }
    // Merge every node's events; after each one, check whether every node has all 9 peers right now. (Right after
    // a simultaneous dial the losing connection can be closed before its side has admitted the winner, so a node
    // may briefly have 8; the mesh counts only once it is complete everywhere at once.)
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for mut events in streams {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(item) = events.recv().await {
                if tx.send(item).is_err() {
                    break;
                }
            }
        });
    }
    loop {
        let mut complete = true;
        for s in &switches {
            complete &= s.peers().unwrap().len() == N - 1;
        }
        if complete {
            break;
        }
        rx.recv().await.unwrap();
    }
    let ms = start.elapsed().as_secs_f64() * 1e3;
    for s in switches {
        s.stop().await;
    }
    drop(contexts);
    ms
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 100 } else { 400 };
    let rounds = if quick { 1 } else { 3 };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let best = |f: &dyn Fn() -> f64| (0..rounds).map(|_| f()).fold(0.0, f64::max);
    let fastest = |f: &dyn Fn() -> f64| (0..rounds).map(|_| f()).fold(f64::INFINITY, f64::min);

    let tcp = best(&|| rt.block_on(tcp_rate(n)));
    let mut setup = serde_json::Map::new();
    let mut mesh = serde_json::Map::new();
    for profile in WireProfile::ALL {
        let hs = best(&|| rt.block_on(handshake_rate(profile, n)));
        let sw = best(&|| rt.block_on(switch_setup_rate(profile, n)));
        setup.insert(
            profile.to_string(),
            json!({
                "switch_peers_added_per_sec": sw.round(),
                "secret_handshakes_per_sec": hs.round(),
                "switch_over_handshake": (sw / hs * 100.0).round() / 100.0,
            }),
        );
        mesh.insert(
            profile.to_string(),
            json!({ "ms_until_all_10_have_9_peers": fastest(&|| rt.block_on(full_mesh_ms(profile))).round() }),
        );
    }
    let report = json!({
        "benchmark": "switch",
        "quick": quick,
        "connections_per_round": n,
        "dials_in_flight": CONCURRENCY,
        "tcp_connect_accept_per_sec": tcp.round(),
        "connection_setup": setup,
        "full_mesh_10_nodes": mesh,
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
