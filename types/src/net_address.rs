//! Peer addresses: `id@host:port`.
//!
//! Two types keep DNS out of reach of remote peers:
//! - [`NetAddress`] holds an IP literal. Anything a peer tells us (NodeInfo listen addresses, discovery responses) is
//!   parsed into this type, which cannot hold a host name, so a peer can never make us perform a DNS lookup.
//! - [`HostAddress`] may hold a host name. Only the operator's own configuration is parsed into it, and
//!   [`HostAddress::resolve`] turns it into a [`NetAddress`] at dial time.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::{NodeId, NodeIdError, WireProfile};

/// A dialable peer address with an IP literal: `id@1.2.3.4:26656` or `id@[2001:db8::1]:26656`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetAddress {
    id: NodeId,
    addr: SocketAddr,
}

/// Why an address string was refused or an address is unusable.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    /// No `id@` part.
    #[error("{0:?} has no node ID: expected id@host:port")]
    MissingId(String),
    /// The ID part is not an ID of the node's profile.
    #[error("bad node ID in address: {0}")]
    Id(#[from] NodeIdError),
    /// No `:port` part.
    #[error("{0:?} has no port: expected id@host:port")]
    MissingPort(String),
    /// The port is not a number in 1..=65535.
    #[error("{0:?} is not a valid port")]
    BadPort(String),
    /// An IPv6 literal without brackets.
    #[error("IPv6 address {0:?} must be written in brackets, like [::1]:26656")]
    UnbracketedIpv6(String),
    /// The host is neither an IP literal nor a valid DNS name.
    #[error("{0:?} is not a valid IP address or host name")]
    BadHost(String),
    /// A host name where only IP literals are allowed (addresses that come from peers).
    #[error("{0:?} is a host name; addresses from peers must be IP literals (they are never resolved)")]
    HostNameNotAllowed(String),
    /// The IP is unspecified (`0.0.0.0` or `::`).
    #[error("{0} is the unspecified address and cannot be dialed")]
    Unspecified(IpAddr),
    /// The IP is the IPv4 broadcast address.
    #[error("{0} is the broadcast address")]
    Broadcast(IpAddr),
    /// The IP is a multicast address.
    #[error("{0} is a multicast address")]
    Multicast(IpAddr),
    /// The IP is in the IPv6 documentation range (RFC 3849).
    #[error("{0} is an IPv6 documentation address (RFC 3849)")]
    Documentation(IpAddr),
    /// Port zero.
    #[error("port 0 cannot be dialed")]
    ZeroPort,
    /// DNS resolution of a configured host name failed.
    #[error("cannot resolve {host:?}: {source}")]
    Resolve {
        /// The configured host name.
        host: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// DNS resolution returned no addresses.
    #[error("{0:?} resolved to no addresses")]
    NoAddresses(String),
}

/// Splits `[scheme://]id@rest` into the ID and the rest.
fn split_id(s: &str, profile: WireProfile) -> Result<(NodeId, &str), AddressError> {
    let s = s.trim();
    let s = match s.find("://") {
        Some(i) => &s[i + 3..],
        None => s,
    };
    let (id, rest) = s.split_once('@').ok_or_else(|| AddressError::MissingId(s.to_owned()))?;
    Ok((NodeId::parse(id, profile)?, rest))
}

/// A host part that did not parse as an IP socket address: classify it for a precise error.
fn parse_host_port(rest: &str) -> Result<(Host, u16), AddressError> {
    if let Ok(addr) = rest.parse::<SocketAddr>() {
        return Ok((Host::Ip(canonical(addr.ip())), addr.port()));
    }
    let (host, port) = rest.rsplit_once(':').ok_or_else(|| AddressError::MissingPort(rest.to_owned()))?;
    if host.contains(':') && !host.starts_with('[') {
        return Err(AddressError::UnbracketedIpv6(rest.to_owned()));
    }
    let port: u16 = port.parse().map_err(|_| AddressError::BadPort(port.to_owned()))?;
    if host.starts_with('[') || host.parse::<IpAddr>().is_ok() || !is_dns_name(host) {
        return Err(AddressError::BadHost(host.to_owned()));
    }
    Ok((Host::Name(host.to_ascii_lowercase()), port))
}

fn is_dns_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        // A name made only of digits and dots is a mistyped IPv4 address, not a host.
        && !s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) are the IPv4 address: one peer, one key.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

