//! Three nodes in a line, as separate processes over real sockets: app → A → B → C → app, with static routes,
//! in both wire profiles. Every Prepare is fulfilled end to end, and the balances on every hop add up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use ledgerwire_node::client;
use ledgerwire_reactors::ilp::Reply;
use ledgerwire_reactors::ilp_over_http::{HttpClient, SendError};

const SENDER_TOKEN: &str = "sender-to-a-token-0001";
const RECEIVER_TOKEN: &str = "c-to-receiver-token-01";

async fn balance(node: &Node, account: &str) -> i128 {
    let v = client::get_json(node.admin, &node.token, &format!("/accounts/{account}/balance")).await.unwrap();
    v["balance"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_crosses_three_node_processes_and_every_hop_balances_in_both_profiles() {
    let (receiver_addr, fulfilled) = app::spawn(RECEIVER_TOKEN).await;
    for profile in ["tm2", "cometbft"] {
        let dir = tempfile::tempdir().unwrap();
        let (ha, hb, hc) = (home(&dir, "a"), home(&dir, "b"), home(&dir, "c"));
        for h in [&ha, &hb, &hc] {
            init(h, profile);
        }
        let (ida, idb, idc) = (node_id(&ha), node_id(&hb), node_id(&hc));
        configure_ilp(
            &hb,
            "test.b",
            &[peer_account("a", &ida), peer_account("c", &idc), route("test.a", "a"), route("test.c", "c")].concat(),
        );
        let mut b = start(&hb).await;
        for (h, address, blocks) in [
            (
                &ha,
                "test.a",
                [
                    app_account("sender", "http://127.0.0.1:9/unused", SENDER_TOKEN, "a-to-sender-token-0001"),
                    peer_account("b", &idb),
                    route("test.c", "b"),
                ]
                .concat(),
            ),
            (
                &hc,
                "test.c",
                [
                    peer_account("b", &idb),
                    app_account(
                        "receiver",
                        &format!("http://{receiver_addr}/ilp"),
                        "receiver-to-c-token-01",
                        RECEIVER_TOKEN,
                    ),
                ]
                .concat(),
            ),
        ] {
            configure_ilp(h, address, &blocks);
            edit(h, |c| c.replace("persistent_peers = \"\"", &format!("persistent_peers = \"{idb}@{}\"", b.p2p)));
        }
        let mut a = start(&ha).await;
        let mut c = start(&hc).await;
        wait_logs(&mut a.logs, "ILP link up", 1).await;
        wait_logs(&mut c.logs, "ILP link up", 1).await;
        wait_logs(&mut b.logs, "ILP link up", 2).await;

        let url = format!("http://{}/accounts/sender/ilp", a.started["ilp_http"].as_str().unwrap());
        let http = HttpClient::default();
        let before = fulfilled.amount.load(Ordering::SeqCst);
        let mut total = 0u64;
        for n in 0..100u64 {
            let amount = 1_000 + n;
            let p = app::prepare(n, amount, "test.c.receiver.invoice", 20_000);
            match http.send(&url, SENDER_TOKEN, &p, Duration::from_secs(20)).await.unwrap() {
                Reply::Fulfill(f) => assert_eq!(f.fulfillment, app::fulfillment(n)),
                Reply::Reject(r) => panic!("{profile}: packet {n} rejected: {r:?}"),
            }
            total += amount;
        }
        assert_eq!(fulfilled.amount.load(Ordering::SeqCst) - before, total, "{profile}: the app saw every packet once");
        let total = i128::from(total);
        assert_eq!((balance(&a, "sender").await, balance(&a, "b").await), (total, -total), "{profile}: A");
        assert_eq!((balance(&b, "a").await, balance(&b, "c").await), (total, -total), "{profile}: B");
        assert_eq!((balance(&c, "b").await, balance(&c, "receiver").await), (total, -total), "{profile}: C");

        // A wrong token is refused before anything is forwarded; a body that is not a Prepare gets 400.
        let p = app::prepare(999, 5, "test.c.receiver.invoice", 20_000);
        assert!(matches!(
            http.send(&url, "wrong-token-wrong-token", &p, Duration::from_secs(5)).await,
            Err(SendError::Status(401))
        ));
        assert_eq!(balance(&a, "sender").await, total);

        for node in [&mut a, &mut b, &mut c] {
            assert!(sigterm(node).await.success());
        }
    }
}
