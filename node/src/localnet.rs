//! `ledgerwire localnet`: a connector network in one process, to see everything work in one command.
//!
//! N nodes start on loopback ports, each with its own home (config, key, token, database) under one folder.
//! Node 0 is every other node's seed; node i also keeps node i−1 as a persistent peer. ILP accounts follow a ring
//! (node i and node i±1 are each other's `peer` accounts, allowed to carry traffic for anything under `test`), so
//! routes are learned by route exchange and most payments cross several hops. Each node has a sending and a
//! receiving app in process; a load generator per node pays the other nodes' apps in turn. [`run`] reports a
//! [`Snapshot`] every second and a [`Summary`] at the end; [`render`] and [`render_summary`] format them.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use ledgerwire_reactors::accounts::store::AccountSource;
use ledgerwire_reactors::accounts::{AccountId, AccountSpec, Relation};
use ledgerwire_reactors::forwarding::Connector;
use ledgerwire_reactors::ilp::{Address, Fulfill, Prepare, Reply, Timestamp, condition_of};
use ledgerwire_types::WireProfile;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{ConfigFile, NodeConfig};
use crate::node::{self, NodeError, RunningNode};

/// What to run.
#[derive(Debug, Clone)]
pub struct LocalnetOptions {
    /// How many nodes (2 to 64).
    pub nodes: usize,
    /// Wire profile.
    pub profile: WireProfile,
    /// Where the homes go (`node0`, `node1`, …); a temporary folder, removed at the end, if none.
    pub home: Option<PathBuf>,
    /// Payments per second each node's generator starts.
    pub rate: u32,
}

/// One node, as the live view shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeView {
    /// `node0`, …
    pub name: String,
    /// Connected p2p peers.
    pub peers: usize,
    /// Routes in its table.
    pub routes: usize,
    /// Payments its generator started.
    pub sent: u64,
    /// Of those, fulfilled.
    pub fulfilled: u64,
    /// Of those, rejected, by code.
    pub rejected: BTreeMap<String, u64>,
    /// Fulfilled per second over the last snapshot.
    pub per_second: f64,
    /// Balances with its ring neighbours (positive: they owe it), and whether the link is up.
    pub balances: Vec<(String, i128, bool)>,
}

/// The network once a second.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// Seconds since the payments started.
    pub elapsed_s: f64,
    /// Where the homes are.
    pub home: PathBuf,
    /// Per node.
    pub nodes: Vec<NodeView>,
}

/// The end of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Seconds of payments.
    pub elapsed_s: f64,
    /// Payments started.
    pub sent: u64,
    /// Payments fulfilled.
    pub fulfilled: u64,
    /// Payments rejected, by code.
    pub rejected: BTreeMap<String, u64>,
    /// Payments that got no answer: must be zero.
    pub lost: u64,
}

#[derive(Debug, Clone, Default)]
struct GenStats {
    sent: u64,
    fulfilled: u64,
    rejected: BTreeMap<String, u64>,
}

fn name(i: usize) -> String {
    format!("node{i}")
}

fn address(i: usize) -> String {
    format!("test.node{i}")
}

