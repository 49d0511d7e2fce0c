//! The route-exchange core: a pure state machine. It is fed the accounts, link changes, CCP messages and the
//! time, and answers with [`Action`]s (messages to send, learned routes for the forwarding table, events); no
//! sockets, no clock of its own.
//!
//! What it keeps:
//! - **Our table**: the best route per prefix among configured routes (these win), local ones (our own address
//!   and our children) and routes learned from peers (by relation: child, then peer, then parent; then the
//!   shorter path; then the smaller account ID). Every change of a best route appends an entry to an
//!   epoch-numbered log, and the entry it supersedes is dropped, so the log from epoch 0 is a full table.
//! - **Per peer we send to**: the epoch it has; it gets the log after that epoch, at most
//!   [`RouterConfig::max_routes_per_update`] routes per message, a short debounce after a change, and an empty
//!   update (a heartbeat) every broadcast interval. A message that does not fit in its send queue rolls its epoch
//!   back and it is retried later: a slow peer never holds up the others. A route that gets worse is withdrawn
//!   at once, before the debounced update announces its replacement.
//! - **Per peer we listen to**: its table ID and epoch, and its routes. A new table ID (it restarted) is
//!   accepted only from epoch 0, gathered apart, and replaces all its routes once complete; an epoch gap asks at
//!   once for the missing part (route control). Routes expire when the peer stops refreshing them and are
//!   withdrawn the moment its link goes down.
//!
//! Routes are refused when their path contains our address, when their prefix is outside the account's
//! allowance (configured; without it a parent anything, others nothing), inside our own address space, under a
//! configured route of another account, or not under our global prefix.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use rustc_hash::FxHashMap as HashMap;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::wire::{CcpMessage, Kind, MODE_SYNC, RouteControl, RouteUpdate, WireRoute};
use crate::accounts::{AccountId, Relation};
use crate::forwarding::routing::RouteSource;
use crate::ilp::Address;

/// Settings of route exchange.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// An update (a heartbeat if nothing changed) goes to every peer at least this often.
    pub broadcast_interval: Duration,
    /// After a change, updates wait this long, so a burst of changes sends one update.
    pub debounce: Duration,
    /// How long our routes stay valid at a peer without an update (sent as the hold-down time).
    pub route_expiry: Duration,
    /// The most routes (new and withdrawn) in one update.
    pub max_routes_per_update: usize,
    /// The most routes kept from one peer; further prefixes are refused.
    pub max_routes_per_peer: usize,
    /// The longest path accepted.
    pub max_path_len: usize,
    /// The key of the authentication value of the routes we originate.
    pub routing_secret: [u8; 32],
    /// Our routing table ID (random per start).
    pub table_id: [u8; 16],
}

impl RouterConfig {
    /// The defaults of ilp-connector (30 s interval, 45 s expiry), a 50 ms debounce, and `routing_secret` and
    /// `table_id` as given.
    pub fn new(routing_secret: [u8; 32], table_id: [u8; 16]) -> RouterConfig {
        RouterConfig {
            broadcast_interval: Duration::from_secs(30),
            debounce: Duration::from_millis(50),
            route_expiry: Duration::from_secs(45),
            max_routes_per_update: 100,
            max_routes_per_peer: 10_000,
            max_path_len: 32,
            routing_secret,
            table_id,
        }
    }
}

/// How the router treats one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingAccount {
    /// The account.
    pub id: AccountId,
    /// Its relation.
    pub relation: Relation,
    /// The p2p peer behind it, if any (the driver's business: the core never looks at it).
    pub node: Option<ledgerwire_types::NodeId>,
    /// Whether we send it our routes.
    pub send_routes: bool,
    /// Whether we take routes from it.
    pub receive_routes: bool,
    /// Prefixes it may announce; `None`: a parent anything, others nothing.
    pub allowed_prefixes: Option<Vec<String>>,
}

/// What the router starts from and what changes outside it: our address, the accounts, configured routes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutingInputs {
    /// Our ILP address (none until configured or inherited).
    pub address: Option<Address>,
    /// The accounts.
    pub accounts: Vec<RoutingAccount>,
    /// Configured routes: prefix and next hop.
    pub configured: Vec<(String, AccountId)>,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send a message to an account's peer. If it cannot be queued, call [`Router::send_failed`].
    Send {
        /// The account.
        to: AccountId,
        /// The message.
        message: CcpMessage,
    },
    /// The best learned next hop for a prefix changed (`None`: no learned route is the best any more).
    SetLearned {
        /// The prefix.
        prefix: String,
        /// The next hop.
        next_hop: Option<AccountId>,
    },
    /// Something a user would watch.
    Event(RouteEvent),
}

/// A change of our table, as `GET /events` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RouteEvent {
    /// A prefix became reachable.
    RouteAdded {
        /// The prefix.
        prefix: String,
        /// The next hop account (none: delivered here).
        next_hop: Option<AccountId>,
        /// The path after us.
        path: Vec<String>,
    },
    /// A prefix's best route changed.
    RouteChanged {
        /// The prefix.
        prefix: String,
        /// The new next hop.
        next_hop: Option<AccountId>,
        /// The new path after us.
        path: Vec<String>,
        /// The previous next hop.
        previous: Option<AccountId>,
    },
    /// A prefix is no longer reachable.
    RouteWithdrawn {
        /// The prefix.
        prefix: String,
        /// The previous next hop.
        previous: Option<AccountId>,
    },
}

