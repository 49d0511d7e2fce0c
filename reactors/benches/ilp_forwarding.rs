//! ILP forwarding benchmark, printed as one JSON object.
//!
//! ```text
//! cargo bench -p ledgerwire-reactors --bench ilp_forwarding            # ~30 s
//! cargo bench -p ledgerwire-reactors --bench ilp_forwarding -- --quick
//! cargo bench -p ledgerwire-reactors --bench ilp_forwarding -- --line-only   # no baselines (for a profiler)
//! ```
//!
//! sender → A → B → receiver: A and B are two connectors with their own switches, linked by a secret connection
//! and MConnection over loopback, each with its durable store (redb, fsync per group commit) in a temporary
//! directory; the sender and the receiver are in-process endpoints, and every Prepare is fulfilled. Measured in
//! the same run, as baselines: the forwarding core alone (no I/O) and plain request/response round trips over the
//! same kind of p2p link with a trivial echo reactor.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ledgerwire_conn::mconnection::ChannelDescriptor;
use ledgerwire_p2p::{ReactorEvent, Switch, SwitchBuilder, SwitchConfig};
use ledgerwire_reactors::accounts::store::{AccountSource, Store, StoredAccount};
use ledgerwire_reactors::accounts::{AccountId, AccountSpec, Relation};
use ledgerwire_reactors::forwarding::core::{Action, Forwarder, ForwarderConfig};
use ledgerwire_reactors::forwarding::{self, Connector, ConnectorConfig, IlpEvent};
use ledgerwire_reactors::ilp::{Address, Fulfill, Prepare, Reply, Timestamp, condition_of};
use ledgerwire_types::{HostAddress, NodeKey, WireProfile};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// The allocator the `ledgerwire` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WINDOW: usize = 2048;

fn spec(id: &str, relation: Relation, node_id: Option<String>) -> AccountSpec {
    AccountSpec { node_id, ..AccountSpec::new(id, relation, "USD", 9) }
}

/// Process CPU time (user + system), from /proc/self/stat.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    // The kernel's USER_HZ is 100 on every Linux this runs on.
    Duration::from_millis(ticks * 10)
}

/// The switch settings of every node in the benchmark: the references' default rate limit (5,120,000 bytes per
/// second each way) would cap a link at about 45,000 Prepares per second, so it is lifted, as an ILP operator
/// would (`[p2p] send_rate` and `recv_rate`, 0 = unlimited).
fn switch_config() -> SwitchConfig {
    let mut c = SwitchConfig::new("127.0.0.1:0".parse().unwrap(), "bench");
    c.connection.send_rate = 0;
    c.connection.recv_rate = 0;
    c
}

async fn connector(
    key: Arc<NodeKey>,
    address: &str,
    accounts: Vec<AccountSpec>,
    routes: &[(&str, &str)],
    dir: &std::path::Path,
) -> (Switch, Connector) {
    let profile = WireProfile::Tm2;
    let store = Store::open(&dir.join(format!("{address}.redb"))).unwrap();
    let stored = accounts.into_iter().map(|spec| StoredAccount { spec, source: AccountSource::Config }).collect();
    let routes = routes.iter().map(|(p, a)| (p.to_string(), AccountId::new(a).unwrap())).collect();
    let mut forwarder = ForwarderConfig::new(Address::parse(address).unwrap());
    forwarder.max_in_flight_per_account = 4096;
    let mut builder = SwitchBuilder::new(key, profile, switch_config(), None);
    let c = forwarding::register(
        &mut builder,
        ConnectorConfig { forwarder, profile, inherit_address: false, latency: None },
        store,
        stored,
        Vec::new(),
        routes,
        None,
    )
    .unwrap();
    (builder.start().await.unwrap(), c)
}

fn fulfillment(n: u64) -> [u8; 32] {
    let mut f = [3u8; 32];
    f[..8].copy_from_slice(&n.to_be_bytes());
    f
}

