//! The forwarding core: a deterministic state machine, fed Prepares, replies, store acknowledgements and `now`,
//! that returns actions (forward this, answer that, make this balance change durable). It owns accounts,
//! balances, reservations and the routing table; it has no sockets, timers or tasks (the reactor drives it).
//!
//! Every Prepare handed to [`Forwarder::prepare`] gets exactly one [`Action::Respond`]; every
//! [`Action::Forward`] is settled by exactly one of [`Forwarder::reply`], [`Forwarder::expire`] or nothing
//! else. A Fulfill is answered upstream only after [`Forwarder::committed`] reports its balance change durable.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;
use serde::Serialize;

use super::rates::{RateError, Rates};
use super::routing::{RouteSource, RoutingTable};
use super::rules::{self, TokenBucket};
use super::slots::Slots;
use crate::accounts::store::Deltas;
use crate::accounts::{Account, AccountId, Relation};
use crate::ildcp::{self, IldcpResponse};
use crate::ilp::{Address, Condition, ErrorCode, Fulfill, PEER_PROTOCOL_CONDITION, Prepare, Reject, Reply, Timestamp};

/// What a driver gives each Prepare it hands in, by default: an ID of its choosing. The core hands it back in
/// that Prepare's [`Action::Respond`]; a driver may hand in anything else that tells it how to answer (the
/// connector hands in the answer's route itself: a send reservation, a oneshot, or a batch sender's channel index
/// and tag, so it needs no map of its own).
pub type InboundId = u64;
/// The ID the core gives a Prepare it forwards (below 2^63; not given again for 2^39 forwarded Prepares).
pub type OutboundId = u64;
/// The core's own key of an inbound Prepare it holds.
type InboundKey = u64;

/// Settings of the forwarding core.
#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    /// Our ILP address.
    pub address: Address,
    /// How much earlier than the incoming Prepare the outgoing one expires (ilp-connector: 1 s).
    pub min_message_window_ms: i64,
    /// The longest we hold a Prepare (ilp-connector: 30 s).
    pub max_hold_time_ms: i64,
    /// Prepares in flight per account and direction; beyond, T03.
    pub max_in_flight_per_account: usize,
    /// The sequence number in the first forwarded Prepare's ID (IDs are a sequence number and a slot). Each run
    /// starts somewhere unpredictable, so that answers a peer kept for an earlier run of this node can never match
    /// a new Prepare.
    pub first_outbound_seq: u64,
    /// Exchange rates and spread.
    pub rates: Rates,
}

impl ForwarderConfig {
    /// ilp-connector's defaults at `address`.
    pub fn new(address: Address) -> ForwarderConfig {
        ForwarderConfig {
            address,
            min_message_window_ms: 1000,
            max_hold_time_ms: 30_000,
            max_in_flight_per_account: 1024,
            first_outbound_seq: ledgerwire_types::random::u64(),
            rates: Rates::default(),
        }
    }
}

/// What the driver must do. `T` is what the driver handed in with each Prepare ([`InboundId`] by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<T = InboundId> {
    /// Send the Prepare [`Forwarder::forwarded`] gives for `id` (with its new amount and expiry) to `to`'s link;
    /// its answer comes back through [`Forwarder::reply`] with `id`. The core keeps the Prepare while it is open
    /// (it needs it for the answer), so the driver encodes it from there instead of getting a copy.
    Forward {
        /// The next hop.
        to: AccountId,
        /// The ID to answer with.
        id: OutboundId,
    },
    /// Answer the inbound Prepare `id`.
    Respond {
        /// What the driver handed in with it.
        id: T,
        /// The answer.
        reply: Reply,
    },
    /// Make these balance changes durable in one transaction, then call [`Forwarder::committed`] with `id`.
    Commit {
        /// The commit's ID.
        id: u64,
        /// Per account, the change (positive: they owe us more).
        deltas: Deltas,
    },
    /// Something a user would want to know.
    Event(ForwardingEvent),
}

/// Events of the forwarding core.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ForwardingEvent {
    /// An account's balance crossed below its `settle_threshold`: we should pay them `amount`.
    SettlementNeeded {
        /// The account.
        account: AccountId,
        /// Its balance now.
        #[serde(with = "crate::accounts::store::as_string")]
        balance: i128,
        /// What brings it back to `settle_to`.
        #[serde(with = "crate::accounts::store::as_string")]
        amount: u64,
    },
    /// A balance change for a Fulfill could not be made durable: the Fulfill was turned into T00 upstream.
    CommitFailed {
        /// The accounts involved.
        accounts: Vec<AccountId>,
    },
}

