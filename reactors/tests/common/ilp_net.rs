//! A network of connectors in one process, for tests and the routing benchmark: each node has its own switch
//! (real secret connections and MConnections over loopback), connector, route exchange and store; nodes are
//! named `n0`, `n1`, … at `test.n0`, …, each with a receiving app `recv` that fulfills every Prepare and a
//! sending app `send`. Linked nodes are each other's `peer` accounts, allowed to announce anything under `test`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ledgerwire_p2p::{Switch, SwitchBuilder, SwitchConfig};
use ledgerwire_reactors::accounts::store::{AccountSource, Store, StoredAccount};
use ledgerwire_reactors::accounts::{AccountId, AccountSpec, Relation};
use ledgerwire_reactors::forwarding::core::ForwarderConfig;
use ledgerwire_reactors::forwarding::{self, Connector, ConnectorConfig};
use ledgerwire_reactors::ilp::{Address, Fulfill, Prepare, Reply, Timestamp, condition_of};
use ledgerwire_reactors::routing::core::{PeerRouting, RouterConfig};
use ledgerwire_reactors::routing::{self, Routing};
use ledgerwire_types::{HostAddress, NodeKey, WireProfile};
use tokio::sync::Notify;
use tokio::time::Instant;

/// One node.
pub struct NetNode {
    pub switch: Switch,
    pub connector: Connector,
    pub routing: Routing,
}

/// The network.
pub struct IlpNet {
    pub profile: WireProfile,
    pub interval: Duration,
    keys: Vec<Arc<NodeKey>>,
    homes: Vec<tempfile::TempDir>,
    pub nodes: Vec<Option<NetNode>>,
    pub links: Vec<(usize, usize)>,
    /// Woken by every route change anywhere.
    changed: Arc<Notify>,
}

/// A random connected mesh of `n` nodes with `links` links (at least `n − 1`): a random spanning tree plus
/// chords, from `seed` (xorshift, so the same seed gives the same mesh).
pub fn mesh(n: usize, links: usize, seed: u64) -> Vec<(usize, usize)> {
    let mut seed = seed.max(1);
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut set = std::collections::BTreeSet::new();
    for i in 1..n {
        set.insert(((next() % i as u64) as usize, i));
    }
    while set.len() < links.min(n * (n - 1) / 2) {
        let (a, b) = ((next() % n as u64) as usize, (next() % n as u64) as usize);
        if a != b {
            set.insert((a.min(b), a.max(b)));
        }
    }
    set.into_iter().collect()
}

pub fn name(i: usize) -> String {
    format!("n{i}")
}

pub fn address(i: usize) -> String {
    format!("test.n{i}")
}

fn app(id: &str) -> AccountSpec {
    AccountSpec::new(id, Relation::Child, "USD", 9)
}

impl IlpNet {
    /// `n` nodes, not linked yet, broadcasting every `interval`.
    pub async fn new(n: usize, profile: WireProfile, interval: Duration) -> IlpNet {
        let mut net = IlpNet {
            profile,
            interval,
            keys: (0..n).map(|_| Arc::new(NodeKey::generate())).collect(),
            homes: (0..n).map(|_| tempfile::tempdir().unwrap()).collect(),
            nodes: Vec::new(),
            links: Vec::new(),
            changed: Arc::new(Notify::new()),
        };
        for i in 0..n {
            let node = net.start(i).await;
            net.nodes.push(Some(node));
        }
        net
    }

    fn peer_spec(&self, j: usize) -> AccountSpec {
        AccountSpec {
            node_id: Some(self.keys[j].node_id(self.profile).to_string()),
            allowed_prefixes: Some(vec!["test".into()]),
            ..AccountSpec::new(&name(j), Relation::Peer, "USD", 9)
        }
    }

