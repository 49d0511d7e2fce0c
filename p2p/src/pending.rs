//! A table of requests waiting for their responses, for request/response reactors.
//!
//! Pure: no timers inside. A reactor inserts each request it sends with the request's deadline and gets a
//! [`RequestId`] to put on the wire; it resolves the entry when the response arrives; it calls
//! [`PendingRequests::expire`] with `now` when [`PendingRequests::next_deadline`] has passed, and
//! [`PendingRequests::remove_peer`] when a peer goes down. Inserting, resolving, cancelling and expiring an entry
//! cost O(log n); removing a peer costs O(k log k) for its k entries. A reactor can keep thousands of requests in
//! flight per peer without a scan. IDs count up from a start the reactor chooses, or
//! ([`PendingRequests::unpredictable`]) follow a secret permutation, so peers cannot read our request rate off them.
//!
//! ```
//! use std::time::Duration;
//! use ledgerwire_p2p::pending::PendingRequests;
//! use ledgerwire_types::{NodeKey, WireProfile};
//! use tokio::time::Instant;
//!
//! let peer = NodeKey::generate().node_id(WireProfile::Tm2);
//! let now = Instant::now();
//! let mut pending = PendingRequests::new();
//! let first = pending.insert(peer, now + Duration::from_secs(5), "first");
//! let second = pending.insert(peer, now + Duration::from_secs(1), "second");
//! assert_eq!(pending.next_deadline(), Some(now + Duration::from_secs(1)));
//! // The response to `first` arrives: it is resolved once, and only by the peer it was sent to.
//! assert_eq!(pending.resolve(peer, first), Some("first"));
//! assert_eq!(pending.resolve(peer, first), None);
//! // Later, `second` times out.
//! let expired = pending.expire(now + Duration::from_secs(2));
//! assert_eq!(expired.len(), 1);
//! assert_eq!((expired[0].id, expired[0].value), (second, "second"));
//! assert!(pending.is_empty());
//! ```

use std::collections::{BTreeSet, HashMap, HashSet};

use ledgerwire_types::NodeId;
use tokio::time::Instant;

/// A request's number, unique within one table for its life. It goes on the wire with the request, and the response
/// carries it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

impl RequestId {
    /// The number, for the wire.
    pub fn get(self) -> u64 {
        self.0
    }

