//! The address book: what we know about peers' addresses, kept across restarts.
//!
//! One entry per node ID, as the ElectrumX peer database keeps them: the address, where we learned it, when we first
//! saw it, when we last tried and last succeeded, and how many attempts failed since. Rules:
//! - information a peer gives about itself (its NodeInfo) wins over what other peers say about it; the operator's
//!   own configuration wins over both;
//! - private peers and our own ID are never stored;
//! - an address that fails waits before the next try: 1 min doubling per failure, at most a day;
//! - an address not reached for 14 days (or never reached in 14 days) is dropped;
//! - the book is bounded; when full, unproven entries (never reached) go first, the worst of them first, and a new
//!   unproven address does not displace proven ones.
//!
//! The file is JSON, written atomically (write, fsync, rename). A file that does not parse is moved aside as
//! `<file>.corrupt-<unix time>` and the book starts empty.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use ledgerwire_types::{NetAddress, NodeId, WireProfile, atomic_file};
use serde::{Deserialize, Serialize};

/// Seconds in a day.
pub const DAY: u64 = 86_400;
/// Entries not reached for this long are dropped.
pub const EXPIRY: u64 = 14 * DAY;
/// "Recently reached", for sharing.
pub const RECENT: u64 = DAY;

/// Where an address came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// The operator's configuration (persistent peers, seeds).
    Config,
    /// The peer itself, in its NodeInfo.
    SelfReported,
    /// Another peer, in a discovery response.
    Peer(NodeId),
}

impl Source {
    /// Higher wins when two sources disagree.
    fn rank(self) -> u8 {
        match self {
            Source::Config => 2,
            Source::SelfReported => 1,
            Source::Peer(_) => 0,
        }
    }
}

/// What we know about one peer's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The address.
    pub address: NetAddress,
    /// Where it came from.
    pub source: Source,
    /// Unix seconds when first stored.
    pub first_seen: u64,
    /// Unix seconds of the last dial attempt.
    pub last_attempt: Option<u64>,
    /// Unix seconds of the last successful connection.
    pub last_success: Option<u64>,
    /// Failed attempts since the last success.
    pub failures: u32,
}

impl Entry {
    /// Whether we ever reached it.
    pub fn proven(&self) -> bool {
        self.last_success.is_some()
    }

    /// When the next dial may happen.
    pub fn next_attempt(&self) -> u64 {
        match self.last_attempt {
            None => 0,
            Some(t) if self.failures == 0 => t + 60,
            Some(t) => t + (60u64 << self.failures.min(11)).min(DAY),
        }
    }

    fn last_reached_or_seen(&self) -> u64 {
        self.last_success.unwrap_or(self.first_seen)
    }
}

/// What [`AddressBook::add`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    /// A new entry.
    New,
    /// The entry's address was replaced by a better-sourced one.
    Updated,
    /// Nothing changed (known already, or a worse source).
    Known,
    /// Refused: our own ID, a private peer, an undialable address, or the book is full of proven entries.
    Refused,
}

/// What [`AddressBook::sync_config`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConfigSync {
    /// Configured addresses new to the book.
    pub added: usize,
    /// Entries whose address the configuration changed.
    pub replaced: usize,
    /// Entries learned otherwise that the configuration now names.
    pub adopted: usize,
    /// Configured entries the configuration no longer names.
    pub removed: usize,
}

/// The address book.
#[derive(Debug)]
pub struct AddressBook {
    entries: HashMap<NodeId, Entry>,
    own_id: NodeId,
    private: HashSet<NodeId>,
    capacity: usize,
    dirty: bool,
}

