//! ILP forwarding benchmark, printed as one JSON object.
//!
//! ```text
//! cargo bench -p ledgerwire-reactors --bench ilp_forwarding            # ~15 s
//! cargo bench -p ledgerwire-reactors --bench ilp_forwarding -- --quick
//! cargo bench -p ledgerwire-reactors --bench ilp_forwarding -- --line-only   # no baselines (for a profiler)
//! cargo bench -p ledgerwire-reactors --bench ilp_forwarding -- --window 512  # Prepares in flight (2,048)
//! cargo bench -p ledgerwire-reactors --bench ilp_forwarding -- --core-only   # the core with the window open (profiling)
//! ```
//!
//! sender → A → B → receiver: A and B are two connectors with their own switches, linked by a secret connection
//! and MConnection over loopback, each with its durable store (redb, fsync per group commit) in a temporary
//! directory; the sender and the receiver are in-process endpoints (the sender one task handing Prepares over in
//! batches), and every Prepare is fulfilled. Measured in the same run, as baselines: the forwarding core alone (no
//! I/O; one Prepare at a time, and with the window open as in the line), one connector with both endpoints in process (no p2p), and plain request/response round trips over the
//! same kind of p2p link with a trivial echo reactor; the last two with their CPU. Each is measured after a warm-up
//! of a quarter as many; the line three times, reporting the run with the median CPU.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ledgerwire_conn::mconnection::ChannelDescriptor;
use ledgerwire_p2p::{Inbox, PeerHandle, ReactorEvent, Switch, SwitchBuilder, SwitchConfig};
use ledgerwire_reactors::accounts::store::{AccountSource, Store, StoredAccount};
use ledgerwire_reactors::accounts::{AccountId, AccountSpec, Relation};
use ledgerwire_reactors::forwarding::core::{Action, Forwarder, ForwarderConfig};
use ledgerwire_reactors::forwarding::{self, Connector, ConnectorConfig, Endpoint, IlpEvent};
use ledgerwire_reactors::ilp::{Address, Fulfill, Prepare, Reply, Timestamp, condition_of};
use ledgerwire_types::{HostAddress, NodeKey, WireProfile};
use serde_json::json;
use tokio::sync::mpsc;

/// The allocator the `ledgerwire` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Prepares (or echo requests) in flight, unless `--window N` says otherwise.
const WINDOW: usize = 2048;

fn window() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--window")
        .and_then(|i| args.get(i + 1))
        .and_then(|w| w.parse().ok())
        .unwrap_or(WINDOW)
}

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

/// Sends `n` Prepares from `account` to `destination` with `WINDOW` of them in flight, the way an in-process app
/// that pays a lot would: one task, Prepares handed over in batches ([`Connector::send_batch`]), each answer
/// letting one more go. Every answer must be a Fulfill. Returns the elapsed time and every Prepare's latency,
/// sorted.
/// Prepares sent before measuring, per `n` measured: the link's buffers, the allocator's pages and the store's
/// file reach their working size first (a connector runs for hours; its first second is not its cost).
const WARMUP_DIVISOR: u64 = 4;

/// One measured run: wall time, process CPU time, and each Prepare's latency (sorted).
struct Measured {
    elapsed: Duration,
    cpu: Duration,
    latencies: Vec<Duration>,
}

/// Sends `n / WARMUP_DIVISOR` Prepares unmeasured, then `rounds` measured runs of `n`, `window()` in flight,
/// through `connector` from `account` to `destination`.
async fn drive(connector: &Connector, account: AccountId, destination: Address, n: u64, rounds: u64) -> Vec<Measured> {
    let warmup = n / WARMUP_DIVISOR;
    let (mut sent_at, mut latencies) = (vec![Instant::now(); warmup as usize], vec![Duration::ZERO; warmup as usize]);
    pump(connector, &account, &destination, 0, &mut sent_at, &mut latencies).await;
    let mut runs = Vec::new();
    for round in 0..rounds {
        // A run's vectors are written before the clock starts, so that their first touch is not counted.
        let (mut sent_at, mut latencies) = (vec![Instant::now(); n as usize], vec![Duration::ZERO; n as usize]);
        let cpu0 = cpu_time();
        let started = Instant::now();
        pump(connector, &account, &destination, warmup + round * n, &mut sent_at, &mut latencies).await;
        let elapsed = started.elapsed();
        let cpu = cpu_time() - cpu0;
        latencies.sort();
        runs.push(Measured { elapsed, cpu, latencies });
    }
    runs
}

