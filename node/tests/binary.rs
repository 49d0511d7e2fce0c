//! The `ledgerwire` binary as an operator runs it: init, start, the admin API and CLI, two nodes joined through
//! `persistent_peers`, a refused bad config, and a clean stop on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

use ledgerwire_node::client;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_join_through_persistent_peers_and_stop_cleanly() {
    for profile in ["tm2", "cometbft"] {
        let dir = tempfile::tempdir().unwrap();
        let (h1, h2) = (home(&dir, "a"), home(&dir, "b"));
        init(&h1, profile);
        init(&h2, profile);
        let id1 =
            String::from_utf8(run(&["show-node-id", "--home", h1.to_str().unwrap()]).stdout).unwrap().trim().to_owned();
        if profile == "tm2" {
            assert!(id1.starts_with("g1"), "{id1}");
        } else {
            assert_eq!(id1.len(), 40);
        }

        let mut a = start(&h1).await;
        assert_eq!(a.id, id1);
        // Follow a's events before b exists, so the connection cannot be missed.
        let mut events = follow_events(&a).await;
        let p2p_a = a.p2p.clone();
        edit(&h2, |c| c.replace("persistent_peers = \"\"", &format!("persistent_peers = \"{id1}@{p2p_a}\"")));
        let mut b = start(&h2).await;

        let connected = next_event(&mut events, "b connects to a", |e| e["event"] == "peer_connected").await;
        assert_eq!(connected["peer"], b.id.as_str());
        assert_eq!(connected["direction"], "inbound");
        // b admits the connection on its side too (both finish the handshake at about the same time).
        wait_log(&mut b.logs, "peer connected").await;

        // The admin API, with and without the token.
        let status = client::get_json(a.admin, &a.token, "/status").await.unwrap();
        assert_eq!((status["id"].as_str(), status["profile"].as_str()), (Some(id1.as_str()), Some(profile)));
        assert_eq!(status["node_info"]["network"], "itest");
        let discovery = if profile == "tm2" { "0x50" } else { "0x00" };
        assert_eq!(status["node_info"]["channels"], serde_json::json!(["0x70", discovery, "0x71", "0x72"]));
        assert!(matches!(
            client::get_json(a.admin, "wrong-token-xxxxxxxx", "/status").await,
            Err(client::ClientError::Status { status: 401, .. })
        ));
        let peers = client::get_json(b.admin, &b.token, "/peers").await.unwrap();
        assert_eq!(peers[0]["id"], id1.as_str());
        assert_eq!((peers[0]["direction"].as_str(), peers[0]["persistent"].as_bool()), (Some("outbound"), Some(true)));

        // The CLI face of /peers.
        let out = run(&["peers", "--home", h1.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let table = String::from_utf8(out.stdout).unwrap();
        assert!(table.contains(&b.id) && table.contains("1 peer(s)"), "{table}");

        // b dialed a, so a is a proven entry of b's address book.
        let book = client::get_json(b.admin, &b.token, "/addrbook").await.unwrap();
        let entry = book
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["address"].as_str().unwrap().starts_with(&id1))
            .expect("a in b's book");
        assert!(entry["last_success"].is_u64(), "{entry}");
        assert_eq!(entry["source"], "config", "a persistent peer's configured address");
        let out = run(&["addrbook", "--home", h2.to_str().unwrap()]);
        assert!(String::from_utf8_lossy(&out.stdout).contains(&id1), "{}", String::from_utf8_lossy(&out.stderr));

        // SIGTERM: both stop cleanly and say so.
        assert!(sigterm(&mut b).await.success());
        assert!(sigterm(&mut a).await.success());
        wait_log(&mut a.logs, "node stopped").await;
        wait_log(&mut b.logs, "node stopped").await;
        assert!(!h1.join("data/admin.addr").exists(), "a clean stop removes the runtime address file");
        assert!(h2.join("config/addrbook.json").exists(), "the address book is saved on stop");
    }
}

#[tokio::test]
async fn a_bad_config_value_is_named_and_the_node_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let h = home(&dir, "bad");
    init(&h, "tm2");
    edit(&h, |c| c.replace("max_num_inbound_peers = 40", "max_num_inbound_peers = \"forty\""));
    let out = run(&["start", "--home", h.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_num_inbound_peers"), "{err}");

    edit(&h, |c| {
        c.replace("max_num_inbound_peers = \"forty\"", "max_num_inbound_peers = 40")
            .replace("dial_timeout = \"3s\"", "dial_timeout = \"soon\"")
    });
    let err = String::from_utf8_lossy(&run(&["start", "--home", h.to_str().unwrap()]).stderr).into_owned();
    assert!(err.contains("p2p.dial_timeout"), "{err}");

    // init refuses to overwrite, and a missing home is a clear error.
    let again = run(&["init", "--home", h.to_str().unwrap()]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("exists already"));
    let missing = run(&["show-node-id", "--home", dir.path().join("nope").to_str().unwrap()]);
    assert!(!missing.status.success() && String::from_utf8_lossy(&missing.stderr).contains("config.toml"));
    // A home without its key says how to get one.
    edit(&h, |c| c.replace("dial_timeout = \"soon\"", "dial_timeout = \"3s\""));
    std::fs::remove_file(h.join("secrets/node_key.json")).unwrap();
    let out = run(&["show-node-id", "--home", h.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ledgerwire start --init"), "{out:?}");
}

#[test]
fn the_errors_configuration_md_quotes_are_what_config_check_prints() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let h = home(&dir, "c");
    init(&h, "tm2");
    let good = std::fs::read_to_string(h.join("config/config.toml")).unwrap();
    let ok = run(&["config", "check", "--home", h.to_str().unwrap()]);
    assert!(ok.status.success(), "{ok:?}");
    for (from, to) in [
        ("dial_timeout = \"3s\"", "dial_timeout = 3"),
        ("persistent_peers = \"\"", "persistent_peers = \"a;b\""),
        ("max_num_inbound_peers = 40", "max_num_inbound = 40"),
        ("handshake_timeout = \"3s\"", "handshake_timeout = \"1ns\""),
    ] {
        std::fs::write(h.join("config/config.toml"), good.replace(from, to)).unwrap();
        let out = run(&["config", "check", "--home", h.to_str().unwrap()]);
        assert!(!out.status.success());
        let line = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        assert!(docs.lines().any(|l| l == line), "configuration.md does not quote `{line}`");
    }
}

#[tokio::test]
async fn start_with_init_creates_a_home_on_first_run_and_reuses_it_after() {
    let dir = tempfile::tempdir().unwrap();
    let h = home(&dir, "fresh");
    for run_no in 0..2 {
        let mut child = Command::new(BIN)
            .args(["start", "--init", "--home", h.to_str().unwrap(), "--log-format", "json"])
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        if run_no == 0 {
            // The first run initialises the home and says so before starting.
            let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
            let said = tokio::time::timeout(PATIENCE, lines.next_line()).await.unwrap().unwrap().unwrap_or_default();
            assert!(said.starts_with("initialised"), "{said}");
            let _ = child.kill().await;
            assert!(h.join("config/config.toml").exists() && h.join("secrets/node_key.json").exists());
            // Defaults listen on fixed ports; make the second run use free ones.
            use_free_ports(&h);
            continue;
        }
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let started = tokio::time::timeout(PATIENCE, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("node started") {
                    return true;
                }
            }
            false
        });
        assert!(started.await.unwrap(), "the initialised home starts");
        let pid = child.id().unwrap().to_string();
        std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(tokio::time::timeout(PATIENCE, child.wait()).await.unwrap().unwrap().success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_refuses_a_peer_that_keeps_redialing_until_the_operator_lifts_it() {
    let dir = tempfile::tempdir().unwrap();
    let (h1, h2) = (home(&dir, "a"), home(&dir, "b"));
    init(&h1, "tm2");
    init(&h2, "tm2");
    let mut a = start(&h1).await;
    let mut events = follow_events(&a).await;
    let target = format!("{}@{}", a.id, a.p2p);
    edit(&h2, |c| c.replace("persistent_peers = \"\"", &format!("persistent_peers = \"{target}\"")));
    let mut b = start(&h2).await;
    let b_id = b.id.clone();
    let is = |kind: &'static str| {
        let b_id = b_id.clone();
        move |e: &Value| e["event"] == kind && e["peer"] == b_id.as_str()
    };
    next_event(&mut events, "b connects", is("peer_connected")).await;

    // Banned: disconnected, and b's redials (a is its persistent peer) are refused.
    let h1s = h1.to_str().unwrap();
    let out = run(&["ban", &b.id, "--for", "1h", "--reason", "too chatty", "--home", h1s]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let gone = next_event(&mut events, "b disconnected", is("peer_disconnected")).await;
    assert_eq!(gone["reason"], "banned: too chatty");
    let refused = next_event(&mut events, "b's redial refused", is("peer_rejected")).await;
    assert_eq!(refused["reason"], "banned");
    let bans = client::get_json(a.admin, &a.token, "/bans").await.unwrap();
    assert_eq!((bans[0]["id"].as_str(), bans[0]["reason"].as_str()), (Some(b.id.as_str()), Some("too chatty")));
    assert_eq!(bans[0]["by"], "operator");
    assert!((3500..=3600).contains(&bans[0]["remaining_secs"].as_u64().unwrap()), "{bans}");
    // A shorter ban does not cut the one in force short (its reason is the latest).
    let body = serde_json::json!({ "id": b.id, "duration": "1m", "reason": "still too chatty" });
    let kept = client::post_json(a.admin, &a.token, "/bans", &body).await.unwrap();
    assert_eq!(kept["reason"], "still too chatty");
    assert!(kept["remaining_secs"].as_u64().unwrap() >= 3500, "{kept}");
    let table = String::from_utf8(run(&["bans", "--home", h1s]).stdout).unwrap();
    assert!(
        table.contains(&b.id) && table.contains("operator   still too chatty") && table.contains("1 ban(s)"),
        "{table}"
    );

    // What an operator can get wrong is refused with the field named.
    for (body, named) in [
        (serde_json::json!({ "id": b.id, "duration": "soon" }), "duration:"),
        (serde_json::json!({ "id": b.id, "duration": "0" }), "duration:"),
        (serde_json::json!({ "id": a.id, "duration": "1h" }), "id:"),
        (serde_json::json!({ "id": "g1nope", "duration": "1h" }), "id:"),
        (serde_json::json!({ "id": b.id, "duration": "1h", "reason": "x".repeat(201) }), "reason:"),
        (serde_json::json!({ "id": b.id, "duration": "1h", "reason": "line\nbreak" }), "reason:"),
        (serde_json::json!({ "id": b.id }), "missing field `duration`"),
        (serde_json::json!({ "id": b.id, "duration": "1h", "reason": "\u{202e}reversed" }), "reason:"),
    ] {
        match client::post_json(a.admin, &a.token, "/bans", &body).await {
            Err(client::ClientError::Status { status: 400, body: answer }) => {
                assert!(answer.contains(named), "{body}: {answer}");
            }
            other => panic!("{body}: {other:?}"),
        }
    }

    // Lifted: b's next redial is admitted.
    let out = run(&["unban", &b.id, "--home", h1s]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    next_event(&mut events, "b connects again", is("peer_connected")).await;
    assert!(!run(&["unban", &b.id, "--home", h1s]).status.success(), "not banned any more");
    assert!(sigterm(&mut b).await.success());
    assert!(sigterm(&mut a).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_command_prints_each_event_as_a_json_line() {
    let dir = tempfile::tempdir().unwrap();
    let h = home(&dir, "watch");
    init(&h, "cometbft");
    let mut node = start(&h).await;
    let mut watcher = Command::new(BIN)
        .args(["events", "--home", h.to_str().unwrap()])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watcher.stdout.take().unwrap()).lines();
    // Ask the node to dial a port nobody listens on, until the watcher reports the failure (the first request may
    // come before the watcher has subscribed).
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let target = format!("{}@{free}", "ab".repeat(20));
    let line = tokio::time::timeout(PATIENCE, async {
        loop {
            let queued =
                client::post_json(node.admin, &node.token, "/peers", &serde_json::json!({ "address": target }))
                    .await
                    .unwrap();
            assert_eq!(queued["queued"], target.as_str());
            if let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_millis(200), lines.next_line()).await {
                return line;
            }
        }
    })
    .await
    .expect("an event line");
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["event"], "dial_failed");
    assert_eq!(v["address"], target.as_str());
    assert!(v["reason"].as_str().unwrap().contains("connect"), "{v}");
    assert!(sigterm(&mut node).await.success());
    // The watcher ends when the node stops.
    let status = tokio::time::timeout(PATIENCE, watcher.wait()).await.expect("watcher ends").unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn the_cli_talks_only_to_the_node_that_owns_the_home() {
    let dir = tempfile::tempdir().unwrap();
    let h = home(&dir, "idle");
    // No home yet: the message says how to make one.
    let out = run(&["peers", "--home", h.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ledgerwire init --home"), "{out:?}");
    init(&h, "tm2");
    // No running node: the CLI says so.
    let out = run(&["peers", "--home", h.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no ledgerwire node is running on"), "{out:?}");
    // A stale address file left by a killed node, naming a port someone else listens on now: the CLI does not
    // connect there (and so never sends it the token).
    let stranger = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    std::fs::create_dir_all(h.join("data")).unwrap();
    std::fs::write(h.join("data/admin.addr"), format!("{}\n", stranger.local_addr().unwrap())).unwrap();
    let out = run(&["peers", "--home", h.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no ledgerwire node is running on"), "{out:?}");
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(200), stranger.accept()).await.is_err(),
        "nobody connected to the stranger"
    );
    // With the node running, a second node on the same home is refused, and the first still answers.
    let mut node = start(&h).await;
    let out = run(&["start", "--home", h.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another ledgerwire node is running on"), "{out:?}");
    let out = run(&["status", "--home", h.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&node_id(&h)), "{out:?}");
    assert!(sigterm(&mut node).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_at_any_point_of_its_first_start_starts_again() {
    // How long a first start takes here, to spread the kill points over it (the database is created then).
    let dir = tempfile::tempdir().unwrap();
    let h = home(&dir, "timing");
    init(&h, "tm2");
    let began = std::time::Instant::now();
    let node = start(&h).await;
    let first_start = began.elapsed();
    drop(node);
    const KILLS: u32 = 48;
    let mut database_there_after_kill = Vec::new();
    for step in 0..KILLS {
        let dir = tempfile::tempdir().unwrap();
        let h = home(&dir, "first");
        init(&h, "tm2");
        kill_after(&["start", "--home", h.to_str().unwrap()], first_start * step / KILLS).await;
        database_there_after_kill.push(h.join("data/ilp.redb").exists());
        stop_cleanly(&mut start(&h).await, &format!("kill point {step}")).await;
    }
    // The kill points straddled the database's creation (else the loop tested nothing about it).
    assert!(
        database_there_after_kill.contains(&false) && database_there_after_kill.contains(&true),
        "first start {first_start:?}; database there after each kill: {database_there_after_kill:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_init_killed_at_any_point_leaves_a_home_that_init_completes() {
    // How long an init takes here, to spread the kill points over it.
    let dir = tempfile::tempdir().unwrap();
    let began = std::time::Instant::now();
    init(&home(&dir, "timing"), "tm2");
    let one_init = began.elapsed();
    const KILLS: u32 = 32;
    let mut initialised_after_kill = Vec::new();
    for step in 0..KILLS {
        let dir = tempfile::tempdir().unwrap();
        let h = home(&dir, "killed");
        kill_after(&["init", "--home", h.to_str().unwrap(), "--network", "itest"], one_init * step / KILLS).await;
        let configured = h.join("config/config.toml").exists();
        initialised_after_kill.push(configured);
        if configured {
            // A home with a config file is whole: its key and token are there.
            for file in ["secrets/node_key.json", "config/admin_token"] {
                assert!(h.join(file).exists(), "kill point {step}: config.toml without {file}");
            }
            use_free_ports(&h);
        } else {
            // Anything less is completed by running init again.
            init(&h, "tm2");
        }
        stop_cleanly(&mut start(&h).await, &format!("kill point {step}")).await;
    }
    assert!(
        initialised_after_kill.contains(&false) && initialised_after_kill.contains(&true),
        "one init {one_init:?}; initialised after each kill: {initialised_after_kill:?}"
    );
}