/// An account's balance and what is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BalanceView {
    /// Durable balance (positive: they owe us).
    #[serde(with = "crate::accounts::store::as_string")]
    pub balance: i128,
    /// Incoming Prepares in flight (they will owe us this much more if all are fulfilled).
    #[serde(with = "crate::accounts::store::as_string")]
    pub reserved_in: u128,
    /// Outgoing Prepares in flight (we will owe them this much more if all are fulfilled).
    #[serde(with = "crate::accounts::store::as_string")]
    pub reserved_out: u128,
}

/// Counters of one account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccountStats {
    /// Prepares received from the account.
    pub prepares_in: u64,
    /// Of those, fulfilled.
    pub fulfilled_in: u64,
    /// Of those, rejected, by code.
    pub rejected_in: std::collections::BTreeMap<String, u64>,
    /// Prepares forwarded to the account.
    pub prepares_out: u64,
}

#[derive(Debug)]
struct AccountState {
    account: Arc<Account>,
    balance: i128,
    reserved_in: u128,
    reserved_out: u128,
    in_flight_in: usize,
    in_flight_out: usize,
    link_up: bool,
    removed: bool,
    rate: Option<TokenBucket>,
    throughput: Option<TokenBucket>,
    stats: AccountStats,
    // A settlement was asked for and the balance has not come back to the threshold since.
    settlement_asked: bool,
}

impl AccountState {
    /// Removed, and nothing of it is in flight any more: it can go.
    fn retired(&self) -> bool {
        self.removed
            && self.in_flight_in == 0
            && self.in_flight_out == 0
            && self.reserved_in == 0
            && self.reserved_out == 0
    }

    /// Whether the balance just crossed below `settle_threshold` (once per crossing): the settlement to ask for.
    fn settlement_needed(&mut self) -> Option<ForwardingEvent> {
        let threshold = self.account.settle_threshold?;
        if self.balance >= i128::from(threshold) {
            self.settlement_asked = false;
            return None;
        }
        if self.settlement_asked {
            return None;
        }
        self.settlement_asked = true;
        let amount = u64::try_from(i128::from(self.account.settle_to) - self.balance).unwrap_or(u64::MAX);
        Some(ForwardingEvent::SettlementNeeded { account: self.account.id.clone(), balance: self.balance, amount })
    }
}

#[derive(Debug)]
struct Inbound<T> {
    from: AccountId,
    amount: u64,
    /// What the driver handed in with it, handed back with its answer.
    token: T,
}

/// The inbound Prepares one forwarded Prepare answers: one, plus any coalesced copies (no allocation for the one).
#[derive(Debug)]
struct Waiting {
    first: InboundKey,
    more: Vec<InboundKey>,
}

impl Waiting {
    fn one(id: InboundKey) -> Waiting {
        Waiting { first: id, more: Vec::new() }
    }

    fn push(&mut self, id: InboundKey) {
        self.more.push(id);
    }

    fn iter(&self) -> impl Iterator<Item = &InboundKey> {
        std::iter::once(&self.first).chain(self.more.iter())
    }
}

impl IntoIterator for Waiting {
    type Item = InboundKey;
    type IntoIter = std::iter::Chain<std::iter::Once<InboundKey>, std::vec::IntoIter<InboundKey>>;
    fn into_iter(self) -> Self::IntoIter {
        std::iter::once(self.first).chain(self.more)
    }
}

#[derive(Debug)]
struct Outbound {
    to: AccountId,
    prepare: Prepare,
    waiting: Waiting,
    /// The hash of the condition in `by_condition` (computed once per forwarded Prepare).
    condition_hash: u64,
}

#[derive(Debug)]
struct PendingCommit {
    to: AccountId,
    amount_out: u64,
    fulfill: Fulfill,
    waiting: Waiting,
}

/// The forwarding state machine. `T` is what the driver hands in with each Prepare and gets back with its answer
/// ([`InboundId`] by default).
#[derive(Debug)]
pub struct Forwarder<T = InboundId> {
    config: ForwarderConfig,
    accounts: HashMap<AccountId, AccountState>,
    routes: RoutingTable,
    // Open packets live in slabs (no hashing; a freed slot is the next one used, still in cache) under IDs that
    // are never given twice in a run.
    inbound: Slots<Inbound<T>>,
    outbound: Slots<Outbound>,
    // The latest open Prepare per condition, for coalescing copies. Senders choose conditions: this map keeps std's
    // randomly keyed SipHash, so nobody can make its lookups collide.
    by_condition: hashbrown::HashTable<(Condition, OutboundId)>,
    condition_hasher: std::collections::hash_map::RandomState,
    // Expiries of forwarded Prepares, soonest first. An answered Prepare's entry is not looked for: it is dropped
    // when it reaches the top (or at a compaction), which makes forwarding one push and no search.
    expiries: BinaryHeap<Reverse<(i64, OutboundId)>>,
    commits: Slots<PendingCommit>,
    actions: VecDeque<Action<T>>,
    address_pending: bool,
}

