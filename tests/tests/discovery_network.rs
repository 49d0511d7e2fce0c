//! Thirty nodes on loopback, each configured with only the first one as its seed: every node reaches its outbound
//! target, no response ever sent contains an ID its sender keeps private, and a restarted node finds its way back
//! from its address book alone.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ledgerwire_p2p::{Direction, SwitchEvent};
use ledgerwire_reactors::discovery::DiscoveryEvent;
use ledgerwire_tests::{DiscoveryOptions, NodeOptions, TestNode};
use ledgerwire_types::{NodeId, NodeKey, WireProfile};
use tokio::sync::mpsc;

const N: usize = 30;
const TARGET: usize = 4;

async fn outbound(node: &TestNode) -> usize {
    node.switch
        .peers()
        .unwrap()
        .iter()
        .filter(|p| p.info.counted_as == Direction::Outbound && !p.info.persistent)
        .count()
}

/// Waits until every node has `TARGET` outbound peers, re-checking after every switch event of any node.
async fn until_all_reach_target(nodes: &[TestNode], changes: &mut mpsc::UnboundedReceiver<()>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let mut short = 0;
        for n in nodes {
            if outbound(n).await < TARGET {
                short += 1;
            }
        }
        if short == 0 {
            return;
        }
        assert!(
            tokio::time::timeout_at(deadline, changes.recv()).await.is_ok(),
            "{short} nodes below the outbound target"
        );
    }
}

fn watch(node: &TestNode, changes: &mpsc::UnboundedSender<()>) {
    let mut events = node
        .switch
        .subscribe(|e| matches!(e, SwitchEvent::PeerConnected { .. } | SwitchEvent::PeerDisconnected { .. }))
        .unwrap();
    let tx = changes.clone();
    tokio::spawn(async move {
        while events.recv().await.is_some() {
            if tx.send(()).is_err() {
                break;
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_nodes_find_each_other_from_one_seed_and_a_restarted_node_needs_no_seed() {
    let profile = WireProfile::Tm2;
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<Arc<NodeKey>> = (0..N).map(|_| Arc::new(NodeKey::generate())).collect();
    let id = |i: usize| keys[i].node_id(profile);
    // Who keeps whom private: the seed hides node 1; every fifth node hides its neighbour.
    let private_of = |i: usize| -> Vec<NodeId> {
        match i {
            0 => vec![id(1)],
            i if i % 5 == 2 && i + 1 < N => vec![id(i + 1)],
            _ => vec![],
        }
    };
    let opts = |i: usize, seeds| NodeOptions {
        profile,
        key: Some(keys[i].clone()),
        private: private_of(i),
        tweak: |c| c.max_inbound = 40,
        discovery: Some(DiscoveryOptions {
            seeds,
            book_file: Some(dir.path().join(format!("book-{i}.json"))),
            interval: Duration::from_millis(150),
            max_outbound: TARGET,
            ..Default::default()
        }),
        ..Default::default()
    };

    // Every answer every node sends, with its sender.
    let (answers_tx, mut answers) = mpsc::unbounded_channel::<(usize, Vec<NodeId>)>();
    let record = |i: usize, node: &TestNode| {
        let mut rx = node.discovery.as_ref().unwrap().subscribe();
        let tx = answers_tx.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(DiscoveryEvent::Answered { addresses, .. }) => {
                        let _ = tx.send((i, addresses.iter().map(|a| a.id()).collect()));
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => panic!("lost {n} discovery events"),
                    Err(_) => break,
                }
            }
        });
    };

    let (changes_tx, mut changes) = mpsc::unbounded_channel();
    let seed = TestNode::spawn(opts(0, vec![])).await;
    record(0, &seed);
    watch(&seed, &changes_tx);
    let seed_address = seed.address.clone();
    let mut nodes = vec![seed];
    for i in 1..N {
        let node = TestNode::spawn(opts(i, vec![seed_address.clone()])).await;
        record(i, &node);
        watch(&node, &changes_tx);
        nodes.push(node);
    }
    until_all_reach_target(&nodes, &mut changes).await;

    // Restart node 7 on the same address with its address book and no seed at all.
    let k = 7;
    let listen = nodes[k].switch.listen_addr().unwrap();
    nodes[k].switch.stop().await;
    tokio::time::timeout(Duration::from_secs(30), nodes[k].discovery.as_ref().unwrap().stopped())
        .await
        .expect("book saved");
    let mut restarted = opts(k, vec![]);
    restarted.listen = listen;
    let node = TestNode::spawn(restarted).await;
    assert!(node.discovery.as_ref().unwrap().address_book().await.len() >= TARGET, "the book came back from disk");
    watch(&node, &changes_tx);
    record(k, &node);
    nodes[k] = node;
    // It has no seed configured: every outbound peer it reaches comes from its address book.
    until_all_reach_target(&nodes[k..=k], &mut changes).await;

    // No answer ever contained an ID its sender keeps private; count what was checked.
    for n in &nodes {
        n.switch.stop().await;
    }
    // Every reactor (and so every event sender) is gone once the nodes are.
    drop(nodes);
    drop(answers_tx);
    let (mut responses, mut addresses) = (0, 0);
    while let Some((sender, ids)) =
        tokio::time::timeout(Duration::from_secs(30), answers.recv()).await.expect("recorders finish")
    {
        let private: HashSet<NodeId> = private_of(sender).into_iter().collect();
        for a in &ids {
            assert!(!private.contains(a), "node {sender} shared its private peer {a}");
        }
        responses += 1;
        addresses += ids.len();
    }
    eprintln!("checked {responses} responses carrying {addresses} addresses; none private");
    assert!(responses >= N && addresses > N, "discovery really ran: {responses} responses, {addresses} addresses");
}