/// One route of our table, as `GET /routes` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteView {
    /// The prefix.
    pub prefix: String,
    /// The next hop account; none: delivered here.
    pub next_hop: Option<AccountId>,
    /// The connectors after us on the way.
    pub path: Vec<String>,
    /// Where the route came from.
    pub source: RouteSource,
    /// Milliseconds since it became the best route.
    pub age_ms: u64,
}

/// Route exchange with one account, as the admin API shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PeerRouting {
    /// The account.
    pub account: String,
    /// Whether its link is up.
    pub linked: bool,
    /// Whether it asked for our routes (route control, sync).
    pub sending: bool,
    /// The epoch of our table it has.
    pub sent_epoch: u32,
    /// The epoch of its table we have.
    pub received_epoch: u32,
    /// Routes we have from it.
    pub routes_learned: usize,
    /// Updates sent to it.
    pub updates_sent: u64,
    /// Updates received from it.
    pub updates_received: u64,
    /// Route controls sent to it.
    pub controls_sent: u64,
    /// Route controls received from it.
    pub controls_received: u64,
    /// Routes from it we refused (loop, allowance, limits).
    pub routes_refused: u64,
    /// Updates that could not be queued (resent later).
    pub sends_failed: u64,
    /// Bytes of updates sent to it.
    pub bytes_sent: u64,
}

/// Why a message from a peer was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CcpError {
    /// The account may not send us routes (or ask for ours).
    #[error("account {0} is not configured to exchange routes this way")]
    NotAllowed(AccountId),
    /// The routing table ID is not 16 bytes.
    #[error("routing table ID of {0} bytes (expected 16)")]
    TableId(usize),
    /// The speaker is not an ILP address, or is ours.
    #[error("bad speaker {0:?}")]
    Speaker(String),
    /// The message is empty.
    #[error("empty CCP message")]
    Empty,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Best {
    next_hop: Option<AccountId>,
    /// Path after us (as learned), empty for routes we originate.
    path: Arc<[Arc<str>]>,
    auth: [u8; 32],
    source: RouteSource,
    since: Instant,
}

impl Best {
    fn same_route(&self, other: &Best) -> bool {
        self.next_hop == other.next_hop && self.path == other.path && self.source == other.source
    }
}

#[derive(Debug, Clone)]
struct Learned {
    path: Arc<[Arc<str>]>,
    auth: [u8; 32],
}

#[derive(Debug, Default)]
struct Sending {
    sync: bool,
    epoch: u32,
    due: Option<Instant>,
    /// Prefixes whose route got worse since the last update: withdrawn at once, before the debounced update
    /// announces what replaced them ("ghost flushing": stale paths leave the network at the speed of the links
    /// instead of being explored one debounce at a time).
    flush: Vec<Arc<str>>,
    flush_at: Option<Instant>,
    last_resync: Option<Instant>,
}

#[derive(Debug, Default)]
struct Receiving {
    table_id: Option<[u8; 16]>,
    epoch: u32,
    routes: RouteSet,
    /// A new table of the peer being received (from epoch 0): it replaces `routes` once complete, so a restart
    /// of the peer never leaves us with half its table.
    staged: Option<Staged>,
    expires_at: Option<Instant>,
    /// When to ask (again) for routes, while none came.
    control_due: Option<Instant>,
    last_control: Option<Instant>,
}

#[derive(Debug)]
struct Staged {
    table_id: [u8; 16],
    epoch: u32,
    routes: RouteSet,
}

/// One peer's routes, with what they weigh (bounded per peer).
#[derive(Debug, Default)]
struct RouteSet {
    routes: HashMap<Arc<str>, Learned>,
    bytes: usize,
}

fn weight_of(prefix: &str, l: &Learned) -> usize {
    prefix.len() + l.path.iter().map(|h| h.len() + 16).sum::<usize>() + 96
}

impl RouteSet {
    fn insert(&mut self, prefix: Arc<str>, learned: Learned) {
        self.bytes += weight_of(&prefix, &learned);
        if let Some(old) = self.routes.insert(prefix.clone(), learned) {
            self.bytes -= weight_of(&prefix, &old);
        }
    }

    fn remove(&mut self, prefix: &str) -> Option<Arc<str>> {
        let (k, old) = self.routes.remove_entry(prefix)?;
        self.bytes -= weight_of(&k, &old);
        Some(k)
    }

    fn keys(&self) -> impl Iterator<Item = &Arc<str>> {
        self.routes.keys()
    }

    fn len(&self) -> usize {
        self.routes.len()
    }
}

/// The most route bytes (prefixes and paths) kept from one peer.
const MAX_ROUTE_BYTES_PER_PEER: usize = 8 << 20;
/// The longest prefix or path hop accepted in a learned route.
const MAX_HOP_LEN: usize = 256;

#[derive(Debug)]
struct Peer {
    account: RoutingAccount,
    linked: bool,
    sending: Sending,
    receiving: Receiving,
    stats: PeerRouting,
}