impl<T> Forwarder<T> {
    /// A core with no accounts.
    pub fn new(config: ForwarderConfig) -> Forwarder<T> {
        let first_outbound_seq = config.first_outbound_seq;
        Forwarder {
            config,
            accounts: HashMap::default(),
            routes: RoutingTable::new(),
            inbound: Slots::new(0),
            outbound: Slots::new(first_outbound_seq),
            by_condition: hashbrown::HashTable::new(),
            condition_hasher: std::collections::hash_map::RandomState::new(),
            expiries: BinaryHeap::new(),
            commits: Slots::new(0),
            actions: VecDeque::new(),
            address_pending: false,
        }
    }

    /// Takes a new ILP address (inherited from a parent): children's routes move under it.
    pub fn set_address(&mut self, address: Address) {
        self.config.address = address;
        self.address_pending = false;
        self.rebuild_local_routes();
    }

    /// While our address is pending (a parent has yet to give it), children asking for theirs by ILDCP get T00
    /// (retry later) rather than an address that is about to change.
    pub fn set_address_pending(&mut self, pending: bool) {
        self.address_pending = pending;
    }

    /// Our ILP address.
    pub fn address(&self) -> &Address {
        &self.config.address
    }

    /// The next action to carry out.
    pub fn poll_action(&mut self) -> Option<Action<T>> {
        self.actions.pop_front()
    }

    /// For a driver that stops: gives up every inbound Prepare still owed an answer and returns what the driver
    /// handed in with each, with the answer when the core had one ready (an action not yet polled) and `None` when
    /// it is still open (answer it T00, say). Other actions not yet polled are dropped. Meant for a core about to be
    /// dropped: balances reserved for open Prepares stay reserved.
    pub fn abandon(&mut self) -> Vec<(T, Option<Reply>)> {
        let mut owed: Vec<(T, Option<Reply>)> = self
            .actions
            .drain(..)
            .filter_map(|a| match a {
                Action::Respond { id, reply } => Some((id, Some(reply))),
                _ => None,
            })
            .collect();
        owed.extend(self.inbound.drain().map(|i| (i.token, None)));
        owed
    }

    /// The Prepare forwarded under `id`, while it is open (`None` once it is answered, expired or failed: a
    /// driver that finds none for an [`Action::Forward`] has nothing left to send).
    pub fn forwarded(&self, id: OutboundId) -> Option<&Prepare> {
        self.outbound.get(id).map(|o| &o.prepare)
    }

    /// When [`Forwarder::expire`] should next be called.
    pub fn next_timeout(&mut self) -> Option<Timestamp> {
        while let Some(&Reverse((t, id))) = self.expiries.peek() {
            if self.is_open(id, t) {
                return Some(Timestamp::from_unix_ms(t));
            }
            self.expiries.pop();
        }
        None
    }

    /// Whether the expiry entry `(t, id)` is still that of an open forwarded Prepare.
    fn is_open(&self, id: OutboundId, t: i64) -> bool {
        self.outbound.get(id).is_some_and(|o| o.prepare.expires_at.unix_ms() == t)
    }

    /// Expiry entries kept (open forwarded Prepares plus answered ones not yet dropped): at most twice the open
    /// ones, plus 1024.
    pub fn expiry_entries(&self) -> usize {
        self.expiries.len()
    }