/// Runs `n` requests with `WINDOW` of them in flight: `request(k)` is awaited for each `k` in `0..n`. Returns the
/// elapsed time and every request's latency, sorted.
async fn drive<F, Fut>(n: u64, request: F) -> (Duration, Vec<Duration>)
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut senders = JoinSet::new();
    for _ in 0..WINDOW {
        let (request, next) = (request.clone(), next.clone());
        senders.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if k >= n {
                    return latencies;
                }
                let t = Instant::now();
                request(k).await;
                latencies.push(t.elapsed());
            }
        });
    }
    let mut all = Vec::with_capacity(n as usize);
    while let Some(l) = senders.join_next().await {
        all.extend(l.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort();
    (elapsed, all)
}

/// A Prepare of 100 to `destination` whose fulfillment is `fulfillment(k)`.
fn bench_prepare(k: u64, destination: &Address) -> Prepare {
    Prepare {
        amount: 100,
        expires_at: Timestamp::now().plus_ms(30_000),
        execution_condition: condition_of(&fulfillment(k)),
        destination: destination.clone(),
        data: Bytes::copy_from_slice(&k.to_be_bytes()),
    }
}

async fn ilp_line(n: u64) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let profile = WireProfile::Tm2;
    let (ka, kb) = (Arc::new(NodeKey::generate()), Arc::new(NodeKey::generate()));
    let (ida, idb) = (ka.node_id(profile).to_string(), kb.node_id(profile).to_string());
    let (sa, a) = connector(
        ka,
        "test.a",
        vec![spec("sender", Relation::Child, None), spec("b", Relation::Peer, Some(idb))],
        &[("test.b", "b")],
        dir.path(),
    )
    .await;
    let (sb, b) = connector(
        kb,
        "test.b",
        vec![spec("a", Relation::Peer, Some(ida)), spec("receiver", Relation::Child, None)],
        &[],
        dir.path(),
    )
    .await;
    let mut receiver = b.attach("receiver", 8192).await.unwrap();
    tokio::spawn(async move {
        while let Some(i) = receiver.recv().await {
            let n = u64::from_be_bytes(i.prepare.data[..8].try_into().unwrap());
            i.reply(Reply::Fulfill(Fulfill { fulfillment: fulfillment(n), data: Bytes::new() }));
        }
    });
    let mut ea = a.subscribe();
    let addr = HostAddress::parse(&format!("{}@{}", sb.id(), sb.listen_addr().unwrap()), profile).unwrap();
    sa.dial(addr, false).await.unwrap();
    while !matches!(ea.recv().await.unwrap(), IlpEvent::LinkUp { account } if account.as_str() == "b") {}

    let cpu0 = cpu_time();
    let (sender, destination) = (AccountId::new("sender").unwrap(), Address::parse("test.b.receiver.bench").unwrap());
    let request = {
        let a = a.clone();
        move |k| {
            let (a, sender, p) = (a.clone(), sender.clone(), bench_prepare(k, &destination));
            async move {
                let reply = a.prepare(sender, p).await;
                assert!(matches!(reply, Reply::Fulfill(_)), "{reply:?}");
            }
        }
    };
    let (elapsed, lat) = drive(n, request).await;
    let cpu = cpu_time() - cpu0;
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e6;
    let balances: HashMap<String, String> =
        a.accounts().await.unwrap().into_iter().map(|v| (v.id.to_string(), v.balance.balance.to_string())).collect();
    assert_eq!(balances["sender"], (100 * n as i128).to_string());
    sa.stop().await;
    sb.stop().await;
    json!({
        "prepares": n,
        "window": WINDOW,
        "prepares_per_second": (n as f64 / elapsed.as_secs_f64()).round(),
        "cpu_us_per_prepare_per_node": cpu.as_secs_f64() * 1e6 / n as f64 / 2.0,
        "cpu_note": "whole process (both connectors, both switches, both stores, the sender and the receiver) divided by 2 nodes",
        "latency_us": { "p50": pct(0.5).round(), "p90": pct(0.9).round(), "p99": pct(0.99).round(), "max": pct(1.0).round() },
    })
}

/// One connector, no p2p: sender → A → receiver, both in process, with A's durable store.
async fn one_connector(n: u64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let (switch, a) = connector(
        Arc::new(NodeKey::generate()),
        "test.a",
        vec![spec("sender", Relation::Child, None), spec("receiver", Relation::Child, None)],
        &[],
        dir.path(),
    )
    .await;
    let mut receiver = a.attach("receiver", 8192).await.unwrap();
    tokio::spawn(async move {
        while let Some(i) = receiver.recv().await {
            let n = u64::from_be_bytes(i.prepare.data[..8].try_into().unwrap());
            i.reply(Reply::Fulfill(Fulfill { fulfillment: fulfillment(n), data: Bytes::new() }));
        }
    });
    let (sender, destination) = (AccountId::new("sender").unwrap(), Address::parse("test.a.receiver.bench").unwrap());
    let request = {
        let a = a.clone();
        move |k| {
            let (a, sender, p) = (a.clone(), sender.clone(), bench_prepare(k, &destination));
            async move { assert!(matches!(a.prepare(sender, p).await, Reply::Fulfill(_))) }
        }
    };
    let (elapsed, _) = drive(n, request).await;
    let rate = n as f64 / elapsed.as_secs_f64();
    switch.stop().await;
    rate
}

