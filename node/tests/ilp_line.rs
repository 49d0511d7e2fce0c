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

        admin_api_manages_accounts_settlements_and_routes(&a, total).await;

        for node in [&mut a, &mut b, &mut c] {
            assert!(sigterm(node).await.success());
        }
    }
}

/// On node A after the payments: accounts made and removed through the API, a settlement recorded, the routes.
async fn admin_api_manages_accounts_settlements_and_routes(a: &Node, total: i128) {
    let status = |r: Result<serde_json::Value, client::ClientError>| match r {
        Ok(_) => 200,
        Err(client::ClientError::Status { status, .. }) => status,
        Err(e) => panic!("{e}"),
    };
    let wallet = serde_json::json!({
        "id": "wallet", "relation": "child", "asset_code": "USD", "asset_scale": 9,
        "http": { "url": "http://127.0.0.1:9/w", "incoming_token": "wallet-in-token-0001", "outgoing_token": "wallet-out-token-001" },
        "max_packet_amount": 5000,
    });
    // Events: the ILP ones come on the same stream as the switch's.
    let mut events = follow_events(a).await;
    let added = client::post_json(a.admin, &a.token, "/accounts", &wallet).await.unwrap();
    assert_eq!(added["added"], "wallet");
    // Switch events (discovery connecting A and C) may come first.
    let event = next_event(&mut events, "account_added", |e| e["event"] == "account_added").await;
    assert_eq!((event["event"].as_str(), event["account"].as_str()), (Some("account_added"), Some("wallet")));
    let accounts = client::get_json(a.admin, &a.token, "/accounts").await.unwrap();
    let w = accounts.as_array().unwrap().iter().find(|x| x["id"] == "wallet").unwrap();
    assert_eq!((w["source"].as_str(), w["http_url"].as_str()), (Some("api"), Some("http://127.0.0.1:9/w")));
    assert!(!accounts.to_string().contains("wallet-in-token"), "tokens never leave the node");
    // The same incoming token as another account, an account from config.toml, an invalid field.
    let mut same_token = wallet.clone();
    same_token["id"] = "wallet2".into();
    assert_eq!(status(client::post_json(a.admin, &a.token, "/accounts", &same_token).await), 409);
    let mut config_one = wallet.clone();
    config_one["id"] = "sender".into();
    config_one["http"]["incoming_token"] = "another-token-00001".into();
    assert_eq!(status(client::post_json(a.admin, &a.token, "/accounts", &config_one).await), 409);
    let mut bad = wallet.clone();
    bad["id"] = "a.b".into();
    match client::post_json(a.admin, &a.token, "/accounts", &bad).await {
        Err(client::ClientError::Status { status: 400, body }) => assert!(body.contains("id:"), "{body}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(status(client::delete_json(a.admin, &a.token, "/accounts/sender").await), 409);
    assert_eq!(status(client::delete_json(a.admin, &a.token, "/accounts/wallet").await), 200);
    assert_eq!(status(client::delete_json(a.admin, &a.token, "/accounts/wallet").await), 404);

    // We paid b 500 outside the network: the balance moves by 500, durably, with a record.
    let body = serde_json::json!({ "amount": "500", "direction": "outgoing", "note": "wire 42" });
    let record = client::post_json(a.admin, &a.token, "/accounts/b/settlements", &body).await.unwrap();
    assert_eq!(record["balance"], (-total + 500).to_string());
    let b = client::get_json(a.admin, &a.token, "/accounts/b/balance").await.unwrap();
    assert_eq!(b["balance"], (-total + 500).to_string());
    let records = client::get_json(a.admin, &a.token, "/accounts/b/settlements").await.unwrap();
    assert_eq!(records.as_array().unwrap().len(), 1);
    let zero = serde_json::json!({ "amount": "0", "direction": "incoming" });
    assert_eq!(status(client::post_json(a.admin, &a.token, "/accounts/b/settlements", &zero).await), 400);

    let routes = client::get_json(a.admin, &a.token, "/routes").await.unwrap();
    assert!(
        routes
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["prefix"] == "test.c" && r["next_hop"] == "b" && r["source"] == "configured")
    );
    assert!(routes.as_array().unwrap().iter().any(|r| r["prefix"] == "test.a.sender" && r["source"] == "local"));
}