/// Runs the network until `stop` completes, calling `on_snapshot` every second; then stops the payments, waits for
/// every answer, stops the nodes and returns the summary. The nodes log to `localnet.log` in the folder of homes
/// (at info level).
pub async fn run(
    options: LocalnetOptions,
    stop: impl Future<Output = ()>,
    mut on_snapshot: impl FnMut(&Snapshot),
) -> Result<Summary, NodeError> {
    let n = options.nodes.clamp(2, 64);
    let (base, _temp) = match &options.home {
        Some(h) => (h.clone(), None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("ledgerwire-localnet-")
                .tempdir()
                .map_err(|source| NodeError::Write { path: std::env::temp_dir(), source })?;
            (t.path().to_owned(), Some(t))
        }
    };
    std::fs::create_dir_all(&base).map_err(|source| NodeError::Write { path: base.clone(), source })?;
    let log_file = base.join("localnet.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_file)
        .map_err(|source| NodeError::Write { path: log_file.clone(), source })?;
    let (logger, _log_guard) = crate::logging::logger_to(log, crate::config::LogFormat::Text, slog::Level::Info);
    // Homes and keys first: every node's ID goes into its neighbours' accounts.
    let mut ids = Vec::new();
    for i in 0..n {
        let home = base.join(name(i));
        let id = match node::init(&home, options.profile, "localnet", &name(i)) {
            Ok(done) => done.id,
            Err(NodeError::AlreadyInitialised(_)) => {
                let config = NodeConfig::load(&home)?;
                ledgerwire_types::NodeKey::load(&config.node_key_file)?.node_id(options.profile).to_string()
            }
            Err(e) => return Err(e),
        };
        ids.push(id);
    }
    let mut nodes: Vec<RunningNode> = Vec::new();
    let mut seed = String::new();
    for i in 0..n {
        let home = base.join(name(i));
        let mut file = ConfigFile {
            profile: options.profile.as_str().into(),
            network: "localnet".into(),
            moniker: name(i),
            ..ConfigFile::default()
        };
        file.p2p.laddr = "tcp://127.0.0.1:0".into();
        file.p2p.seeds = seed.clone();
        // The ring's links are persistent peers (node i dials i−1, and the last one closes the ring with node 0),
        // so a seed that answered and hung up never takes a ring link with it.
        let mut persistent: Vec<String> = nodes.last().map(host_address).into_iter().collect();
        if i == n - 1 && n > 2 {
            persistent.push(seed.clone());
        }
        file.p2p.persistent_peers = persistent.join(",");
        file.admin.laddr = "127.0.0.1:0".into();
        file.ilp.address = address(i);
        file.ilp.http_laddr = String::new();
        for j in [(i + n - 1) % n, (i + 1) % n] {
            if j != i && !file.ilp.accounts.iter().any(|a| a.id == name(j)) {
                file.ilp.accounts.push(AccountSpec {
                    node_id: Some(ids[j].clone()),
                    allowed_prefixes: Some(vec!["test".into()]),
                    ..AccountSpec::new(&name(j), Relation::Peer, "USD", 9)
                });
            }
        }
        node::write_config(&home, &file)?;
        let config = NodeConfig::load(&home)?;
        let running = node::start(&config, logger.new(slog::o!("localnet" => name(i)))).await?;
        if i == 0 {
            seed = host_address(&running);
        }
        nodes.push(running);
    }
    // The apps: a receiver that fulfills every payment, a sender the generator pays from.
    for node in &nodes {
        for app in ["recv", "send"] {
            node.connector
                .add_account(AccountSpec::new(app, Relation::Child, "USD", 9), AccountSource::Api)
                .await
                .map_err(|e| NodeError::Setup(e.to_string()))?;
        }
        let mut incoming = node.connector.attach("recv", 1024).await.map_err(|e| NodeError::Setup(e.to_string()))?;
        tokio::spawn(async move {
            while let Some(batch) = incoming.recv().await {
                // Prepares whose data is not a fulfillment are left to expire.
                let replies = batch.into_iter().filter_map(|p| {
                    let fulfillment = <[u8; 32]>::try_from(&p.prepare.data[..p.prepare.data.len().min(32)]).ok()?;
                    Some((p, Reply::Fulfill(Fulfill { fulfillment, data: Bytes::new() })))
                });
                incoming.reply_all(replies);
            }
        });
    }
    // Payments start once every node can reach every other (bounded: they start anyway after 30 s).
    let ready = Instant::now() + Duration::from_secs(30);
    while Instant::now() < ready && !all_routes(&nodes, n).await {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut generators = JoinSet::new();
    let mut stats = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let (tx, rx) = watch::channel(GenStats::default());
        stats.push(rx);
        generators.spawn(generate(i, n, node.connector.clone(), options.rate.max(1), stop_rx.clone(), tx));
    }
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    let mut previous: Vec<u64> = vec![0; n];
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = ticker.tick() => {
                let snapshot = snapshot(&nodes, &stats, &mut previous, started, &base).await;
                on_snapshot(&snapshot);
            }
        }
    }
    let elapsed = started.elapsed();
    let _ = stop_tx.send(true);
    // Every payment in flight is answered (each expires within 30 s): the generators end once they have theirs.
    while generators.join_next().await.is_some() {}
    let mut summary = Summary { elapsed_s: elapsed.as_secs_f64(), ..Summary::default() };
    for rx in &stats {
        let s = rx.borrow().clone();
        summary.sent += s.sent;
        summary.fulfilled += s.fulfilled;
        for (code, count) in s.rejected {
            *summary.rejected.entry(code).or_default() += count;
        }
    }
    summary.lost = summary.sent - summary.fulfilled - summary.rejected.values().sum::<u64>();
    for node in nodes {
        node.stop().await;
    }
    Ok(summary)
}

