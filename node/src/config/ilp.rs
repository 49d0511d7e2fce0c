//! `[ilp]`: the Interledger connector: our address, the app listener, forwarding limits, rates, and the
//! accounts (`[[ilp.accounts]]`) and routes (`[[ilp.routes]]`) that follow this file.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ledgerwire_reactors::accounts::{AccountId, AccountSpec};
use ledgerwire_reactors::forwarding::rates::{Decimal, Rates};
use ledgerwire_reactors::ilp::Address;
use ledgerwire_reactors::ilp::address::validate_prefix;
use ledgerwire_reactors::ilp_over_http::HttpLimits;
use ledgerwire_types::WireProfile;
use serde::{Deserialize, Serialize};

use super::schema::{Key, Kind, SectionSchema};
use super::{ConfigError, duration_in, invalid, relative_path, socket_addr, within};

/// A configured route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteEntry {
    /// The ILP address prefix.
    pub prefix: String,
    /// The account packets for it go to.
    pub account: String,
}

/// `[ilp]` as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IlpSection {
    /// Our ILP address.
    pub address: String,
    /// ILP-over-HTTP listener for apps ("" = off).
    pub http_laddr: String,
    /// Most open app connections.
    pub http_max_connections: u64,
    /// Time an app has to send request headers.
    pub http_header_read_timeout: String,
    /// Idle app connections are closed after this.
    pub http_idle_timeout: String,
    /// The database of accounts, balances and settlements.
    pub db_file: String,
    /// How much earlier forwarded Prepares expire.
    pub min_message_window: String,
    /// The longest a Prepare is held.
    pub max_hold_time: String,
    /// Prepares in flight per account and direction.
    pub max_in_flight_per_account: u64,
    /// Fraction kept on every conversion.
    pub spread: String,
    /// Asset prices in a common unit.
    pub prices: BTreeMap<String, String>,
    /// Route exchange on or off.
    pub route_broadcast: bool,
    /// Heartbeat interval of route updates.
    pub route_broadcast_interval: String,
    /// How long peers keep our routes without an update.
    pub route_expiry: String,
    /// Delay that gathers a burst of route changes into one update.
    pub route_debounce: String,
    /// `[[ilp.accounts]]`.
    pub accounts: Vec<AccountSpec>,
    /// `[[ilp.routes]]`.
    pub routes: Vec<RouteEntry>,
}

impl Default for IlpSection {
    fn default() -> Self {
        IlpSection {
            address: String::new(),
            http_laddr: "127.0.0.1:26659".into(),
            http_max_connections: 256,
            http_header_read_timeout: "5s".into(),
            http_idle_timeout: "60s".into(),
            db_file: "data/ilp.redb".into(),
            min_message_window: "1s".into(),
            max_hold_time: "30s".into(),
            max_in_flight_per_account: 1024,
            spread: "0".into(),
            prices: BTreeMap::new(),
            route_broadcast: true,
            route_broadcast_interval: "30s".into(),
            route_expiry: "45s".into(),
            route_debounce: "50ms".into(),
            accounts: Vec::new(),
            routes: Vec::new(),
        }
    }
}

pub(crate) const SCHEMA: SectionSchema = SectionSchema {
    name: Some("ilp"),
    doc: "The Interledger connector: packets forwarded between p2p peers and local apps.",
    keys: &[
        Key {
            name: "address",
            kind: Kind::Text,
            doc: "Our ILP address (e.g. \"g.acme\"); empty = asked of a parent account (ILDCP), or \"test.\" followed by the node ID without one.",
        },
        Key {
            name: "http_laddr",
            kind: Kind::Address,
            doc: "ILP-over-HTTP listener apps pay through (POST /accounts/{id}/ilp); empty = off.",
        },
        Key {
            name: "http_max_connections",
            kind: Kind::Integer,
            doc: "Most open app connections; more are closed at once.",
        },
        Key {
            name: "http_header_read_timeout",
            kind: Kind::Duration,
            doc: "Time an app has to send its request headers.",
        },
        Key { name: "http_idle_timeout", kind: Kind::Duration, doc: "App connections idle this long are closed." },
        Key { name: "db_file", kind: Kind::Path, doc: "Database of accounts, balances and settlements (crash-safe)." },
        Key {
            name: "min_message_window",
            kind: Kind::Duration,
            doc: "How much earlier a forwarded Prepare expires than the one we received.",
        },
        Key { name: "max_hold_time", kind: Kind::Duration, doc: "The longest we hold a Prepare, whatever its expiry." },
        Key {
            name: "max_in_flight_per_account",
            kind: Kind::Integer,
            doc: "Prepares in flight per account and direction; more are rejected with T03.",
        },
        Key {
            name: "spread",
            kind: Kind::Text,
            doc: "Fraction kept on every conversion, as a decimal in quotes (\"0.002\" = 0.2%).",
        },
        Key {
            name: "prices",
            kind: Kind::Table,
            doc: "Asset prices in one common unit, for conversions between asset codes ({ USD = \"1\", EUR = \"1.08\" }).",
        },
        Key {
            name: "route_broadcast",
            kind: Kind::Bool,
            doc: "Exchange routes with peer and parent accounts (CCP semantics, channel 0x72).",
        },
        Key {
            name: "route_broadcast_interval",
            kind: Kind::Duration,
            doc: "Every peer gets a route update (a heartbeat if nothing changed) at least this often.",
        },
        Key {
            name: "route_expiry",
            kind: Kind::Duration,
            doc: "How long routes stay valid without an update (sent to peers as the hold-down time).",
        },
        Key {
            name: "route_debounce",
            kind: Kind::Duration,
            doc: "How long a route change waits, so that a burst of changes goes out as one update.",
        },
        Key {
            name: "accounts",
            kind: Kind::Tables,
            doc: "Accounts, one [[ilp.accounts]] table each (see docs/configuration.md).",
        },
        Key {
            name: "routes",
            kind: Kind::Tables,
            doc: "Static routes, one [[ilp.routes]] table each: prefix, account.",
        },
    ],
};

