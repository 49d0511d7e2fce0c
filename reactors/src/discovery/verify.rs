//! Addresses that peers report about themselves, checked before we believe them. Pure: fed addresses and `now`.
//!
//! A peer's NodeInfo names its listen address. When its IP is the one the connection came from, we take it (an
//! unspecified IP, `0.0.0.0` or `::`, is read as that source IP, with the advertised port). When it names another
//! host, anyone could make us — and, through our answers, every node — dial a third party. Such an address is
//! stored and shared only after a probe (connect and authenticate, then hang up) has shown that the peer's key
//! answers there. Probes are bounded: at most `per_interval` each discovery interval, at most `capacity` addresses
//! waiting, at most `per_source` of them offered by connections from one network (so a flood from a few networks
//! cannot keep honest peers' addresses out), and an `ip:port` probed recently is not probed again, whatever ID is
//! claimed for it. A peer connecting from a public address cannot make us probe a loopback or private one.

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
    /// Seconds before an `ip:port` is probed again. Default 1 hour.
    pub retry_after: u64,
    /// Addresses waiting that connections from one network (IPv4 /24, IPv6 /48) may have offered. Default 4.
    pub per_source: usize,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig { per_interval: 2, capacity: 64, retry_after: 3600, per_source: 4 }
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

/// Whether `address`, heard from a connection from `source`, may be used at all: a loopback, private or otherwise
/// non-routable address only from a source that is itself non-routable (the same machine or local network).
pub fn admissible(address: &NetAddress, source: SocketAddr) -> bool {
    address.is_routable() || !NetAddress::new(address.id(), source).is_routable()
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
    if address.validate().is_err() || !admissible(&address, source) {
        return Advertised::Unusable;
    }
    if ip == observed { Advertised::Observed(address) } else { Advertised::Unverified(address) }
}

/// The network a connection comes from: an IPv4 /24 or an IPv6 /48.
fn network(source: SocketAddr) -> IpAddr {
    match source.ip().to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            IpAddr::V4([o[0], o[1], o[2], 0].into())
        }
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !(u128::MAX >> 48)).into()),
    }
}

/// What [`Verifier::offer`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offered {
    /// Queued for a probe.
    Queued,
    /// Queued, being probed, or probed recently: nothing to do.
    Known,
    /// Too many addresses waiting, in all or offered from the connection's network.
    Full,
}

/// The queue of addresses to probe.
#[derive(Debug)]
pub struct Verifier {
    config: VerifyConfig,
    /// Waiting addresses with the network of the connection that offered each.
    queue: VecDeque<(NetAddress, IpAddr)>,
    /// Targets waiting or being probed.
    busy: HashSet<SocketAddr>,
    /// Waiting addresses per offering network.
    per_source: HashMap<IpAddr, usize>,
    in_flight: usize,
    /// Targets probed, and when (unix seconds).
    recent: HashMap<SocketAddr, u64>,
}

impl Verifier {
    /// An empty queue.
    pub fn new(config: VerifyConfig) -> Self {
        Verifier {
            config,
            queue: VecDeque::new(),
            busy: HashSet::new(),
            per_source: HashMap::new(),
            in_flight: 0,
            recent: HashMap::new(),
        }
    }

    /// Offers an address to probe at `now`, from a connection whose source is `source`.
    pub fn offer(&mut self, address: NetAddress, source: SocketAddr, now: u64) -> Offered {
        let target = address.socket_addr();
        let recently = self.recent.get(&target).is_some_and(|t| now.saturating_sub(*t) < self.config.retry_after);
        if recently || self.busy.contains(&target) {
            return Offered::Known;
        }
        let from = network(source);
        let offered = self.per_source.get(&from).copied().unwrap_or(0);
        if self.queue.len() >= self.config.capacity || offered >= self.config.per_source {
            return Offered::Full;
        }
        *self.per_source.entry(from).or_insert(0) += 1;
        self.busy.insert(target);
        self.queue.push_back((address, from));
        Offered::Queued
    }