impl NetAddress {
    /// An address from its parts.
    pub fn new(id: NodeId, addr: SocketAddr) -> Self {
        NetAddress { id, addr: SocketAddr::new(canonical(addr.ip()), addr.port()) }
    }

    /// Parses `[scheme://]id@ip:port` with an IP literal. Host names are refused: this is the parser for every
    /// address that comes from the network.
    pub fn parse(s: &str, profile: WireProfile) -> Result<Self, AddressError> {
        let (id, rest) = split_id(s, profile)?;
        match parse_host_port(rest)? {
            (Host::Ip(ip), port) => Ok(NetAddress::new(id, SocketAddr::new(ip, port))),
            (Host::Name(name), _) => Err(AddressError::HostNameNotAllowed(name)),
        }
    }

    /// The node ID.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The IP and port.
    pub fn socket_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The IP.
    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Checks that the address can be dialed at all: not unspecified, broadcast, multicast or IPv6 documentation,
    /// and a non-zero port. Loopback and private ranges are valid (they are shared on local networks and in tests);
    /// see [`NetAddress::is_routable`] for the public-internet test.
    pub fn validate(&self) -> Result<(), AddressError> {
        let ip = self.ip();
        if ip.is_unspecified() {
            return Err(AddressError::Unspecified(ip));
        }
        if ip.is_multicast() {
            return Err(AddressError::Multicast(ip));
        }
        match ip {
            IpAddr::V4(v4) if v4.is_broadcast() => return Err(AddressError::Broadcast(ip)),
            IpAddr::V6(v6) if in_v6(v6, [0x2001, 0x0db8, 0, 0, 0, 0, 0, 0], 32) => {
                return Err(AddressError::Documentation(ip));
            }
            _ => {}
        }
        if self.port() == 0 {
            return Err(AddressError::ZeroPort);
        }
        Ok(())
    }

    /// Whether the address is valid and reachable across the public internet: not loopback, private (RFC 1918,
    /// RFC 4193), shared (RFC 6598), link-local, benchmarking, documentation, ORCHID or reserved space.
    pub fn is_routable(&self) -> bool {
        self.validate().is_ok() && is_public_ip(self.ip())
    }

    /// Whether the IP is a loopback address.
    pub fn is_loopback(&self) -> bool {
        self.ip().is_loopback()
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            const NOT_PUBLIC: [([u8; 4], u32); 12] = [
                ([0, 0, 0, 0], 8),       // "this network"
                ([10, 0, 0, 0], 8),      // RFC 1918
                ([100, 64, 0, 0], 10),   // RFC 6598 shared address space (carrier-grade NAT)
                ([127, 0, 0, 0], 8),     // loopback
                ([169, 254, 0, 0], 16),  // RFC 3927 link-local
                ([172, 16, 0, 0], 12),   // RFC 1918
                ([192, 0, 2, 0], 24),    // RFC 5737 TEST-NET-1
                ([192, 168, 0, 0], 16),  // RFC 1918
                ([198, 18, 0, 0], 15),   // RFC 2544 benchmarking
                ([198, 51, 100, 0], 24), // RFC 5737 TEST-NET-2
                ([203, 0, 113, 0], 24),  // RFC 5737 TEST-NET-3
                ([240, 0, 0, 0], 4),     // reserved, and broadcast
            ];
            !NOT_PUBLIC.iter().any(|&(net, prefix)| in_v4(v4, net, prefix))
        }
        IpAddr::V6(v6) => {
            const NOT_PUBLIC: [([u16; 8], u32); 6] = [
                ([0, 0, 0, 0, 0, 0, 0, 1], 128),          // loopback
                ([0, 0, 0, 0, 0, 0, 0, 0], 128),          // unspecified
                ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),      // link-local
                ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),       // RFC 4193 unique local
                ([0x2001, 0x0010, 0, 0, 0, 0, 0, 0], 28), // RFC 4843 ORCHID
                ([0x2001, 0x0db8, 0, 0, 0, 0, 0, 0], 32), // RFC 3849 documentation
            ];
            !NOT_PUBLIC.iter().any(|&(net, prefix)| in_v6(v6, net, prefix))
        }
    }
}

