//! The connector over real p2p connections: sender → A → B → receiver, where A and B are two switches linked
//! by a secret connection and MConnection on loopback, in both wire profiles.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ledgerwire_p2p::{Switch, SwitchBuilder, SwitchConfig};
use ledgerwire_reactors::accounts::store::{AccountSource, Store, StoredAccount};
use ledgerwire_reactors::accounts::{AccountId, AccountSpec, Relation};
use ledgerwire_reactors::forwarding::core::ForwarderConfig;
use ledgerwire_reactors::forwarding::{self, Connector, ConnectorConfig, IlpEvent};
use ledgerwire_reactors::ilp::{Address, ErrorCode, Fulfill, Prepare, Reply, Timestamp, condition_of};
use ledgerwire_types::{HostAddress, NodeKey, WireProfile};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

fn spec(id: &str, relation: Relation, node_id: Option<String>) -> AccountSpec {
    AccountSpec { node_id, ..AccountSpec::new(id, relation, "USD", 9) }
}

struct Node {
    switch: Switch,
    connector: Connector,
    _home: tempfile::TempDir,
}

async fn node(
    profile: WireProfile,
    key: Arc<NodeKey>,
    address: &str,
    accounts: Vec<AccountSpec>,
    routes: &[(&str, &str)],
) -> Node {
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(&home.path().join("ilp.redb")).unwrap();
    let stored = accounts.into_iter().map(|spec| StoredAccount { spec, source: AccountSource::Config }).collect();
    let routes = routes.iter().map(|(p, a)| (p.to_string(), AccountId::new(a).unwrap())).collect();
    let config = SwitchConfig::new("127.0.0.1:0".parse().unwrap(), "ilp-test");
    let mut builder = SwitchBuilder::new(key, profile, config, None);
    let connector = forwarding::register(
        &mut builder,
        ConnectorConfig {
            forwarder: ForwarderConfig::new(Address::parse(address).unwrap()),
            profile,
            inherit_address: false,
            latency: None,
        },
        store,
        stored,
        Vec::new(),
        routes,
        None,
    )
    .unwrap();
    let switch = builder.start().await.unwrap();
    Node { switch, connector, _home: home }
}

/// A and B linked as peers, with `sender` on A and `receiver` (answering every Prepare with the fulfillment
/// `fulfill` derives from it, or never when it returns `None`) on B.
async fn line(profile: WireProfile, fulfill: fn(&Prepare) -> Option<Fulfill>) -> (Node, Node) {
    let (ka, kb) = (Arc::new(NodeKey::generate()), Arc::new(NodeKey::generate()));
    let (ida, idb) = (ka.node_id(profile).to_string(), kb.node_id(profile).to_string());
    let a = node(
        profile,
        ka,
        "test.a",
        vec![spec("sender", Relation::Child, None), spec("b", Relation::Peer, Some(idb))],
        &[("test.b", "b")],
    )
    .await;
    let b = node(
        profile,
        kb,
        "test.b",
        vec![spec("a", Relation::Peer, Some(ida)), spec("receiver", Relation::Child, None)],
        &[],
    )
    .await;
    let mut receiver = b.connector.attach("receiver", 4096).await.unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(batch) = receiver.recv().await {
            for incoming in batch {
                if let Some(f) = fulfill(&incoming.prepare) {
                    receiver.reply(incoming, Reply::Fulfill(f));
                } else {
                    // Hold the answer: never reply.
                    held.push(incoming);
                }
            }
        }
    });
    let (mut ea, mut eb) = (a.connector.subscribe(), b.connector.subscribe());
    let addr = HostAddress::parse(&format!("{}@{}", b.switch.id(), b.switch.listen_addr().unwrap()), profile).unwrap();
    a.switch.dial(addr, false).await.unwrap();
    for events in [&mut ea, &mut eb] {
        tokio::time::timeout(Duration::from_secs(20), async {
            while !matches!(events.recv().await.unwrap(), IlpEvent::LinkUp { .. }) {}
        })
        .await
        .expect("the ILP link comes up");
    }
    (a, b)
}

fn fulfillment_for(n: u64) -> [u8; 32] {
    let mut f = [0u8; 32];
    f[..8].copy_from_slice(&n.to_be_bytes());
    f
}

fn prepare(n: u64, amount: u64, expiry_ms: i64) -> Prepare {
    Prepare {
        amount,
        expires_at: Timestamp::now().plus_ms(expiry_ms),
        execution_condition: condition_of(&fulfillment_for(n)),
        destination: Address::parse("test.b.receiver.app").unwrap(),
        data: Bytes::from(n.to_be_bytes().to_vec()),
    }
}

fn echo_fulfillment(p: &Prepare) -> Option<Fulfill> {
    let n = u64::from_be_bytes(p.data[..8].try_into().ok()?);
    Some(Fulfill { fulfillment: fulfillment_for(n), data: p.data.clone() })
}

