//! Killing the process in the middle of address-book writes never leaves an unreadable book.
//!
//! The test runs its own binary again as a child that rewrites a 500-entry book in a loop, reporting on standard
//! output when each write starts and how long it took. The parent kills it (SIGKILL) at a chosen fraction of a write's
//! duration after a start report, sweeping the fraction over the rounds so that kills land in every step of a write
//! (serializing, writing the temporary file, syncing, renaming), then loads the book. Forty rounds. With the atomic
//! write replaced by a plain `std::fs::write`, this test fails.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ledgerwire_reactors::discovery::book::{AddressBook, Source};
use ledgerwire_types::{NetAddress, NodeKey, WireProfile};

const ENV: &str = "LEDGERWIRE_CRASH_BOOK";
const ENTRIES: u8 = 250;
const ROUNDS: u64 = 40;

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
    let addresses: Vec<_> = book.entries().iter().map(|e| e.address).collect();
    let mut out = std::io::stdout().lock();
    for n in 1u64.. {
        for address in &addresses {
            book.mark_success(address, n);
        }
        writeln!(out, "writing {n}").unwrap();
        out.flush().unwrap();
        let started = Instant::now();
        book.flush(&path, WireProfile::Tm2).unwrap();
        writeln!(out, "wrote {n} {}", started.elapsed().as_micros()).unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn address_book_survives_being_killed_mid_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("addrbook.json");
    let exe = std::env::current_exe().unwrap();
    let mut leftovers = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args(["--ignored", "--exact", "crash_writer_child", "--nocapture", "--test-threads=1"])
            .env(ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Let a few writes finish (so that there is a book to lose and a duration to aim at), then aim at the next.
        let want = 2 + round % 3;
        let mut write_time = Duration::ZERO;
        for line in lines.by_ref() {
            // The test harness prints lines of its own.
            let line = line.unwrap();
            let words: Vec<&str> = line.split(' ').collect();
            match words[..] {
                ["wrote", _, micros] => write_time = Duration::from_micros(micros.parse().unwrap()),
                ["writing", n] if n.parse::<u64>().unwrap() > want => break,
                _ => {}
            }
        }
        // Fault injection, not synchronisation: every kill point must leave a readable book.
        let aim = Instant::now() + write_time.mul_f64((round % 10) as f64 / 9.0);
        while Instant::now() < aim {
            std::hint::spin_loop();
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let loaded = AddressBook::load(&path, WireProfile::Tm2, own_id(), HashSet::new(), 1000, 0).unwrap();
        assert!(loaded.moved_aside.is_none(), "round {round}: the book was unreadable");
        leftovers += loaded.leftovers;
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("addrbook.json")], "round {round}: loading cleans up");
        assert_eq!((loaded.book.len(), loaded.skipped), (2 * ENTRIES as usize, 0), "round {round}");
        assert!(loaded.book.entries().iter().all(|e| e.last_success.is_some_and(|t| t >= want)), "round {round}");
    }
    println!("{leftovers} temporary files of interrupted writes were cleaned up over {ROUNDS} kills");
}