fn host_address(node: &RunningNode) -> String {
    match node.switch.listen_addr() {
        Some(addr) => format!("{}@{addr}", node.switch.id()),
        None => String::new(),
    }
}

async fn all_routes(nodes: &[RunningNode], n: usize) -> bool {
    for node in nodes {
        let Some(routing) = &node.routing else { return true };
        let Ok(routes) = routing.routes().await else { return false };
        let reachable = (0..n).filter(|&j| routes.iter().any(|r| r.prefix == address(j))).count();
        if reachable < n {
            return false;
        }
    }
    true
}

async fn snapshot(
    nodes: &[RunningNode],
    stats: &[watch::Receiver<GenStats>],
    previous: &mut [u64],
    started: Instant,
    home: &Path,
) -> Snapshot {
    let mut views = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let s = stats[i].borrow().clone();
        let routes = match &node.routing {
            Some(r) => r.routes().await.map(|v| v.len()).unwrap_or(0),
            None => 0,
        };
        let balances = node
            .connector
            .accounts()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a.relation == Relation::Peer)
            .map(|a| (a.id.to_string(), a.balance.balance, a.link_up))
            .collect();
        views.push(NodeView {
            name: name(i),
            peers: node.switch.peers().map(|p| p.len()).unwrap_or(0),
            routes,
            per_second: (s.fulfilled - previous[i]) as f64,
            sent: s.sent,
            fulfilled: s.fulfilled,
            rejected: s.rejected,
            balances,
        });
        previous[i] = views[i].fulfilled;
    }
    Snapshot { elapsed_s: started.elapsed().as_secs_f64(), home: home.to_owned(), nodes: views }
}

/// Node `i`'s load generator: `rate` payments per second to the other nodes' receivers in turn, at most 64 in
/// flight, until `stop`; then it waits for the answers of those in flight.
async fn generate(
    i: usize,
    n: usize,
    connector: Connector,
    rate: u32,
    mut stop: watch::Receiver<bool>,
    stats: watch::Sender<GenStats>,
) {
    let Ok(sender) = AccountId::new("send") else { return };
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut inflight = JoinSet::new();
    let mut k: u64 = 0;
    let record = |result: Result<Reply, tokio::task::JoinError>| {
        stats.send_modify(|s| match result {
            Ok(Reply::Fulfill(_)) => s.fulfilled += 1,
            Ok(Reply::Reject(r)) => *s.rejected.entry(r.code.to_string()).or_default() += 1,
            Err(_) => {}
        });
    };
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(done) = inflight.join_next() => record(done),
            _ = tick.tick(), if inflight.len() < 64 => {
                k += 1;
                // The next 16 nodes round the ring at most: paths stay within what a 30 s expiry allows (each
                // hop takes a second off it).
                let to = (i + 1 + (k as usize % (n - 1).min(16))) % n;
                let mut fulfillment = [0u8; 32];
                fulfillment[..8].copy_from_slice(&(i as u64).to_be_bytes());
                fulfillment[8..16].copy_from_slice(&k.to_be_bytes());
                let Ok(destination) = Address::parse(&format!("{}.recv.{k}", address(to))) else { continue };
                let prepare = Prepare {
                    amount: 1 + k % 1000,
                    expires_at: Timestamp::now().plus_ms(30_000),
                    execution_condition: condition_of(&fulfillment),
                    destination,
                    data: Bytes::copy_from_slice(&fulfillment),
                };
                stats.send_modify(|s| s.sent += 1);
                let (connector, sender) = (connector.clone(), sender.clone());
                inflight.spawn(async move { connector.prepare(sender, prepare).await });
            }
        }
    }
    while let Some(done) = inflight.join_next().await {
        record(done);
    }
}

