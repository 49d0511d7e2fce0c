//! Who may start an inbound handshake: a bounded pool of slots, shared fairly between networks. Pure: fed addresses
//! and `now`, it returns decisions; the accept loop acts on them.
//!
//! A handshake slot is held from accept until the connection is upgraded or refused (at most the handshake
//! deadline, twice). An attacker who keeps reconnecting can hold slots forever, so the pool is split by origin:
//! - at most `per_ip` slots per host (for IPv6, per /64: one host can use any address of its /64);
//! - at most `per_subnet` slots per network (IPv4 /24, IPv6 /48);
//! - when the pool is full, a newcomer from a less crowded place takes the oldest slot of the most crowded one (its
//!   handshake is aborted and its socket closed). Crowding is counted per region first (IPv4 /16, IPv6 /32: roughly
//!   one provider), then per network: the victim comes from the most crowded network of the most crowded region,
//!   and only a newcomer whose (region, network) counts are lower than the victim's may take its slot. Anyone else
//!   is refused.
//!
//! An honest node from a region of its own therefore always gets a slot, and keeps it: only a newcomer from a place
//! with even fewer slots could take it, and that needs an attacker spread over more regions (/16s or /32s) than the
//! pool has slots; many networks inside one provider's range count as one region.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use tokio::time::Instant;

/// Slot limits. [`Default`]: 256 in all, 8 per host, 32 per network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotLimits {
    /// Handshakes in flight at once, from everyone.
    pub total: usize,
    /// From one host (an IPv4 address or an IPv6 /64).
    pub per_ip: usize,
    /// From one network (IPv4 /24, IPv6 /48).
    pub per_subnet: usize,
}

impl Default for SlotLimits {
    fn default() -> Self {
        SlotLimits { total: 256, per_ip: 8, per_subnet: 32 }
    }
}

/// A handshake slot's number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotId(u64);

/// A host: an IPv4 address, or an IPv6 /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Host(IpAddr);

/// A network: an IPv4 /24 or an IPv6 /48.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Subnet(IpAddr);

/// A region: an IPv4 /16 or an IPv6 /32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Region(IpAddr);

/// The top `bits` of an IPv6 address.
fn v6_prefix(bits: u128, keep: u32) -> IpAddr {
    IpAddr::V6((bits & !(u128::MAX >> keep)).into())
}

fn origin(ip: IpAddr) -> (Host, Subnet) {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            (Host(IpAddr::V4(v4)), Subnet(IpAddr::V4([o[0], o[1], o[2], 0].into())))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            (Host(v6_prefix(bits, 64)), Subnet(v6_prefix(bits, 48)))
        }
    }
}

fn region(subnet: Subnet) -> Region {
    match subnet.0 {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            Region(IpAddr::V4([o[0], o[1], 0, 0].into()))
        }
        IpAddr::V6(v6) => Region(v6_prefix(u128::from(v6), 32)),
    }
}

/// What to do with a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Start its handshake in this slot.
    Admit(SlotId),
    /// Abort the handshake in `evict` (from the most crowded network), then start this one in `slot`.
    AdmitEvicting {
        /// The new connection's slot.
        slot: SlotId,
        /// The slot to abort.
        evict: SlotId,
    },
    /// Close it: the named limit is reached.
    Reject(&'static str),
}

#[derive(Debug)]
struct Slot {
    host: Host,
    subnet: Subnet,
}

/// The pool of inbound handshake slots.
#[derive(Debug)]
pub struct HandshakeSlots {
    limits: SlotLimits,
    slots: HashMap<SlotId, Slot>,
    per_host: HashMap<Host, usize>,
    /// Each network's slots, oldest first.
    per_subnet: HashMap<Subnet, VecDeque<(Instant, SlotId)>>,
    per_region: HashMap<Region, usize>,
    next: u64,
}

impl HandshakeSlots {
    /// An empty pool.
    pub fn new(limits: SlotLimits) -> Self {
        let limits = SlotLimits {
            total: limits.total.max(1),
            per_ip: limits.per_ip.max(1),
            per_subnet: limits.per_subnet.max(1),
        };
        HandshakeSlots {
            limits,
            slots: HashMap::new(),
            per_host: HashMap::new(),
            per_subnet: HashMap::new(),
            per_region: HashMap::new(),
            next: 0,
        }
    }