/// The route-exchange state machine.
#[derive(Debug)]
pub struct Router {
    config: RouterConfig,
    address: Option<Address>,
    peers: HashMap<AccountId, Peer>,
    configured: HashMap<Arc<str>, AccountId>,
    children: HashMap<Arc<str>, AccountId>,
    /// Every account's relation (for export rules).
    relations: HashMap<AccountId, Relation>,
    best: HashMap<Arc<str>, Best>,
    epoch: u32,
    /// Epoch → prefix of the latest change of that prefix.
    log: BTreeMap<u32, Arc<str>>,
    /// Prefix → epoch of its latest change (its state is `best`, or withdrawn when absent).
    latest: HashMap<Arc<str>, u32>,
    actions: VecDeque<Action>,
}

/// Updates stop taking routes once they reach about this many bytes (the receiver takes messages up to
/// [`super::MAX_MESSAGE_BYTES`]).
const MAX_UPDATE_BYTES: usize = 256 * 1024;

fn weight(relation: Relation) -> u8 {
    match relation {
        Relation::Child => 2,
        Relation::Peer => 1,
        Relation::Parent => 0,
    }
}

fn global_prefix(address: &Address) -> &str {
    address.as_str().split('.').next().unwrap_or_default()
}

/// `prefix` equals `base` or lies under it on a segment boundary.
fn under(prefix: &str, base: &str) -> bool {
    prefix.len() >= base.len()
        && prefix.as_bytes().starts_with(base.as_bytes())
        && (prefix.len() == base.len() || prefix.as_bytes()[base.len()] == b'.')
}

