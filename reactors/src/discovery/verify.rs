//! Addresses that peers report about themselves, checked before we believe them. Pure: fed addresses and `now`.
//!
//! A peer's NodeInfo names its listen address. When its IP is the one the connection came from, we take it (an
//! unspecified IP, `0.0.0.0` or `::`, is read as that source IP, with the advertised port). When it names another
//! host, anyone could make us — and, through our answers, every node — dial a third party. Such an address is
//! stored and shared only after a probe (connect and authenticate, then hang up) has shown that the peer's key
//! answers there. Probes are bounded: at most `per_interval` each discovery interval, at most `capacity` addresses
//! waiting (newcomers are turned away when full), and an address probed recently is not probed again.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};

use ledgerwire_types::{NetAddress, NodeId};

/// Verification limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyConfig {
    /// Probes started per discovery interval. Default 2.
    pub per_interval: usize,
    /// Addresses waiting for a probe. Default 64.
    pub capacity: usize,
    /// Seconds before an address is probed again. Default 1 hour.
    pub retry_after: u64,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig { per_interval: 2, capacity: 64, retry_after: 3600 }
    }
}

/// How to treat the address a peer advertised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advertised {
    /// It names the host the connection came from: usable now.
    Observed(NetAddress),
    /// It names another host: usable only after a probe.
    Unverified(NetAddress),
    /// Nothing dialable (a host name, a port of 0, a broadcast address…).
    Unusable,
}

/// Judges `id`'s advertised `listen` address (`ip:port` text, as in its NodeInfo) against the connection's
/// `source` address.
pub fn judge(id: NodeId, listen: Option<SocketAddr>, source: SocketAddr) -> Advertised {
    let Some(listen) = listen else { return Advertised::Unusable };
    let observed = source.ip().to_canonical();
    let ip = match listen.ip().to_canonical() {
        unspecified if unspecified.is_unspecified() => observed,
        ip => ip,
    };
    let address = NetAddress::new(id, SocketAddr::new(ip, listen.port()));
    if address.validate().is_err() {
        return Advertised::Unusable;
    }
    if same_host(ip, observed) { Advertised::Observed(address) } else { Advertised::Unverified(address) }
}

fn same_host(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// What [`Verifier::offer`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offered {
    /// Queued for a probe.
    Queued,
    /// Queued, being probed, or probed recently: nothing to do.
    Known,
    /// Too many addresses waiting.
    Full,
}

/// The queue of addresses to probe.
#[derive(Debug)]
pub struct Verifier {
    config: VerifyConfig,
    queue: VecDeque<NetAddress>,
    queued: HashSet<NetAddress>,
    in_flight: HashSet<NetAddress>,
    /// Addresses probed, and when (unix seconds).
    recent: HashMap<NetAddress, u64>,
}

impl Verifier {
    /// An empty queue.
    pub fn new(config: VerifyConfig) -> Self {
        Verifier {
            config,
            queue: VecDeque::new(),
            queued: HashSet::new(),
            in_flight: HashSet::new(),
            recent: HashMap::new(),
        }
    }

    /// Offers an address to probe at `now`.
    pub fn offer(&mut self, address: NetAddress, now: u64) -> Offered {
        let recently = self.recent.get(&address).is_some_and(|t| now.saturating_sub(*t) < self.config.retry_after);
        if recently || self.queued.contains(&address) || self.in_flight.contains(&address) {
            return Offered::Known;
        }
        if self.queue.len() >= self.config.capacity {
            return Offered::Full;
        }
        self.queued.insert(address);
        self.queue.push_back(address);
        Offered::Queued
    }

    /// The addresses to probe now: at most `per_interval` in flight, oldest offers first. Call once per interval.
    pub fn due(&mut self, now: u64) -> Vec<NetAddress> {
        let retry = self.config.retry_after;
        self.recent.retain(|_, t| now.saturating_sub(*t) < retry);
        let room = self.config.per_interval.saturating_sub(self.in_flight.len());
        let mut out = Vec::new();
        while out.len() < room {
            let Some(address) = self.queue.pop_front() else { break };
            self.queued.remove(&address);
            self.in_flight.insert(address);
            out.push(address);
        }
        out
    }

    /// A probe of `address` finished at `now`.
    pub fn finished(&mut self, address: NetAddress, now: u64) {
        self.in_flight.remove(&address);
        self.recent.insert(address, now);
    }

    /// Addresses waiting or being probed.
    pub fn pending(&self) -> usize {
        self.queue.len() + self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerwire_types::{NodeKey, WireProfile};

    fn id(seed: u8) -> NodeId {
        NodeKey::from_seed(&[seed; 32]).node_id(WireProfile::Tm2)
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_on_the_connections_host_is_taken_and_another_host_needs_a_probe() {
        let source = sa("203.0.113.5:41000");
        let at = |s: &str| NetAddress::new(id(1), sa(s));
        assert_eq!(judge(id(1), Some(sa("203.0.113.5:26656")), source), Advertised::Observed(at("203.0.113.5:26656")));
        assert_eq!(
            judge(id(1), Some(sa("198.51.100.9:26656")), source),
            Advertised::Unverified(at("198.51.100.9:26656"))
        );
        // A node listening on 0.0.0.0 without an external address: the host it connected from, its advertised port.
        assert_eq!(judge(id(1), Some(sa("0.0.0.0:26656")), source), Advertised::Observed(at("203.0.113.5:26656")));
        assert_eq!(judge(id(1), Some(sa("[::]:26656")), source), Advertised::Observed(at("203.0.113.5:26656")));
        // IPv4-mapped sources are the IPv4 host.
        let mapped = sa("[::ffff:203.0.113.5]:41000");
        assert_eq!(judge(id(1), Some(sa("203.0.113.5:1")), mapped), Advertised::Observed(at("203.0.113.5:1")));
        assert_eq!(judge(id(1), Some(sa("203.0.113.5:0")), source), Advertised::Unusable);
        assert_eq!(judge(id(1), Some(sa("255.255.255.255:1")), source), Advertised::Unusable);
        assert_eq!(judge(id(1), None, source), Advertised::Unusable);
    }

    #[test]
    fn probes_are_bounded_per_interval_in_waiting_and_in_repetition() {
        let mut v = Verifier::new(VerifyConfig { per_interval: 2, capacity: 3, retry_after: 100 });
        let a = |i: u8| NetAddress::new(id(i), sa(&format!("198.51.100.{i}:1")));
        assert_eq!(v.offer(a(1), 0), Offered::Queued);
        assert_eq!(v.offer(a(1), 0), Offered::Known);
        assert_eq!(v.offer(a(2), 0), Offered::Queued);
        assert_eq!(v.offer(a(3), 0), Offered::Queued);
        assert_eq!(v.offer(a(4), 0), Offered::Full);
        assert_eq!(v.due(0), vec![a(1), a(2)]);
        assert_eq!(v.due(0), vec![], "two probes in flight already");
        assert_eq!(v.offer(a(1), 0), Offered::Known, "being probed");
        v.finished(a(1), 10);
        assert_eq!(v.due(10), vec![a(3)]);
        assert_eq!(v.offer(a(1), 50), Offered::Known, "probed recently");
        assert_eq!(v.offer(a(1), 110), Offered::Queued, "may be probed again later");
        assert_eq!(v.pending(), 3);
    }
}