    /// Slots in use.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no slot is in use.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Decides on a connection from `ip` arriving at `now`. Admissions take their slot at once; an eviction has
    /// already released the evicted slot.
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> Admission {
        let (host, subnet) = origin(ip);
        if self.per_host.get(&host).copied().unwrap_or(0) >= self.limits.per_ip {
            return Admission::Reject("pending inbound handshakes from one host");
        }
        let mine = self.per_subnet.get(&subnet).map_or(0, VecDeque::len);
        if mine >= self.limits.per_subnet {
            return Admission::Reject("pending inbound handshakes from one network");
        }
        if self.slots.len() < self.limits.total {
            return Admission::Admit(self.take(host, subnet, now));
        }
        // Full: the most crowded network of the most crowded region gives up its oldest slot, if the newcomer's
        // place is less crowded.
        let newcomer = (self.per_region.get(&region(subnet)).copied().unwrap_or(0), mine);
        let crowded = self
            .per_subnet
            .iter()
            .filter_map(|(net, q)| {
                let region_count = self.per_region.get(&region(*net)).copied().unwrap_or(0);
                q.front().map(|(t, id)| ((region_count, q.len()), std::cmp::Reverse(*t), *net, *id))
            })
            .max();
        match crowded {
            Some((crowding, _, _, evict)) if crowding > newcomer => {
                self.release(evict);
                Admission::AdmitEvicting { slot: self.take(host, subnet, now), evict }
            }
            _ => Admission::Reject("pending inbound handshakes"),
        }
    }

    fn take(&mut self, host: Host, subnet: Subnet, now: Instant) -> SlotId {
        self.next += 1;
        let id = SlotId(self.next);
        self.slots.insert(id, Slot { host, subnet });
        *self.per_host.entry(host).or_insert(0) += 1;
        self.per_subnet.entry(subnet).or_default().push_back((now, id));
        *self.per_region.entry(region(subnet)).or_insert(0) += 1;
        id
    }