impl Router {
    /// A router with no accounts and no address yet.
    pub fn new(config: RouterConfig) -> Router {
        Router {
            config,
            address: None,
            peers: HashMap::default(),
            configured: HashMap::default(),
            children: HashMap::default(),
            relations: HashMap::default(),
            best: HashMap::default(),
            epoch: 0,
            log: BTreeMap::new(),
            latest: HashMap::default(),
            actions: VecDeque::new(),
        }
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Our routing table ID.
    pub fn table_id(&self) -> [u8; 16] {
        self.config.table_id
    }

    /// Our table's latest epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Takes the current address, accounts and configured routes. An account that changed keeps its link; what
    /// it told us is checked again (asked for anew) if how we take its routes changed.
    pub fn set_inputs(&mut self, inputs: RoutingInputs, now: Instant) {
        if inputs.address != self.address {
            self.address = inputs.address.clone();
            self.restart_table(now);
        }
        // Accounts.
        let wanted: HashMap<AccountId, RoutingAccount> = inputs
            .accounts
            .iter()
            .filter(|a| a.relation != Relation::Child || a.send_routes || a.receive_routes)
            .map(|a| (a.id.clone(), a.clone()))
            .collect();
        self.relations = inputs.accounts.iter().map(|a| (a.id.clone(), a.relation)).collect();
        let gone: Vec<AccountId> = self.peers.keys().filter(|id| !wanted.contains_key(*id)).cloned().collect();
        for id in gone {
            self.drop_peer(&id, now);
            self.peers.remove(&id);
        }
        for (id, account) in wanted {
            match self.peers.get_mut(&id) {
                Some(p) if p.account == account => {}
                Some(p) => {
                    // Changed in place: what it told us is checked again from scratch; what we send goes on.
                    let receive_changed = p.account.receive_routes != account.receive_routes
                        || p.account.allowed_prefixes != account.allowed_prefixes
                        || p.account.relation != account.relation;
                    if !account.send_routes {
                        p.sending = Sending::default();
                        p.stats.sending = false;
                    }
                    p.account = account;
                    if receive_changed {
                        self.forget_routes(&id, now);
                        self.ask_for_routes(&id, None, now);
                    }
                }
                None => {
                    self.peers.insert(
                        id.clone(),
                        Peer {
                            stats: PeerRouting { account: id.to_string(), ..PeerRouting::default() },
                            account,
                            linked: false,
                            sending: Sending::default(),
                            receiving: Receiving::default(),
                        },
                    );
                }
            }
        }
        // Local routes: configured ones and children.
        let mut touched: Vec<Arc<str>> = self.configured.keys().chain(self.children.keys()).cloned().collect();
        self.configured = inputs.configured.iter().map(|(p, a)| (Arc::from(p.as_str()), a.clone())).collect();
        self.children = match &self.address {
            Some(ours) => inputs
                .accounts
                .iter()
                .filter(|a| a.relation == Relation::Child)
                .filter_map(|a| {
                    ours.with_suffix(a.id.as_str()).ok().map(|addr| (Arc::from(addr.as_str()), a.id.clone()))
                })
                .collect(),
            None => HashMap::default(),
        };
        touched.extend(self.configured.keys().cloned());
        touched.extend(self.children.keys().cloned());
        for prefix in touched {
            self.recompute(&prefix, now);
        }
    }

    /// A new table: every peer starts over from epoch 0 of it, and what we learned (checked against the old
    /// address) is dropped and asked for again.
    fn restart_table(&mut self, now: Instant) {
        self.new_table();
        let old: Vec<(Arc<str>, Best)> = self.best.drain().collect();
        for (prefix, best) in old {
            if best.source == RouteSource::Learned {
                self.actions.push_back(Action::SetLearned { prefix: prefix.to_string(), next_hop: None });
            }
            self.actions.push_back(Action::Event(RouteEvent::RouteWithdrawn {
                prefix: prefix.to_string(),
                previous: best.next_hop,
            }));
        }
        let linked: Vec<AccountId> = self.peers.iter().filter(|(_, p)| p.linked).map(|(id, _)| id.clone()).collect();
        for p in self.peers.values_mut() {
            p.receiving = Receiving::default();
            p.sending.epoch = 0;
            p.sending.flush.clear();
            p.sending.flush_at = None;
        }
        for id in linked {
            self.ask_for_routes(&id, None, now);
        }
        if let Some(ours) = self.address.clone() {
            self.recompute(ours.as_str(), now);
        }
        self.schedule_all(now);
    }

    /// Whether the router takes the account's link as up.
    pub fn is_linked(&self, id: &AccountId) -> bool {
        self.peers.get(id).is_some_and(|p| p.linked)
    }

    /// An account's peer connected.
    pub fn link_up(&mut self, id: &AccountId, now: Instant) {
        if self.is_linked(id) {
            self.drop_peer(id, now);
        }
        let at = now + self.config.debounce;
        let Some(p) = self.peers.get_mut(id) else { return };
        p.linked = true;
        p.stats.linked = true;
        // Our table goes out without waiting for the peer's route control (it may have sent one before it had an
        // account for us); its control, when it comes, sets where to start from.
        p.sending =
            Sending { sync: p.account.send_routes, due: p.account.send_routes.then_some(at), ..Sending::default() };
        p.stats.sending = p.sending.sync;
        p.receiving = Receiving::default();
        self.ask_for_routes(id, None, now);
    }

    /// An account's peer disconnected: every route it gave us is withdrawn.
    pub fn link_down(&mut self, id: &AccountId, now: Instant) {
        self.drop_peer(id, now);
    }

    fn drop_peer(&mut self, id: &AccountId, now: Instant) {
        let Some(p) = self.peers.get_mut(id) else { return };
        p.linked = false;
        p.stats.linked = false;
        p.stats.sending = false;
        p.sending = Sending::default();
        self.forget_routes(id, now);
    }

    /// Drops what the account told us (its routes are withdrawn where they were the best).
    fn forget_routes(&mut self, id: &AccountId, now: Instant) {
        let Some(p) = self.peers.get_mut(id) else { return };
        let prefixes: Vec<Arc<str>> = p.receiving.routes.keys().cloned().collect();
        p.receiving = Receiving::default();
        p.stats.routes_learned = 0;
        for prefix in prefixes {
            self.recompute(&prefix, now);
        }
    }

    /// A new table ID (derived from the last, so distinct) with an empty log: every peer must start over.
    fn new_table(&mut self) {
        let digest = Sha256::digest(self.config.table_id);
        self.config.table_id.copy_from_slice(&digest[..16]);
        self.epoch = 0;
        self.log.clear();
        self.latest.clear();
    }

    /// Sends a route control (sync) to the account, from `known` (table ID and epoch) or from scratch.
    fn ask_for_routes(&mut self, id: &AccountId, known: Option<([u8; 16], u32)>, now: Instant) {
        let interval = self.config.broadcast_interval;
        let Some(p) = self.peers.get_mut(id) else { return };
        if !p.linked || !p.account.receive_routes || self.address.is_none() {
            return;
        }
        let (table, epoch) = match known {
            Some((t, e)) => (t.to_vec(), e),
            None => (Vec::new(), 0),
        };
        p.receiving.last_control = Some(now);
        p.receiving.control_due = Some(now + interval);
        p.stats.controls_sent += 1;
        self.actions.push_back(Action::Send {
            to: id.clone(),
            message: CcpMessage::control(RouteControl {
                mode: MODE_SYNC,
                last_known_routing_table_id: table,
                last_known_epoch: epoch,
                features: Vec::new(),
            }),
        });
    }

    /// A message from an account's peer.
    pub fn on_message(&mut self, from: &AccountId, message: CcpMessage, now: Instant) -> Result<(), CcpError> {
        match message.kind {
            Some(Kind::Control(c)) => self.on_control(from, c, now),
            Some(Kind::Update(u)) => self.on_update(from, u, now),
            None => Err(CcpError::Empty),
        }
    }

    fn on_control(&mut self, from: &AccountId, control: RouteControl, now: Instant) -> Result<(), CcpError> {
        let ours = self.config.table_id;
        let current = self.epoch;
        let p = match self.peers.get_mut(from) {
            Some(p) if p.linked && p.account.send_routes => p,
            _ => return Err(CcpError::NotAllowed(from.clone())),
        };
        p.stats.controls_received += 1;
        if control.mode == MODE_SYNC {
            p.sending.sync = true;
            let from =
                if control.last_known_routing_table_id == ours { control.last_known_epoch.min(current) } else { 0 };
            // A control can cost a whole table: one is acted on at most once a second per peer, however often
            // it asks (the latest one counts).
            p.sending.epoch = from;
            let at = match p.sending.last_resync {
                Some(t) if now < t + Duration::from_secs(1) => t + Duration::from_secs(1),
                _ => now,
            };
            p.sending.last_resync = Some(at);
            p.sending.due = Some(at);
        } else {
            p.sending.sync = false;
            p.sending.due = None;
        }
        p.stats.sending = p.sending.sync;
        Ok(())
    }

    fn on_update(&mut self, from: &AccountId, update: RouteUpdate, now: Instant) -> Result<(), CcpError> {
        let Some(ours) = self.address.clone() else { return Err(CcpError::NotAllowed(from.clone())) };
        let p = match self.peers.get_mut(from) {
            Some(p) if p.linked && p.account.receive_routes => p,
            _ => return Err(CcpError::NotAllowed(from.clone())),
        };
        p.stats.updates_received += 1;
        let table: [u8; 16] = update
            .routing_table_id
            .as_slice()
            .try_into()
            .map_err(|_| CcpError::TableId(update.routing_table_id.len()))?;
        let speaker = match Address::parse(&update.speaker) {
            Ok(s) if s != ours => s,
            _ => return Err(CcpError::Speaker(update.speaker.chars().take(64).collect())),
        };
        let debounce = self.config.debounce;
        let limits = Limits { max_path_len: self.config.max_path_len, max_routes: self.config.max_routes_per_peer };
        let allowed = allowance(&p.account);
        let check = Check { speaker: &speaker, ours: &ours, allowed: &allowed, configured: &self.configured, from };
        let r = &mut p.receiving;
        let may_ask = r.last_control.is_none_or(|t| now >= t + debounce);
        let hold = Duration::from_millis(u64::from(update.hold_down_time_ms))
            .clamp(Duration::from_secs(1), Duration::from_secs(3600));
        let mut touched: Vec<Arc<str>> = Vec::new();
        if r.table_id != Some(table) {
            // A table we do not have: the peer restarted (or we just linked). It is received from epoch 0 into a
            // staging set and replaces what the peer told us before once it is complete.
            let staged = match r.staged.take() {
                Some(st) if st.table_id == table => st,
                _ if update.from_epoch == 0 => Staged { table_id: table, epoch: 0, routes: RouteSet::default() },
                _ => {
                    // Not from its start: ask for all of it.
                    if may_ask {
                        self.ask_for_routes(from, None, now);
                    }
                    return Ok(());
                }
            };
            let mut staged = staged;
            if update.from_epoch > staged.epoch {
                if may_ask {
                    self.ask_for_routes(from, None, now);
                }
                return Ok(());
            }
            r.expires_at = Some(now + hold);
            r.control_due = None;
            p.stats.routes_refused += apply(&mut staged.routes, &update, &check, &limits, &mut Vec::new());
            staged.epoch = staged.epoch.max(update.to_epoch);
            if staged.epoch >= update.current_epoch {
                touched.extend(r.routes.keys().cloned());
                touched.extend(staged.routes.keys().cloned());
                r.routes = staged.routes;
                r.table_id = Some(table);
                r.epoch = staged.epoch;
            } else {
                r.staged = Some(staged);
            }
        } else if update.from_epoch > r.epoch {
            // We missed updates: ask for what comes after what we have.
            let known = (table, r.epoch);
            if may_ask {
                self.ask_for_routes(from, Some(known), now);
            }
            return Ok(());
        } else {
            r.expires_at = Some(now + hold);
            r.control_due = None;
            // As ilp-connector: stale only when it ends before what we have (an update ending at our epoch may
            // withdraw: a flush).
            if update.to_epoch >= r.epoch {
                p.stats.routes_refused += apply(&mut r.routes, &update, &check, &limits, &mut touched);
                r.epoch = update.to_epoch;
            }
        }
        p.stats.received_epoch = r.epoch;
        p.stats.routes_learned = r.routes.len();
        touched.sort();
        touched.dedup();
        for prefix in touched {
            self.recompute(&prefix, now);
        }
        Ok(())
    }

    /// The message to `to` could not be queued: it gets the same changes again later (a third of the route
    /// expiry, or the interval if shorter), so its routes do not expire meanwhile.
    pub fn send_failed(&mut self, to: &AccountId, message: &CcpMessage, now: Instant) {
        let interval = self.config.broadcast_interval.min(self.config.route_expiry / 3).max(self.config.debounce);
        let Some(p) = self.peers.get_mut(to) else { return };
        p.stats.sends_failed += 1;
        match &message.kind {
            Some(Kind::Update(u)) => {
                p.sending.epoch = p.sending.epoch.min(u.from_epoch);
                p.stats.sent_epoch = p.sending.epoch;
                if p.sending.sync {
                    p.sending.due = Some(now + interval);
                }
            }
            Some(Kind::Control(_)) => p.receiving.control_due = Some(now + interval),
            None => {}
        }
    }

    /// When [`Router::tick`] has something to do next.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.peers
            .values()
            .filter(|p| p.linked)
            .flat_map(|p| [p.sending.due, p.receiving.expires_at, p.receiving.control_due, p.sending.flush_at])
            .flatten()
            .min()
    }

