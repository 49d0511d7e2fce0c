//! `ledgerwire testnet`: N ready-to-start homes wired to each other, for running as separate processes (as
//! `cometbft testnet` does).
//!
//! Node i listens on loopback ports from `base_port + 10·i` (p2p +0, admin +2, ILP-over-HTTP +3: node0 has the
//! defaults of a single node); every node has
//! every other as a persistent peer and as an ILP `peer` account (allowed to announce anything under `test`), its
//! address is `test.node<i>`, and it has a local app account `app` whose packets it POSTs to
//! `http://127.0.0.1:<base_port + 10·i + 4>/ilp`. `testnet.json` in the output folder lists each node's ID, ports,
//! app URL and app tokens.

use std::path::{Path, PathBuf};

use ledgerwire_reactors::accounts::{AccountSpec, HttpLink, Relation};
use ledgerwire_types::WireProfile;
use serde::Serialize;

use crate::config::ConfigFile;
use crate::node::{self, NodeError};

/// One generated node.
#[derive(Debug, Clone, Serialize)]
pub struct TestnetNode {
    /// `node0`, …
    pub name: String,
    /// Its home.
    pub home: PathBuf,
    /// Its node ID.
    pub id: String,
    /// `127.0.0.1:port` of its p2p listener.
    pub p2p: String,
    /// Its admin API.
    pub admin: String,
    /// Its ILP-over-HTTP listener.
    pub ilp_http: String,
    /// Its ILP address.
    pub ilp_address: String,
    /// Where it POSTs the packets of its app.
    pub app_url: String,
    /// The token the app presents to the node.
    pub app_incoming_token: String,
    /// The token the node presents to the app.
    pub app_outgoing_token: String,
}

fn token() -> Result<String, NodeError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| NodeError::Setup(format!("no randomness for tokens: {e}")))?;
    Ok(hex::encode(b))
}

/// Writes `nodes` homes under `output` (which must not hold a testnet yet) and `testnet.json`.
pub fn generate(
    output: &Path,
    nodes: usize,
    profile: WireProfile,
    base_port: u16,
) -> Result<Vec<TestnetNode>, NodeError> {
    let n = nodes.clamp(1, 64);
    if usize::from(base_port) + 10 * n + 5 > usize::from(u16::MAX) {
        return Err(NodeError::Setup(format!("--base-port: {base_port} leaves no room for {n} nodes")));
    }
    let port = |i: usize, k: usize| base_port as usize + 10 * i + k;
    let mut out = Vec::new();
    for i in 0..n {
        let home = output.join(format!("node{i}"));
        let done = node::init(&home, profile, "testnet", &format!("node{i}"))?;
        out.push(TestnetNode {
            name: format!("node{i}"),
            home,
            id: done.id,
            p2p: format!("127.0.0.1:{}", port(i, 0)),
            admin: format!("127.0.0.1:{}", port(i, 2)),
            ilp_http: format!("127.0.0.1:{}", port(i, 3)),
            ilp_address: format!("test.node{i}"),
            app_url: format!("http://127.0.0.1:{}/ilp", port(i, 4)),
            app_incoming_token: token()?,
            app_outgoing_token: token()?,
        });
    }
    for (i, me) in out.iter().enumerate() {
        let mut file = ConfigFile {
            profile: profile.as_str().into(),
            network: "testnet".into(),
            moniker: me.name.clone(),
            ..ConfigFile::default()
        };
        file.p2p.laddr = format!("tcp://{}", me.p2p);
        file.p2p.persistent_peers = out
            .iter()
            .filter(|o| o.name != me.name)
            .map(|o| format!("{}@{}", o.id, o.p2p))
            .collect::<Vec<_>>()
            .join(",");
        file.admin.laddr = me.admin.clone();
        file.ilp.address = me.ilp_address.clone();
        file.ilp.http_laddr = me.ilp_http.clone();
        file.ilp.accounts.push(AccountSpec {
            http: Some(HttpLink {
                url: me.app_url.clone(),
                incoming_token: me.app_incoming_token.clone(),
                outgoing_token: me.app_outgoing_token.clone(),
            }),
            ..AccountSpec::new("app", Relation::Child, "USD", 9)
        });
        for (j, other) in out.iter().enumerate() {
            if j != i {
                file.ilp.accounts.push(AccountSpec {
                    node_id: Some(other.id.clone()),
                    allowed_prefixes: Some(vec!["test".into()]),
                    ..AccountSpec::new(&other.name, Relation::Peer, "USD", 9)
                });
            }
        }
        node::write_config(&me.home, &file)?;
    }
    let summary = output.join("testnet.json");
    let text = serde_json::to_string_pretty(&out).map_err(|e| NodeError::Setup(e.to_string()))?;
    std::fs::write(&summary, text).map_err(|source| NodeError::Write { path: summary, source })?;
    Ok(out)
}
