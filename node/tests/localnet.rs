//! `ledgerwire localnet` as a user runs it: a few nodes for a short fixed time, payments fulfilled, no response
//! lost, the homes left where asked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::run;

#[test]
fn localnet_pays_across_its_nodes_for_a_fixed_time_and_loses_no_response() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("net");
    let out = run(&["localnet", "--nodes", "4", "--duration", "3", "--rate", "50", "--home", home.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // Not a terminal: one plain line per second, then the summary.
    assert!(stdout.lines().any(|l| l.starts_with("t=1s nodes=4")), "{stdout}");
    let summary = stdout.lines().find(|l| l.starts_with("payments: ")).expect("a summary line");
    let number = |word: &str| -> u64 {
        let words: Vec<&str> = summary.split([' ', ',']).filter(|w| !w.is_empty()).collect();
        let i = words.iter().position(|w| *w == word).unwrap();
        words[i - 1].parse().unwrap()
    };
    assert!(number("fulfilled") > 100, "{summary}");
    assert_eq!(number("lost"), 0, "{summary}");
    // Four nodes in a ring: node0 pays node2 through node1 or node3, so some payments cross two hops. The homes stay
    // where asked, with the nodes' log.
    for i in 0..4 {
        assert!(home.join(format!("node{i}/config/config.toml")).exists());
    }
    assert!(std::fs::read_to_string(home.join("localnet.log")).unwrap().contains("ILP link up"));
}
