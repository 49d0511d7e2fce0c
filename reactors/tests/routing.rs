//! Route exchange over real p2p connections: line, ring, star and a random mesh converge and forwarding follows
//! the best path; a ring survives a failed node without loops and converges again when it returns; a peer's
//! routes through us or outside its allowance are ignored.
#![allow(clippy::unwrap_used)]

mod common {
    #![allow(unreachable_pub)]
    pub mod ilp_net;
}

use std::time::Duration;

use common::ilp_net::{IlpNet, address};
use ledgerwire_conn::mconnection::ChannelDescriptor;
use ledgerwire_p2p::{ReactorEvent, SwitchBuilder, SwitchConfig};
use ledgerwire_reactors::accounts::store::AccountSource;
use ledgerwire_reactors::accounts::{AccountSpec, Relation};
use ledgerwire_reactors::forwarding;
use ledgerwire_reactors::ilp::{ErrorCode, Reply};
use ledgerwire_reactors::routing::wire::{CcpMessage, RouteUpdate, WireRoute};
use ledgerwire_reactors::routing::{self, ROUTING_CHANNEL};
use ledgerwire_types::{HostAddress, NodeKey, WireProfile};
use tokio::task::JoinSet;

const INTERVAL: Duration = Duration::from_secs(2);

/// Full reachability within three broadcast intervals of the last link (debounced updates carry changes at
/// once; the interval only paces heartbeats).
async fn converges(net: &IlpNet) -> Duration {
    let took = net.wait_converged(3 * INTERVAL).await;
    match took {
        Some(t) => t,
        None => panic!(
            "no full reachability within 3 broadcast intervals: [to dead, missing, longer, shorter] = {:?}",
            net.discrepancies().await
        ),
    }
}

