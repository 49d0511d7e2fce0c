//! Joining a gno network: a node configured as docs/configuration.md says accepts, and is accepted by, a peer that
//! advertises gno.land's exact version set, dialing in both directions; without that configuration both sides refuse.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use ledgerwire_node::config::ConfigFile;
use ledgerwire_p2p::node_info::{NodeInfo, ProtocolVersions, VersionInfo};
use ledgerwire_p2p::transport::Inbound;
use ledgerwire_p2p::{
    ChannelDescriptor, Direction, RejectReason, Switch, SwitchBuilder, SwitchEvent, Transport, TransportConfig,
};
use ledgerwire_tests::{PATIENCE, wait_for};
use ledgerwire_types::{NetAddress, NodeId, NodeKey, WireProfile};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// gno.land's NodeInfo version set: every entry required, `app` is the chain's application version.
fn gno_version_set() -> ProtocolVersions {
    let entry = |name: &str, version: &str| VersionInfo { name: name.into(), version: version.into(), optional: false };
    ProtocolVersions::Tm2(vec![
        entry("abci", "v1.0.0-rc.0"),
        entry("app", "dev"),
        entry("bft", "v1.0.0-rc.0"),
        entry("blockchain", "v1.0.0-rc.0"),
        entry("p2p", "v1.0.0-rc.0"),
    ])
}

/// A gno peer's transport: gno's version set, channels and network.
fn gno_transport(network: &str) -> Transport {
    let key = Arc::new(NodeKey::generate());
    let id = key.node_id(WireProfile::Tm2);
    let mut info = NodeInfo::ours(WireProfile::Tm2, id, "127.0.0.1:26656".parse().unwrap(), network, "gno", vec![], "");
    info.versions = gno_version_set();
    info.software = String::new();
    info.version = "v1.0.0-rc.0".into();
    // Blockchain, consensus, mempool and discovery channels.
    info.channels = vec![0x40, 0x20, 0x21, 0x22, 0x23, 0x30, 0x50];
    Transport::new(key, info, TransportConfig::default(), None)
}

/// The `[p2p]` lines docs/configuration.md gives for gno.land.
fn documented_gno_config() -> String {
    let doc = include_str!("../../docs/configuration.md");
    let line = doc.lines().find(|l| l.starts_with("advertise_versions = ")).expect("the documented gno settings");
    format!("network = \"test5\"\n[p2p]\nladdr = \"127.0.0.1:0\"\n{line}\n")
}

/// Our node, from a config file text, running a reactor on the discovery channel.
async fn ours(config_text: &str) -> Switch {
    let config = ConfigFile::parse(config_text, Path::new("config.toml")).unwrap().resolve(Path::new("/tmp")).unwrap();
    let mut b = SwitchBuilder::new(Arc::new(NodeKey::generate()), WireProfile::Tm2, config.switch_config(), None);
    let _ctx = b.add_reactor("discovery", &[ChannelDescriptor::new(0x50, 1)], 64).unwrap();
    b.start().await.unwrap()
}

/// A gno peer listening; `node` dials it. Returns the peer's ID and what its accept loop made of the connection.
async fn dialed_by(node: &Switch) -> (NodeId, Inbound) {
    let gno = Arc::new(gno_transport("test5"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gno_addr = listener.local_addr().unwrap();
    let (tx, mut accepted) = mpsc::channel(4);
    tokio::spawn(gno.clone().accept_loop(listener, tx));
    node.dial(NetAddress::new(gno.id(), gno_addr).into(), false).await.unwrap();
    (gno.id(), tokio::time::timeout(PATIENCE, accepted.recv()).await.unwrap().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_configured_as_documented_and_a_gno_peer_accept_each_other_both_ways() {
    let node = ours(&documented_gno_config()).await;
    let mut events = node.subscribe(|_| true).unwrap();

    // The gno peer dials us: it accepts our NodeInfo (the dial succeeds), and we admit it.
    let gno = gno_transport("test5");
    let our_addr = NetAddress::new(node.id(), node.listen_addr().unwrap());
    let _conn = gno.dial(our_addr).await.unwrap();
    let e =
        wait_for(&mut events, |e| matches!(e, SwitchEvent::PeerConnected { .. } | SwitchEvent::PeerRejected { .. }))
            .await;
    assert!(
        matches!(e, SwitchEvent::PeerConnected { peer, direction: Direction::Inbound, .. } if peer == gno.id()),
        "{e:?}"
    );

    // We dial another gno peer: it accepts us (its accept loop upgrades our connection), and we admit it.
    let (gno_id, outcome) = dialed_by(&node).await;
    match outcome {
        Inbound::Upgraded(up) => assert_eq!(up.node_info.id, node.id()),
        Inbound::Rejected { reason, .. } => panic!("the gno peer refused us: {reason}"),
    }
    let e = wait_for(&mut events, |e| e.peer() == Some(gno_id)).await;
    assert!(matches!(e, SwitchEvent::PeerConnected { direction: Direction::Outbound, .. }), "{e:?}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_gno_version_set_both_sides_refuse() {
    let node = ours("network = \"test5\"\n[p2p]\nladdr = \"127.0.0.1:0\"\n").await;
    let mut events = node.subscribe(|e| matches!(e, SwitchEvent::PeerRejected { .. })).unwrap();
    // We refuse the gno peer: it requires entries we do not have.
    let gno = gno_transport("test5");
    let _ = gno.dial(NetAddress::new(node.id(), node.listen_addr().unwrap())).await;
    let e = wait_for(&mut events, |_| true).await;
    assert!(
        matches!(&e, SwitchEvent::PeerRejected { reason: RejectReason::Incompatible(i), .. } if i.to_string().contains("they require abci")),
        "{e:?}"
    );
    // The gno peer refuses us: we lack its required entries, and our optional `app` differs from its `dev`.
    match dialed_by(&node).await.1 {
        Inbound::Rejected { reason: RejectReason::Incompatible(i), .. } => {
            let why = i.to_string();
            assert!(why.contains("we require abci") && why.contains("app dev vs"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    node.stop().await;
}