    /// Adds an account, or updates one (its balance, reservations and counters stay). `balance` is its durable
    /// balance, used only when the account is new.
    pub fn upsert_account(&mut self, account: Account, balance: i128, now: Timestamp) {
        let account = Arc::new(account);
        let id = account.id.clone();
        let rate = account.rate_limit.map(|r| TokenBucket::new(u64::from(r), now));
        let throughput = account.throughput_limit.map(|t| TokenBucket::new(t, now));
        match self.accounts.get_mut(&id) {
            Some(state) => {
                if state.account.rate_limit != account.rate_limit {
                    state.rate = rate;
                }
                if state.account.throughput_limit != account.throughput_limit {
                    state.throughput = throughput;
                }
                if state.account.link != account.link {
                    state.link_up = matches!(account.link, crate::accounts::Link::Http(_));
                }
                state.account = account.clone();
                state.removed = false;
            }
            None => {
                let link_up = matches!(account.link, crate::accounts::Link::Http(_));
                self.accounts.insert(
                    id.clone(),
                    AccountState {
                        account: account.clone(),
                        balance,
                        reserved_in: 0,
                        reserved_out: 0,
                        in_flight_in: 0,
                        in_flight_out: 0,
                        link_up,
                        removed: false,
                        rate,
                        throughput,
                        stats: AccountStats::default(),
                        settlement_asked: false,
                    },
                );
            }
        }
        self.rebuild_local_routes();
    }

    /// Removes an account: it gets no more packets and routes through it go away. Packets in flight finish.
    pub fn remove_account(&mut self, id: &AccountId) -> bool {
        let Some(state) = self.accounts.get_mut(id) else { return false };
        if state.removed {
            return false;
        }
        state.removed = true;
        state.link_up = false;
        self.routes.remove_account(id);
        self.rebuild_local_routes();
        self.gc_account(id);
        true
    }

    fn gc_account(&mut self, id: &AccountId) {
        if self.accounts.get(id).is_some_and(AccountState::retired) {
            self.accounts.remove(id);
        }
    }

    fn rebuild_local_routes(&mut self) {
        let mut parents: Vec<&AccountId> = Vec::new();
        let mut children = Vec::new();
        for (id, s) in &self.accounts {
            if s.removed {
                continue;
            }
            match s.account.relation {
                Relation::Child => children.push(id.clone()),
                Relation::Parent => parents.push(id),
                Relation::Peer => {}
            }
        }
        parents.sort();
        let default = parents.first().map(|p| (*p).clone());
        let stale: Vec<String> =
            self.routes.routes().into_iter().filter(|r| r.source == RouteSource::Local).map(|r| r.prefix).collect();
        for p in stale {
            self.routes.remove(RouteSource::Local, &p);
        }
        for child in children {
            if let Ok(a) = self.config.address.with_suffix(child.as_str()) {
                self.routes.insert(RouteSource::Local, a.as_str(), child);
            }
        }
        match default {
            Some(p) => self.routes.insert(RouteSource::Default, "", p),
            None => self.routes.remove(RouteSource::Default, ""),
        }
    }

    /// Adds a configured route.
    pub fn add_route(&mut self, prefix: &str, account: AccountId) {
        self.routes.insert(RouteSource::Configured, prefix, account);
    }

    /// Removes a configured route.
    pub fn remove_route(&mut self, prefix: &str) {
        self.routes.remove(RouteSource::Configured, prefix);
    }

    /// The routing table.
    pub fn routes(&self) -> &RoutingTable {
        &self.routes
    }

    /// The routing table, to change learned routes.
    pub fn routes_mut(&mut self) -> &mut RoutingTable {
        &mut self.routes
    }

    /// Marks an account's link up (a p2p peer connected, an app attached) or down.
    pub fn set_link(&mut self, id: &AccountId, up: bool) {
        if let Some(s) = self.accounts.get_mut(id) {
            s.link_up = up && !s.removed;
        }
    }

    /// Whether an account's link is up.
    pub fn link_up(&self, id: &AccountId) -> bool {
        self.accounts.get(id).is_some_and(|s| s.link_up)
    }

    /// An account, if it exists (and was not removed).
    pub fn account(&self, id: &AccountId) -> Option<&Arc<Account>> {
        self.accounts.get(id).filter(|s| !s.removed).map(|s| &s.account)
    }

    /// Removed accounts that still have Prepares in flight (they go away when those finish).
    pub fn retiring(&self) -> Vec<Arc<Account>> {
        self.accounts.values().filter(|s| s.removed).map(|s| s.account.clone()).collect()
    }

    /// The in-flight limit per account and direction.
    pub fn max_in_flight_per_account(&self) -> usize {
        self.config.max_in_flight_per_account
    }