    /// A number read from the wire.
    pub fn from_wire(n: u64) -> Self {
        RequestId(n)
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A request whose deadline passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expired<T> {
    /// The request.
    pub id: RequestId,
    /// The peer it was sent to.
    pub peer: NodeId,
    /// Its deadline.
    pub deadline: Instant,
    /// What the reactor stored with it.
    pub value: T,
}

#[derive(Debug)]
struct Entry<T> {
    peer: NodeId,
    deadline: Instant,
    value: T,
}

/// Requests in flight, by ID, deadline and peer.
#[derive(Debug)]
pub struct PendingRequests<T> {
    entries: HashMap<RequestId, Entry<T>>,
    deadlines: BTreeSet<(Instant, RequestId)>,
    by_peer: HashMap<NodeId, HashSet<RequestId>>,
    next: u64,
    /// Secret keys of the permutation that turns the counter into IDs (`None`: IDs are the counter).
    scramble: Option<(u64, u64)>,
}

/// SplitMix64's finaliser: a bijection of u64 that spreads every input bit over the output.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl<T> Default for PendingRequests<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> PendingRequests<T> {
    /// An empty table; IDs start at 1.
    pub fn new() -> Self {
        Self::starting_at(1)
    }

    /// An empty table whose first ID is `first` (a random start makes IDs of a restarted node unlikely to match
    /// responses still on their way to its previous life).
    pub fn starting_at(first: u64) -> Self {
        PendingRequests {
            entries: HashMap::new(),
            deadlines: BTreeSet::new(),
            by_peer: HashMap::new(),
            next: first,
            scramble: None,
        }
    }

    /// An empty table whose IDs look random (a secret permutation of a counter): still unique, but peers can neither
    /// guess the next one nor tell how many requests we send.
    pub fn unpredictable() -> Self {
        use ledgerwire_types::random;
        PendingRequests { scramble: Some((random::u64(), random::u64())), ..Self::starting_at(random::u64()) }
    }

    /// The ID for counter value `n`: a keyed permutation (two rounds of a bijective mix, each after a secret key),
    /// so IDs never repeat while the counter does not.
    fn id_at(&self, n: u64) -> RequestId {
        match self.scramble {
            Some((k1, k2)) => RequestId(mix(mix(n ^ k1) ^ k2)),
            None => RequestId(n),
        }
    }

    /// Records a request to `peer` that must be answered by `deadline`, and returns its ID.
    pub fn insert(&mut self, peer: NodeId, deadline: Instant, value: T) -> RequestId {
        let mut id = self.id_at(self.next);
        while self.entries.contains_key(&id) {
            // Only after 2^64 requests, with one of the first still in flight.
            self.next = self.next.wrapping_add(1);
            id = self.id_at(self.next);
        }
        self.next = self.next.wrapping_add(1);
        self.entries.insert(id, Entry { peer, deadline, value });
        self.deadlines.insert((deadline, id));
        self.by_peer.entry(peer).or_default().insert(id);
        id
    }

    /// Takes the request `id` if it is in flight to `peer`. `None` for an unknown, expired or already resolved ID,
    /// and for a response from another peer than the request went to (the entry then stays).
    pub fn resolve(&mut self, peer: NodeId, id: RequestId) -> Option<T> {
        if self.entries.get(&id)?.peer != peer {
            return None;
        }
        self.take(id).map(|(_, _, value)| value)
    }

    fn take(&mut self, id: RequestId) -> Option<(NodeId, Instant, T)> {
        let e = self.entries.remove(&id)?;
        self.deadlines.remove(&(e.deadline, id));
        if let Some(ids) = self.by_peer.get_mut(&e.peer) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_peer.remove(&e.peer);
            }
        }
        Some((e.peer, e.deadline, e.value))
    }

    /// Withdraws request `id` (sending it failed, or the reactor gave up on it): its peer and value.
    pub fn cancel(&mut self, id: RequestId) -> Option<(NodeId, T)> {
        self.take(id).map(|(peer, _, value)| (peer, value))
    }

    /// The peer request `id` went to.
    pub fn peer_of(&self, id: RequestId) -> Option<NodeId> {
        self.entries.get(&id).map(|e| e.peer)
    }

    /// The deadline of request `id`.
    pub fn deadline_of(&self, id: RequestId) -> Option<Instant> {
        self.entries.get(&id).map(|e| e.deadline)
    }

    /// Removes and returns every request whose deadline is at or before `now`, earliest first.
    pub fn expire(&mut self, now: Instant) -> Vec<Expired<T>> {
        let mut out = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            if let Some((peer, deadline, value)) = self.take(id) {
                out.push(Expired { id, peer, deadline, value });
            }
        }
        out
    }

    /// The earliest deadline in the table.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// Removes and returns every request in flight to `peer` (it went down), in ID order.
    pub fn remove_peer(&mut self, peer: NodeId) -> Vec<(RequestId, T)> {
        let mut ids: Vec<RequestId> = self.by_peer.remove(&peer).map(|s| s.into_iter().collect()).unwrap_or_default();
        ids.sort();
        ids.into_iter()
            .filter_map(|id| {
                let e = self.entries.remove(&id)?;
                self.deadlines.remove(&(e.deadline, id));
                Some((id, e.value))
            })
            .collect()
    }

    /// The value stored with request `id`.
    pub fn get(&self, id: RequestId) -> Option<&T> {
        self.entries.get(&id).map(|e| &e.value)
    }

    /// The value stored with request `id`, to update it in place (say, to add a second waiter to a request already
    /// in flight).
    pub fn get_mut(&mut self, id: RequestId) -> Option<&mut T> {
        self.entries.get_mut(&id).map(|e| &mut e.value)
    }

    /// Requests in flight to `peer`.
    pub fn in_flight(&self, peer: NodeId) -> usize {
        self.by_peer.get(&peer).map_or(0, HashSet::len)
    }

    /// Requests in flight in all.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerwire_types::{NodeKey, WireProfile};
    use std::time::Duration;

    fn peer(seed: u8) -> NodeId {
        NodeKey::from_seed(&[seed; 32]).node_id(WireProfile::Tm2)
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn a_response_resolves_its_request_once_and_only_from_the_peer_it_was_sent_to() {
        let t0 = Instant::now();
        let mut p = PendingRequests::new();
        let id = p.insert(peer(1), t0 + MS(100), 'a');
        assert_eq!(p.in_flight(peer(1)), 1);
        assert_eq!(p.resolve(peer(2), id), None, "another peer cannot answer for it");
        assert_eq!(p.get(id), Some(&'a'));
        assert_eq!(p.resolve(peer(1), id), Some('a'));
        assert_eq!(p.resolve(peer(1), id), None, "answered twice");
        assert_eq!(p.resolve(peer(1), RequestId::from_wire(999)), None, "never sent");
        assert_eq!((p.len(), p.in_flight(peer(1)), p.next_deadline()), (0, 0, None));
    }

    #[test]
    fn expiry_takes_exactly_the_requests_whose_deadline_passed_earliest_first() {
        let t0 = Instant::now();
        let mut p = PendingRequests::new();
        let late = p.insert(peer(1), t0 + MS(300), 3);
        let early = p.insert(peer(2), t0 + MS(100), 1);
        let middle = p.insert(peer(1), t0 + MS(200), 2);
        assert_eq!(p.next_deadline(), Some(t0 + MS(100)));
        assert!(p.expire(t0 + MS(99)).is_empty());
        let gone = p.expire(t0 + MS(200));
        assert_eq!(gone.iter().map(|e| (e.id, e.value)).collect::<Vec<_>>(), vec![(early, 1), (middle, 2)]);
        assert_eq!(gone[0].peer, peer(2));
        assert_eq!(p.resolve(peer(1), middle), None, "an expired request cannot be answered any more");
        assert_eq!(p.next_deadline(), Some(t0 + MS(300)));
        assert_eq!(p.resolve(peer(1), late), Some(3));
    }

    #[test]
    fn a_peer_going_down_takes_its_requests_and_leaves_the_others() {
        let t0 = Instant::now();
        let mut p = PendingRequests::new();
        let a: Vec<_> = (0..5).map(|i| p.insert(peer(1), t0 + MS(i), i)).collect();
        let b = p.insert(peer(2), t0 + MS(2), 100);
        let gone = p.remove_peer(peer(1));
        assert_eq!(gone, a.iter().copied().zip(0..5).collect::<Vec<_>>());
        assert_eq!((p.len(), p.next_deadline()), (1, Some(t0 + MS(2))));
        assert!(p.remove_peer(peer(1)).is_empty());
        assert_eq!(p.expire(t0 + MS(10)).into_iter().map(|e| e.id).collect::<Vec<_>>(), vec![b]);
    }

    #[test]
    fn ids_are_unique_even_when_the_counter_wraps() {
        let t0 = Instant::now();
        let mut p = PendingRequests::starting_at(u64::MAX - 1);
        let ids: Vec<_> = (0..4).map(|i| p.insert(peer(1), t0, i)).collect();
        assert_eq!(ids.iter().map(|i| i.get()).collect::<Vec<_>>(), vec![u64::MAX - 1, u64::MAX, 0, 1]);
        // A table whose next number is still in flight skips it.
        let mut q = PendingRequests::starting_at(5);
        let first = q.insert(peer(1), t0, 0);
        q.next = 5;
        assert_ne!(q.insert(peer(1), t0, 1), first);
    }

    #[test]
    fn a_request_can_be_withdrawn_looked_up_and_updated_in_place() {
        let t0 = Instant::now();
        let mut p = PendingRequests::new();
        let id = p.insert(peer(1), t0 + MS(5), vec!['a']);
        assert_eq!((p.peer_of(id), p.deadline_of(id)), (Some(peer(1)), Some(t0 + MS(5))));
        p.get_mut(id).unwrap().push('b');
        assert_eq!(p.cancel(id), Some((peer(1), vec!['a', 'b'])));
        assert_eq!((p.cancel(id), p.peer_of(id), p.next_deadline(), p.in_flight(peer(1))), (None, None, None, 0));
    }

    #[test]
    fn unpredictable_ids_are_unique_and_not_consecutive() {
        let t0 = Instant::now();
        let mut p = PendingRequests::unpredictable();
        let ids: Vec<u64> = (0..1000).map(|i| p.insert(peer(1), t0, i).get()).collect();
        let distinct: HashSet<u64> = ids.iter().copied().collect();
        assert_eq!(distinct.len(), 1000);
        let steps: HashSet<u64> = ids.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
        assert!(steps.len() > 990, "the distance between consecutive IDs says nothing: {} distinct", steps.len());
        assert_eq!(p.resolve(peer(1), RequestId::from_wire(ids[7])), Some(7));
    }

    #[test]
    fn ten_thousand_requests_to_one_peer_stay_cheap_to_resolve_and_expire() {
        let t0 = Instant::now();
        let mut p = PendingRequests::new();
        let ids: Vec<_> = (0..10_000u64).map(|i| p.insert(peer(1), t0 + MS(i), i)).collect();
        // Every other one is answered; the rest expire in deadline order.
        for (i, id) in ids.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
            assert_eq!(p.resolve(peer(1), *id), Some(i as u64));
        }
        let expired = p.expire(t0 + MS(10_000));
        assert_eq!(expired.len(), 5_000);
        assert!(expired.windows(2).all(|w| w[0].deadline <= w[1].deadline));
        assert!(p.is_empty());
    }
}