impl fmt::Display for NetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.addr)
    }
}

impl fmt::Debug for NetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetAddress({self})")
    }
}

/// The host part of an operator-configured address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IP literal.
    Ip(IpAddr),
    /// A DNS name, lower-cased.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// An operator-configured peer address, which may name its host: `id@seed.example.org:26656`.
///
/// Only configuration (persistent peers, seeds, admin API calls by the operator) produces this type. It is resolved
/// at dial time, every time, so a peer that moves to a new IP is found again.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HostAddress {
    id: NodeId,
    host: Host,
    port: u16,
}

impl HostAddress {
    /// Parses `[scheme://]id@host:port`, where host is an IP literal or a DNS name.
    pub fn parse(s: &str, profile: WireProfile) -> Result<Self, AddressError> {
        let (id, rest) = split_id(s, profile)?;
        let (host, port) = parse_host_port(rest)?;
        Ok(HostAddress { id, host, port })
    }

    /// The node ID.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address without a lookup, if the host is an IP literal.
    pub fn to_net_address(&self) -> Option<NetAddress> {
        match self.host {
            Host::Ip(ip) => Some(NetAddress::new(self.id, SocketAddr::new(ip, self.port))),
            Host::Name(_) => None,
        }
    }

    /// Resolves the host (a DNS lookup for names) and returns the first address that passes
    /// [`NetAddress::validate`].
    pub async fn resolve(&self) -> Result<NetAddress, AddressError> {
        let name = match &self.host {
            Host::Ip(_) => {
                let addr = self.to_net_address().ok_or_else(|| AddressError::NoAddresses(self.host.to_string()))?;
                addr.validate()?;
                return Ok(addr);
            }
            Host::Name(name) => name,
        };
        let found = tokio::net::lookup_host((name.as_str(), self.port))
            .await
            .map_err(|source| AddressError::Resolve { host: name.clone(), source })?;
        found
            .map(|sa| NetAddress::new(self.id, sa))
            .find(|a| a.validate().is_ok())
            .ok_or_else(|| AddressError::NoAddresses(name.clone()))
    }
}

impl From<NetAddress> for HostAddress {
    fn from(a: NetAddress) -> Self {
        HostAddress { id: a.id, host: Host::Ip(a.ip()), port: a.port() }
    }
}

impl fmt::Display for HostAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.id, self.host, self.port)
    }
}