    /// Does what is due: updates and heartbeats, route controls for peers that stay silent, route expiry.
    pub fn tick(&mut self, now: Instant) {
        let ids: Vec<AccountId> = self.peers.iter().filter(|(_, p)| p.linked).map(|(id, _)| id.clone()).collect();
        for id in ids {
            let Some(p) = self.peers.get_mut(&id) else { continue };
            if p.receiving.expires_at.is_some_and(|t| t <= now) {
                // Its routes were not refreshed in time: withdrawn, and asked for again.
                self.forget_routes(&id, now);
                self.ask_for_routes(&id, None, now);
            } else if p.receiving.control_due.is_some_and(|t| t <= now) {
                let known = p.receiving.table_id.map(|t| (t, p.receiving.epoch));
                self.ask_for_routes(&id, known, now);
            }
            let Some(p) = self.peers.get(&id) else { continue };
            if p.sending.sync && !p.sending.flush.is_empty() {
                self.send_flush(&id);
            }
            let Some(p) = self.peers.get(&id) else { continue };
            if p.sending.sync && p.sending.due.is_some_and(|t| t <= now) {
                self.send_update(&id, now);
            }
        }
    }

    /// Withdraws at once, without moving the peer's epoch, the prefixes whose route got worse.
    fn send_flush(&mut self, id: &AccountId) {
        let Some(ours) = self.address.clone() else { return };
        let (table, current, expiry) = (self.config.table_id, self.epoch, self.config.route_expiry);
        let Some(p) = self.peers.get_mut(id) else { return };
        p.sending.flush_at = None;
        let mut withdrawn: Vec<String> = p.sending.flush.drain(..).map(|k| k.to_string()).collect();
        withdrawn.sort();
        withdrawn.dedup();
        let message = CcpMessage::update(RouteUpdate {
            routing_table_id: table.to_vec(),
            current_epoch: current,
            from_epoch: p.sending.epoch,
            to_epoch: p.sending.epoch,
            hold_down_time_ms: u32::try_from(expiry.as_millis()).unwrap_or(u32::MAX),
            speaker: ours.to_string(),
            new_routes: Vec::new(),
            withdrawn_routes: withdrawn,
        });
        p.stats.updates_sent += 1;
        p.stats.bytes_sent += prost::Message::encoded_len(&message) as u64;
        self.actions.push_back(Action::Send { to: id.clone(), message });
    }