/// The forwarding core alone: one account to another, every Prepare fulfilled, commits acknowledged at once.
fn core_only(n: u64) -> f64 {
    let now = Timestamp::now();
    let mut core = Forwarder::new(ForwarderConfig::new(Address::parse("test.a").unwrap()));
    for (id, rel) in [("sender", Relation::Child), ("b", Relation::Peer)] {
        core.upsert_account(spec(id, rel, None).validate(WireProfile::Tm2, true).unwrap(), 0, now);
    }
    core.add_route("test.b", AccountId::new("b").unwrap());
    core.set_link(&AccountId::new("b").unwrap(), true);
    let (sender, b) = (AccountId::new("sender").unwrap(), AccountId::new("b").unwrap());
    let destination = Address::parse("test.b.receiver").unwrap();
    let started = Instant::now();
    for k in 0..n {
        let f = fulfillment(k);
        core.prepare(
            now,
            &sender,
            k,
            Prepare {
                amount: 100,
                expires_at: now.plus_ms(30_000),
                execution_condition: condition_of(&f),
                destination: destination.clone(),
                data: Bytes::new(),
            },
        );
        while let Some(action) = core.poll_action() {
            match action {
                Action::Forward { id, .. } => {
                    core.reply(&b, id, Reply::Fulfill(Fulfill { fulfillment: f, data: Bytes::new() }));
                }
                Action::Commit { id, .. } => core.committed(id, true),
                _ => {}
            }
        }
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Request/response round trips over a p2p link with a trivial echo reactor, the same window.
async fn p2p_echo(n: u64) -> f64 {
    const CH: u8 = 0x7e;
    let profile = WireProfile::Tm2;
    let descriptor = ChannelDescriptor::new(CH, 1).with_send_queue_capacity(2 * WINDOW + 64).with_low_latency();
    let mut ba = SwitchBuilder::new(Arc::new(NodeKey::generate()), profile, switch_config(), None);
    let mut ctx_a = ba.add_reactor("echo", &[descriptor], 4096).unwrap();
    let mut bb = SwitchBuilder::new(Arc::new(NodeKey::generate()), profile, switch_config(), None);
    let mut ctx_b = bb.add_reactor("echo", &[descriptor], 4096).unwrap();
    let (sa, sb) = (ba.start().await.unwrap(), bb.start().await.unwrap());
    tokio::spawn(async move {
        let mut peer = None;
        while let Some(ev) = ctx_b.events.recv().await {
            match ev {
                ReactorEvent::PeerUp(h) => peer = Some(h),
                ReactorEvent::Message { msg, .. } => {
                    if let Some(p) = &peer {
                        let _ = p.try_send(CH, msg);
                    }
                }
                ReactorEvent::PeerDown { .. } => {}
            }
        }
    });
    sa.dial(HostAddress::parse(&format!("{}@{}", sb.id(), sb.listen_addr().unwrap()), profile).unwrap(), false)
        .await
        .unwrap();
    let peer = loop {
        if let Some(ReactorEvent::PeerUp(h)) = ctx_a.events.recv().await {
            break h;
        }
    };
    let (req_tx, mut req_rx) = tokio::sync::mpsc::channel::<(u64, oneshot::Sender<()>)>(4096);
    tokio::spawn(async move {
        let mut waiting: HashMap<u64, oneshot::Sender<()>> = HashMap::new();
        loop {
            tokio::select! {
                Some((id, done)) = req_rx.recv() => {
                    waiting.insert(id, done);
                    let _ = peer.try_send(CH, Bytes::copy_from_slice(&id.to_be_bytes()));
                }
                Some(ReactorEvent::Message { msg, .. }) = ctx_a.events.recv() => {
                    let id = u64::from_be_bytes(msg[..8].try_into().unwrap());
                    if let Some(done) = waiting.remove(&id) {
                        let _ = done.send(());
                    }
                }
                else => break,
            }
        }
    });
    let request = move |k| {
        let req_tx = req_tx.clone();
        async move {
            let (done, rx) = oneshot::channel();
            req_tx.send((k, done)).await.unwrap();
            rx.await.unwrap();
        }
    };
    let (elapsed, _) = drive(n, request).await;
    let rate = n as f64 / elapsed.as_secs_f64();
    sa.stop().await;
    sb.stop().await;
    rate
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n: u64 = if quick { 20_000 } else { 200_000 };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let ilp = rt.block_on(ilp_line(n));
    if std::env::args().any(|a| a == "--line-only") {
        // For profiling: the two-connector line alone.
        println!("{}", serde_json::to_string_pretty(&ilp).unwrap());
        return;
    }
    let echo = rt.block_on(p2p_echo(n));
    let one = rt.block_on(one_connector(n));
    let core = core_only(n * 5);
    let pps = ilp["prepares_per_second"].as_f64().unwrap();
    let cpu = ilp["cpu_us_per_prepare_per_node"].as_f64().unwrap();
    let report = json!({
        "benchmark": "ilp_forwarding",
        "setup": "sender -> A -> B -> receiver; A-B over secret connection + MConnection on loopback (tm2); 2 worker threads",
        "ilp": ilp,
        "baselines": {
            "p2p_echo_round_trips_per_second": echo.round(),
            "core_only_prepares_per_second": core.round(),
            "one_connector_in_process_prepares_per_second": one.round(),
            "ilp_over_p2p_echo": (pps / echo * 1000.0).round() / 1000.0,
            "ilp_over_core_only": (pps / core * 1000.0).round() / 1000.0,
        },
        "goals": {
            "prepares_per_second": 100_000,
            "cpu_us_per_prepare_per_node": 3.5,
            "js_ilp_connector_cpu_us_per_prepare_per_node": "100-115 (reported for these machines, not measured in this run)",
            "cpu_ratio_vs_js_at_100us": (cpu / 100.0 * 1000.0).round() / 1000.0,
        },
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
