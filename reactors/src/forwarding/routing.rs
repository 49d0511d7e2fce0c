//! The routing table: longest-prefix match on segment boundaries over configured routes, local accounts
//! (children under our address), learned routes, and a default route to a parent.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::accounts::AccountId;
use crate::ilp::Address;

/// Where a route came from. At equal prefix length, earlier sources win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteSource {
    /// `[[ilp.routes]]` in config.toml.
    Configured,
    /// A child account, under our own address.
    Local,
    /// Learned from a peer by route exchange.
    Learned,
    /// The default route to a parent, when nothing else matches.
    Default,
}

/// One entry of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// The prefix.
    pub prefix: String,
    /// The next hop.
    pub account: AccountId,
    /// Where it came from.
    pub source: RouteSource,
}

/// The routing table.
#[derive(Debug, Clone, Default)]
pub struct RoutingTable {
    // Prefix → the route from each source (configured, local, learned), best first; a destination is resolved by
    // looking up each of its prefixes, longest first: one lookup per segment.
    by_prefix: HashMap<Arc<str>, [Option<AccountId>; 3]>,
    default: Option<AccountId>,
}

impl RoutingTable {
    /// An empty table.
    pub fn new() -> RoutingTable {
        RoutingTable::default()
    }

    fn slot(source: RouteSource) -> Option<usize> {
        match source {
            RouteSource::Configured => Some(0),
            RouteSource::Local => Some(1),
            RouteSource::Learned => Some(2),
            RouteSource::Default => None,
        }
    }

    /// Adds or replaces a route for `prefix` from `source`.
    pub fn insert(&mut self, source: RouteSource, prefix: &str, account: AccountId) {
        match Self::slot(source) {
            Some(i) => match self.by_prefix.get_mut(prefix) {
                Some(routes) => routes[i] = Some(account),
                None => {
                    let mut routes = [None, None, None];
                    routes[i] = Some(account);
                    self.by_prefix.insert(prefix.into(), routes);
                }
            },
            None => self.default = Some(account),
        }
    }

    /// Removes the route for `prefix` from `source`.
    pub fn remove(&mut self, source: RouteSource, prefix: &str) {
        match Self::slot(source) {
            Some(i) => {
                if let Some(routes) = self.by_prefix.get_mut(prefix) {
                    routes[i] = None;
                    if routes.iter().all(Option::is_none) {
                        self.by_prefix.remove(prefix);
                    }
                }
            }
            None => self.default = None,
        }
    }

    /// Removes every route through `account` (an account that was deleted).
    pub fn remove_account(&mut self, account: &AccountId) {
        self.by_prefix.retain(|_, routes| {
            for r in routes.iter_mut() {
                if r.as_ref() == Some(account) {
                    *r = None;
                }
            }
            routes.iter().any(Option::is_some)
        });
        if self.default.as_ref() == Some(account) {
            self.default = None;
        }
    }

    /// The next hop for `destination`: the longest matching prefix (on a segment boundary), configured routes
    /// first at equal length, else the default route.
    pub fn resolve(&self, destination: &Address) -> Option<&AccountId> {
        let d = destination.as_str();
        let mut end = d.len();
        loop {
            let candidate = &d[..end];
            if let Some(a) = self.by_prefix.get(candidate).and_then(|routes| routes.iter().flatten().next()) {
                return Some(a);
            }
            match candidate.rfind('.') {
                Some(i) => end = i,
                None => return self.default.as_ref(),
            }
        }
    }

    /// Every route, sorted by prefix, best source first.
    pub fn routes(&self) -> Vec<Route> {
        let mut out: BTreeMap<(String, RouteSource), AccountId> = BTreeMap::new();
        for (p, routes) in &self.by_prefix {
            let sources = [RouteSource::Configured, RouteSource::Local, RouteSource::Learned];
            for (source, a) in sources.into_iter().zip(routes) {
                if let Some(a) = a {
                    out.insert((p.to_string(), source), a.clone());
                }
            }
        }
        let mut routes: Vec<Route> =
            out.into_iter().map(|((prefix, source), account)| Route { prefix, account, source }).collect();
        if let Some(a) = &self.default {
            routes.push(Route { prefix: String::new(), account: a.clone(), source: RouteSource::Default });
        }
        routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> AccountId {
        AccountId::new(s).unwrap()
    }

    fn resolve(t: &RoutingTable, d: &str) -> Option<String> {
        t.resolve(&Address::parse(d).unwrap()).map(|a| a.to_string())
    }

    #[test]
    fn the_longest_prefix_wins_on_segment_boundaries() {
        let mut t = RoutingTable::new();
        t.insert(RouteSource::Learned, "test.a", id("short"));
        t.insert(RouteSource::Learned, "test.a.b", id("long"));
        t.insert(RouteSource::Learned, "test.ab", id("other"));
        assert_eq!(resolve(&t, "test.a.b.c").as_deref(), Some("long"));
        assert_eq!(resolve(&t, "test.a.bc").as_deref(), Some("short"));
        assert_eq!(resolve(&t, "test.abc"), None);
        assert_eq!(resolve(&t, "test.ab").as_deref(), Some("other"));
    }

    #[test]
    fn configured_routes_beat_local_and_learned_ones_and_the_default_comes_last() {
        let mut t = RoutingTable::new();
        t.insert(RouteSource::Learned, "g.x", id("learned"));
        t.insert(RouteSource::Local, "g.x", id("local"));
        assert_eq!(resolve(&t, "g.x.y").as_deref(), Some("local"));
        t.insert(RouteSource::Configured, "g.x", id("static"));
        assert_eq!(resolve(&t, "g.x.y").as_deref(), Some("static"));
        // A longer learned prefix still wins over a shorter configured one.
        t.insert(RouteSource::Learned, "g.x.y", id("learned"));
        assert_eq!(resolve(&t, "g.x.y.z").as_deref(), Some("learned"));
        assert_eq!(resolve(&t, "g.elsewhere"), None);
        t.insert(RouteSource::Default, "", id("parent"));
        assert_eq!(resolve(&t, "g.elsewhere").as_deref(), Some("parent"));
        t.remove_account(&id("parent"));
        t.remove(RouteSource::Configured, "g.x");
        assert_eq!(resolve(&t, "g.x.q").as_deref(), Some("local"));
        assert_eq!(resolve(&t, "g.elsewhere"), None);
        assert_eq!(t.routes().len(), 3);
    }
}
