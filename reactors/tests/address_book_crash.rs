//! Killing the process in the middle of address-book writes never leaves an unreadable book.
//!
//! The test runs its own binary again as a child that rewrites a 500-entry book in a loop and reports each finished
//! write on standard output; the parent kills it (SIGKILL) right after a report, so the kill lands inside a later
//! write, then loads the book. Twenty rounds.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use ledgerwire_reactors::discovery::book::{AddressBook, Source};
use ledgerwire_types::{NetAddress, NodeKey, WireProfile};

const ENV: &str = "LEDGERWIRE_CRASH_BOOK";
const ENTRIES: u8 = 250;

fn own_id() -> ledgerwire_types::NodeId {
    NodeKey::from_seed(&[0; 32]).node_id(WireProfile::Tm2)
}

#[test]
#[ignore = "the child process of address_book_survives_being_killed_mid_write"]
fn crash_writer_child() {
    let Ok(path) = std::env::var(ENV) else { return };
    let path = std::path::PathBuf::from(path);
    let mut book = AddressBook::new(own_id(), HashSet::new(), 1000);
    for i in 1..=ENTRIES {
        for j in [1u8, 2] {
            let id = NodeKey::from_seed(&[
                i, j, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ])
            .node_id(WireProfile::Tm2);
            let addr = NetAddress::parse(&format!("{id}@10.{j}.0.{i}:26656"), WireProfile::Tm2).unwrap();
            book.add(addr, Source::Peer(own_id()), 1);
        }
    }
    let ids: Vec<_> = book.entries().iter().map(|e| e.address.id()).collect();
    let mut out = std::io::stdout().lock();
    for n in 1u64.. {
        for id in &ids {
            book.mark_success(id, n);
        }
        book.flush(&path, WireProfile::Tm2).unwrap();
        writeln!(out, "wrote {n}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn address_book_survives_being_killed_mid_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("addrbook.json");
    let exe = std::env::current_exe().unwrap();
    for round in 0..20u64 {
        let mut child = Command::new(&exe)
            .args(["--ignored", "--exact", "crash_writer_child", "--nocapture", "--test-threads=1"])
            .env(ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let want = 1 + round % 4;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if line.strip_prefix("wrote ").and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n >= want) {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let loaded = AddressBook::load(&path, WireProfile::Tm2, own_id(), HashSet::new(), 1000, 0).unwrap();
        assert!(loaded.moved_aside.is_none(), "round {round}: the book was unreadable");
        assert_eq!((loaded.book.len(), loaded.skipped), (2 * ENTRIES as usize, 0), "round {round}");
        assert!(loaded.book.entries().iter().all(|e| e.last_success.is_some_and(|t| t >= want)), "round {round}");
    }
}
