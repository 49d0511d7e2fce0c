//! Route-exchange convergence benchmark, printed as one JSON object.
//!
//! ```text
//! cargo bench -p ledgerwire-reactors --bench ilp_routing              # 20, 50 and 100 nodes
//! cargo bench -p ledgerwire-reactors --bench ilp_routing -- --quick   # 20 nodes
//! ```
//!
//! Per size: connectors in one process, each with its own switch (secret connections and MConnections over
//! loopback), store and route exchange, joined in a random connected mesh (a random spanning tree plus chords,
//! four links per node on average, fixed seed). Measured: the time from the last link until every node has a
//! shortest-path route to every other (in broadcast intervals), the same after one node fails (and every route
//! to it is gone), and the route-exchange bytes each node sent. The baseline, in the same run: the time for the
//! same mesh's p2p connections to be up (what any convergence has to wait for).
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

#[path = "../tests/common/ilp_net.rs"]
mod ilp_net;

use std::time::{Duration, Instant};

use ilp_net::IlpNet;
use ledgerwire_types::WireProfile;
use serde_json::json;

const INTERVAL: Duration = Duration::from_secs(1);

async fn run(n: usize) -> serde_json::Value {
    let links = ilp_net::mesh(n, 2 * n, 0x9e37_79b9_7f4a_7c15_u64 ^ n as u64);
    let setup = Instant::now();
    let mut net = IlpNet::new(n, WireProfile::Tm2, INTERVAL).await;
    let started = setup.elapsed();
    for &(a, b) in &links {
        net.link(a, b).await;
    }
    let joined = Instant::now();
    // Baseline: every link's connection up.
    let deadline = joined + Duration::from_secs(120);
    loop {
        let mut up = 0;
        for i in 0..n {
            up += net.node(i).switch.peers().map(|p| p.len()).unwrap_or(0);
        }
        if up >= 2 * links.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let connected = joined.elapsed();
    let join = net.wait_converged(Duration::from_secs(120)).await;
    let bytes_join: u64 = sum_bytes(&net).await;
    // Fail the busiest node.
    let degree = |i: usize| links.iter().filter(|(a, b)| *a == i || *b == i).count();
    let victim = (0..n).max_by_key(|&i| degree(i)).unwrap();
    let failed = Instant::now();
    net.kill(victim).await;
    let stop_took = failed.elapsed();
    let fail = net.wait_converged(Duration::from_secs(120)).await;
    let bytes_all = sum_bytes(&net).await;
    let mut counters = [0u64; 4];
    for i in net.alive() {
        for p in net.peer_stats(i).await {
            counters[0] += p.updates_sent;
            counters[1] += p.controls_sent;
            counters[2] += p.sends_failed;
            counters[3] += p.routes_refused;
        }
    }
    let survivors = (n - 1) as f64;
    let result = json!({
        "nodes": n,
        "links": links.len(),
        "start_nodes_s": started.as_secs_f64(),
        "baseline_connections_up_intervals": connected.as_secs_f64() / INTERVAL.as_secs_f64(),
        "converge_after_last_join_intervals": join.map(|d| d.as_secs_f64() / INTERVAL.as_secs_f64()),
        "converge_after_failure_intervals": fail.map(|d| d.as_secs_f64() / INTERVAL.as_secs_f64()),
        "failed_node_degree": degree(victim),
        "failed_node_stop_s": stop_took.as_secs_f64(),
        "routing_bytes_per_node_join": bytes_join as f64 / n as f64,
        "routing_bytes_per_surviving_node_total": bytes_all as f64 / survivors,
        "updates_sent": counters[0],
        "route_controls_sent": counters[1],
        "updates_not_queued": counters[2],
        "routes_refused": counters[3],
    });
    net.stop().await;
    result
}

async fn sum_bytes(net: &IlpNet) -> u64 {
    let mut total = 0;
    for i in net.alive() {
        total += net.peer_stats(i).await.iter().map(|p| p.bytes_sent).sum::<u64>();
    }
    total
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[usize] = if quick { &[20] } else { &[20, 50, 100] };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut results = Vec::new();
    for &n in sizes {
        results.push(rt.block_on(run(n)));
    }
    let goal_met = results.iter().filter(|r| r["nodes"] == 100).all(|r| {
        r["converge_after_last_join_intervals"].as_f64().is_some_and(|x| x <= 3.0)
            && r["converge_after_failure_intervals"].as_f64().is_some_and(|x| x <= 3.0)
    });
    let out = json!({
        "benchmark": "ilp_routing",
        "broadcast_interval_s": INTERVAL.as_secs_f64(),
        "debounce_ms": 20,
        "sizes": results,
        "goal": "100 nodes converge within 3 broadcast intervals after the last join and after one node fails",
        "goal_met": if quick { serde_json::Value::Null } else { json!(goal_met) },
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
