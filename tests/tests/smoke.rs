//! Smoke test: two nodes connect and exchange a message in both profiles.
#![allow(clippy::unwrap_used)]
use ledgerwire_tests::{NodeOptions, TestNode};
use ledgerwire_types::WireProfile;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_connect_and_echo_in_both_profiles() {
    for profile in WireProfile::ALL {
        let mut a = TestNode::spawn(NodeOptions { profile, ..Default::default() }).await;
        let b = TestNode::spawn(NodeOptions { profile, ..Default::default() }).await;
        a.connect_to(&b).await;
        assert_eq!(a.echo_round_trip(b.id, b"hello").await, b"hello");
        assert_eq!(a.peer_ids().await, vec![b.id]);
        assert_eq!(b.peer_ids().await, vec![a.id]);
        a.switch.stop().await;
        b.switch.stop().await;
    }
}