async fn hops(net: &IlpNet, from: usize, to: usize) -> i64 {
    let (reply, hops) = net.pay(from, to, (from * 1000 + to) as u64).await;
    hops.unwrap_or_else(|| panic!("n{from} → n{to}: {reply:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_learns_every_address_and_payments_cross_it_in_both_profiles() {
    for profile in [WireProfile::Tm2, WireProfile::CometBft] {
        let mut net = IlpNet::new(4, profile, INTERVAL).await;
        for i in 1..4 {
            net.link(i - 1, i).await;
        }
        converges(&net).await;
        let routes = net.node(0).routing.routes().await.unwrap();
        let r = routes.iter().find(|r| r.prefix == "test.n3").unwrap();
        assert_eq!(r.path, ["test.n1", "test.n2", "test.n3"]);
        assert_eq!(r.next_hop.as_ref().unwrap().as_str(), "n1");
        // Each connector on the way (n0 … n3) takes one second off the expiry: four hops.
        assert_eq!(hops(&net, 0, 3).await, 4);
        assert_eq!(hops(&net, 3, 0).await, 4);
        let stats = net.peer_stats(1).await;
        assert!(stats.iter().all(|p| p.updates_sent > 0 && p.updates_received > 0 && p.bytes_sent > 0), "{stats:?}");
        net.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_a_star_and_a_random_mesh_of_twenty_converge_and_forwarding_takes_the_shortest_way() {
    // Ring of 6: the two directions.
    let mut net = IlpNet::new(6, WireProfile::Tm2, INTERVAL).await;
    for i in 0..6 {
        net.link(i, (i + 1) % 6).await;
    }
    converges(&net).await;
    assert_eq!(hops(&net, 0, 2).await, 3);
    assert_eq!(hops(&net, 0, 4).await, 3);
    net.stop().await;

    // Star: leaves reach each other through the hub.
    let mut net = IlpNet::new(8, WireProfile::Tm2, INTERVAL).await;
    for i in 1..8 {
        net.link(i, 0).await;
    }
    converges(&net).await;
    assert_eq!(hops(&net, 3, 7).await, 3);
    net.stop().await;

    // A random connected mesh of 20 (a spanning line plus random chords, from a fixed seed).
    let mut net = IlpNet::new(20, WireProfile::Tm2, INTERVAL).await;
    let links = common::ilp_net::mesh(20, 35, 0x2545_f491_4f6c_dd1d);
    for &(a, b) in &links {
        net.link(a, b).await;
    }
    converges(&net).await;
    // Forwarding follows the shortest path: hops = the breadth-first distance + 1.
    let dist = |from: usize, to: usize| net.distances(from)[to];
    for (from, to) in [(0, 19), (5, 13), (17, 2)] {
        assert_eq!(hops(&net, from, to).await as usize, dist(from, to) + 1, "n{from} → n{to}");
    }
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_ring_node_fails_routes_move_to_the_other_side_without_loops_and_come_back_when_it_returns() {
    let mut net = IlpNet::new(6, WireProfile::Tm2, INTERVAL).await;
    for i in 0..6 {
        net.link(i, (i + 1) % 6).await;
    }
    converges(&net).await;
    assert_eq!(hops(&net, 0, 2).await, 3);

    // Payments n0 → n2 keep flowing while n1 fails and returns; none may circle (each connector takes a second
    // off a 7 s expiry, so a looping packet would show more hops than the ring has nodes, or run out of time).
    let mut net = net;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let payer = {
        let from = net.node(0).connector.clone();
        tokio::spawn(async move {
            let mut results = Vec::new();
            let mut inflight = JoinSet::new();
            // Paced (a refused payment answers at once), not synchronised: one every 5 ms.
            let mut pace = tokio::time::interval(Duration::from_millis(5));
            for n in 0..10_000u64 {
                pace.tick().await;
                if *stop_rx.borrow() {
                    break;
                }
                inflight.spawn(common_pay(from.clone(), 2, n));
                if inflight.len() > 20 {
                    results.push(inflight.join_next().await.unwrap().unwrap());
                }
            }
            while let Some(r) = inflight.join_next().await {
                results.push(r.unwrap());
            }
            results
        })
    };
    net.kill(1).await;
    converges(&net).await;
    {
        assert_eq!(hops(&net, 0, 2).await, 5, "around the other side: n0 n5 n4 n3 n2");
        assert_eq!(
            net.node(0).routing.routes().await.unwrap().iter().find(|r| r.prefix == "test.n2").unwrap().path,
            ["test.n5", "test.n4", "test.n3", "test.n2"]
        );
    }
    net.restart(1).await;
    converges(&net).await;
    assert_eq!(hops(&net, 0, 2).await, 3, "back through n1");
    stop_tx.send(true).unwrap();
    let results = payer.await.unwrap();
    let fulfilled: Vec<i64> = results.iter().filter_map(|(_, h)| *h).collect();
    let mut codes = std::collections::BTreeMap::new();
    for (c, _) in &results {
        *codes.entry(c.map(|c| c.to_string()).unwrap_or_default()).or_insert(0) += 1;
    }
    eprintln!("failover: {} payments, {} fulfilled, {codes:?}", results.len(), fulfilled.len());
    assert!(fulfilled.iter().filter(|&&h| h == 5).count() > 0, "some went around while n1 was down");
    assert!(!fulfilled.is_empty());
    assert!(fulfilled.iter().all(|&h| h == 3 || h == 5), "hops seen: {:?}", {
        let mut h = fulfilled.clone();
        h.sort();
        h.dedup();
        h
    });
    // While routes converge, two neighbours can briefly point at each other (each has yet to hear the other's
    // withdrawal): a packet caught in that loop loses a second of expiry per hop and ends R02 (about one run in
    // fifteen), which is how ILP bounds transient loops. Converged routes have none (checked above), and a loop that
    // lasted would catch every payment sent meanwhile, not one or two.
    let r02 = results.iter().filter(|(c, _)| *c == Some(ErrorCode::R02_INSUFFICIENT_TIMEOUT)).count();
    assert!(r02 <= 2, "{r02} payments caught in loops");
    for (code, _) in results.iter().filter(|(c, _)| c.is_some()) {
        let code = code.unwrap();
        assert!(
            [
                ErrorCode::F02_UNREACHABLE,
                ErrorCode::R00_TRANSFER_TIMED_OUT,
                ErrorCode::T01_PEER_UNREACHABLE,
                ErrorCode::R02_INSUFFICIENT_TIMEOUT
            ]
            .contains(&code),
            "a packet rejected with {code}"
        );
    }
    net.stop().await;
}

/// One payment from `n0`'s sending app (helper for the concurrent payer): the reject code, or the hops.
async fn common_pay(connector: forwarding::Connector, to: usize, n: u64) -> (Option<ErrorCode>, Option<i64>) {
    use bytes::Bytes;
    use ledgerwire_reactors::accounts::AccountId;
    use ledgerwire_reactors::ilp::{Address, Prepare, Timestamp, condition_of};
    let mut fulfillment = [0u8; 32];
    fulfillment[..8].copy_from_slice(&n.to_be_bytes());
    let expires_at = Timestamp::now().plus_ms(7_000);
    let mut data = fulfillment.to_vec();
    data.extend_from_slice(&expires_at.unix_ms().to_be_bytes());
    let prepare = Prepare {
        amount: 1,
        expires_at,
        execution_condition: condition_of(&fulfillment),
        destination: Address::parse(&format!("{}.recv", address(to))).unwrap(),
        data: Bytes::from(data),
    };
    match connector.prepare(AccountId::new("send").unwrap(), prepare).await {
        Reply::Fulfill(f) => (None, Some(i64::from_be_bytes(f.data[..8].try_into().unwrap()))),
        Reply::Reject(r) => (Some(r.code), None),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_through_us_or_outside_a_peers_allowance_are_ignored() {
    let net = IlpNet::new(1, WireProfile::Tm2, INTERVAL).await;
    // "evil" speaks the route-exchange channel by hand.
    let key = std::sync::Arc::new(NodeKey::generate());
    let evil_id = key.node_id(WireProfile::Tm2);
    let mut builder =
        SwitchBuilder::new(key, WireProfile::Tm2, SwitchConfig::new("127.0.0.1:0".parse().unwrap(), "ilp-net"), None);
    let mut ctx = builder
        .add_reactor("evil", &[forwarding::descriptor(64), routing::descriptor()] as &[ChannelDescriptor], 64)
        .unwrap();
    let evil = builder.start().await.unwrap();
    // n0 has an account for it that allows its own address space.
    let spec = AccountSpec {
        node_id: Some(evil_id.to_string()),
        allowed_prefixes: Some(vec!["test.evil".into()]),
        ..AccountSpec::new("evil", Relation::Peer, "USD", 9)
    };
    net.node(0).connector.add_account(spec, AccountSource::Api).await.unwrap();
    let n0 = &net.node(0).switch;
    let addr = HostAddress::parse(&format!("{}@{}", n0.id(), n0.listen_addr().unwrap()), WireProfile::Tm2).unwrap();
    evil.dial(addr, false).await.unwrap();
    let handle = loop {
        if let Some(ReactorEvent::PeerUp(h)) = ctx.events.recv().await {
            break h;
        }
    };
    let route = |prefix: &str, path: &[&str]| WireRoute {
        prefix: prefix.into(),
        path: path.iter().map(|s| s.to_string()).collect(),
        auth: vec![0; 32],
    };
    let update = RouteUpdate {
        routing_table_id: vec![7; 16],
        current_epoch: 4,
        from_epoch: 0,
        to_epoch: 4,
        hold_down_time_ms: 60_000,
        speaker: "test.evil".into(),
        new_routes: vec![
            route("test.evil", &["test.evil"]),
            route("test.evil.shop", &["test.evil", "test.n0", "test.shop"]),
            route("test.bank", &["test.evil"]),
            route("test.n0.recv", &["test.evil"]),
        ],
        withdrawn_routes: vec![],
    };
    handle.send(ROUTING_CHANNEL, CcpMessage::update(update).to_bytes()).await.unwrap();
    let mut changes = net.node(0).routing.subscribe();
    let learned = loop {
        let routes = net.node(0).routing.routes().await.unwrap();
        if routes.iter().any(|r| r.prefix == "test.evil") {
            break routes;
        }
        tokio::time::timeout(Duration::from_secs(10), changes.recv()).await.expect("test.evil is learned").unwrap();
    };
    let prefixes: Vec<&str> = learned.iter().map(|r| r.prefix.as_str()).collect();
    assert!(!prefixes.contains(&"test.evil.shop") && !prefixes.contains(&"test.bank"), "{prefixes:?}");
    let recv = learned.iter().find(|r| r.prefix == "test.n0.recv").unwrap();
    assert!(recv.next_hop.as_ref().unwrap().as_str() == "recv", "our own app's route is untouched");
    let stats = net.peer_stats(0).await;
    assert_eq!(stats.iter().find(|p| p.account == "evil").unwrap().routes_refused, 3);
    // A payment to the refused prefix is not sent to evil.
    let (reply, _) = net.pay(0, 0, 1).await;
    assert!(matches!(reply, Reply::Fulfill(_)));
    evil.stop().await;
    net.stop().await;
}