/// Measured runs of the line, one after another on the same connectors: this machine is shared, and one run can
/// meet a busy moment. The run reported is the median by CPU time; every run's figures are printed beside it.
fn line_rounds(quick: bool) -> u64 {
    if quick { 1 } else { 3 }
}

/// Sends `sent_at.len()` Prepares numbered from `first`, keeping `window()` in flight, and records each one's
/// latency.
async fn pump(
    connector: &Connector,
    account: &AccountId,
    destination: &Address,
    first: u64,
    sent_at: &mut [Instant],
    latencies: &mut [Duration],
) {
    let n = sent_at.len() as u64;
    let (answers, mut rx) = mpsc::unbounded_channel();
    let (mut sent, mut answered_count) = (0u64, 0u64);
    let mut more = window() as u64;
    while answered_count < n {
        // One clock read per batch, as for the latencies.
        let expires_at = Timestamp::now().plus_ms(30_000);
        let batch: Vec<_> = (sent..n.min(sent + more))
            .map(|i| (first + i, bench_prepare(first + i, destination, expires_at)))
            .collect();
        if !batch.is_empty() {
            let now = Instant::now();
            sent_at[sent as usize..sent as usize + batch.len()].fill(now);
            sent += batch.len() as u64;
            connector.send_batch(account.clone(), batch, &answers).await.unwrap();
        }
        let mut answered = rx.recv().await.unwrap();
        let now = Instant::now();
        while let Ok(more) = rx.try_recv() {
            answered.extend(more);
        }
        more = answered.len() as u64;
        for (k, reply) in answered {
            assert!(matches!(reply, Reply::Fulfill(_)), "{reply:?}");
            latencies[answered_count as usize] = now - sent_at[(k - first) as usize];
            answered_count += 1;
        }
    }
}

/// The receiver: fulfills every Prepare, a batch at a time (as the connector hands them over).
async fn receive(mut receiver: Endpoint) {
    while let Some(batch) = receiver.recv().await {
        receiver.reply_all(batch.into_iter().map(|i| {
            let n = u64::from_be_bytes(i.prepare.data[..8].try_into().unwrap());
            (i, Reply::Fulfill(Fulfill { fulfillment: fulfillment(n), data: Bytes::new() }))
        }));
    }
}

/// A Prepare of 100 to `destination` whose fulfillment is `fulfillment(k)`.
fn bench_prepare(k: u64, destination: &Address, expires_at: Timestamp) -> Prepare {
    Prepare {
        amount: 100,
        expires_at,
        execution_condition: condition_of(&fulfillment(k)),
        destination: destination.clone(),
        data: Bytes::copy_from_slice(&k.to_be_bytes()),
    }
}

async fn ilp_line(n: u64, rounds: u64) -> serde_json::Value {
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
    let receiver = b.attach("receiver", 8192).await.unwrap();
    tokio::spawn(receive(receiver));
    let mut ea = a.subscribe();
    let addr = HostAddress::parse(&format!("{}@{}", sb.id(), sb.listen_addr().unwrap()), profile).unwrap();
    sa.dial(addr, false).await.unwrap();
    while !matches!(ea.recv().await.unwrap(), IlpEvent::LinkUp { account } if account.as_str() == "b") {}

    let (sender, destination) = (AccountId::new("sender").unwrap(), Address::parse("test.b.receiver.bench").unwrap());
    let mut runs = drive(&a, sender, destination, n, rounds).await;
    let balances: HashMap<String, String> =
        a.accounts().await.unwrap().into_iter().map(|v| (v.id.to_string(), v.balance.balance.to_string())).collect();
    assert_eq!(balances["sender"], (100 * (rounds * n + n / WARMUP_DIVISOR) as i128).to_string());
    sa.stop().await;
    sb.stop().await;
    let per_node_us = |m: &Measured| m.cpu.as_secs_f64() * 1e6 / n as f64 / 2.0;
    let rate = |m: &Measured| (n as f64 / m.elapsed.as_secs_f64()).round();
    let all: Vec<_> = runs
        .iter()
        .map(|m| json!({ "prepares_per_second": rate(m), "cpu_us_per_prepare_per_node": per_node_us(m) }))
        .collect();
    runs.sort_by_key(|m| m.cpu);
    let median = &runs[runs.len() / 2];
    let lat = &median.latencies;
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e6;
    json!({
        "prepares": n,
        "warmup_prepares": n / WARMUP_DIVISOR,
        "window": window(),
        "runs": all,
        "reported_run": "the median by CPU time",
        "prepares_per_second": rate(median),
        "cpu_us_per_prepare_per_node": per_node_us(median),
        "cpu_note": "whole process (both connectors, both switches, both stores, the sender and the receiver) divided by 2 nodes",
        "sender": "one in-process task, Prepares handed over in batches (Connector::send_batch), one more per answer",
        "latency_us": { "p50": pct(0.5).round(), "p90": pct(0.9).round(), "p99": pct(0.99).round(), "max": pct(1.0).round() },
    })
}