async fn balance(c: &Connector, id: &str) -> i128 {
    c.accounts().await.unwrap().into_iter().find(|a| a.id.as_str() == id).unwrap().balance.balance
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_cross_two_connectors_over_p2p_and_every_hop_balances_add_up_in_both_profiles() {
    for profile in [WireProfile::Tm2, WireProfile::CometBft] {
        let (a, b) = line(profile, echo_fulfillment).await;
        let mut sends = JoinSet::new();
        for n in 0..500u64 {
            let c = a.connector.clone();
            sends.spawn(async move {
                (n, c.prepare(AccountId::new("sender").unwrap(), prepare(n, 10 + n % 7, 10_000)).await)
            });
        }
        let mut total = 0i128;
        while let Some(r) = sends.join_next().await {
            let (n, reply) = r.unwrap();
            let Reply::Fulfill(f) = reply else { panic!("{profile:?} packet {n}: {reply:?}") };
            assert_eq!(f.fulfillment, fulfillment_for(n));
            assert_eq!(u64::from_be_bytes(f.data[..8].try_into().unwrap()), n, "data crosses untouched both ways");
            total += i128::from(10 + n % 7);
        }
        assert_eq!(balance(&a.connector, "sender").await, total);
        assert_eq!(balance(&a.connector, "b").await, -total);
        assert_eq!(balance(&b.connector, "a").await, total);
        assert_eq!(balance(&b.connector, "receiver").await, -total);
        a.switch.stop().await;
        b.switch.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_next_hop_disconnects_every_prepare_still_gets_exactly_one_answer() {
    let (a, b) = line(WireProfile::Tm2, |_| None).await;
    let mut sends = JoinSet::new();
    for n in 0..50u64 {
        let c = a.connector.clone();
        sends.spawn(async move { c.prepare(AccountId::new("sender").unwrap(), prepare(n, 1, 4_000)).await });
    }
    // Let the packets reach B, then B goes away.
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let views = b.connector.accounts().await.unwrap();
            if views.iter().find(|v| v.id.as_str() == "a").unwrap().stats.prepares_in == 50 {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("B received the packets");
    b.switch.stop().await;
    let mut codes = Vec::new();
    while let Some(r) = sends.join_next().await {
        match r.unwrap() {
            Reply::Reject(r) => codes.push(r.code),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(codes.len(), 50);
    assert!(codes.iter().all(|c| *c == ErrorCode::R00_TRANSFER_TIMED_OUT), "{codes:?}");
    assert_eq!(balance(&a.connector, "sender").await, 0);
    let views = a.connector.accounts().await.unwrap();
    assert!(views.iter().all(|v| v.balance.reserved_in == 0 && v.balance.reserved_out == 0), "{views:?}");
    a.switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_gets_one_answer_per_tag_and_what_a_stopped_connector_leaves_is_answered_t00() {
    // The receiver fulfills even packets and holds odd ones.
    let (a, b) = line(WireProfile::Tm2, |p| echo_fulfillment(p).filter(|f| f.data[7] % 2 == 0)).await;
    let (answers, mut rx) = mpsc::unbounded_channel();
    // One command (a batch goes over in commands of at most 1,024; forwarding/batch.rs tests the split).
    let batch = (0..300u64).map(|n| (1000 + n, prepare(n, 5, 30_000))).collect();
    a.connector.send_batch(AccountId::new("sender").unwrap(), batch, &answers).await.unwrap();
    drop(answers);
    let mut fulfilled = Vec::new();
    while fulfilled.len() < 150 {
        let answers = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        for (tag, reply) in answers {
            let Reply::Fulfill(f) = reply else { panic!("tag {tag}: {reply:?}") };
            assert_eq!(f.fulfillment, fulfillment_for(tag - 1000), "the answer carries its Prepare's tag");
            fulfilled.push(tag);
        }
    }
    assert_eq!(balance(&a.connector, "sender").await, 150 * 5);
    // A stops with 150 packets still open: each is answered once, T00, and then the channel closes.
    let Node { switch, connector, _home } = a;
    switch.stop().await;
    drop(connector);
    let mut stopped = Vec::new();
    while let Some(answers) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap() {
        for (tag, reply) in answers {
            let Reply::Reject(r) = reply else { panic!("tag {tag}: {reply:?}") };
            assert_eq!(r.code, ErrorCode::T00_INTERNAL_ERROR);
            stopped.push(tag);
        }
    }
    fulfilled.extend(&stopped);
    fulfilled.sort();
    assert_eq!(fulfilled, (1000..1300).collect::<Vec<_>>(), "every tag answered exactly once");
    assert_eq!(stopped.len(), 150);
    b.switch.stop().await;
}