/// The resolved `[ilp]` settings.
#[derive(Clone, Debug)]
pub struct IlpConfig {
    /// Our address, if configured.
    pub address: Option<Address>,
    /// The app listener.
    pub http_laddr: Option<SocketAddr>,
    /// Its limits.
    pub http_limits: HttpLimits,
    /// The database.
    pub db_file: PathBuf,
    /// Expiry shortening, in milliseconds.
    pub min_message_window_ms: i64,
    /// Longest hold, in milliseconds.
    pub max_hold_time_ms: i64,
    /// In-flight limit.
    pub max_in_flight_per_account: usize,
    /// Rates.
    pub rates: Rates,
    /// Route exchange settings, if on.
    pub route_exchange: Option<RouteExchange>,
    /// Accounts from the file.
    pub accounts: Vec<AccountSpec>,
    /// Routes from the file.
    pub routes: Vec<(String, AccountId)>,
}

/// The resolved route-exchange settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteExchange {
    /// Heartbeat interval.
    pub interval: Duration,
    /// Route expiry (hold-down time).
    pub expiry: Duration,
    /// Debounce.
    pub debounce: Duration,
}

impl IlpSection {
    pub(crate) fn resolve(&self, profile: WireProfile, home: &Path) -> Result<IlpConfig, ConfigError> {
        let address = match self.address.trim() {
            "" => None,
            a => Some(Address::parse(a).map_err(|e| invalid("ilp.address", e))?),
        };
        let http_laddr = match self.http_laddr.trim() {
            "" => None,
            a => Some(socket_addr("ilp.http_laddr", a)?),
        };
        let http_limits = super::http_limits(
            ["ilp.http_max_connections", "ilp.http_header_read_timeout", "ilp.http_idle_timeout"],
            (self.http_max_connections, &self.http_header_read_timeout, &self.http_idle_timeout),
            100_000,
            HttpLimits::default().max_body_bytes,
        )?;
        let window =
            duration_in("ilp.min_message_window", &self.min_message_window, Duration::ZERO, Duration::from_secs(60))?;
        let hold = duration_in(
            "ilp.max_hold_time",
            &self.max_hold_time,
            Duration::from_millis(100),
            Duration::from_secs(3600),
        )?;
        if hold <= window {
            return Err(invalid("ilp.max_hold_time", "must be longer than ilp.min_message_window"));
        }
        let max_in_flight =
            within("ilp.max_in_flight_per_account", self.max_in_flight_per_account, 1, 65_536)? as usize;
        let spread = Decimal::parse(&self.spread).map_err(|e| invalid("ilp.spread", e))?;
        let mut prices = HashMap::new();
        for (code, price) in &self.prices {
            let p = Decimal::parse(price).map_err(|e| invalid("ilp.prices", format!("{code}: {e}")))?;
            prices.insert(code.clone(), p);
        }
        let rates = Rates::new(prices, spread).map_err(|e| invalid("ilp.spread", e))?;
        let route_exchange = if self.route_broadcast {
            let interval = duration_in(
                "ilp.route_broadcast_interval",
                &self.route_broadcast_interval,
                Duration::from_millis(100),
                Duration::from_secs(3600),
            )?;
            let expiry =
                duration_in("ilp.route_expiry", &self.route_expiry, Duration::from_secs(1), Duration::from_secs(3600))?;
            if expiry <= interval {
                return Err(invalid("ilp.route_expiry", "must be longer than ilp.route_broadcast_interval"));
            }
            let debounce = duration_in("ilp.route_debounce", &self.route_debounce, Duration::ZERO, interval)?;
            Some(RouteExchange { interval, expiry, debounce })
        } else {
            None
        };
        let mut ids = HashSet::new();
        let mut tokens = HashMap::new();
        let mut nodes = HashMap::new();
        for (i, spec) in self.accounts.iter().enumerate() {
            let key = |field: &str| format!("ilp.accounts[{i}].{field}");
            let account = spec.validate(profile, false).map_err(|e| invalid(key(e.field), e.reason))?;
            if !ids.insert(account.id.clone()) {
                return Err(invalid(key("id"), format!("{} is listed twice", account.id)));
            }
            if let Some(h) = &spec.http
                && let Some(other) = tokens.insert(h.incoming_token.clone(), account.id.clone())
            {
                return Err(invalid(key("http.incoming_token"), format!("the same as account {other}'s")));
            }
            if let Some(n) = account.node_id()
                && let Some(other) = nodes.insert(*n, account.id.clone())
            {
                return Err(invalid(key("node_id"), format!("already the node of account {other}")));
            }
        }
        let mut routes = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            validate_prefix(&r.prefix).map_err(|e| invalid(format!("ilp.routes[{i}].prefix"), e))?;
            let account = AccountId::new(&r.account).ok().filter(|a| ids.contains(a)).ok_or_else(|| {
                invalid(format!("ilp.routes[{i}].account"), format!("no account {:?} in [[ilp.accounts]]", r.account))
            })?;
            routes.push((r.prefix.clone(), account));
        }
        Ok(IlpConfig {
            address,
            http_laddr,
            http_limits,
            db_file: relative_path("ilp.db_file", &self.db_file, home)?,
            min_message_window_ms: window.as_millis() as i64,
            max_hold_time_ms: hold.as_millis() as i64,
            max_in_flight_per_account: max_in_flight,
            rates,
            route_exchange,
            accounts: self.accounts.clone(),
            routes,
        })
    }
}