/// One connector, no p2p: sender → A → receiver, both in process, with A's durable store. Returns Prepares per
/// second and CPU per Prepare (the whole process: one node, its sender and its receiver).
async fn one_connector(n: u64) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let (switch, a) = connector(
        Arc::new(NodeKey::generate()),
        "test.a",
        vec![spec("sender", Relation::Child, None), spec("receiver", Relation::Child, None)],
        &[],
        dir.path(),
    )
    .await;
    let receiver = a.attach("receiver", 8192).await.unwrap();
    tokio::spawn(receive(receiver));
    let (sender, destination) = (AccountId::new("sender").unwrap(), Address::parse("test.a.receiver.bench").unwrap());
    let Measured { elapsed, cpu, .. } = drive(&a, sender, destination, n, 1).await.remove(0);
    switch.stop().await;
    (n as f64 / elapsed.as_secs_f64(), cpu.as_secs_f64() * 1e6 / n as f64)
}

/// A forwarding core at `test.a` with a child `sender` and a peer `b` (link up, route `test.b`), at most
/// `max_in_flight` open per account; with the time, the two accounts and a destination behind `b`.
fn bare_core(max_in_flight: usize) -> (Forwarder, Timestamp, AccountId, AccountId, Address) {
    let now = Timestamp::now();
    let mut config = ForwarderConfig::new(Address::parse("test.a").unwrap());
    config.max_in_flight_per_account = max_in_flight;
    let mut core = Forwarder::new(config);
    for (id, rel) in [("sender", Relation::Child), ("b", Relation::Peer)] {
        core.upsert_account(spec(id, rel, None).validate(WireProfile::Tm2, true).unwrap(), 0, now);
    }
    core.add_route("test.b", AccountId::new("b").unwrap());
    core.set_link(&AccountId::new("b").unwrap(), true);
    let (sender, b) = (AccountId::new("sender").unwrap(), AccountId::new("b").unwrap());
    (core, now, sender, b, Address::parse("test.b.receiver").unwrap())
}