    /// The addresses to probe now: at most `per_interval` in flight, oldest offers first. Call once per interval.
    pub fn due(&mut self, now: u64) -> Vec<NetAddress> {
        let retry = self.config.retry_after;
        self.recent.retain(|_, t| now.saturating_sub(*t) < retry);
        let room = self.config.per_interval.saturating_sub(self.in_flight);
        let mut out = Vec::new();
        while out.len() < room {
            let Some((address, from)) = self.queue.pop_front() else { break };
            if let Some(n) = self.per_source.get_mut(&from) {
                *n -= 1;
                if *n == 0 {
                    self.per_source.remove(&from);
                }
            }
            self.in_flight += 1;
            out.push(address);
        }
        out
    }

    /// A probe of `address` finished at `now`.
    pub fn finished(&mut self, address: NetAddress, now: u64) {
        let target = address.socket_addr();
        if self.busy.remove(&target) {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        self.recent.insert(target, now);
    }

    /// Addresses waiting or being probed.
    pub fn pending(&self) -> usize {
        self.queue.len() + self.in_flight
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
    fn a_peer_on_a_public_address_cannot_point_us_at_loopback_or_private_ones() {
        let public = sa("1.2.3.4:41000");
        for inside in ["127.0.0.1:26656", "10.1.2.3:26656", "192.168.1.1:22", "[::1]:26656"] {
            assert_eq!(judge(id(1), Some(sa(inside)), public), Advertised::Unusable, "{inside}");
        }
        // On a local network (or the same machine), local addresses are what peers have.
        let local = sa("10.0.0.9:41000");
        let at = NetAddress::new(id(1), sa("10.0.0.7:26656"));
        assert_eq!(judge(id(1), Some(sa("10.0.0.7:26656")), local), Advertised::Unverified(at));
        assert!(admissible(&at, local) && !admissible(&at, public));
        assert!(admissible(&NetAddress::new(id(1), sa("5.6.7.8:1")), public));
    }

    #[test]
    fn probes_are_bounded_per_interval_in_waiting_and_in_repetition() {
        let mut v = Verifier::new(VerifyConfig { per_interval: 2, capacity: 3, retry_after: 100, per_source: 10 });
        let a = |i: u8| NetAddress::new(id(i), sa(&format!("198.51.100.{i}:1")));
        let from = sa("203.0.113.1:5000");
        assert_eq!(v.offer(a(1), from, 0), Offered::Queued);
        assert_eq!(v.offer(a(1), from, 0), Offered::Known);
        assert_eq!(v.offer(a(2), from, 0), Offered::Queued);
        assert_eq!(v.offer(a(3), from, 0), Offered::Queued);
        assert_eq!(v.offer(a(4), from, 0), Offered::Full);
        assert_eq!(v.due(0), vec![a(1), a(2)]);
        assert_eq!(v.due(0), vec![], "two probes in flight already");
        assert_eq!(v.offer(a(1), from, 0), Offered::Known, "being probed");
        v.finished(a(1), 10);
        assert_eq!(v.due(10), vec![a(3)]);
        assert_eq!(v.offer(a(1), from, 50), Offered::Known, "probed recently");
        // Another ID claiming the same ip:port does not buy another probe of it.
        let same_target = NetAddress::new(id(9), a(1).socket_addr());
        assert_eq!(v.offer(same_target, from, 50), Offered::Known);
        assert_eq!(v.offer(a(1), from, 110), Offered::Queued, "may be probed again later");
        assert_eq!(v.pending(), 3);
    }

    #[test]
    fn one_network_cannot_fill_the_queue() {
        let mut v = Verifier::new(VerifyConfig { per_interval: 2, capacity: 64, retry_after: 100, per_source: 4 });
        let target = |i: u16| NetAddress::new(id((i % 200) as u8), sa(&format!("198.51.100.1:{}", 1000 + i)));
        let flood = sa("203.0.113.9:7");
        let queued = (0..100).filter(|i| v.offer(target(*i), flood, 0) == Offered::Queued).count();
        assert_eq!(queued, 4);
        let honest = NetAddress::new(id(250), sa("192.0.2.44:26656"));
        assert_eq!(v.offer(honest, sa("198.51.100.200:9"), 0), Offered::Queued);
    }
}
