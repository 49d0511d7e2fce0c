//! `ledgerwire testnet` output started as four processes: a full mesh of peers and ILP links, and a payment from
//! node0's app to node3's app end to end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use ledgerwire_node::client;
use ledgerwire_reactors::ilp::Reply;
use ledgerwire_reactors::ilp_over_http::HttpClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testnet_homes_form_a_full_mesh_and_forward_a_payment() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    // Below Linux's ephemeral range (32768 and up), where the other tests' port-0 sockets land: 40 ports that only a
    // service bound on purpose could hold.
    let base = 20_000 + (std::process::id() % 1_000) as u16 * 10;
    let run_out =
        run(&["testnet", "--nodes", "4", "--output", out.to_str().unwrap(), "--base-port", &base.to_string()]);
    assert!(run_out.status.success(), "{}", String::from_utf8_lossy(&run_out.stderr));
    let nodes: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("testnet.json")).unwrap()).unwrap();
    let nodes = nodes.as_array().unwrap().clone();
    assert_eq!(nodes.len(), 4);

    // node3's app, where node3 POSTs its packets.
    let app3 = &nodes[3];
    let listener = tokio::net::TcpListener::bind(
        app3["app_url"].as_str().unwrap().trim_start_matches("http://").trim_end_matches("/ilp"),
    )
    .await
    .unwrap();
    let (_, fulfilled) = app::spawn_on(listener, app3["app_outgoing_token"].as_str().unwrap().to_owned());

    let mut running = Vec::new();
    for n in &nodes {
        running.push(start(std::path::Path::new(n["home"].as_str().unwrap())).await);
    }
    for node in running.iter_mut() {
        wait_logs(&mut node.logs, "ILP link up", 3).await;
    }
    for node in &running {
        let peers = client::get_json(node.admin, &node.token, "/peers").await.unwrap();
        assert_eq!(peers.as_array().unwrap().len(), 3, "a full mesh");
    }

    // Routes are learned by route exchange, which starts once the links are up: node 0 pays once it knows node 3's
    // prefix (bounded).
    let mut tries = 0;
    loop {
        let routes = client::get_json(running[0].admin, &running[0].token, "/routes").await.unwrap();
        if routes.as_array().unwrap().iter().any(|r| r["prefix"] == "test.node3") {
            break;
        }
        tries += 1;
        assert!(tries < 400, "node 0 did not learn test.node3 in 20 s: {routes}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let app0 = &nodes[0];
    let url = format!("http://{}/accounts/app/ilp", app0["ilp_http"].as_str().unwrap());
    let p = app::prepare(1, 12_345, "test.node3.app.invoice", 20_000);
    match HttpClient::default()
        .send(&url, app0["app_incoming_token"].as_str().unwrap(), &p, Duration::from_secs(20))
        .await
        .unwrap()
    {
        Reply::Fulfill(f) => assert_eq!(f.fulfillment, app::fulfillment(1)),
        Reply::Reject(r) => panic!("rejected: {r:?}"),
    }
    assert_eq!(fulfilled.amount.load(Ordering::SeqCst), 12_345);
    for node in running.iter_mut() {
        assert!(sigterm(node).await.success());
    }
}