    /// One update to `id`: the log after its epoch (at most `max_routes_per_update` routes), or a heartbeat.
    fn send_update(&mut self, id: &AccountId, now: Instant) {
        let Some(ours) = self.address.clone() else { return };
        let Some(p) = self.peers.get(id) else { return };
        let from = p.sending.epoch;
        let relation = p.account.relation;
        let mut to = self.epoch;
        let mut new_routes = Vec::new();
        let mut withdrawn = Vec::new();
        let mut size = 0;
        for (&epoch, prefix) in self.log.range(from.saturating_add(1)..) {
            if new_routes.len() + withdrawn.len() >= self.config.max_routes_per_update || size >= MAX_UPDATE_BYTES {
                to = epoch - 1;
                break;
            }
            size += prefix.len() + 48 + self.best.get(prefix).map_or(0, |b| b.path.iter().map(|h| h.len() + 2).sum());
            match self.best.get(prefix).filter(|b| self.exported(prefix, b, id, relation, &ours)) {
                Some(b) => {
                    let mut path: Vec<String> = Vec::with_capacity(b.path.len() + 1);
                    path.push(ours.to_string());
                    path.extend(b.path.iter().map(|s| s.to_string()));
                    let auth = if b.source == RouteSource::Learned {
                        Sha256::digest(b.auth).to_vec()
                    } else {
                        self.originated_auth(prefix).to_vec()
                    };
                    new_routes.push(WireRoute { prefix: prefix.to_string(), path, auth });
                }
                None => withdrawn.push(prefix.to_string()),
            }
        }
        let message = CcpMessage::update(RouteUpdate {
            routing_table_id: self.config.table_id.to_vec(),
            current_epoch: self.epoch,
            from_epoch: from,
            to_epoch: to,
            hold_down_time_ms: u32::try_from(self.config.route_expiry.as_millis()).unwrap_or(u32::MAX),
            speaker: ours.to_string(),
            new_routes,
            withdrawn_routes: withdrawn,
        });
        let interval = self.config.broadcast_interval;
        let Some(p) = self.peers.get_mut(id) else { return };
        p.sending.epoch = to;
        // More to send: right away (one message per turn); otherwise a heartbeat an interval from now.
        p.sending.due = Some(if to < self.epoch { now } else { now + interval });
        p.stats.sent_epoch = to;
        p.stats.updates_sent += 1;
        p.stats.bytes_sent += prost::Message::encoded_len(&message) as u64;
        self.actions.push_back(Action::Send { to: id.clone(), message });
    }

    /// Whether the best route for `prefix` is advertised to `to` (else it is sent as withdrawn).
    fn exported(&self, prefix: &str, best: &Best, to: &AccountId, to_relation: Relation, ours: &Address) -> bool {
        let global = global_prefix(ours);
        if prefix == global || !under(prefix, global) {
            return false;
        }
        // Our children are covered by our own address.
        if prefix != ours.as_str() && under(prefix, ours.as_str()) {
            return false;
        }
        // Never back to where it comes from.
        if best.next_hop.as_ref() == Some(to) {
            return false;
        }
        // Valley-free: a parent gets only what we and our children reach (configured routes included).
        if to_relation == Relation::Parent
            && let Some(hop) = &best.next_hop
            && self.relations.get(hop) != Some(&Relation::Child)
        {
            return false;
        }
        true
    }