impl AddressBook {
    /// An empty book for node `own_id` that never stores `private` IDs, holding at most `capacity` entries.
    pub fn new(own_id: NodeId, private: HashSet<NodeId>, capacity: usize) -> Self {
        AddressBook { entries: HashMap::new(), own_id, private, capacity: capacity.max(1), dirty: false }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the book is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether there are unsaved changes.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The entry for `id`.
    pub fn get(&self, id: &NodeId) -> Option<&Entry> {
        self.entries.get(id)
    }

    /// Every entry, sorted by ID.
    pub fn entries(&self) -> Vec<Entry> {
        let mut v: Vec<_> = self.entries.values().cloned().collect();
        v.sort_by_key(|e| e.address.id());
        v
    }

    /// Stores `address` learned from `source` at `now`.
    pub fn add(&mut self, address: NetAddress, source: Source, now: u64) -> Added {
        let id = address.id();
        if id == self.own_id || self.private.contains(&id) || address.validate().is_err() {
            return Added::Refused;
        }
        if let Some(e) = self.entries.get_mut(&id) {
            if e.address == address {
                if source.rank() > e.source.rank() {
                    e.source = source;
                    self.dirty = true;
                }
                return Added::Known;
            }
            // A better source wins; among peers' reports, a new one replaces an address that never worked.
            let replace =
                source.rank() > e.source.rank() || (source.rank() == e.source.rank() && !e.proven() && e.failures > 0);
            if !replace {
                return Added::Known;
            }
            *e = Entry { address, source, first_seen: now, last_attempt: None, last_success: None, failures: 0 };
            self.dirty = true;
            return Added::Updated;
        }
        if self.entries.len() >= self.capacity && !self.make_room(source) {
            return Added::Refused;
        }
        self.entries.insert(
            id,
            Entry { address, source, first_seen: now, last_attempt: None, last_success: None, failures: 0 },
        );
        self.dirty = true;
        Added::New
    }

    /// Evicts the worst unproven entry (most failures, then oldest), or for a configured address the worst
    /// proven one. False if nothing may go.
    fn make_room(&mut self, incoming: Source) -> bool {
        let victim = self
            .entries
            .values()
            .filter(|e| e.source != Source::Config && (!e.proven() || incoming == Source::Config))
            .min_by_key(|e| (e.proven(), std::cmp::Reverse(e.failures), e.last_reached_or_seen()))
            .map(|e| e.address.id());
        match victim {
            Some(v) => {
                self.entries.remove(&v);
                true
            }
            None => false,
        }
    }

    /// Records a dial attempt.
    pub fn mark_attempt(&mut self, id: &NodeId, now: u64) {
        if let Some(e) = self.entries.get_mut(id) {
            e.last_attempt = Some(now);
            self.dirty = true;
        }
    }

    /// The entry holding exactly `address` (the ID's entry, if its address is this one).
    fn entry_at(&mut self, address: &NetAddress) -> Option<&mut Entry> {
        self.entries.get_mut(&address.id()).filter(|e| e.address == *address)
    }

    /// Records a successful connection to `address`. Only the entry with this very address is credited: a peer
    /// reached at another address says nothing about the one on file.
    pub fn mark_success(&mut self, address: &NetAddress, now: u64) {
        if let Some(e) = self.entry_at(address) {
            e.last_success = Some(now);
            e.failures = 0;
            self.dirty = true;
        }
    }

    /// Records a failed dial to `address` (only the entry with this very address).
    pub fn mark_failure(&mut self, address: &NetAddress, now: u64) {
        if let Some(e) = self.entry_at(address) {
            e.last_attempt = Some(now);
            e.failures = e.failures.saturating_add(1);
            self.dirty = true;
        }
    }

    /// Makes the configured entries exactly `configured` (the persistent peers and seeds of the current
    /// configuration, as IP literals). An entry from an earlier configuration that is no longer configured is
    /// removed; one whose configured address changed is replaced, with a fresh record; one the configuration now
    /// names is marked as configured, or added.
    pub fn sync_config(&mut self, configured: &[NetAddress], now: u64) -> ConfigSync {
        let mut sync = ConfigSync::default();
        let wanted: HashMap<NodeId, NetAddress> = configured
            .iter()
            .filter(|a| a.id() != self.own_id && !self.private.contains(&a.id()) && a.validate().is_ok())
            .map(|a| (a.id(), *a))
            .collect();
        let before = self.entries.len();
        self.entries.retain(|id, e| e.source != Source::Config || wanted.contains_key(id));
        sync.removed = before - self.entries.len();
        for address in wanted.into_values() {
            match self.entries.get_mut(&address.id()) {
                Some(e) if e.address == address => {
                    if e.source != Source::Config {
                        e.source = Source::Config;
                        sync.adopted += 1;
                    }
                }
                Some(e) => {
                    *e = Entry {
                        address,
                        source: Source::Config,
                        first_seen: now,
                        last_attempt: None,
                        last_success: None,
                        failures: 0,
                    };
                    sync.replaced += 1;
                }
                None => {
                    if self.add(address, Source::Config, now) == Added::New {
                        sync.added += 1;
                    }
                }
            }
        }
        self.dirty |= sync != ConfigSync::default();
        sync
    }

    /// Drops entries not reached (or, if never reached, not seen) in 14 days; returns how many.
    pub fn expire(&mut self, now: u64) -> usize {
        let before = self.entries.len();
        self.entries
            .retain(|_, e| e.source == Source::Config || now.saturating_sub(e.last_reached_or_seen()) <= EXPIRY);
        let gone = before - self.entries.len();
        self.dirty |= gone > 0;
        gone
    }

    /// Up to `n` addresses to dial now, skipping `exclude`d IDs and those still backing off; proven ones first,
    /// shuffled within each group by `shuffle`.
    pub fn dial_candidates(
        &self,
        now: u64,
        n: usize,
        exclude: impl Fn(&NodeId) -> bool,
        shuffle: impl Fn(&mut Vec<NetAddress>),
    ) -> Vec<NetAddress> {
        let ready = |proven: bool| {
            let mut v: Vec<NetAddress> = self
                .entries
                .values()
                .filter(|e| e.proven() == proven && e.next_attempt() <= now && !exclude(&e.address.id()))
                .map(|e| e.address)
                .collect();
            shuffle(&mut v);
            v
        };
        let mut out = ready(true);
        out.extend(ready(false));
        out.truncate(n);
        out
    }

    /// Addresses reached in the last 24 hours (what we may share), skipping `exclude`d IDs.
    pub fn recently_reached(&self, now: u64, exclude: impl Fn(&NodeId) -> bool) -> Vec<NetAddress> {
        self.entries
            .values()
            .filter(|e| e.last_success.is_some_and(|t| now.saturating_sub(t) <= RECENT) && !exclude(&e.address.id()))
            .map(|e| e.address)
            .collect()
    }

    /// Writes the book to `path` atomically if it changed; returns whether it wrote.
    pub fn save(&mut self, path: &Path, profile: WireProfile) -> std::io::Result<bool> {
        if !self.dirty {
            return Ok(false);
        }
        self.flush(path, profile)?;
        Ok(true)
    }

    /// Writes the book to `path` atomically, changed or not.
    pub fn flush(&mut self, path: &Path, profile: WireProfile) -> std::io::Result<()> {
        let file = BookFile {
            version: 1,
            profile: profile.to_string(),
            addresses: self.entries().iter().map(StoredEntry::from).collect(),
        };
        let text = serde_json::to_string_pretty(&file).map_err(std::io::Error::other)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        atomic_file::write_atomic(path, text.as_bytes(), 0o644)?;
        self.dirty = false;
        Ok(())
    }

    /// Loads `path` into a new book. A missing file is an empty book. A file that does not parse is moved aside to
    /// `<file>.corrupt-<now>` (reported in [`Loaded::moved_aside`]); entries that do not validate are skipped and
    /// counted. Temporary files that a crash left beside the book are deleted (counted in [`Loaded::leftovers`]), so
    /// call this only from the book's one writer.
    pub fn load(
        path: &Path,
        profile: WireProfile,
        own_id: NodeId,
        private: HashSet<NodeId>,
        capacity: usize,
        now: u64,
    ) -> std::io::Result<Loaded> {
        let mut book = AddressBook::new(own_id, private, capacity);
        // Cleaning up is best effort: a leftover that cannot be deleted is harmless and must not cost us the book.
        let leftovers = atomic_file::remove_leftovers(path).unwrap_or(0);
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Loaded { book, skipped: 0, moved_aside: None, leftovers });
            }
            Err(e) => return Err(e),
        };
        let file: BookFile = match serde_json::from_str(&text) {
            Ok(f) => f,
            Err(_) => {
                let aside = PathBuf::from(format!("{}.corrupt-{now}", path.display()));
                std::fs::rename(path, &aside)?;
                return Ok(Loaded { book, skipped: 0, moved_aside: Some(aside), leftovers });
            }
        };
        let mut skipped = 0;
        for stored in file.addresses {
            match stored.into_entry(profile) {
                Some(e)
                    if e.address.id() != own_id
                        && !book.private.contains(&e.address.id())
                        && e.address.validate().is_ok() =>
                {
                    if book.entries.len() < book.capacity {
                        book.entries.insert(e.address.id(), e);
                    } else {
                        skipped += 1;
                    }
                }
                _ => skipped += 1,
            }
        }
        Ok(Loaded { book, skipped, moved_aside: None, leftovers })
    }
}