impl fmt::Debug for HostAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostAddress({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeKey;

    fn test_id(profile: WireProfile) -> NodeId {
        NodeKey::from_seed(&[1; 32]).node_id(profile)
    }

    #[test]
    fn parses_ipv4_and_bracketed_ipv6_in_both_profiles() {
        for profile in WireProfile::ALL {
            let id = test_id(profile);
            let a = NetAddress::parse(&format!("{id}@1.2.3.4:26656"), profile).unwrap();
            assert_eq!((a.id(), a.socket_addr()), (id, "1.2.3.4:26656".parse().unwrap()));
            assert_eq!(a.to_string(), format!("{id}@1.2.3.4:26656"));
            let b = NetAddress::parse(&format!("tcp://{id}@[2001:4860::8888]:443"), profile).unwrap();
            assert_eq!(b.to_string(), format!("{id}@[2001:4860::8888]:443"));
            assert_eq!(NetAddress::parse(&b.to_string(), profile).unwrap(), b);
        }
    }

    #[test]
    fn ipv4_mapped_ipv6_is_the_ipv4_address() {
        let id = test_id(WireProfile::Tm2);
        let a = NetAddress::parse(&format!("{id}@[::ffff:8.8.8.8]:1"), WireProfile::Tm2).unwrap();
        assert_eq!(a, NetAddress::parse(&format!("{id}@8.8.8.8:1"), WireProfile::Tm2).unwrap());
    }

    #[test]
    fn malformed_addresses_get_precise_errors() {
        let p = WireProfile::CometBft;
        let id = test_id(p);
        let check = |s: String, want: &str| {
            let e = NetAddress::parse(&s, p).unwrap_err().to_string();
            assert!(e.contains(want), "{s}: {e}");
        };
        check("1.2.3.4:26656".into(), "no node ID");
        check(format!("{id}@1.2.3.4"), "no port");
        check(format!("{id}@1.2.3.4:99999"), "not a valid port");
        check(format!("{id}@::1:26656"), "brackets");
        check(format!("{id}@seed.example.org:26656"), "never resolved");
        check(format!("{id}@bad_host!:26656"), "not a valid IP address or host name");
        check(format!("{id}@999.1.1.1:26656"), "not a valid IP address or host name");
        check(format!("{}@1.2.3.4:26656", test_id(WireProfile::Tm2)), "bad node ID");
    }

    #[test]
    fn validation_refuses_undialable_ips() {
        let id = test_id(WireProfile::Tm2);
        for (ip, port) in [
            ("0.0.0.0", 1),
            ("[::]", 1),
            ("255.255.255.255", 1),
            ("224.0.0.1", 1),
            ("[2001:db8::1]", 1),
            ("1.2.3.4", 0),
        ] {
            let a = NetAddress::parse(&format!("{id}@{ip}:{port}"), WireProfile::Tm2).unwrap();
            assert!(a.validate().is_err(), "{a} validated");
            assert!(!a.is_routable());
        }
        for ip in ["127.0.0.1", "10.1.2.3", "192.168.1.1", "[::1]", "[fd00::1]"] {
            let a = NetAddress::parse(&format!("{id}@{ip}:26656"), WireProfile::Tm2).unwrap();
            assert!(a.validate().is_ok(), "{a} should be valid (shared on local networks)");
            assert!(!a.is_routable(), "{a} should not be routable");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "[2606:4700::1111]"] {
            let a = NetAddress::parse(&format!("{id}@{ip}:26656"), WireProfile::Tm2).unwrap();
            assert!(a.is_routable(), "{a} should be routable");
        }
    }

    #[test]
    fn host_addresses_accept_names_from_config_only() {
        let p = WireProfile::Tm2;
        let id = test_id(p);
        let h = HostAddress::parse(&format!("{id}@Seed-1.Example.org:26656"), p).unwrap();
        assert_eq!(h.host(), &Host::Name("seed-1.example.org".into()));
        assert_eq!(h.to_net_address(), None);
        let ip = HostAddress::parse(&format!("{id}@[::1]:26656"), p).unwrap();
        assert_eq!(ip.to_string(), format!("{id}@[::1]:26656"));
        assert!(ip.to_net_address().is_some());
        assert!(HostAddress::parse(&format!("{id}@-bad.org:1"), p).is_err());
    }

    #[tokio::test]
    async fn resolving_localhost_gives_a_loopback_address() {
        let p = WireProfile::Tm2;
        let id = test_id(p);
        let h = HostAddress::parse(&format!("{id}@localhost:26656"), p).unwrap();
        let a = h.resolve().await.unwrap();
        assert!(a.is_loopback(), "{a}");
        assert_eq!((a.id(), a.port()), (id, 26656));
        let zero = HostAddress::parse(&format!("{id}@0.0.0.0:26656"), p).unwrap();
        assert!(matches!(zero.resolve().await, Err(AddressError::Unspecified(_))));
    }
}