    async fn start(&self, i: usize) -> NetNode {
        let profile = self.profile;
        let store = Store::open(&self.homes[i].path().join("ilp.redb")).unwrap();
        let mut accounts = vec![app("recv"), app("send")];
        for &(a, b) in &self.links {
            if a == i {
                accounts.push(self.peer_spec(b));
            } else if b == i {
                accounts.push(self.peer_spec(a));
            }
        }
        let stored = accounts.into_iter().map(|spec| StoredAccount { spec, source: AccountSource::Config }).collect();
        let mut config = SwitchConfig::new("127.0.0.1:0".parse().unwrap(), "ilp-net");
        config.max_inbound = 128;
        config.max_outbound = 128;
        let mut builder = SwitchBuilder::new(self.keys[i].clone(), profile, config, None);
        let connector = forwarding::register(
            &mut builder,
            ConnectorConfig {
                forwarder: ForwarderConfig::new(Address::parse(&address(i)).unwrap()),
                profile,
                inherit_address: false,
                latency: None,
            },
            store,
            stored,
            Vec::new(),
            Vec::new(),
            None,
        )
        .unwrap();
        let mut rc = RouterConfig::new([i as u8; 32], routing::random_table_id());
        rc.broadcast_interval = self.interval;
        rc.route_expiry = self.interval * 3;
        rc.debounce = Duration::from_millis(20);
        let routing = routing::register(&mut builder, rc, connector.clone(), None).unwrap();
        let switch = builder.start().await.unwrap();
        // The receiving app: fulfills with the Prepare's data, and tells the hops it took in the Fulfill's data
        // (each connector takes 1 s off the expiry).
        let mut recv = connector.attach("recv", 4096).await.unwrap();
        tokio::spawn(async move {
            while let Some(batch) = recv.recv().await {
                for incoming in batch {
                    let p = &incoming.prepare;
                    let Ok(fulfillment) = <[u8; 32]>::try_from(&p.data[..32.min(p.data.len())]) else { continue };
                    let sent_expiry = i64::from_be_bytes(p.data[32..40].try_into().unwrap());
                    let hops = (sent_expiry - p.expires_at.unix_ms() + 500) / 1000;
                    let data = Bytes::from(hops.to_be_bytes().to_vec());
                    recv.reply(incoming, Reply::Fulfill(Fulfill { fulfillment, data }));
                }
            }
        });
        let mut events = routing.subscribe();
        let changed = self.changed.clone();
        tokio::spawn(async move {
            while let Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) = events.recv().await {
                changed.notify_one();
            }
        });
        NetNode { switch, connector, routing }
    }

    pub fn node(&self, i: usize) -> &NetNode {
        self.nodes[i].as_ref().unwrap()
    }

    fn host_address(&self, j: usize) -> HostAddress {
        let sw = &self.node(j).switch;
        HostAddress::parse(&format!("{}@{}", sw.id(), sw.listen_addr().unwrap()), self.profile).unwrap()
    }

    /// Links `a` and `b` as peers: accounts on both sides, then `a` dials `b`.
    pub async fn link(&mut self, a: usize, b: usize) {
        self.links.push((a, b));
        self.node(a).connector.add_account(self.peer_spec(b), AccountSource::Api).await.unwrap();
        self.node(b).connector.add_account(self.peer_spec(a), AccountSource::Api).await.unwrap();
        self.node(a).switch.dial(self.host_address(b), false).await.unwrap();
    }

    /// Stops node `i` (its switch closes every connection: its peers see it go down).
    pub async fn kill(&mut self, i: usize) {
        if let Some(node) = self.nodes[i].take() {
            node.switch.stop().await;
        }
    }

    /// Starts node `i` again with the same key and home (a new routing table ID), and redials its links.
    pub async fn restart(&mut self, i: usize) {
        let node = self.start(i).await;
        self.nodes[i] = Some(node);
        for (a, b) in self.links.clone() {
            let other = if a == i {
                b
            } else if b == i {
                a
            } else {
                continue;
            };
            if self.nodes[other].is_some() {
                self.node(i).switch.dial(self.host_address(other), false).await.unwrap();
            }
        }
    }

    pub fn alive(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].is_some()).collect()
    }

    /// Hops between live nodes over live links (breadth first), `usize::MAX` when unreachable.
    pub fn distances(&self, from: usize) -> Vec<usize> {
        let mut d = vec![usize::MAX; self.nodes.len()];
        d[from] = 0;
        let mut queue = std::collections::VecDeque::from([from]);
        while let Some(x) = queue.pop_front() {
            for &(a, b) in &self.links {
                let y = if a == x {
                    b
                } else if b == x {
                    a
                } else {
                    continue;
                };
                if self.nodes[y].is_some() && d[y] == usize::MAX {
                    d[y] = d[x] + 1;
                    queue.push_back(y);
                }
            }
        }
        d
    }

    /// Whether every live node has a shortest-path route to every live node it can reach, and no route to a
    /// dead or unreachable one.
    pub async fn converged(&self) -> bool {
        self.discrepancies().await == [0; 4]
    }

    /// What is not converged yet: (routes to dead or unreachable nodes, missing routes, longer, shorter).
    pub async fn discrepancies(&self) -> [usize; 4] {
        let mut out = [0; 4];
        for i in self.alive() {
            let routes = self.node(i).routing.routes().await.unwrap();
            let d = self.distances(i);
            for (j, &dist) in d.iter().enumerate() {
                if j == i {
                    continue;
                }
                match (routes.iter().find(|r| r.prefix == address(j)).map(|r| r.path.len()), dist) {
                    (Some(_), usize::MAX) => out[0] += 1,
                    (None, usize::MAX) => {}
                    (None, _) => out[1] += 1,
                    (Some(l), d) if l > d => out[2] += 1,
                    (Some(l), d) if l < d => out[3] += 1,
                    _ => {}
                }
            }
        }
        out
    }

    /// Waits (woken by route changes) until [`IlpNet::converged`]; how long it took, or `None` after `limit`.
    pub async fn wait_converged(&self, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        let deadline = start + limit;
        loop {
            let notified = self.changed.notified();
            if self.converged().await {
                return Some(start.elapsed());
            }
            // Route events wake us; a short poll covers changes that produce none (a dead node's last route).
            let wake = (Instant::now() + Duration::from_millis(50)).min(deadline);
            if tokio::time::timeout_at(wake, notified).await.is_err() && Instant::now() >= deadline {
                return None;
            }
        }
    }

    /// Pays `amount` from `from`'s sending app to `to`'s receiving app: the answer, and the hops it took.
    pub async fn pay(&self, from: usize, to: usize, n: u64) -> (Reply, Option<i64>) {
        let mut fulfillment = [0u8; 32];
        fulfillment[..8].copy_from_slice(&n.to_be_bytes());
        fulfillment[8] = 1;
        let expires_at = Timestamp::now().plus_ms(20_000);
        let mut data = fulfillment.to_vec();
        data.extend_from_slice(&expires_at.unix_ms().to_be_bytes());
        let prepare = Prepare {
            amount: 10,
            expires_at,
            execution_condition: condition_of(&fulfillment),
            destination: Address::parse(&format!("{}.recv", address(to))).unwrap(),
            data: Bytes::from(data),
        };
        let reply = self.node(from).connector.prepare(AccountId::new("send").unwrap(), prepare).await;
        let hops = match &reply {
            Reply::Fulfill(f) => Some(i64::from_be_bytes(f.data[..8].try_into().unwrap())),
            Reply::Reject(_) => None,
        };
        (reply, hops)
    }

    /// Route-exchange counters of node `i`.
    pub async fn peer_stats(&self, i: usize) -> Vec<PeerRouting> {
        self.node(i).routing.peers().await.unwrap()
    }

    pub async fn stop(mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i).await;
        }
    }
}