    /// Frees a slot (its handshake finished, failed or was aborted). Unknown slots are ignored.
    pub fn release(&mut self, id: SlotId) {
        let Some(slot) = self.slots.remove(&id) else { return };
        if let Some(n) = self.per_host.get_mut(&slot.host) {
            *n -= 1;
            if *n == 0 {
                self.per_host.remove(&slot.host);
            }
        }
        if let Some(q) = self.per_subnet.get_mut(&slot.subnet) {
            q.retain(|(_, s)| *s != id);
            if q.is_empty() {
                self.per_subnet.remove(&slot.subnet);
            }
        }
        let region = region(slot.subnet);
        if let Some(n) = self.per_region.get_mut(&region) {
            *n -= 1;
            if *n == 0 {
                self.per_region.remove(&region);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn admitted(a: Admission) -> SlotId {
        match a {
            Admission::Admit(s) | Admission::AdmitEvicting { slot: s, .. } => s,
            Admission::Reject(why) => panic!("rejected: {why}"),
        }
    }

    #[test]
    fn one_host_and_one_network_hold_only_their_share() {
        let t = Instant::now();
        let mut p = HandshakeSlots::new(SlotLimits { total: 100, per_ip: 2, per_subnet: 3 });
        admitted(p.admit(ip("10.0.0.1"), t));
        let second = admitted(p.admit(ip("10.0.0.1"), t));
        assert_eq!(p.admit(ip("10.0.0.1"), t), Admission::Reject("pending inbound handshakes from one host"));
        admitted(p.admit(ip("10.0.0.2"), t));
        assert_eq!(p.admit(ip("10.0.0.3"), t), Admission::Reject("pending inbound handshakes from one network"));
        admitted(p.admit(ip("10.0.1.3"), t)); // the next /24 is another network
        p.release(second);
        admitted(p.admit(ip("10.0.0.3"), t));
        // IPv4-mapped IPv6 is the IPv4 address, in its IPv4 network.
        assert_eq!(p.admit(ip("::ffff:10.0.0.4"), t), Admission::Reject("pending inbound handshakes from one network"));
        // An IPv6 host is its /64; a network is a /48.
        admitted(p.admit(ip("2001:db8:1:1::1"), t));
        admitted(p.admit(ip("2001:db8:1:1::2"), t));
        assert_eq!(
            p.admit(ip("2001:db8:1:1:ffff::9"), t),
            Admission::Reject("pending inbound handshakes from one host")
        );
        admitted(p.admit(ip("2001:db8:1:2::1"), t));
        assert_eq!(p.admit(ip("2001:db8:1:3::1"), t), Admission::Reject("pending inbound handshakes from one network"));
        assert_eq!(p.len(), 7);
    }

    #[test]
    fn a_full_pool_makes_room_for_a_newcomer_from_a_quiet_network_at_the_crowded_networks_expense() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut p = HandshakeSlots::new(SlotLimits { total: 6, per_ip: 8, per_subnet: 4 });
        // Network A holds 4 slots, network B 2: the pool is full.
        let a: Vec<_> = (0..4).map(|i| admitted(p.admit(ip(&format!("10.0.0.{i}")), t0 + s(i)))).collect();
        let b: Vec<_> = (0..2).map(|i| admitted(p.admit(ip(&format!("10.0.1.{i}")), t0 + s(10 + i)))).collect();
        // A newcomer from network C evicts A's oldest handshake.
        let c = p.admit(ip("10.0.2.1"), t0 + s(20));
        assert!(matches!(c, Admission::AdmitEvicting { evict, .. } if evict == a[0]), "{c:?}");
        // B (2 slots) is lighter than A (3 now): B's newcomer evicts A's next oldest.
        let b2 = p.admit(ip("10.0.1.9"), t0 + s(21));
        assert!(matches!(b2, Admission::AdmitEvicting { evict, .. } if evict == a[1]), "{b2:?}");
        // A and B hold 2 and 3 now; a newcomer from A (2) evicts B's oldest (B has 3).
        let a2 = p.admit(ip("10.0.0.9"), t0 + s(22));
        assert!(matches!(a2, Admission::AdmitEvicting { evict, .. } if evict == b[0]), "{a2:?}");
        // Now A 3, B 2, C 1: a newcomer from A, the most crowded network, is refused.
        assert_eq!(p.admit(ip("10.0.0.10"), t0 + s(23)), Admission::Reject("pending inbound handshakes"));
        assert_eq!(p.len(), 6);
        // Evicted slots are gone: releasing them again changes nothing.
        p.release(a[0]);
        assert_eq!(p.len(), 6);
    }

    #[test]
    fn an_honest_newcomer_keeps_its_slot_while_a_crowded_network_churns() {
        let t0 = Instant::now();
        let mut p = HandshakeSlots::new(SlotLimits { total: 8, per_ip: 2, per_subnet: 4 });
        let mut now = t0;
        // An attacker on two networks fills the pool (4 + 4) and reconnects whenever a slot of theirs is evicted.
        for i in 0..8 {
            admitted(p.admit(ip(&format!("10.{}.0.{i}", i % 2)), now));
        }
        let honest = admitted(p.admit(ip("192.0.2.7"), now));
        for round in 0..1000u32 {
            now += Duration::from_millis(1);
            // Each attacker arrival can only take from the other crowded network, never the honest slot.
            match p.admit(ip(&format!("10.{}.0.{}", round % 2, round % 200)), now) {
                Admission::AdmitEvicting { evict, .. } => assert_ne!(evict, honest),
                Admission::Admit(_) | Admission::Reject(_) => {}
            }
        }
        assert!(p.slots.contains_key(&honest), "the honest handshake was never evicted");
    }

    #[test]
    fn many_networks_inside_one_providers_range_count_as_one_region() {
        let t0 = Instant::now();
        let mut p = HandshakeSlots::new(SlotLimits { total: 8, per_ip: 8, per_subnet: 8 });
        let mut now = t0;
        // An attacker with a /32 of IPv6 uses a fresh /48 for every connection.
        let attacker = |i: u32| ip(&format!("2001:db8:{:x}::1", i + 1));
        for i in 0..8 {
            admitted(p.admit(attacker(i), now));
        }
        let honest = admitted(p.admit(ip("2001:db9::7"), now));
        for i in 8..2000 {
            now += Duration::from_millis(1);
            if let Admission::AdmitEvicting { evict, .. } = p.admit(attacker(i), now) {
                assert_ne!(evict, honest, "connection {i}");
            }
        }
        assert!(p.slots.contains_key(&honest), "the honest handshake was never evicted");
        assert_eq!(p.len(), 8);
    }
}
