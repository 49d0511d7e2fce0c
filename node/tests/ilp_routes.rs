//! The three-process line with no static routes: A has no address and inherits one from its parent B (ILDCP over
//! the p2p link); B learns C's address from C, and A learns it from B (route exchange). A payment from A's app
//! crosses A → B → C to C's app once the routes are learned, and `ledgerwire routes` shows how.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use ledgerwire_node::client;
use ledgerwire_reactors::ilp::Reply;
use ledgerwire_reactors::ilp_over_http::HttpClient;

const SENDER_TOKEN: &str = "sender-to-a-token-0002";
const RECEIVER_TOKEN: &str = "c-to-receiver-token-02";

fn account(id: &str, relation: &str, node_id: &str, extra: &str) -> String {
    format!(
        "[[ilp.accounts]]\nid = \"{id}\"\nrelation = \"{relation}\"\nasset_code = \"USD\"\nasset_scale = 9\nnode_id = \"{node_id}\"\n{extra}"
    )
}

/// Waits (bounded) until `node`'s routing table has `prefix`; the route.
async fn learned(node: &Node, prefix: &str) -> serde_json::Value {
    for _ in 0..400 {
        let routes = client::get_json(node.admin, &node.token, "/routes").await.unwrap();
        if let Some(r) = routes.as_array().unwrap().iter().find(|r| r["prefix"] == prefix) {
            return r.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{prefix} was not learned in 20 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_static_routes_a_payment_crosses_three_processes_once_routes_are_learned() {
    let (receiver_addr, fulfilled) = app::spawn(RECEIVER_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (ha, hb, hc) = (home(&dir, "a"), home(&dir, "b"), home(&dir, "c"));
    for h in [&ha, &hb, &hc] {
        init(h, "tm2");
    }
    let (ida, idb, idc) = (node_id(&ha), node_id(&hb), node_id(&hc));
    // B: A is its child (which it also sends routes to), C its peer, allowed to announce its own address space.
    configure_ilp(
        &hb,
        "test.b",
        &[
            account("a", "child", &ida, "send_routes = true\n"),
            account("c", "peer", &idc, "allowed_prefixes = [\"test.c\"]\n"),
        ]
        .concat(),
    );
    let mut b = start(&hb).await;
    // B's event stream, open before its peers connect.
    let mut events = follow_events(&b).await;
    // A: no address of its own; B is its parent.
    configure_ilp(
        &ha,
        "",
        &[
            app_account("sender", "http://127.0.0.1:9/unused", SENDER_TOKEN, "a-to-sender-token-0002"),
            account("b", "parent", &idb, ""),
        ]
        .concat(),
    );
    configure_ilp(
        &hc,
        "test.c",
        &[
            account("b", "peer", &idb, "allowed_prefixes = [\"test.b\"]\n"),
            app_account("receiver", &format!("http://{receiver_addr}/ilp"), "receiver-to-c-token-02", RECEIVER_TOKEN),
        ]
        .concat(),
    );
    for h in [&ha, &hc] {
        edit(h, |c| c.replace("persistent_peers = \"\"", &format!("persistent_peers = \"{idb}@{}\"", b.p2p)));
    }
    let mut a = start(&ha).await;
    let mut c = start(&hc).await;
    let inherited = wait_log(&mut a.logs, "ILP address inherited from the parent").await;
    assert_eq!(inherited["address"], "test.b.a");

    // B reports the route it learned on /events.
    let added = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let e = events.recv().await.unwrap();
            if e["event"] == "route_added" && e["prefix"] == "test.c" {
                return e;
            }
        }
    })
    .await
    .expect("route_added for test.c on /events");
    assert_eq!((added["next_hop"].as_str(), added["path"].clone()), (Some("c"), serde_json::json!(["test.c"])));
    // B learned test.c from C; A learned it from B, with the path.
    let at_b = learned(&b, "test.c").await;
    assert_eq!((at_b["next_hop"].as_str(), at_b["source"].as_str()), (Some("c"), Some("learned")));
    let at_a = learned(&a, "test.c").await;
    assert_eq!(at_a["path"], serde_json::json!(["test.b", "test.c"]));
    // C reaches A's app under B's address.
    let at_c = learned(&c, "test.b").await;
    assert_eq!(at_c["next_hop"], "b");

    let url = format!("http://{}/accounts/sender/ilp", a.started["ilp_http"].as_str().unwrap());
    let http = HttpClient::default();
    let mut total = 0u64;
    for n in 0..20u64 {
        let p = app::prepare(n, 100 + n, "test.c.receiver.invoice", 20_000);
        match http.send(&url, SENDER_TOKEN, &p, Duration::from_secs(20)).await.unwrap() {
            Reply::Fulfill(f) => assert_eq!(f.fulfillment, app::fulfillment(n)),
            Reply::Reject(r) => panic!("packet {n} rejected: {r:?}"),
        }
        total += 100 + n;
    }
    assert_eq!(fulfilled.amount.load(Ordering::SeqCst), total);

    // The CLI shows the table and the exchange counters.
    let out = run(&["routes", "--home", ha.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("test.c ") && l.contains("learned") && l.contains("test.b > test.c")),
        "{text}"
    );
    let out = run(&["routes", "--home", hb.to_str().unwrap(), "--peers", "--json"]);
    let peers: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c_row = peers.as_array().unwrap().iter().find(|p| p["account"] == "c").unwrap();
    assert!(
        c_row["updates_received"].as_u64().unwrap() >= 1 && c_row["updates_sent"].as_u64().unwrap() >= 1,
        "{c_row}"
    );

    for node in [&mut a, &mut b, &mut c] {
        assert!(sigterm(node).await.success());
    }
}
