//! What the tests that run the `ledgerwire` binary share: init a home, edit its config, start a node and follow
//! its JSON log records, stop it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_ledgerwire");
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

pub(crate) fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN).args(args).output().expect("run ledgerwire")
}

pub(crate) fn init(home: &Path, profile: &str) {
    let out = run(&["init", "--home", home.to_str().unwrap(), "--profile", profile, "--network", "itest"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    use_free_ports(home);
}

/// Makes a home's default config listen on free ports; the node reports them in its "node started" log record.
pub(crate) fn use_free_ports(home: &Path) {
    edit(home, |c| {
        c.replace("tcp://0.0.0.0:26656", "tcp://127.0.0.1:0")
            .replace("127.0.0.1:26658", "127.0.0.1:0")
            .replace("127.0.0.1:26659", "127.0.0.1:0")
    });
}

/// Sends SIGTERM to a node and waits for it to exit successfully (a clean stop); `what` names the case on failure.
pub(crate) async fn stop_cleanly(node: &mut Node, what: &str) {
    let pid = node.child.id().unwrap().to_string();
    std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = tokio::time::timeout(PATIENCE, node.child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{what}: {status}");
}

pub(crate) fn edit(home: &Path, f: impl FnOnce(String) -> String) {
    let path = home.join("config/config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, f(text)).unwrap();
}

/// A running node process with its log lines (JSON) forwarded to a channel.
pub(crate) struct Node {
    pub(crate) child: Child,
    pub(crate) logs: Logs,
    pub(crate) p2p: String,
    pub(crate) admin: std::net::SocketAddr,
    pub(crate) token: String,
    pub(crate) id: String,
    pub(crate) started: Value,
}

/// Runs `ledgerwire args…` with its output discarded and kills it (SIGKILL) after `after`; the sleep only chooses
/// where the kill lands, nothing waits on it.
pub(crate) async fn kill_after(args: &[&str], after: Duration) {
    let mut child =
        Command::new(BIN).args(args).stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true).spawn().unwrap();
    tokio::time::sleep(after).await;
    child.kill().await.unwrap();
}

pub(crate) async fn start(home: &Path) -> Node {
    let mut child = Command::new(BIN)
        .args(["start", "--home", home.to_str().unwrap(), "--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let mut logs = Logs { rx, passed: Default::default() };
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            // Lines that are not JSON records (a panic message) are kept as plain strings.
            let v = serde_json::from_str::<Value>(&line).unwrap_or(Value::String(line));
            let _ = tx.send(v);
        }
    });
    let started = wait_log(&mut logs, "node started").await;
    let admin = started["admin"].as_str().unwrap().trim_start_matches("http://").parse().unwrap();
    let token = std::fs::read_to_string(home.join("config/admin_token")).unwrap().trim().to_owned();
    Node {
        child,
        logs,
        p2p: started["p2p"].as_str().unwrap().to_owned(),
        admin,
        token,
        id: started["id"].as_str().unwrap().to_owned(),
        started,
    }
}

/// A node's log records, in order. Records passed over while waiting for one are kept for later waits (a peer can
/// connect before the node logs "node started").
#[derive(Debug)]
pub(crate) struct Logs {
    rx: mpsc::UnboundedReceiver<Value>,
    passed: std::collections::VecDeque<Value>,
}

pub(crate) async fn wait_log(logs: &mut Logs, msg: &str) -> Value {
    if let Some(i) = logs.passed.iter().position(|v| v["msg"] == msg) {
        return logs.passed.remove(i).unwrap_or_default();
    }
    let mut skipped = Vec::new();
    let found = tokio::time::timeout(PATIENCE, async {
        loop {
            let Some(v) = logs.rx.recv().await else {
                let last: Vec<String> = skipped.iter().rev().take(20).rev().map(|v: &Value| v.to_string()).collect();
                panic!("the node exited before logging {msg:?}; its last lines:\n{}", last.join("\n"));
            };
            if v["msg"] == msg {
                return v;
            }
            skipped.push(v);
        }
    })
    .await;
    let last: Vec<String> = skipped.iter().rev().take(40).rev().map(|v| v.to_string()).collect();
    logs.passed.extend(skipped);
    found.unwrap_or_else(|_| panic!("no {msg:?} log record; the last ones:\n{}", last.join("\n")))
}

pub(crate) async fn sigterm(node: &mut Node) -> std::process::ExitStatus {
    let pid = node.child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    tokio::time::timeout(PATIENCE, node.child.wait()).await.expect("stops in time").unwrap()
}

pub(crate) fn home(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// The node's ID, as `show-node-id` prints it.
pub(crate) fn node_id(home: &Path) -> String {
    let out = run(&["show-node-id", "--home", home.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Sets `[ilp] address` and appends `blocks` (`[[ilp.accounts]]` and `[[ilp.routes]]` tables) to the config.
pub(crate) fn configure_ilp(home: &Path, address: &str, blocks: &str) {
    edit(home, |c| {
        let c = c.replace("\naddress = \"\"", &format!("\naddress = \"{address}\""));
        format!("{c}\n{blocks}")
    });
}

/// An `[[ilp.accounts]]` table for a p2p peer.
pub(crate) fn peer_account(id: &str, node_id: &str) -> String {
    format!(
        "[[ilp.accounts]]\nid = \"{id}\"\nrelation = \"peer\"\nasset_code = \"USD\"\nasset_scale = 9\nnode_id = \"{node_id}\"\n"
    )
}

/// An `[[ilp.accounts]]` table for a local app over ILP-over-HTTP.
pub(crate) fn app_account(id: &str, url: &str, incoming: &str, outgoing: &str) -> String {
    format!(
        "[[ilp.accounts]]\nid = \"{id}\"\nrelation = \"child\"\nasset_code = \"USD\"\nasset_scale = 9\nhttp = {{ url = \"{url}\", incoming_token = \"{incoming}\", outgoing_token = \"{outgoing}\" }}\n"
    )
}

/// An `[[ilp.routes]]` table.
pub(crate) fn route(prefix: &str, account: &str) -> String {
    format!("[[ilp.routes]]\nprefix = \"{prefix}\"\naccount = \"{account}\"\n")
}

/// Waits for `n` log records with message `msg`.
pub(crate) async fn wait_logs(logs: &mut Logs, msg: &str, n: usize) {
    for _ in 0..n {
        wait_log(logs, msg).await;
    }
}

/// A receiving app: answers every Prepare posted with `token` by fulfilling it (the fulfillment is the first 32
/// bytes of the data), counts what it fulfilled, and refuses anything else with 401.
pub(crate) mod app {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};
    use ledgerwire_reactors::ilp::{Fulfill, Prepare, Reply, condition_of};

    /// What the app fulfilled.
    #[derive(Debug, Default)]
    pub(crate) struct Fulfilled {
        pub(crate) count: AtomicU64,
        pub(crate) amount: AtomicU64,
        /// Woken at every Fulfill.
        pub(crate) changed: tokio::sync::Notify,
    }

    /// The fulfillment a test sender puts in its data, so that the app can release it.
    pub(crate) fn fulfillment(n: u64) -> [u8; 32] {
        let mut f = [7u8; 32];
        f[..8].copy_from_slice(&n.to_be_bytes());
        f
    }

    /// A Prepare for `destination` the app will fulfill.
    pub(crate) fn prepare(n: u64, amount: u64, destination: &str, expiry_ms: i64) -> Prepare {
        let f = fulfillment(n);
        Prepare {
            amount,
            expires_at: ledgerwire_reactors::ilp::Timestamp::now().plus_ms(expiry_ms),
            execution_condition: condition_of(&f),
            destination: ledgerwire_reactors::ilp::Address::parse(destination).unwrap(),
            data: bytes::Bytes::copy_from_slice(&f),
        }
    }

    pub(crate) async fn spawn(token: &'static str) -> (SocketAddr, Arc<Fulfilled>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fulfilled = spawn_on(listener, token.to_owned());
        (fulfilled.0, fulfilled.1)
    }

    /// The app on `listener`, accepting `token`.
    pub(crate) fn spawn_on(listener: tokio::net::TcpListener, token: String) -> (SocketAddr, Arc<Fulfilled>) {
        let fulfilled = Arc::new(Fulfilled::default());
        let counts = fulfilled.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let counts = counts.clone();
            let token = token.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                if auth != format!("Bearer {token}") {
                    return (StatusCode::UNAUTHORIZED, Vec::new());
                }
                let Ok(p) = Prepare::decode(&body) else { return (StatusCode::BAD_REQUEST, Vec::new()) };
                let mut f = [0u8; 32];
                f.copy_from_slice(&p.data[..32]);
                counts.count.fetch_add(1, Ordering::SeqCst);
                counts.amount.fetch_add(p.amount, Ordering::SeqCst);
                counts.changed.notify_waiters();
                (
                    StatusCode::OK,
                    Reply::Fulfill(Fulfill { fulfillment: f, data: bytes::Bytes::new() }).encode().to_vec(),
                )
            }
        });
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, fulfilled)
    }
}

/// Follows a node's `GET /events` into a channel; returns once subscribed, so no later event is missed.
pub(crate) async fn follow_events(node: &Node) -> mpsc::UnboundedReceiver<Value> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (addr, token) = (node.admin, node.token.clone());
    let (opened, open) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let on_open = move || {
            let _ = opened.send(());
        };
        let _ = ledgerwire_node::client::follow_events_from(addr, &token, on_open, move |e| {
            let _ = tx.send(e);
        })
        .await;
    });
    open.await.expect("the event stream opens");
    rx
}

/// The next event `matches` accepts (the ones before it are passed over); `what` names it on failure.
pub(crate) async fn next_event(
    events: &mut mpsc::UnboundedReceiver<Value>,
    what: &str,
    matches: impl Fn(&Value) -> bool,
) -> Value {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let e = events.recv().await.expect("event stream open");
            if matches(&e) {
                return e;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no event: {what}"))
}
