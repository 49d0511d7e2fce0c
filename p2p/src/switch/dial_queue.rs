//! The time-ordered dial queue: one entry per peer ID, bounded, earliest first.

use std::cmp::Reverse;
use std::collections::HashMap;

use ledgerwire_types::{HostAddress, NodeId};
use priority_queue::PriorityQueue;
use tokio::time::Instant;

/// Something to dial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialTarget {
    /// The address (for persistent peers always the operator-configured one).
    pub address: HostAddress,
    /// Whether the peer is persistent (redialed forever, exempt from limits).
    pub persistent: bool,
    /// Failed attempts so far (drives the backoff).
    pub attempts: u32,
}

/// What [`DialQueue::push`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// A new entry.
    Added,
    /// The peer was queued already; its entry now has the earlier time and the better target.
    Merged,
    /// The queue is full of entries at least as important; nothing was added.
    Full,
}

/// Dial targets ordered by due time (FIFO among equal times), deduplicated by peer ID, bounded in size.
#[derive(Debug)]
pub struct DialQueue {
    queue: PriorityQueue<NodeId, Reverse<(Instant, u64)>>,
    targets: HashMap<NodeId, DialTarget>,
    capacity: usize,
    seq: u64,
}

impl DialQueue {
    /// An empty queue holding at most `capacity` peers.
    pub fn new(capacity: usize) -> Self {
        DialQueue { queue: PriorityQueue::new(), targets: HashMap::new(), capacity: capacity.max(1), seq: 0 }
    }

    /// Number of queued peers.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether `id` is queued.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.targets.contains_key(id)
    }

    /// Queues `target` for `at`. A peer already queued keeps one entry: the earlier time, and the persistent target
    /// if either is persistent. When full, a persistent target evicts the latest non-persistent entry; anything else
    /// is refused.
    pub fn push(&mut self, target: DialTarget, at: Instant) -> Pushed {
        let id = target.address.id();
        self.seq += 1;
        if let Some(existing) = self.targets.get_mut(&id) {
            if target.persistent || !existing.persistent {
                *existing = target;
            }
            self.queue.push_increase(id, Reverse((at, self.seq)));
            return Pushed::Merged;
        }
        if self.queue.len() >= self.capacity {
            if !target.persistent {
                return Pushed::Full;
            }
            let victim = self
                .queue
                .iter()
                .filter(|(i, _)| self.targets.get(i).is_some_and(|t| !t.persistent))
                .min_by_key(|(_, p)| **p)
                .map(|(i, _)| *i);
            match victim {
                Some(v) => {
                    self.remove(&v);
                }
                None => return Pushed::Full,
            }
        }
        self.targets.insert(id, target);
        self.queue.push(id, Reverse((at, self.seq)));
        Pushed::Added
    }

    /// When the earliest entry is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.peek().map(|(_, Reverse((at, _)))| *at)
    }

    /// Takes the earliest entry if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<DialTarget> {
        if self.next_due()? > now {
            return None;
        }
        let (id, _) = self.queue.pop()?;
        self.targets.remove(&id)
    }

    /// Removes `id`'s entry.
    pub fn remove(&mut self, id: &NodeId) -> Option<DialTarget> {
        self.queue.remove(id);
        self.targets.remove(id)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use ledgerwire_types::{NodeKey, WireProfile};

    fn target(seed: u8, persistent: bool) -> DialTarget {
        let id = NodeKey::from_seed(&[seed; 32]).node_id(WireProfile::Tm2);
        DialTarget {
            address: HostAddress::parse(&format!("{id}@127.0.0.1:{}", 1000 + u16::from(seed)), WireProfile::Tm2)
                .unwrap(),
            persistent,
            attempts: 0,
        }
    }

    #[test]
    fn pops_in_time_order_and_only_when_due() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut q = DialQueue::new(10);
        assert_eq!(q.pop_due(t0), None, "empty");
        assert_eq!(q.next_due(), None);
        q.push(target(3, false), t0 + s(3));
        q.push(target(1, false), t0 + s(1));
        q.push(target(2, false), t0 + s(2));
        assert_eq!(q.next_due(), Some(t0 + s(1)));
        assert_eq!(q.pop_due(t0), None, "nothing due yet");
        assert_eq!(q.pop_due(t0 + s(10)), Some(target(1, false)));
        assert_eq!(q.pop_due(t0 + s(10)), Some(target(2, false)));
        assert_eq!(q.pop_due(t0 + s(10)), Some(target(3, false)));
        assert!(q.is_empty());
    }

    #[test]
    fn equal_times_pop_first_in_first_out() {
        let t0 = Instant::now();
        let mut q = DialQueue::new(10);
        for seed in [5, 4, 6] {
            q.push(target(seed, false), t0);
        }
        let order: Vec<_> = std::iter::from_fn(|| q.pop_due(t0)).collect();
        assert_eq!(order, vec![target(5, false), target(4, false), target(6, false)]);
    }

    #[test]
    fn one_entry_per_peer_with_the_earlier_time_and_persistence_kept() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut q = DialQueue::new(10);
        assert_eq!(q.push(target(1, true), t0 + s(5)), Pushed::Added);
        assert_eq!(q.push(target(1, false), t0 + s(1)), Pushed::Merged);
        assert_eq!(q.push(target(1, false), t0 + s(9)), Pushed::Merged);
        assert_eq!(q.len(), 1);
        assert_eq!(q.next_due(), Some(t0 + s(1)), "the earliest time wins");
        assert!(q.pop_due(t0 + s(1)).unwrap().persistent, "persistence is never lost");
    }

    #[test]
    fn bounded_and_persistent_targets_evict_the_latest_ordinary_one() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut q = DialQueue::new(2);
        q.push(target(1, false), t0 + s(1));
        q.push(target(2, false), t0 + s(2));
        assert_eq!(q.push(target(3, false), t0), Pushed::Full);
        assert_eq!(q.push(target(4, true), t0 + s(3)), Pushed::Added);
        assert!(q.contains(&target(1, false).address.id()));
        assert!(!q.contains(&target(2, false).address.id()), "the latest ordinary entry made room");
        assert_eq!(q.push(target(5, true), t0), Pushed::Added);
        assert_eq!(q.push(target(6, true), t0), Pushed::Full, "persistent entries are never evicted");
        assert_eq!(q.remove(&target(4, true).address.id()), Some(target(4, true)));
        assert_eq!(q.len(), 1);
    }
}