    fn originated_auth(&self, prefix: &str) -> [u8; 32] {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.config.routing_secret).expect("HMAC takes any key length");
        mac.update(prefix.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Recomputes the best route for `prefix`; a change is logged, scheduled to peers and reported.
    fn recompute(&mut self, prefix: &str, now: Instant) {
        let candidate = self.candidate(prefix, now);
        let previous = self.best.get(prefix);
        let changed = match (previous, &candidate) {
            (None, None) => false,
            (Some(a), Some(b)) => !a.same_route(b),
            _ => true,
        };
        if !changed {
            return;
        }
        let key: Arc<str> = self.best.get_key_value(prefix).map(|(k, _)| k.clone()).unwrap_or_else(|| prefix.into());
        let previous = match &candidate {
            Some(b) => self.best.insert(key.clone(), b.clone()),
            None => self.best.remove(&key),
        };
        // The forwarding table holds learned routes; configured and local ones it has already.
        let learned_before = previous.as_ref().filter(|b| b.source == RouteSource::Learned).map(|b| &b.next_hop);
        let learned_now = candidate.as_ref().filter(|b| b.source == RouteSource::Learned).map(|b| &b.next_hop);
        if learned_before != learned_now {
            self.actions
                .push_back(Action::SetLearned { prefix: key.to_string(), next_hop: learned_now.cloned().flatten() });
        }
        let event = match (&previous, &candidate) {
            (None, Some(b)) => RouteEvent::RouteAdded {
                prefix: key.to_string(),
                next_hop: b.next_hop.clone(),
                path: b.path.iter().map(|s| s.to_string()).collect(),
            },
            (Some(a), Some(b)) => RouteEvent::RouteChanged {
                prefix: key.to_string(),
                next_hop: b.next_hop.clone(),
                path: b.path.iter().map(|s| s.to_string()).collect(),
                previous: a.next_hop.clone(),
            },
            (Some(a), None) => RouteEvent::RouteWithdrawn { prefix: key.to_string(), previous: a.next_hop.clone() },
            (None, None) => return,
        };
        self.actions.push_back(Action::Event(event));
        let worse = match (&previous, &candidate) {
            (Some(_), None) => true,
            // Not strictly better: an equally long replacement may be just as stale as what it replaces.
            (Some(a), Some(b)) => {
                b.source == RouteSource::Learned && (a.source != RouteSource::Learned || b.path.len() >= a.path.len())
            }
            _ => false,
        };
        if worse {
            for p in self.peers.values_mut().filter(|p| p.linked && p.sending.sync) {
                if p.sending.flush.len() < self.config.max_routes_per_update {
                    p.sending.flush.push(key.clone());
                    p.sending.flush_at.get_or_insert(now);
                }
            }
        }
        self.append_log(key, now);
    }

    fn append_log(&mut self, prefix: Arc<str>, now: Instant) {
        self.epoch = self.epoch.wrapping_add(1);
        if let Some(old) = self.latest.insert(prefix.clone(), self.epoch) {
            self.log.remove(&old);
        }
        self.log.insert(self.epoch, prefix);
        // Withdrawn prefixes stay in the log so late peers learn of them; when they outnumber the live ones, a
        // new table (peers resync from scratch) keeps the log bounded by the table's size.
        let live = self.best.len();
        let tombstones = self.log.len() - live.min(self.log.len());
        if tombstones > 1024 && tombstones > 2 * live || self.epoch == u32::MAX {
            self.compact(now);
        }
        self.schedule_all(now);
    }

    fn compact(&mut self, now: Instant) {
        self.new_table();
        let mut live: Vec<Arc<str>> = self.best.keys().cloned().collect();
        live.sort();
        for prefix in live {
            self.epoch += 1;
            self.latest.insert(prefix.clone(), self.epoch);
            self.log.insert(self.epoch, prefix);
        }
        for p in self.peers.values_mut() {
            p.sending.epoch = 0;
            p.sending.flush.clear();
            p.sending.flush_at = None;
        }
        self.schedule_all(now);
    }

    /// Every syncing peer gets an update after the debounce (sooner if it was already due).
    fn schedule_all(&mut self, now: Instant) {
        let at = now + self.config.debounce;
        for p in self.peers.values_mut().filter(|p| p.linked && p.sending.sync) {
            if p.sending.due.is_none_or(|d| d > at) {
                p.sending.due = Some(at);
            }
        }
    }

    fn candidate(&self, prefix: &str, now: Instant) -> Option<Best> {
        let keep_since = |b: Best| match self.best.get(prefix) {
            Some(old) if old.same_route(&b) => Best { since: old.since, ..b },
            _ => b,
        };
        let local = |next_hop: Option<AccountId>, source| {
            Some(keep_since(Best { next_hop, path: Arc::from(Vec::new()), auth: [0; 32], source, since: now }))
        };
        if let Some(a) = self.configured.get(prefix) {
            return local(Some(a.clone()), RouteSource::Configured);
        }
        if self.address.as_ref().is_some_and(|a| a.as_str() == prefix) {
            return local(None, RouteSource::Local);
        }
        if let Some(a) = self.children.get(prefix) {
            return local(Some(a.clone()), RouteSource::Local);
        }
        let mut best: Option<(&AccountId, &Peer, &Learned)> = None;
        for (id, p) in &self.peers {
            let Some(l) = p.receiving.routes.routes.get(prefix) else { continue };
            let better = match best {
                None => true,
                Some((bid, bp, bl)) => {
                    (std::cmp::Reverse(weight(p.account.relation)), l.path.len(), id)
                        < (std::cmp::Reverse(weight(bp.account.relation)), bl.path.len(), bid)
                }
            };
            if better {
                best = Some((id, p, l));
            }
        }
        best.map(|(id, _, l)| {
            keep_since(Best {
                next_hop: Some(id.clone()),
                path: l.path.clone(),
                auth: l.auth,
                source: RouteSource::Learned,
                since: now,
            })
        })
    }

    /// Our table, sorted by prefix (the default route to a parent is the forwarding table's).
    pub fn routes(&self, now: Instant) -> Vec<RouteView> {
        let mut out: Vec<RouteView> = self
            .best
            .iter()
            .map(|(prefix, b)| RouteView {
                prefix: prefix.to_string(),
                next_hop: b.next_hop.clone(),
                path: b.path.iter().map(|s| s.to_string()).collect(),
                source: b.source,
                age_ms: u64::try_from(now.saturating_duration_since(b.since).as_millis()).unwrap_or(u64::MAX),
            })
            .collect();
        out.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        out
    }

    /// Route exchange per account, sorted by account.
    pub fn peers(&self) -> Vec<PeerRouting> {
        let mut out: Vec<PeerRouting> = self.peers.values().map(|p| p.stats.clone()).collect();
        out.sort_by(|a, b| a.account.cmp(&b.account));
        out
    }
}

/// The prefixes `account` may announce: what the configuration grants it; without a grant, a parent anything
/// and others nothing (a peer's own address space is known only from the configuration: a speaker address is
/// the peer's word, and taking it would let any peer claim any prefix).
fn allowance(account: &RoutingAccount) -> Option<Vec<String>> {
    match (&account.allowed_prefixes, account.relation) {
        (Some(list), _) => Some(list.clone()),
        (None, Relation::Parent) => None,
        (None, _) => Some(Vec::new()),
    }
}

struct Check<'a> {
    speaker: &'a Address,
    ours: &'a Address,
    allowed: &'a Option<Vec<String>>,
    configured: &'a HashMap<Arc<str>, AccountId>,
    from: &'a AccountId,
}