/// The live view: one line per node.
pub fn render(s: &Snapshot) -> String {
    let mut out = format!(
        "ledgerwire localnet: {} nodes, {:.0} s, homes in {}\n\n{:<8} {:>5} {:>6} {:>8} {:>10} {:>10}  {:<24} {}\n",
        s.nodes.len(),
        s.elapsed_s,
        s.home.display(),
        "NODE",
        "PEERS",
        "ROUTES",
        "PAID/S",
        "FULFILLED",
        "REJECTED",
        "REJECTED BY CODE",
        "BALANCES (µUSD)"
    );
    for v in &s.nodes {
        let rejected: u64 = v.rejected.values().sum();
        let codes = v.rejected.iter().map(|(c, n)| format!("{c}:{n}")).collect::<Vec<_>>().join(" ");
        let balances = v
            .balances
            .iter()
            .map(|(a, b, up)| format!("{a} {:+}{}", b / 1000, if *up { "" } else { " (link down)" }))
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!(
            "{:<8} {:>5} {:>6} {:>8.0} {:>10} {:>10}  {:<24} {}\n",
            v.name,
            v.peers,
            v.routes,
            v.per_second,
            v.fulfilled,
            rejected,
            if codes.is_empty() { "-".into() } else { codes },
            balances
        ));
    }
    out
}

/// The end-of-run summary, one line.
pub fn render_summary(s: &Summary) -> String {
    let codes = s.rejected.iter().map(|(c, n)| format!("{c} {n}")).collect::<Vec<_>>().join(", ");
    format!(
        "payments: {} sent, {} fulfilled, {} rejected{}, {} lost, in {:.1} s",
        s.sent,
        s.fulfilled,
        s.rejected.values().sum::<u64>(),
        if codes.is_empty() { String::new() } else { format!(" ({codes})") },
        s.lost,
        s.elapsed_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_rejections_by_code_and_lost_responses() {
        let s = Summary {
            elapsed_s: 2.0,
            sent: 10,
            fulfilled: 7,
            rejected: [("F02".to_owned(), 3)].into_iter().collect(),
            lost: 0,
        };
        assert_eq!(render_summary(&s), "payments: 10 sent, 7 fulfilled, 3 rejected (F02 3), 0 lost, in 2.0 s");
    }

    #[test]
    fn the_view_has_a_line_per_node() {
        let s = Snapshot {
            elapsed_s: 3.0,
            home: PathBuf::from("/tmp/x"),
            nodes: vec![NodeView {
                name: "node0".into(),
                balances: vec![("node1".into(), 5_000, true), ("node2".into(), 0, false)],
                ..NodeView::default()
            }],
        };
        let text = render(&s);
        assert!(text.lines().any(|l| l.starts_with("node0") && l.contains("node1 +5")), "{text}");
        assert!(text.contains("node2 +0 (link down)"), "{text}");
    }
}