/// The outcome of [`AddressBook::load`].
#[derive(Debug)]
pub struct Loaded {
    /// The book.
    pub book: AddressBook,
    /// Entries skipped because they did not validate (or did not fit).
    pub skipped: usize,
    /// Where a corrupt file was moved.
    pub moved_aside: Option<PathBuf>,
    /// Temporary files of interrupted writes that were deleted.
    pub leftovers: usize,
}

#[derive(Serialize, Deserialize)]
struct BookFile {
    version: u32,
    profile: String,
    addresses: Vec<StoredEntry>,
}

#[derive(Serialize, Deserialize)]
struct StoredEntry {
    address: String,
    /// `config`, `self` or the ID of the peer that told us.
    source: String,
    first_seen: u64,
    #[serde(default)]
    last_attempt: Option<u64>,
    #[serde(default)]
    last_success: Option<u64>,
    #[serde(default)]
    failures: u32,
}

impl From<&Entry> for StoredEntry {
    fn from(e: &Entry) -> Self {
        StoredEntry {
            address: e.address.to_string(),
            source: match e.source {
                Source::Config => "config".into(),
                Source::SelfReported => "self".into(),
                Source::Peer(id) => id.to_string(),
            },
            first_seen: e.first_seen,
            last_attempt: e.last_attempt,
            last_success: e.last_success,
            failures: e.failures,
        }
    }
}

