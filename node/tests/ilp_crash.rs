//! Balances are money: a node killed with SIGKILL in the middle of a payment stream, again and again, never loses
//! a balance change it acknowledged. Each round starts the node, streams payments from one app to another through
//! it, kills it at a different point, and restarts it; every balance is then checked against the Fulfills that
//! crossed it: at least what the sender received (acknowledged), at most what the receiver released.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use ledgerwire_node::client;
use ledgerwire_reactors::ilp::Reply;
use ledgerwire_reactors::ilp_over_http::HttpClient;
use tokio::task::JoinSet;

const PAYER_TOKEN: &str = "payer-to-node-token-01";
const PAYEE_TOKEN: &str = "node-to-payee-token-01";
const ROUNDS: u64 = 10;

async fn balance(node: &Node, account: &str) -> i128 {
    let v = client::get_json(node.admin, &node.token, &format!("/accounts/{account}/balance")).await.unwrap();
    v["balance"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_node_mid_stream_never_loses_an_acknowledged_balance_change() {
    let (payee_addr, released) = app::spawn(PAYEE_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let h = home(&dir, "n");
    init(&h, "tm2");
    configure_ilp(
        &h,
        "test.n",
        &[
            app_account("payer", "http://127.0.0.1:9/unused", PAYER_TOKEN, "node-to-payer-token-01"),
            app_account("payee", &format!("http://{payee_addr}/ilp"), "payee-to-node-token-01", PAYEE_TOKEN),
        ]
        .concat(),
    );
    // What the payer was told was fulfilled, over all rounds.
    let acknowledged = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    for round in 0..ROUNDS {
        let mut node = start(&h).await;
        let url = format!("http://{}/accounts/payer/ilp", node.started["ilp_http"].as_str().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let mut senders = JoinSet::new();
        for _ in 0..8 {
            let (url, stop, acknowledged, next) = (url.clone(), stop.clone(), acknowledged.clone(), next.clone());
            senders.spawn(async move {
                let http = HttpClient::default();
                // Bounded: at most 100,000 packets per sender and round.
                for _ in 0..100_000 {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    let amount = 1 + n % 1000;
                    let p = app::prepare(n, amount, "test.n.payee.x", 10_000);
                    match http.send(&url, PAYER_TOKEN, &p, Duration::from_secs(10)).await {
                        Ok(Reply::Fulfill(_)) => {
                            acknowledged.fetch_add(amount, Ordering::SeqCst);
                        }
                        Ok(Reply::Reject(r)) => panic!("rejected while the node ran: {r:?}"),
                        // The node died under us: this packet was never acknowledged.
                        Err(_) => return,
                    }
                }
            });
        }
        // Kill at a different depth into the stream each round.
        let target = released.count.load(Ordering::SeqCst) + 20 + round * 37;
        tokio::time::timeout(PATIENCE, async {
            loop {
                let more = released.changed.notified();
                if released.count.load(Ordering::SeqCst) >= target {
                    break;
                }
                more.await;
            }
        })
        .await
        .expect("payments flow");
        node.child.start_kill().unwrap();
        let _ = node.child.wait().await;
        stop.store(true, Ordering::SeqCst);
        while senders.join_next().await.is_some() {}

        let node = start(&h).await;
        let (payer, payee) = (balance(&node, "payer").await, balance(&node, "payee").await);
        let (acked, out) =
            (i128::from(acknowledged.load(Ordering::SeqCst)), i128::from(released.amount.load(Ordering::SeqCst)));
        assert_eq!(payer, -payee, "round {round}: both sides of each payment were written together");
        assert!(payer >= acked, "round {round}: lost an acknowledged change: balance {payer} < acknowledged {acked}");
        assert!(payer <= out, "round {round}: recorded more than the payee released: {payer} > {out}");
        let mut node = node;
        node.child.start_kill().unwrap();
        let _ = node.child.wait().await;
    }
    assert!(acknowledged.load(Ordering::SeqCst) > 0);
}