/// The forwarding core alone with `window` Prepares open at a time, as in the line: each forwarded Prepare is
/// answered (fulfilled) once `window` newer ones are open, and its commit acknowledged `window` commits later.
fn core_windowed(n: u64, window: usize) -> f64 {
    let (mut core, now, sender, b, destination) = bare_core(2 * window + 16);
    let (mut open, mut commits) = (std::collections::VecDeque::new(), std::collections::VecDeque::new());
    let mut fulfilled = 0u64;
    let started = Instant::now();
    for k in 0..n + 2 * window as u64 {
        if k < n {
            core.prepare(now, &sender, k, bench_prepare(k, &destination, now.plus_ms(30_000)));
        }
        if (open.len() >= window || k >= n)
            && let Some((id, k)) = open.pop_front()
        {
            core.reply(&b, id, Reply::Fulfill(Fulfill { fulfillment: fulfillment(k), data: Bytes::new() }));
        }
        if (commits.len() >= window || k >= n)
            && let Some(id) = commits.pop_front()
        {
            core.committed(id, true);
        }
        while let Some(action) = core.poll_action() {
            match action {
                Action::Forward { id, .. } => {
                    let data = &core.forwarded(id).unwrap().data;
                    open.push_back((id, u64::from_be_bytes(data[..8].try_into().unwrap())))
                }
                Action::Commit { id, .. } => commits.push_back(id),
                Action::Respond { reply: Reply::Fulfill(_), .. } => fulfilled += 1,
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(fulfilled, n);
    n as f64 / started.elapsed().as_secs_f64()
}

/// The forwarding core alone: one account to another, every Prepare fulfilled, commits acknowledged at once.
fn core_only(n: u64) -> f64 {
    let (mut core, now, sender, b, destination) = bare_core(1024);
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

/// The echo baseline's channel.
const CH: u8 = 0x7e;

/// Request/response round trips over a p2p link with a trivial echo reactor, the same window. Returns round trips
/// per second and CPU per round trip per node.
async fn p2p_echo(n: u64) -> (f64, f64) {
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
    echo_rounds(&peer, &mut ctx_a.events, n / WARMUP_DIVISOR).await;
    let cpu0 = cpu_time();
    let started = Instant::now();
    echo_rounds(&peer, &mut ctx_a.events, n).await;
    let elapsed = started.elapsed();
    let cpu = cpu_time() - cpu0;
    sa.stop().await;
    sb.stop().await;
    (n as f64 / elapsed.as_secs_f64(), cpu.as_secs_f64() * 1e6 / n as f64 / 2.0)
}

/// `n` echo round trips with `window()` in flight from one task: each echo lets the next request go.
async fn echo_rounds(peer: &PeerHandle, events: &mut Inbox, n: u64) {
    let mut next = 0u64;
    while next < (window() as u64).min(n) {
        peer.try_send(CH, Bytes::copy_from_slice(&next.to_be_bytes())).unwrap();
        next += 1;
    }
    let mut echoed = 0u64;
    while echoed < n {
        let Some(ReactorEvent::Message { msg, .. }) = events.recv().await else { continue };
        assert_eq!(msg.len(), 8);
        echoed += 1;
        if next < n {
            peer.try_send(CH, Bytes::copy_from_slice(&next.to_be_bytes())).unwrap();
            next += 1;
        }
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n: u64 = if quick { 20_000 } else { 200_000 };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // Everything runs as tasks on the runtime's two workers, as in the node (the main thread only waits).
    if std::env::args().any(|a| a == "--core-only") {
        // For profiling: the core alone with the window in flight.
        println!("{}", core_windowed(n * 5, window()).round());
        return;
    }
    let ilp = rt.block_on(async move { tokio::spawn(ilp_line(n, line_rounds(quick))).await.unwrap() });
    if std::env::args().any(|a| a == "--line-only") {
        // For profiling: the two-connector line alone.
        println!("{}", serde_json::to_string_pretty(&ilp).unwrap());
        return;
    }
    let (echo, echo_cpu) = rt.block_on(async move { tokio::spawn(p2p_echo(n)).await.unwrap() });
    let (one, one_cpu) = rt.block_on(async move { tokio::spawn(one_connector(n)).await.unwrap() });
    let core = core_only(n * 5);
    let core_window = core_windowed(n * 5, window());
    let pps = ilp["prepares_per_second"].as_f64().unwrap();
    let cpu = ilp["cpu_us_per_prepare_per_node"].as_f64().unwrap();
    let report = json!({
        "benchmark": "ilp_forwarding",
        "setup": "sender -> A -> B -> receiver; A-B over secret connection + MConnection on loopback (tm2); 2 worker threads",
        "ilp": ilp,
        "baselines": {
            "p2p_echo_round_trips_per_second": echo.round(),
            "p2p_echo_cpu_us_per_round_trip_per_node": (echo_cpu * 100.0).round() / 100.0,
            "core_only_prepares_per_second": core.round(),
            "core_only_with_window_in_flight_prepares_per_second": core_window.round(),
            "one_connector_in_process_prepares_per_second": one.round(),
            "one_connector_in_process_cpu_us_per_prepare": (one_cpu * 100.0).round() / 100.0,
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