    /// Every account, sorted by ID.
    pub fn accounts(&self) -> Vec<Arc<Account>> {
        let mut all: Vec<_> = self.accounts.values().filter(|s| !s.removed).map(|s| s.account.clone()).collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// An account's balance and reservations.
    pub fn balance(&self, id: &AccountId) -> Option<BalanceView> {
        self.accounts.get(id).map(|s| BalanceView {
            balance: s.balance,
            reserved_in: s.reserved_in,
            reserved_out: s.reserved_out,
        })
    }

    /// An account's counters.
    pub fn stats(&self, id: &AccountId) -> Option<&AccountStats> {
        self.accounts.get(id).map(|s| &s.stats)
    }

    /// Applies a settlement the store has already recorded (`delta` to the balance).
    pub fn settled(&mut self, id: &AccountId, delta: i128) {
        if let Some(s) = self.accounts.get_mut(id) {
            s.balance = s.balance.saturating_add(delta);
        }
        self.check_settlement(id);
    }

    /// Asks for a settlement when the balance has crossed below `settle_threshold`: once per crossing.
    fn check_settlement(&mut self, id: &AccountId) {
        if let Some(event) = self.accounts.get_mut(id).and_then(AccountState::settlement_needed) {
            self.actions.push_back(Action::Event(event));
        }
    }

    /// Packets in flight (inbound, outbound, waiting for the store).
    pub fn in_flight(&self) -> (usize, usize, usize) {
        (self.inbound.len(), self.outbound.len(), self.commits.len())
    }

    fn reject_inbound(&mut self, token: T, from: &AccountId, reject: Reject) {
        if let Some(s) = self.accounts.get_mut(from) {
            *s.stats.rejected_in.entry(reject.code.to_string()).or_default() += 1;
        }
        self.actions.push_back(Action::Respond { id: token, reply: Reply::Reject(reject) });
    }

    /// Takes an inbound Prepare out, releasing its reservation: who sent it and what the driver handed in.
    fn release_inbound(&mut self, key: InboundKey) -> Option<(AccountId, T)> {
        let inbound = self.inbound.remove(key)?;
        if let Some(s) = self.accounts.get_mut(&inbound.from) {
            s.reserved_in -= u128::from(inbound.amount);
            s.in_flight_in -= 1;
            if s.retired() {
                self.accounts.remove(&inbound.from);
            }
        }
        Some((inbound.from, inbound.token))
    }

    /// A Prepare arrived from `from`; the driver answers it with the [`Action::Respond`] that follows, which hands
    /// `token` back.
    pub fn prepare(&mut self, now: Timestamp, from: &AccountId, token: T, prepare: Prepare) {
        let us = &self.config.address;
        let max_in_flight = self.config.max_in_flight_per_account;
        let Some(state) = self.accounts.get_mut(from).filter(|s| !s.removed) else {
            let reject = Reject::new(ErrorCode::T01_PEER_UNREACHABLE, us, format!("unknown account. account={from}"));
            self.actions.push_back(Action::Respond { id: token, reply: Reply::Reject(reject) });
            return;
        };
        state.stats.prepares_in += 1;
        if state.in_flight_in >= max_in_flight {
            let reject = Reject::new(
                ErrorCode::T03_CONNECTOR_BUSY,
                us,
                format!("too many packets in flight from this account. limit={max_in_flight}"),
            );
            return self.reject_inbound(token, from, reject);
        }
        let amount = prepare.amount;
        let account = state.account.clone();
        let checks = rules::rate_limit(state.rate.as_mut(), now, us)
            .and_then(|()| rules::max_packet_amount(account.max_packet_amount, amount, us))
            .and_then(|()| rules::throughput(state.throughput.as_mut(), amount, now, us))
            .and_then(|()| rules::incoming_balance(state.balance, state.reserved_in, account.max_balance, amount, us));
        if let Err(reject) = checks {
            return self.reject_inbound(token, from, reject);
        }
        let key = match self.inbound.insert(Inbound { from: from.clone(), amount, token }) {
            Ok(key) => key,
            Err(inbound) => {
                let reject = Reject::new(ErrorCode::T03_CONNECTOR_BUSY, us, "too many packets in flight.");
                return self.reject_inbound(inbound.token, from, reject);
            }
        };
        state.reserved_in += u128::from(amount);
        state.in_flight_in += 1;

        if prepare.destination.is_peer_protocol() {
            let reply = self.peer_protocol(&account, &prepare);
            return self.finish_locally(key, reply);
        }
        if prepare.destination == *us {
            let reject = Reject::new(ErrorCode::F01_INVALID_PACKET, us, "packet data does not start with ECHO prefix.");
            return self.finish_locally(key, Reply::Reject(reject));
        }
        match self.route(now, &account, prepare) {
            Ok((to, forwarded)) => self.forward(key, to, forwarded),
            Err(reject) => self.finish_locally(key, Reply::Reject(reject)),
        }
    }

    fn finish_locally(&mut self, key: InboundKey, reply: Reply) {
        // Answers made here move no money: release the reservation and answer at once.
        let Some((from, token)) = self.release_inbound(key) else { return };
        match reply {
            Reply::Reject(r) => self.reject_inbound(token, &from, r),
            fulfill => {
                if let Some(s) = self.accounts.get_mut(&from) {
                    s.stats.fulfilled_in += 1;
                }
                self.actions.push_back(Action::Respond { id: token, reply: fulfill });
            }
        }
    }

    fn peer_protocol(&self, account: &Account, prepare: &Prepare) -> Reply {
        let us = &self.config.address;
        if prepare.execution_condition != PEER_PROTOCOL_CONDITION {
            return Reply::Reject(Reject::new(
                ErrorCode::F01_INVALID_PACKET,
                us,
                "condition must be peer protocol condition.",
            ));
        }
        if prepare.destination.as_str() != ildcp::DESTINATION {
            return Reply::Reject(Reject::new(ErrorCode::F01_INVALID_PACKET, us, "unknown peer protocol."));
        }
        if account.relation != Relation::Child {
            return Reply::Reject(Reject::new(
                ErrorCode::F00_BAD_REQUEST,
                us,
                "cannot generate a child address for an account that is not a child.",
            ));
        }
        if self.address_pending {
            return Reply::Reject(Reject::new(
                ErrorCode::T00_INTERNAL_ERROR,
                us,
                "our own address is not known yet (our parent has not given it); ask again shortly.",
            ));
        }
        match account.child_address(us) {
            Some(client_address) => Reply::Fulfill(
                IldcpResponse {
                    client_address,
                    asset_scale: account.asset_scale,
                    asset_code: account.asset_code.clone(),
                }
                .to_fulfill(),
            ),
            None => Reply::Reject(Reject::new(ErrorCode::F00_BAD_REQUEST, us, "the child address would be too long.")),
        }
    }

    /// Routing, rate and expiry: the next hop and the Prepare to send it.
    fn route(&mut self, now: Timestamp, from: &Account, prepare: Prepare) -> Result<(AccountId, Prepare), Reject> {
        let us = &self.config.address;
        let to = self
            .routes
            .resolve(&prepare.destination)
            .cloned()
            .ok_or_else(|| rules::no_route(from.id.as_str(), &prepare.destination, us))?;
        let next = self
            .accounts
            .get(&to)
            .filter(|s| !s.removed)
            .ok_or_else(|| rules::no_route(from.id.as_str(), &prepare.destination, us))?;
        if !next.link_up {
            return Err(Reject::new(
                ErrorCode::T01_PEER_UNREACHABLE,
                us,
                format!("no connection to account. account={to}"),
            ));
        }
        let amount = self
            .config
            .rates
            .convert(
                prepare.amount,
                &from.asset_code,
                from.asset_scale,
                &next.account.asset_code,
                next.account.asset_scale,
            )
            .map_err(|e| match e {
                RateError::Overflow => {
                    Reject::new(ErrorCode::F03_INVALID_AMOUNT, us, format!("cannot convert the amount: {e}"))
                }
                e => Reject::new(ErrorCode::F02_UNREACHABLE, us, e.to_string()),
            })?;
        let expires_at = rules::outgoing_expiry(
            prepare.expires_at,
            now,
            self.config.min_message_window_ms,
            self.config.max_hold_time_ms,
            us,
        )?;
        Ok((to, Prepare { amount, expires_at, ..prepare }))
    }

    fn forward(&mut self, key: InboundKey, to: AccountId, prepare: Prepare) {
        let us = &self.config.address;
        let condition = prepare.execution_condition;
        let condition_hash = self.condition_hasher.hash_one(condition);
        // Duplicate in flight: same condition, destination and data to the same next hop, with at least this
        // amount, expiring no later. The next hop sees it once; every copy gets its answer.
        if let Some(&(_, out_id)) = self.by_condition.find(condition_hash, |(c, _)| *c == condition)
            && let Some(o) = self.outbound.get_mut(out_id)
            && o.to == to
            && o.prepare.destination == prepare.destination
            && o.prepare.data == prepare.data
            && o.prepare.amount >= prepare.amount
            // The copy waits for the open Prepare's answer: only if that comes no later than the copy's own
            // outgoing expiry (else its sender may have given up by the time we credit it).
            && o.prepare.expires_at <= prepare.expires_at
        {
            o.waiting.push(key);
            return;
        }
        let max_in_flight = self.config.max_in_flight_per_account;
        let Some(next) = self.accounts.get_mut(&to) else { return };
        if next.in_flight_out >= max_in_flight {
            let reject = Reject::new(
                ErrorCode::T03_CONNECTOR_BUSY,
                us,
                format!("too many packets in flight to the next hop. limit={max_in_flight}"),
            );
            return self.finish_inbound_reject(key, reject);
        }
        let min_balance = next.account.min_balance;
        if let Err(reject) = rules::outgoing_balance(next.balance, next.reserved_out, min_balance, prepare.amount, us) {
            return self.finish_inbound_reject(key, reject);
        }
        let (amount, expires_at) = (prepare.amount, prepare.expires_at);
        let outbound = Outbound { to: to.clone(), prepare, waiting: Waiting::one(key), condition_hash };
        let Ok(out_id) = self.outbound.insert(outbound) else {
            let reject = Reject::new(ErrorCode::T03_CONNECTOR_BUSY, us, "too many packets in flight.");
            return self.finish_inbound_reject(key, reject);
        };
        next.reserved_out += u128::from(amount);
        next.in_flight_out += 1;
        next.stats.prepares_out += 1;
        // The latest open Prepare per condition is the one copies join.
        match self.by_condition.find_mut(condition_hash, |(c, _)| *c == condition) {
            Some(entry) => entry.1 = out_id,
            None => {
                let hasher = &self.condition_hasher;
                self.by_condition.insert_unique(condition_hash, (condition, out_id), |(c, _)| hasher.hash_one(c));
            }
        }
        self.expiries.push(Reverse((expires_at.unix_ms(), out_id)));
        self.compact_expiries();
        self.actions.push_back(Action::Forward { to, id: out_id });
    }

    fn finish_inbound_reject(&mut self, key: InboundKey, reject: Reject) {
        if let Some((from, token)) = self.release_inbound(key) {
            self.reject_inbound(token, &from, reject);
        }
    }

    /// Drops the entries of answered Prepares once they outnumber the open ones (plus a constant). Linear, but
    /// only after the entries have doubled relative to the open Prepares since the last time: constant per Prepare.
    fn compact_expiries(&mut self) {
        if self.expiries.len() > 2 * self.outbound.len() + 1024 {
            let outbound = &self.outbound;
            self.expiries
                .retain(|Reverse((t, id))| outbound.get(*id).is_some_and(|o| o.prepare.expires_at.unix_ms() == *t));
        }
    }

    fn take_outbound(&mut self, out_id: OutboundId) -> Option<Outbound> {
        let o = self.outbound.remove(out_id)?;
        self.compact_expiries();
        let condition = o.prepare.execution_condition;
        if let Ok(entry) = self.by_condition.find_entry(o.condition_hash, |&(c, id)| id == out_id && c == condition) {
            entry.remove();
        }
        Some(o)
    }

    fn release_outbound(&mut self, to: &AccountId, amount: u64) {
        if let Some(s) = self.accounts.get_mut(to) {
            s.reserved_out -= u128::from(amount);
            s.in_flight_out -= 1;
            if s.retired() {
                self.accounts.remove(to);
            }
        }
    }

    /// The answer to forwarded Prepare `id` arrived from `from`. Returns false (and changes nothing) when no such
    /// Prepare is open to that account: a late, duplicate or forged answer.
    pub fn reply(&mut self, from: &AccountId, id: OutboundId, reply: Reply) -> bool {
        if self.outbound.get(id).is_none_or(|o| o.to != *from) {
            return false;
        }
        let Some(o) = self.take_outbound(id) else { return false };
        let us = &self.config.address;
        let reply = match reply {
            Reply::Fulfill(f) => match rules::check_fulfillment(&f, &o.prepare.execution_condition, us) {
                Ok(()) => Reply::Fulfill(f),
                Err(reject) => Reply::Reject(reject),
            },
            r => r,
        };
        match reply {
            Reply::Reject(reject) => {
                self.release_outbound(&o.to, o.prepare.amount);
                for inbound in o.waiting {
                    self.finish_inbound_reject(inbound, reject.clone());
                }
            }
            Reply::Fulfill(fulfill) => {
                let mut deltas = Deltas::new();
                let mut add = |account: &AccountId, d: i128| {
                    if d == 0 {
                        return;
                    }
                    match deltas.iter_mut().find(|(a, _)| a == account) {
                        Some((_, v)) => *v += d,
                        None => deltas.push((account.clone(), d)),
                    }
                };
                add(&o.to, -i128::from(o.prepare.amount));
                for inbound in o.waiting.iter() {
                    if let Some(i) = self.inbound.get(*inbound) {
                        add(&i.from, i128::from(i.amount));
                    }
                }
                deltas.retain(|(_, d)| *d != 0);
                let commit = PendingCommit { to: o.to, amount_out: o.prepare.amount, fulfill, waiting: o.waiting };
                if deltas.is_empty() {
                    self.finish_commit(commit, true);
                } else {
                    match self.commits.insert(commit) {
                        Ok(id) => self.actions.push_back(Action::Commit { id, deltas }),
                        // 2^24 commits waiting for the store: as if this one had failed.
                        Err(commit) => self.finish_commit(commit, false),
                    }
                }
            }
        }
        true
    }

    /// The store has made commit `id` durable (`ok`), or failed to.
    pub fn committed(&mut self, id: u64, ok: bool) {
        if let Some(c) = self.commits.remove(id) {
            self.finish_commit(c, ok);
        }
    }

    fn finish_commit(&mut self, c: PendingCommit, ok: bool) {
        // One lookup per account: balance, reservation, settlement check and (for a removed account whose last
        // packet this was) its removal.
        if let Some(s) = self.accounts.get_mut(&c.to) {
            let event = if ok && c.amount_out > 0 {
                s.balance -= i128::from(c.amount_out);
                s.settlement_needed()
            } else {
                None
            };
            s.reserved_out -= u128::from(c.amount_out);
            s.in_flight_out -= 1;
            if s.retired() {
                // A removed account's last packet: nothing more to settle with it.
                self.accounts.remove(&c.to);
            } else {
                self.actions.extend(event.map(Action::Event));
            }
        }
        let mut failed = Vec::new();
        for inbound in c.waiting {
            if ok {
                let Some(i) = self.inbound.remove(inbound) else { continue };
                if let Some(s) = self.accounts.get_mut(&i.from) {
                    s.reserved_in -= u128::from(i.amount);
                    s.in_flight_in -= 1;
                    s.balance += i128::from(i.amount);
                    s.stats.fulfilled_in += 1;
                    let event = if i.amount > 0 { s.settlement_needed() } else { None };
                    if s.retired() {
                        self.accounts.remove(&i.from);
                    } else {
                        self.actions.extend(event.map(Action::Event));
                    }
                }
                self.actions.push_back(Action::Respond { id: i.token, reply: Reply::Fulfill(c.fulfill.clone()) });
            } else {
                let Some((from, token)) = self.release_inbound(inbound) else { continue };
                let reject = Reject::new(
                    ErrorCode::T00_INTERNAL_ERROR,
                    &self.config.address,
                    "internal error: the balance change could not be recorded.",
                );
                self.reject_inbound(token, &from, reject);
                failed.push(from);
            }
        }
        if !ok {
            failed.push(c.to);
            failed.sort();
            failed.dedup();
            self.actions.push_back(Action::Event(ForwardingEvent::CommitFailed { accounts: failed }));
        }
    }

    /// Forwarded Prepares whose expiry has passed by `now` get R00 upstream; answers that come later are ignored.
    pub fn expire(&mut self, now: Timestamp) {
        let us = self.config.address.clone();
        while let Some(&Reverse((t, out_id))) = self.expiries.peek() {
            if t > now.unix_ms() {
                break;
            }
            self.expiries.pop();
            if !self.is_open(out_id, t) {
                continue;
            }
            if let Some(o) = self.take_outbound(out_id) {
                self.release_outbound(&o.to, o.prepare.amount);
                let reject = Reject::new(ErrorCode::R00_TRANSFER_TIMED_OUT, &us, "packet expired.");
                for inbound in o.waiting {
                    self.finish_inbound_reject(inbound, reject.clone());
                }
            }
        }
    }

    /// The forwarded Prepare `id` could not be delivered (the link failed before it was sent): F02 upstream, as
    /// ilp-connector answers when a plugin's send throws.
    pub fn send_failed(&mut self, id: OutboundId, reason: &str) {
        let Some(o) = self.take_outbound(id) else { return };
        self.release_outbound(&o.to, o.prepare.amount);
        let reject =
            Reject::new(ErrorCode::F02_UNREACHABLE, &self.config.address, format!("failed to send packet: {reason}"));
        for inbound in o.waiting {
            self.finish_inbound_reject(inbound, reject.clone());
        }
    }
}