struct Limits {
    max_path_len: usize,
    max_routes: usize,
}

/// Applies an update's withdrawals and new routes to `set`; prefixes that changed go to `touched`. Returns how
/// many routes were refused.
fn apply(
    set: &mut RouteSet,
    update: &RouteUpdate,
    check: &Check<'_>,
    limits: &Limits,
    touched: &mut Vec<Arc<str>>,
) -> u64 {
    let mut refused = 0;
    for prefix in &update.withdrawn_routes {
        if let Some(k) = set.remove(prefix) {
            touched.push(k);
        }
    }
    for route in &update.new_routes {
        let accepted = check_route(route, check, limits.max_path_len).filter(|l| {
            set.routes.contains_key(route.prefix.as_str())
                || (set.len() < limits.max_routes
                    && set.bytes + weight_of(&route.prefix, l) <= MAX_ROUTE_BYTES_PER_PEER)
        });
        match accepted {
            Some(learned) => {
                let prefix: Arc<str> = Arc::from(route.prefix.as_str());
                set.insert(prefix.clone(), learned);
                touched.push(prefix);
            }
            None => {
                refused += 1;
                if let Some(k) = set.remove(&route.prefix) {
                    touched.push(k);
                }
            }
        }
    }
    refused
}

/// A route as we would keep it, or `None` if it is refused.
fn check_route(route: &WireRoute, check: &Check<'_>, max_path_len: usize) -> Option<Learned> {
    if route.prefix.len() > MAX_HOP_LEN {
        return None;
    }
    let prefix = Address::parse(&route.prefix).ok()?;
    let (ours, p) = (check.ours.as_str(), prefix.as_str());
    let global = global_prefix(check.ours);
    // Inside our own address space, or outside our network.
    if under(p, ours) || !under(p, global) {
        return None;
    }
    if let Some(list) = check.allowed
        && !list.iter().any(|base| under(p, base))
    {
        return None;
    }
    // Under a configured route, only its own next hop may say more.
    if check.configured.iter().any(|(base, account)| under(p, base) && account != check.from) {
        return None;
    }
    if route.path.is_empty() || route.path.len() > max_path_len || route.path[0] != check.speaker.as_str() {
        return None;
    }
    // A path through us is a loop.
    if route.path.iter().any(|hop| hop.len() > MAX_HOP_LEN || hop == ours || Address::parse(hop).is_err()) {
        return None;
    }
    let auth: [u8; 32] = route.auth.as_slice().try_into().ok()?;
    Some(Learned { path: route.path.iter().map(|s| Arc::from(s.as_str())).collect(), auth })
}

#[cfg(test)]
mod tests;