impl StoredEntry {
    fn into_entry(self, profile: WireProfile) -> Option<Entry> {
        let address = NetAddress::parse(&self.address, profile).ok()?;
        let source = match self.source.as_str() {
            "config" => Source::Config,
            "self" => Source::SelfReported,
            other => Source::Peer(NodeId::parse(other, profile).ok()?),
        };
        Some(Entry {
            address,
            source,
            first_seen: self.first_seen,
            last_attempt: self.last_attempt,
            last_success: self.last_success,
            failures: self.failures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerwire_types::NodeKey;

    const P: WireProfile = WireProfile::Tm2;

    fn id(seed: u8) -> NodeId {
        NodeKey::from_seed(&[seed; 32]).node_id(P)
    }

    fn addr(seed: u8, ip: &str) -> NetAddress {
        NetAddress::parse(&format!("{}@{ip}", id(seed)), P).unwrap()
    }

    fn book(cap: usize) -> AddressBook {
        AddressBook::new(id(0), [id(99)].into_iter().collect(), cap)
    }

    fn none(_: &NodeId) -> bool {
        false
    }

    fn keep(_: &mut Vec<NetAddress>) {}

    /// The address on file for `seed`'s ID.
    fn at(seed: u8, b: &AddressBook) -> NetAddress {
        b.get(&id(seed)).unwrap().address
    }

    #[test]
    fn only_the_address_on_file_is_credited_or_blamed() {
        let mut b = book(10);
        b.add(addr(1, "10.0.0.1:1"), Source::Peer(id(2)), 0);
        b.mark_success(&addr(1, "10.9.9.9:1"), 5);
        b.mark_failure(&addr(1, "10.9.9.9:1"), 5);
        let e = b.get(&id(1)).unwrap();
        assert_eq!((e.last_success, e.failures), (None, 0), "another address of the same peer changes nothing");
        b.mark_success(&addr(1, "10.0.0.1:1"), 6);
        assert_eq!(b.get(&id(1)).unwrap().last_success, Some(6));
    }

    #[test]
    fn configured_entries_follow_the_configuration() {
        let mut b = book(10);
        // Last run's configuration: peers 1 and 2. Peer 3 was learned from a peer.
        b.add(addr(1, "10.0.0.1:1"), Source::Config, 0);
        b.add(addr(2, "10.0.0.2:1"), Source::Config, 0);
        b.add(addr(3, "10.0.0.3:1"), Source::Peer(id(9)), 0);
        b.mark_success(&addr(1, "10.0.0.1:1"), 5);
        // Now: peer 1 moved, peer 2 is gone from the configuration, peer 3 is configured, peer 4 is new.
        let now = [addr(1, "10.0.0.11:1"), addr(3, "10.0.0.3:1"), addr(4, "10.0.0.4:1"), addr(0, "10.0.0.5:1")];
        let sync = b.sync_config(&now, 10);
        assert_eq!(sync, ConfigSync { added: 1, replaced: 1, adopted: 1, removed: 1 });
        let e1 = b.get(&id(1)).unwrap();
        assert_eq!((e1.address, e1.source, e1.last_success), (addr(1, "10.0.0.11:1"), Source::Config, None));
        assert!(b.get(&id(2)).is_none(), "no longer configured: not vouched for any more");
        assert_eq!(b.get(&id(3)).unwrap().source, Source::Config);
        assert_eq!(b.get(&id(4)).unwrap().source, Source::Config);
        assert!(b.get(&id(0)).is_none(), "never ourselves");
        assert_eq!(b.sync_config(&now, 11), ConfigSync::default(), "in step: nothing to do");
        // The old address is not credited with a connection to the new one.
        b.mark_success(&addr(1, "10.0.0.1:1"), 12);
        assert_eq!(b.get(&id(1)).unwrap().last_success, None);
    }

    #[test]
    fn starts_empty_adds_and_gets() {
        let mut b = book(10);
        assert!(b.is_empty() && !b.is_dirty());
        assert_eq!(b.add(addr(1, "10.0.0.1:1"), Source::Peer(id(2)), 100), Added::New);
        assert_eq!(b.get(&id(1)).unwrap().first_seen, 100);
        assert_eq!(b.add(addr(1, "10.0.0.1:1"), Source::Peer(id(3)), 200), Added::Known);
        assert_eq!(b.len(), 1);
        assert!(b.is_dirty());
    }

    #[test]
    fn self_private_and_undialable_addresses_are_never_stored() {
        let mut b = book(10);
        assert_eq!(b.add(addr(0, "10.0.0.1:1"), Source::SelfReported, 1), Added::Refused, "our own ID");
        assert_eq!(b.add(addr(99, "10.0.0.1:1"), Source::SelfReported, 1), Added::Refused, "private");
        assert_eq!(b.add(addr(5, "0.0.0.0:1"), Source::SelfReported, 1), Added::Refused, "unspecified");
        assert_eq!(b.add(addr(5, "10.0.0.1:0"), Source::SelfReported, 1), Added::Refused, "port 0");
        assert!(b.is_empty());
    }

    #[test]
    fn a_peer_about_itself_beats_hearsay_and_config_beats_both() {
        let mut b = book(10);
        b.add(addr(1, "10.0.0.1:1"), Source::Peer(id(2)), 1);
        assert_eq!(b.add(addr(1, "10.0.0.9:9"), Source::SelfReported, 2), Added::Updated);
        assert_eq!(b.add(addr(1, "10.0.0.5:5"), Source::Peer(id(3)), 3), Added::Known, "hearsay cannot override");
        assert_eq!(b.get(&id(1)).unwrap().address, addr(1, "10.0.0.9:9"));
        assert_eq!(b.add(addr(1, "10.0.0.7:7"), Source::Config, 4), Added::Updated);
        assert_eq!(b.add(addr(1, "10.0.0.8:8"), Source::SelfReported, 5), Added::Known);
        // Among peers' reports, a new address replaces one that failed and never worked.
        b.add(addr(4, "10.0.0.4:4"), Source::Peer(id(2)), 1);
        assert_eq!(b.add(addr(4, "10.0.0.44:4"), Source::Peer(id(3)), 2), Added::Known);
        b.mark_failure(&at(4, &b), 3);
        assert_eq!(b.add(addr(4, "10.0.0.44:4"), Source::Peer(id(3)), 4), Added::Updated);
    }

    #[test]
    fn failures_back_off_exponentially_and_success_resets() {
        let mut b = book(10);
        b.add(addr(1, "10.0.0.1:1"), Source::Peer(id(2)), 0);
        let ready = |b: &AddressBook, now| b.dial_candidates(now, 10, none, keep).len();
        assert_eq!(ready(&b, 0), 1);
        b.mark_attempt(&id(1), 0);
        assert_eq!(ready(&b, 59), 0, "a minute between attempts");
        b.mark_failure(&at(1, &b), 0);
        assert_eq!(b.get(&id(1)).unwrap().next_attempt(), 120);
        b.mark_failure(&at(1, &b), 120);
        assert_eq!(b.get(&id(1)).unwrap().next_attempt(), 120 + 240);
        for _ in 0..40 {
            b.mark_failure(&at(1, &b), 1000);
        }
        assert_eq!(b.get(&id(1)).unwrap().next_attempt(), 1000 + DAY, "capped at a day, no overflow");
        b.mark_success(&at(1, &b), 2000);
        assert_eq!(b.get(&id(1)).unwrap().failures, 0);
    }

    #[test]
    fn entries_not_reached_for_two_weeks_are_dropped() {
        let mut b = book(10);
        b.add(addr(1, "10.0.0.1:1"), Source::Peer(id(2)), 0);
        b.add(addr(3, "10.0.0.3:1"), Source::Peer(id(2)), 0);
        b.mark_success(&at(3, &b), EXPIRY);
        b.add(addr(4, "10.0.0.4:1"), Source::Config, 0);
        assert_eq!(b.expire(EXPIRY + 1), 1, "the never-reached one");
        assert!(b.get(&id(3)).is_some() && b.get(&id(4)).is_some());
        assert_eq!(b.expire(2 * EXPIRY + 1), 1, "the reached one, two weeks after its success");
        assert!(b.get(&id(4)).is_some(), "configured addresses stay");
    }

    #[test]
    fn eviction_at_capacity_keeps_addresses_that_worked() {
        let mut b = book(3);
        b.add(addr(1, "10.0.0.1:1"), Source::Peer(id(9)), 0);
        b.add(addr(2, "10.0.0.2:1"), Source::Peer(id(9)), 0);
        b.add(addr(3, "10.0.0.3:1"), Source::Peer(id(9)), 0);
        b.mark_success(&at(1, &b), 10);
        b.mark_failure(&at(2, &b), 10);
        assert_eq!(b.add(addr(4, "10.0.0.4:1"), Source::Peer(id(9)), 20), Added::New);
        assert!(b.get(&id(2)).is_none(), "the failing unproven entry went");
        b.mark_success(&at(3, &b), 30);
        b.mark_success(&at(4, &b), 30);
        assert_eq!(b.add(addr(5, "10.0.0.5:1"), Source::Peer(id(9)), 40), Added::Refused, "proven entries stay");
        assert_eq!(b.add(addr(6, "10.0.0.6:1"), Source::Config, 40), Added::New, "configuration always fits");
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn candidates_prefer_proven_addresses_and_sharing_takes_recent_successes() {
        let mut b = book(10);
        for i in 1..=4 {
            b.add(addr(i, &format!("10.0.0.{i}:1")), Source::Peer(id(9)), 0);
        }
        b.mark_success(&at(3, &b), 100);
        let c = b.dial_candidates(200, 10, |x| *x == id(4), keep);
        assert_eq!(c[0], addr(3, "10.0.0.3:1"));
        assert_eq!(c.len(), 3, "excluded IDs are skipped");
        assert_eq!(b.recently_reached(100 + DAY, none), vec![addr(3, "10.0.0.3:1")]);
        assert!(b.recently_reached(101 + DAY, none).is_empty(), "older than a day");
    }

    #[test]
    fn saves_human_readable_json_and_reloads_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config/addrbook.json");
        let mut b = book(10);
        b.add(addr(1, "10.0.0.1:1"), Source::Peer(id(2)), 5);
        b.add(addr(3, "[fd00::1]:26656"), Source::SelfReported, 6);
        b.mark_failure(&at(3, &b), 7);
        assert!(b.save(&path, P).unwrap());
        assert!(!b.save(&path, P).unwrap(), "a clean book is not rewritten");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\n") && text.contains("\"source\": \"self\""), "{text}");
        let loaded = AddressBook::load(&path, P, id(0), HashSet::new(), 10, 8).unwrap();
        assert_eq!((loaded.skipped, loaded.moved_aside.is_none()), (0, true));
        assert_eq!(loaded.book.entries(), b.entries());
        // flush writes even when clean.
        std::fs::remove_file(&path).unwrap();
        let mut again = loaded.book;
        again.flush(&path, P).unwrap();
        assert!(path.exists());
    }

    #[test]
    fn invalid_entries_are_skipped_and_a_corrupt_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("addrbook.json");
        let good = addr(1, "10.0.0.1:1").to_string();
        let text = format!(
            r#"{{"version":1,"profile":"tm2","addresses":[
              {{"address":"{good}","source":"self","first_seen":1}},
              {{"address":"{}@seed.example.org:1","source":"self","first_seen":1}},
              {{"address":"{}@10.0.0.2:1","source":"self","first_seen":1}},
              {{"address":"{good}","source":"not-an-id","first_seen":1}}]}}"#,
            id(5),
            id(0)
        );
        std::fs::write(&path, text).unwrap();
        let loaded = AddressBook::load(&path, P, id(0), HashSet::new(), 10, 9).unwrap();
        assert_eq!((loaded.book.len(), loaded.skipped), (1, 3));

        std::fs::write(&path, "{ not json").unwrap();
        let loaded = AddressBook::load(&path, P, id(0), HashSet::new(), 10, 1234).unwrap();
        assert!(loaded.book.is_empty());
        let aside = loaded.moved_aside.unwrap();
        assert_eq!(aside, dir.path().join("addrbook.json.corrupt-1234"));
        assert_eq!(std::fs::read_to_string(aside).unwrap(), "{ not json");
        assert!(!path.exists());
        // A missing file is simply an empty book.
        assert!(AddressBook::load(&path, P, id(0), HashSet::new(), 10, 1).unwrap().book.is_empty());
    }
}
