//! ILP packet forwarding as a reactor: the connector.
//!
//! The [`core`] decides (pure, tested without sockets); this module drives it: Prepares arrive from p2p peers
//! on [`ILP_CHANNEL`], from apps over ILP-over-HTTP and from in-process endpoints; forwarded Prepares leave the
//! same ways; balance changes go to the [`Store`] and a Fulfill goes upstream only once its change is durable.
//! A [`Connector`] handle manages accounts and settlements and reports [`IlpEvent`]s.

mod batch;
pub mod core;
mod endpoint;
pub mod rates;
pub mod routing;
pub mod rules;
mod slots;
pub mod wire;

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;
use std::time::Duration;

use ledgerwire_conn::mconnection::ChannelDescriptor;
use ledgerwire_p2p::log_limit::LogLimit;
use ledgerwire_p2p::{BuildError, PeerHandle, ReactorContext, ReactorEvent, Reservation, SwitchBuilder};
use ledgerwire_types::deadline::Timer;
use ledgerwire_types::wall_clock::WallClock;
use ledgerwire_types::{NodeId, WireProfile};
use serde::Serialize;
use slog::{Logger, debug, error, info, warn};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

pub use self::batch::BatchAnswers;
use self::batch::{AnswerChannels, AnswerSlot, TaggedBatch};
use self::core::{AccountStats, Action, BalanceView, Forwarder, ForwarderConfig, ForwardingEvent, OutboundId};
pub use self::endpoint::{Endpoint, IncomingPrepare, Replier};
use self::endpoint::{EndpointQueue, Outcome};
use self::routing::Route;
use self::wire::IlpFrame;
use crate::accounts::store::{
    AccountSource, BalanceCommit, Committed, SettlementKind, SettlementRecord, Store, StoreError, StoredAccount,
};
use crate::accounts::{Account, AccountError, AccountId, AccountSpec, Link, Relation};
use crate::ilp::{Address, ErrorCode, Packet, Prepare, Reject, Reply, Timestamp};
use crate::ilp_over_http::{Credentials, HttpClient, PacketHandler};
use crate::routing::core::{RoutingAccount, RoutingInputs};
use prometheus_client::metrics::histogram::Histogram;
use prost::Message as _;

/// The forwarding channel.
pub const ILP_CHANNEL: u8 = 0x71;

/// Items the connector takes from one queue in one turn, after the one that woke it.
const BATCH: usize = 128;

/// Prepares from in-process senders the connector takes in one turn (a turn carries out what they caused at its
/// end, and writes their balance changes in one store message), and the most one batch command carries.
const PREPARES_PER_TURN: usize = 1024;

/// The forwarding channel's descriptor: low latency (flushed as soon as the queue drains), room in the send
/// queue for every Prepare we may have in flight to the peer plus every answer we may owe it.
pub fn descriptor(max_in_flight_per_account: usize) -> ChannelDescriptor {
    ChannelDescriptor::new(ILP_CHANNEL, 10)
        .with_send_queue_capacity(2 * max_in_flight_per_account + 64)
        .with_recv_buffer_capacity(8 << 20)
        .with_recv_message_capacity(48 * 1024)
        .with_low_latency()
}

/// Settings of the connector.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// The forwarding core's settings (our address, expiry windows, limits, rates).
    pub forwarder: ForwarderConfig,
    /// The notation of node IDs in account specs.
    pub profile: WireProfile,
    /// Ask a `parent` account's peer for our address (ILDCP over the p2p link) and take it; until it answers,
    /// `forwarder.address` stands in (as `triggeredBy`), and route exchange waits.
    pub inherit_address: bool,
    /// Where to record how long each Prepare took from arrival to answer (seconds), if anywhere.
    pub latency: Option<Histogram>,
}

/// The request ID of our ILDCP requests: above every forwarded Prepare's (those start below 2^63).
const ILDCP_REQUEST_ID: u64 = u64::MAX;

/// How long a stopping connector waits for the store's answers to balance changes it already sent.
const STOP_DRAIN: Duration = Duration::from_secs(5);

/// How often a parent is asked for our address until it answers.
const ADDRESS_RETRY: Duration = Duration::from_secs(5);

/// Something a user would watch, as `GET /events` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum IlpEvent {
    /// An account was added or changed.
    AccountAdded {
        /// Its ID.
        account: AccountId,
    },
    /// An account was removed.
    AccountRemoved {
        /// Its ID.
        account: AccountId,
    },
    /// An account's p2p peer connected (or its in-process endpoint attached).
    LinkUp {
        /// The account.
        account: AccountId,
    },
    /// An account's link went down.
    LinkDown {
        /// The account.
        account: AccountId,
    },
    /// A settlement was recorded.
    SettlementRecorded {
        /// The record.
        record: SettlementRecord,
    },
    /// From the forwarding core: settlement needed, commit failed.
    #[serde(untagged)]
    Forwarding(ForwardingEvent),
}

/// Why a connector operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectorError {
    /// The account specification is invalid.
    #[error("{0}")]
    Account(#[from] AccountError),
    /// No such account.
    #[error("no account {0}")]
    NoAccount(String),
    /// The account is defined in config.toml (change it there).
    #[error("account {0} is defined in config.toml; change or remove it there")]
    FromConfig(AccountId),
    /// Another account already uses this incoming token or node ID.
    #[error("{field}: already used by account {other}")]
    Duplicate {
        /// Which field.
        field: &'static str,
        /// The account that has it.
        other: AccountId,
    },
    /// The amount of a settlement is zero.
    #[error("amount: a settlement moves a positive amount")]
    ZeroAmount,
    /// The account has no in-process link to attach to.
    #[error("account {0} is not an in-process account")]
    NotInProcess(AccountId),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The connector has stopped.
    #[error("the connector has stopped")]
    Stopped,
}

/// An account as the admin API shows it (tokens left out).
#[derive(Debug, Clone, Serialize)]
pub struct AccountView {
    /// The account ID.
    pub id: AccountId,
    /// `parent`, `peer` or `child`.
    pub relation: crate::accounts::Relation,
    /// Asset code.
    pub asset_code: String,
    /// Asset scale.
    pub asset_scale: u8,
    /// The p2p peer, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// The app's URL, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_url: Option<String>,
    /// config or api.
    pub source: AccountSource,
    /// Whether its link is up.
    pub link_up: bool,
    /// Balance and reservations.
    pub balance: BalanceView,
    /// Counters.
    pub stats: AccountStats,
}

enum Command {
    Prepare {
        account: AccountId,
        prepare: Prepare,
        reply: oneshot::Sender<Reply>,
    },
    Batch {
        account: AccountId,
        /// With the channel their answers go to: a batch dropped anywhere (a full queue whose sender gave up, a
        /// stopped connector) answers each Prepare it still holds T00.
        prepares: TaggedBatch,
    },
    AddAccount {
        spec: AccountSpec,
        source: AccountSource,
        reply: oneshot::Sender<Result<(), ConnectorError>>,
    },
    RemoveAccount {
        id: String,
        reply: oneshot::Sender<Result<(), ConnectorError>>,
    },
    Accounts {
        reply: oneshot::Sender<Vec<AccountView>>,
    },
    Settle {
        id: String,
        kind: SettlementKind,
        amount: u64,
        note: String,
        reply: oneshot::Sender<Result<SettlementRecord, ConnectorError>>,
    },
    Settlements {
        id: String,
        reply: oneshot::Sender<Result<Vec<SettlementRecord>, ConnectorError>>,
    },
    Attach {
        id: String,
        capacity: usize,
        reply: oneshot::Sender<Result<Endpoint, ConnectorError>>,
    },
    Routes {
        reply: oneshot::Sender<Vec<Route>>,
    },
    AddRoute {
        prefix: String,
        account: String,
        reply: oneshot::Sender<Result<(), ConnectorError>>,
    },
}

/// A handle to the connector. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Connector {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<IlpEvent>,
    credentials: watch::Receiver<Arc<Credentials>>,
    address: watch::Receiver<Address>,
    routing: watch::Receiver<Arc<RoutingInputs>>,
    learned: mpsc::UnboundedSender<Vec<(String, Option<AccountId>)>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connector command")
    }
}

impl Connector {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, ConnectorError> {
        let (reply, rx) = oneshot::channel();
        self.commands.send(make(reply)).await.map_err(|_| ConnectorError::Stopped)?;
        rx.await.map_err(|_| ConnectorError::Stopped)
    }

    /// Sends a Prepare from `account` (an app or in-process sender) and waits for its answer. Always answers: a
    /// stopped connector answers T00.
    pub async fn prepare(&self, account: AccountId, prepare: Prepare) -> Reply {
        match self.ask(|reply| Command::Prepare { account, prepare, reply }).await {
            Ok(r) => r,
            Err(_) => {
                let address = self.address.borrow().clone();
                Reply::Reject(Reject::new(ErrorCode::T00_INTERNAL_ERROR, &address, "the connector is stopping."))
            }
        }
    }

    /// Sends Prepares from `account` without waiting for their answers: each comes back on `answers` with the tag
    /// it was sent with, exactly once (a connector that stops answers what is left T00, without `triggeredBy`).
    /// Answers arrive in batches: those of one connector turn for one channel travel as one message. The batch
    /// carries one copy of `answers` per 1,024 Prepares (not one per Prepare): reuse one channel per sender.
    /// Waits only for room in the connector's queue (a large batch goes over in parts of 1,024); cancelling the
    /// wait answers what was not handed over T00. For in-process senders that keep many payments in flight
    /// (one message per 1,024 Prepares, no task or oneshot per Prepare); [`Connector::prepare`] is the
    /// one-at-a-time form.
    pub async fn send_batch(
        &self,
        account: AccountId,
        prepares: Vec<(u64, Prepare)>,
        answers: &BatchAnswers,
    ) -> Result<(), ConnectorError> {
        // Every Prepare has its answer from here on: whatever is dropped unsent (this future cancelled while it
        // waits for room, a stopped connector) answers T00 as it goes.
        let mut prepares = TaggedBatch::new(answers, prepares);
        // Handed over in commands of at most PREPARES_PER_TURN, so that a huge batch neither holds the connector
        // for a long turn nor gets round the queue's bound.
        while prepares.len() > 0 {
            let chunk = prepares.split_first(PREPARES_PER_TURN);
            if self.commands.send(Command::Batch { account: account.clone(), prepares: chunk }).await.is_err() {
                return Err(ConnectorError::Stopped);
            }
        }
        Ok(())
    }

    /// Adds or replaces an account (validated, stored durably, then live).
    pub async fn add_account(&self, spec: AccountSpec, source: AccountSource) -> Result<(), ConnectorError> {
        self.ask(|reply| Command::AddAccount { spec, source, reply }).await?
    }

    /// Removes an account made through the API (its balance is kept, and restored if it is added again).
    pub async fn remove_account(&self, id: &str) -> Result<(), ConnectorError> {
        self.ask(|reply| Command::RemoveAccount { id: id.to_owned(), reply }).await?
    }

    /// Every account, with balances and counters.
    pub async fn accounts(&self) -> Result<Vec<AccountView>, ConnectorError> {
        self.ask(|reply| Command::Accounts { reply }).await
    }

    /// Records a settlement made outside the network and moves the balance (durably, in one transaction).
    pub async fn record_settlement(
        &self,
        id: &str,
        kind: SettlementKind,
        amount: u64,
        note: String,
    ) -> Result<SettlementRecord, ConnectorError> {
        self.ask(|reply| Command::Settle { id: id.to_owned(), kind, amount, note, reply }).await?
    }

    /// An account's settlement records.
    pub async fn settlements(&self, id: &str) -> Result<Vec<SettlementRecord>, ConnectorError> {
        self.ask(|reply| Command::Settlements { id: id.to_owned(), reply }).await?
    }

    /// Attaches an in-process endpoint to an account without `node_id` or `http`: Prepares routed to it arrive
    /// on the returned [`Endpoint`] in batches (at most `capacity` waiting; beyond, F02 as a failed send), and
    /// its answers go back through it. Dropping the endpoint takes the link down; attaching again replaces it.
    pub async fn attach(&self, id: &str, capacity: usize) -> Result<Endpoint, ConnectorError> {
        self.ask(|reply| Command::Attach { id: id.to_owned(), capacity, reply }).await?
    }

    /// The routing table.
    pub async fn routes(&self) -> Result<Vec<Route>, ConnectorError> {
        self.ask(|reply| Command::Routes { reply }).await
    }

    /// Adds a configured route.
    pub async fn add_route(&self, prefix: &str, account: &str) -> Result<(), ConnectorError> {
        self.ask(|reply| Command::AddRoute { prefix: prefix.to_owned(), account: account.to_owned(), reply }).await?
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<IlpEvent> {
        self.events.subscribe()
    }

    /// Who may send packets over ILP-over-HTTP (kept current as accounts change).
    pub fn credentials(&self) -> watch::Receiver<Arc<Credentials>> {
        self.credentials.clone()
    }

    /// Our ILP address (it changes once, when inherited from a parent).
    pub fn address(&self) -> watch::Receiver<Address> {
        self.address.clone()
    }

    /// What route exchange needs to know (our address, the accounts, configured routes), kept current.
    pub fn routing_inputs(&self) -> watch::Receiver<Arc<RoutingInputs>> {
        self.routing.clone()
    }

    /// Sets the best learned next hop of prefixes (`None` removes the learned route). Never waits: route
    /// exchange must not stall behind Prepares (its own queue; one batch per route-exchange turn).
    pub fn set_learned_routes(&self, changes: Vec<(String, Option<AccountId>)>) {
        let _ = self.learned.send(changes);
    }
}

impl PacketHandler for Connector {
    async fn handle(&self, account: AccountId, prepare: Prepare) -> Reply {
        self.prepare(account, prepare).await
    }
}

/// Registers the connector on the switch. `accounts` and `balances` are what the store holds (the node has
/// already written config accounts to it); `routes` are the configured routes.
pub fn register(
    builder: &mut SwitchBuilder,
    config: ConnectorConfig,
    store: Store,
    accounts: Vec<StoredAccount>,
    balances: Vec<(AccountId, i128)>,
    routes: Vec<(String, AccountId)>,
    logger: impl Into<Option<Logger>>,
) -> Result<Connector, BuildError> {
    let logger = logger.into().unwrap_or_else(|| Logger::root(slog::Discard, slog::o!()));
    let max_in_flight = config.forwarder.max_in_flight_per_account;
    let ctx = builder.add_reactor("ilp", &[descriptor(max_in_flight)], 4096)?;
    let (commands_tx, commands) = mpsc::channel(4096);
    let (events, _) = broadcast::channel(1024);
    let (credentials_tx, credentials) = watch::channel(Arc::new(Credentials::default()));
    let (address_tx, address) = watch::channel(config.forwarder.address.clone());
    let (routing_tx, routing) = watch::channel(Arc::new(RoutingInputs::default()));
    let clock = Clock::new();
    let now = clock.now();
    let mut core = Forwarder::new(config.forwarder);
    core.set_address_pending(config.inherit_address);
    let balances: HashMap<AccountId, i128> = balances.into_iter().collect();
    let mut sources = HashMap::default();
    let mut specs = HashMap::default();
    // Config accounts first: an account made through the API that collides with one of them (same node ID or
    // incoming token) is left out, loudly, rather than taking its traffic.
    let mut accounts = accounts;
    accounts.sort_by_key(|a| a.source != AccountSource::Config);
    let mut nodes_seen = std::collections::HashSet::new();
    let mut tokens_seen = std::collections::HashSet::new();
    for stored in accounts {
        match stored.spec.validate(config.profile, true) {
            Ok(account) => {
                let node_taken = stored.spec.node_id.as_ref().is_some_and(|n| nodes_seen.contains(n));
                let token_taken = stored.spec.http.as_ref().is_some_and(|h| tokens_seen.contains(&h.incoming_token));
                if node_taken || token_taken {
                    error!(logger, "ILP account left out: another account has the same node_id or http.incoming_token";
                        "account" => &stored.spec.id, "source" => ?stored.source);
                    continue;
                }
                nodes_seen.extend(stored.spec.node_id.clone());
                tokens_seen.extend(stored.spec.http.as_ref().map(|h| h.incoming_token.clone()));
                let balance = balances.get(&account.id).copied().unwrap_or(0);
                sources.insert(account.id.clone(), stored.source);
                specs.insert(account.id.clone(), stored.spec.clone());
                core.upsert_account(account, balance, now);
            }
            Err(e) => {
                warn!(logger, "stored ILP account is invalid; skipped"; "account" => &stored.spec.id, "error" => %e)
            }
        }
    }
    for (prefix, account) in routes {
        core.add_route(&prefix, account);
    }
    let (committed_tx, committed) = mpsc::unbounded_channel();
    let (outcomes_tx, outcomes) = mpsc::unbounded_channel();
    let (learned_tx, learned) = mpsc::unbounded_channel();
    let mut actor = Actor {
        core,
        clock,
        profile: config.profile,
        store,
        specs,
        sources,
        peers: HashMap::default(),
        node_accounts: HashMap::default(),
        in_process: HashMap::default(),
        answers: AnswerChannels::default(),
        turn_commits: Vec::new(),
        undelivered: HashMap::default(),
        committed_tx,
        outcomes_tx,
        http: HttpClient::default(),
        events: events.clone(),
        credentials: credentials_tx,
        routing: routing_tx,
        address: address_tx,
        address_pending: config.inherit_address,
        address_retry: None,
        latency: config.latency.clone(),
        turn_now: None,
        logger,
        rejects_logged: LogLimit::new(5, Duration::from_secs(1)),
        settlements_logged: LogLimit::new(5, Duration::from_secs(1)),
    };
    actor.refresh_indexes();
    tokio::spawn(actor.run(ctx, commands, committed, outcomes, learned));
    Ok(Connector { commands: commands_tx, events, credentials, address, routing, learned: learned_tx })
}

/// Wall-clock time as ILP timestamps, following tokio's clock (so paused-time tests see expiries move).
#[derive(Debug, Clone, Copy)]
struct Clock(WallClock);

impl Clock {
    fn new() -> Clock {
        Clock(WallClock::new())
    }

    fn at(&self, instant: Instant) -> Timestamp {
        Timestamp::from_unix_ms(self.0.unix_ms_at(instant))
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_unix_ms(self.0.unix_ms())
    }

    fn instant(&self, t: Timestamp) -> Instant {
        self.0.instant_at(t.unix_ms())
    }
}

/// Where the answer to an inbound Prepare goes (the core holds it while the Prepare is open).
#[derive(Debug)]
enum Responder {
    /// Room for the answer on the peer's connection (it names the peer, should the answer wait for a reconnection).
    Peer {
        request_id: u64,
        reservation: Reservation,
        expires_at: Timestamp,
        since: Instant,
    },
    Local(oneshot::Sender<Reply>, Instant),
    Tagged(AnswerSlot, Instant),
}

struct Actor {
    /// Holds, with each Prepare it is answering, where its answer goes.
    core: Forwarder<Responder>,
    clock: Clock,
    profile: WireProfile,
    store: Store,
    specs: HashMap<AccountId, AccountSpec>,
    sources: HashMap<AccountId, AccountSource>,
    peers: HashMap<NodeId, PeerHandle>,
    node_accounts: HashMap<NodeId, AccountId>,
    in_process: HashMap<AccountId, EndpointQueue>,
    /// Batch senders' answer channels, with the answers gathered during a turn (sent at its end).
    answers: AnswerChannels,
    /// Balance changes of this turn, sent to the store in one message at its end.
    turn_commits: Vec<BalanceCommit>,
    undelivered: HashMap<NodeId, Vec<(bytes::Bytes, Timestamp)>>,
    committed_tx: mpsc::UnboundedSender<Vec<Committed>>,
    outcomes_tx: mpsc::UnboundedSender<Vec<Outcome>>,
    http: HttpClient,
    events: broadcast::Sender<IlpEvent>,
    credentials: watch::Sender<Arc<Credentials>>,
    routing: watch::Sender<Arc<RoutingInputs>>,
    address: watch::Sender<Address>,
    /// Waiting for a parent to tell us our address.
    address_pending: bool,
    /// When to ask again.
    address_retry: Option<Instant>,
    latency: Option<Histogram>,
    /// The time of this turn, read once for all the Prepares it takes in.
    turn_now: Option<(Instant, Timestamp)>,
    logger: Logger,
    // Lines peers and apps can cause at will: a few per second, with a count of those left out.
    rejects_logged: LogLimit,
    settlements_logged: LogLimit,
}

impl Drop for Actor {
    fn drop(&mut self) {
        // Every Prepare the core still holds: an answer it had ready goes out (to a peer, a oneshot or a batch
        // sender); batch senders are owed exactly one answer per Prepare, even from a connector that stops mid-turn
        // (or unwinds), so their open ones are answered T00; then everything gathered goes out.
        for (responder, ready) in self.core.abandon() {
            match (responder, ready) {
                (Responder::Tagged(slot, _), reply) => {
                    self.answers.answer(slot, reply.unwrap_or_else(|| Reply::Reject(batch::stopped())));
                }
                // An answer the core had ready still goes out; an open Prepare's route is dropped (a peer's reservation
                // is given back and the peer's own expiry answers it; a oneshot's caller sees the connector stop).
                (Responder::Peer { request_id, reservation, .. }, Some(reply)) => {
                    let _ = reservation.send(wire::frame(request_id, &reply));
                }
                (Responder::Local(tx, _), Some(reply)) => {
                    let _ = tx.send(reply);
                }
                (Responder::Peer { .. } | Responder::Local(..), None) => {}
            }
        }
        self.answers.flush();
    }
}

impl Actor {
    async fn run(
        mut self,
        mut ctx: ReactorContext,
        mut commands: mpsc::Receiver<Command>,
        mut committed: mpsc::UnboundedReceiver<Vec<Committed>>,
        mut outcomes: mpsc::UnboundedReceiver<Vec<Outcome>>,
        mut learned: mpsc::UnboundedReceiver<Vec<(String, Option<AccountId>)>>,
    ) {
        let mut timer = Timer::new();
        // The deadline the timer is set to. It is moved only when the next expiry comes sooner (or the timer has
        // fired): a later one just costs a turn that expires nothing, cheaper than resetting the timer for
        // every packet.
        let mut armed: Option<Instant> = None;
        let mut events_open = true;
        let mut events = Vec::with_capacity(BATCH + 1);
        let mut commands_open = true;
        while events_open || commands_open {
            let next = self.core.next_timeout().map(|t| self.clock.instant(t));
            if next.is_some() && (armed.is_none() || next < armed) {
                timer.set(next);
                armed = next;
            }
            tokio::select! {
                // Whatever is already waiting is taken in the same turn (bounded), so a busy link costs one wake-up
                // (and one release of the inbox's room) per batch, not per packet.
                n = ctx.events.recv_many(&mut events, BATCH + 1), if events_open => {
                    if n == 0 {
                        events_open = false;
                    }
                    for ev in events.drain(..) {
                        self.on_reactor_event(ev);
                        self.drain_actions();
                    }
                },
                cmd = commands.recv(), if commands_open => match cmd {
                    Some(cmd) => {
                        let mut next = Some(cmd);
                        // Prepares waiting behind it are taken in the same turn, up to PREPARES_PER_TURN (a batch
                        // command counts its Prepares); a command that waits for the store (account or settlement
                        // changes) ends the turn, after what is due has gone out.
                        let mut budget = PREPARES_PER_TURN;
                        while budget > 0 {
                            let Some(cmd) = next.take() else { break };
                            let prepares = match &cmd {
                                Command::Prepare { .. } => 1,
                                Command::Batch { prepares, .. } => prepares.len(),
                                _ => {
                                    self.carry_out();
                                    self.on_command(cmd).await;
                                    break;
                                }
                            };
                            budget = budget.saturating_sub(prepares.max(1));
                            self.on_command(cmd).await;
                            next = commands.try_recv().ok();
                        }
                        if let Some(cmd) = next {
                            self.carry_out();
                            self.on_command(cmd).await;
                        }
                    }
                    None => commands_open = false,
                },
                Some(c) = committed.recv() => {
                    self.on_committed(c);
                    for _ in 0..BATCH {
                        let Ok(c) = committed.try_recv() else { break };
                        self.on_committed(c);
                    }
                }
                Some(o) = outcomes.recv() => {
                    self.on_outcome(o);
                    for _ in 0..BATCH {
                        let Ok(o) = outcomes.try_recv() else { break };
                        self.on_outcome(o);
                    }
                }
                Some(changes) = learned.recv() => {
                    for (prefix, next_hop) in changes {
                        match next_hop {
                            Some(account) => self.core.routes_mut().insert(routing::RouteSource::Learned, &prefix, account),
                            None => self.core.routes_mut().remove(routing::RouteSource::Learned, &prefix),
                        }
                    }
                }
                () = ledgerwire_types::deadline::sleep_until(self.address_retry), if self.address_retry.is_some() => {
                    self.ask_for_address();
                }
                () = timer.wait() => {
                    armed = None;
                    timer.set(None);
                    self.core.expire(self.clock.now());
                }
            }
            self.carry_out();
            self.drop_closed_endpoints();
            self.turn_now = None;
        }
        // Balance changes already sent to the store may still become durable: their Fulfills wait for that (a
        // while, not forever) rather than being answered T00 for a payment that went through.
        let drain = tokio::time::sleep(STOP_DRAIN);
        tokio::pin!(drain);
        while self.core.in_flight().2 > 0 {
            tokio::select! {
                Some(c) = committed.recv() => self.on_committed(c),
                () = &mut drain => break,
            }
            self.carry_out();
        }
        debug!(self.logger, "connector stopped");
    }

    /// The time of this turn (read once per turn: many Prepares arrive together).
    fn turn_now(&mut self) -> (Instant, Timestamp) {
        let clock = self.clock;
        *self.turn_now.get_or_insert_with(|| {
            let now = Instant::now();
            (now, clock.at(now))
        })
    }

    fn on_committed(&mut self, answers: Vec<Committed>) {
        for c in answers {
            if let Err(e) = &c.result {
                error!(self.logger, "cannot make a balance change durable; the Fulfill becomes T00"; "error" => %e);
            }
            self.core.committed(c.id, c.result.is_ok());
            self.drain_actions();
        }
    }

    fn on_outcome(&mut self, outcomes: Vec<Outcome>) {
        for o in outcomes {
            match o.result {
                Ok(reply) => {
                    self.core.reply(&o.account, o.id, reply);
                }
                Err(reason) => self.core.send_failed(o.id, &reason),
            }
            self.drain_actions();
        }
    }

    /// Carries out what the core asked for. The balance changes of one turn go to the store as one message (and
    /// come back as one): the store writes them in one transaction anyway.
    fn carry_out(&mut self) {
        loop {
            self.drain_actions();
            // The turn's Prepares for in-process endpoints go over together; those an endpoint can no longer
            // take are rejected, which may be more to carry out.
            if !self.flush_endpoints() {
                break;
            }
        }
        self.answers.flush();
        self.store.commit(std::mem::take(&mut self.turn_commits), &self.committed_tx);
    }

    /// Does what the core has asked for so far, keeping what goes out once per turn (balance changes, Prepares for
    /// endpoints, batch answers) for [`Actor::carry_out`]. Called after each packet, so the core's queue of actions
    /// stays a few entries long (hot in the cache) however many packets a turn takes in.
    fn drain_actions(&mut self) {
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::Forward { to, id } => self.forward(to, id),
                Action::Respond { id, reply } => self.respond(id, reply),
                Action::Commit { id, deltas } => self.turn_commits.push(BalanceCommit { id, deltas }),
                Action::Event(e) => self.on_forwarding_event(e),
            }
        }
    }

    /// Hands each in-process endpoint the Prepares of this turn. True if some could not be delivered (their
    /// rejections are now actions).
    fn flush_endpoints(&mut self) -> bool {
        let mut failed = Vec::new();
        for queue in self.in_process.values_mut().filter(|q| q.has_pending()) {
            failed.extend(queue.flush());
        }
        for id in &failed {
            self.core.send_failed(*id, "the endpoint was dropped");
        }
        !failed.is_empty()
    }

    fn on_forwarding_event(&mut self, e: ForwardingEvent) {
        if let ForwardingEvent::SettlementNeeded { account, balance, amount } = &e {
            if let Some(skipped) = self.settlements_logged.allow(Instant::now()) {
                info!(self.logger, "settlement needed";
                    "account" => %account, "balance" => %balance, "amount" => amount, "similar_lines_skipped" => skipped);
            }
            let record = SettlementRecord {
                seq: 0,
                account: account.clone(),
                kind: SettlementKind::Needed,
                amount: *amount,
                balance: *balance,
                at_unix_ms: self.clock.now().unix_ms(),
                note: String::new(),
            };
            let store = self.store.clone();
            let logger = self.logger.clone();
            tokio::spawn(async move {
                if let Err(e) = store.settle(record, 0).await {
                    warn!(logger, "cannot record a needed settlement"; "error" => %e);
                }
            });
        }
        let _ = self.events.send(IlpEvent::Forwarding(e));
    }

    fn forward(&mut self, to: AccountId, id: OutboundId) {
        // Already settled (an earlier action of this turn failed it): nothing to send.
        let Some(prepare) = self.core.forwarded(id) else { return };
        let Some(account) = self.core.account(&to) else {
            return self.core.send_failed(id, "the account was removed");
        };
        match &account.link {
            Link::Peer(node) => {
                // Encoded from the core's copy: a peer link needs bytes, not a Prepare of its own.
                let failed = match self.peers.get(node).map(|h| h.try_send(ILP_CHANNEL, wire::frame(id, prepare))) {
                    Some(Ok(())) => return,
                    Some(Err(e)) => e.to_string(),
                    None => "the peer is not connected".to_owned(),
                };
                self.core.send_failed(id, &failed);
            }
            Link::Http(link) => {
                let prepare = prepare.clone();
                // The app has until the Prepare expires to answer.
                let left = prepare.expires_at.unix_ms() - self.clock.now().unix_ms();
                let timeout = Duration::from_millis(left.max(0).unsigned_abs());
                let (client, link, outcomes) = (self.http.clone(), link.clone(), self.outcomes_tx.clone());
                tokio::spawn(async move {
                    let result = client
                        .send(&link.url, &link.outgoing_token, &prepare, timeout)
                        .await
                        .map_err(|e| e.to_string());
                    let _ = outcomes.send(vec![Outcome { account: to, id, result }]);
                });
            }
            Link::InProcess => {
                let prepare = prepare.clone();
                let Some(endpoint) = self.in_process.get_mut(&to) else {
                    return self.core.send_failed(id, "no endpoint attached");
                };
                if let Err(e) = endpoint.push(prepare, id, to) {
                    self.core.send_failed(id, e);
                }
            }
        }
    }

    fn respond(&mut self, responder: Responder, reply: Reply) {
        if let Reply::Reject(r) = &reply
            && r.triggered_by.as_ref() == Some(self.core.address())
            && let Some(skipped) = self.rejects_logged.allow(Instant::now())
        {
            info!(self.logger, "packet rejected"; "code" => %r.code, "message" => &r.message, "similar_lines_skipped" => skipped);
        }
        if let Some(latency) = &self.latency {
            let (Responder::Local(_, since) | Responder::Tagged(_, since) | Responder::Peer { since, .. }) = &responder;
            latency.observe(since.elapsed().as_secs_f64());
        }
        match responder {
            Responder::Local(tx, _) => {
                let _ = tx.send(reply);
            }
            Responder::Tagged(slot, _) => {
                // Its channel stays in the table until this answer is flushed (open counts), so this cannot fail.
                let answered = self.answers.answer(slot, reply);
                debug_assert!(answered, "a batch answer's channel is gone");
            }
            Responder::Peer { request_id, reservation, expires_at, .. } => {
                let frame = wire::frame(request_id, &reply);
                let node = reservation.peer();
                if let Err(frame) = reservation.send_or_return(frame) {
                    // The connection closed while the packet was in flight: the answer waits for the peer's
                    // next connection until the Prepare expires, so the peer still gets exactly one.
                    self.send_to_peer_later(node, frame, expires_at);
                }
            }
        }
    }

    fn send_to_peer_later(&mut self, node: NodeId, frame: bytes::Bytes, expires_at: Timestamp) {
        if let Some(handle) = self.peers.get(&node)
            && handle.try_send(ILP_CHANNEL, frame.clone()).is_ok()
        {
            return;
        }
        let now = self.clock.now();
        let queue = self.undelivered.entry(node).or_default();
        queue.retain(|(_, expiry)| *expiry >= now);
        // Bounded: at most the Prepares the peer may have had in flight with us, plus the same again.
        if queue.len() < 2 * self.core.max_in_flight_per_account() {
            queue.push((frame, expires_at));
        }
    }

    /// Answers kept for a peer that reconnected: sent while unexpired and while its send queue has room; the rest
    /// wait for the next connection (or expire).
    fn flush_undelivered(&mut self, node: NodeId, handle: &PeerHandle) {
        let Some(queue) = self.undelivered.remove(&node) else { return };
        let now = self.clock.now();
        let left: Vec<_> = queue
            .into_iter()
            .filter(|(frame, expiry)| *expiry >= now && handle.try_send(ILP_CHANNEL, frame.clone()).is_err())
            .collect();
        if !left.is_empty() {
            self.undelivered.insert(node, left);
        }
    }

    fn on_reactor_event(&mut self, ev: ReactorEvent) {
        match ev {
            ReactorEvent::PeerUp(handle) => {
                let node = handle.id();
                self.flush_undelivered(node, &handle);
                self.peers.insert(node, handle);
                if let Some(account) = self.node_accounts.get(&node).cloned() {
                    self.core.set_link(&account, true);
                    info!(self.logger, "ILP link up"; "account" => %account, "peer" => %node);
                    self.ask_for_address();
                    let _ = self.events.send(IlpEvent::LinkUp { account });
                }
            }
            ReactorEvent::PeerDown { peer, .. } => {
                self.peers.remove(&peer);
                if let Some(account) = self.node_accounts.get(&peer).cloned() {
                    self.core.set_link(&account, false);
                    info!(self.logger, "ILP link down"; "account" => %account, "peer" => %peer);
                    let _ = self.events.send(IlpEvent::LinkDown { account });
                }
            }
            ReactorEvent::Message { peer, msg, received_at, .. } => self.on_frame(peer, msg, received_at),
        }
    }

    fn on_frame(&mut self, peer: NodeId, msg: bytes::Bytes, received_at: Instant) {
        let Some(handle) = self.peers.get(&peer) else { return };
        // Read in place (the usual layout), else decoded (its packet is then a slice of the message): either way the
        // packet is `msg[range]`, nothing copied.
        let (request_id, msg, range) = match wire::view(&msg) {
            Some((request_id, range)) => (request_id, msg, range),
            None => match IlpFrame::decode(msg) {
                Ok(f) => (f.request_id, f.packet.clone(), 0..f.packet.len()),
                Err(e) => {
                    warn!(self.logger, "malformed ILP frame; disconnecting the peer"; "peer" => %peer, "error" => %e);
                    handle.stop_for_error(format!("malformed ILP frame: {e}"));
                    return;
                }
            },
        };
        let packet = &msg[range];
        // Borrowed, not cloned: per packet, reference counts are atomic operations on lines other threads touch.
        let account = self.node_accounts.get(&peer);
        let answer = |reservation: Reservation, reject: Reject| {
            let _ = reservation.send(wire::frame(request_id, &reject));
        };
        // Type 12 is a request: whatever follows, it is answered, through room reserved now.
        if packet.first() == Some(&12) {
            let reservation = match handle.reserve(ILP_CHANNEL) {
                Ok(r) => r,
                Err(e) => {
                    // No room left for the answer: the peer exceeds any in-flight limit it could agree to.
                    warn!(self.logger, "peer exceeds the ILP in-flight limit; disconnecting"; "peer" => %peer, "error" => %e);
                    handle.stop_for_error("too many ILP packets in flight");
                    return;
                }
            };
            let Some(account) = account else {
                let us = self.core.address();
                return answer(
                    reservation,
                    Reject::new(ErrorCode::F02_UNREACHABLE, us, "no ILP account for this peer."),
                );
            };
            // A Prepare is held until it is answered: its data is copied out of the connection's read buffer (a
            // shared slice would keep the whole buffer alive that long). Answers are passed on at once: shared.
            let prepare = match Packet::decode(packet) {
                Ok(Packet::Prepare(p)) => Ok(p),
                Ok(_) => Err(crate::ilp::PacketError::NotAPrepare(packet[0])),
                Err(e) => Err(e),
            };
            match prepare {
                Ok(prepare) => {
                    let expires_at = prepare.expires_at;
                    let responder = Responder::Peer { request_id, reservation, expires_at, since: received_at };
                    self.core.prepare(self.clock.at(received_at), account, responder, prepare);
                }
                Err(e) => answer(reservation, self::rules::bad_prepare(&e, self.core.address())),
            }
            return;
        }
        // Anything else answers one of our Prepares to this peer's account; unknown IDs are ignored by the core.
        let Some(account) = account else { return };
        if request_id == ILDCP_REQUEST_ID {
            let account = account.clone();
            return self.on_address_answer(&account, packet);
        }
        let reply = match Packet::decode_shared_within(packet, &msg) {
            Ok(Packet::Fulfill(f)) => Reply::Fulfill(f),
            Ok(Packet::Reject(r)) => Reply::Reject(r),
            Ok(Packet::Prepare(_)) => return,
            Err(e) => Reply::Reject(Reject::new(
                ErrorCode::F02_UNREACHABLE,
                self.core.address(),
                format!("failed to send packet: invalid reply: {e}"),
            )),
        };
        self.core.reply(account, request_id, reply);
    }

    async fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Prepare { account, prepare, reply } => {
                let (since, now) = self.turn_now();
                self.core.prepare(now, &account, Responder::Local(reply, since), prepare);
                self.drain_actions();
            }
            Command::Batch { account, mut prepares } => {
                let to = prepares.to().clone();
                let (since, now) = self.turn_now();
                let channel = self.answers.open(to, prepares.len());
                // One at a time out of the batch: should the connector panic meanwhile, the batch still answers
                // what it holds (T00), and what the core holds is answered as the actor drops.
                while let Some((tag, prepare)) = prepares.pop() {
                    let slot = AnswerChannels::slot(channel, tag);
                    self.core.prepare(now, &account, Responder::Tagged(slot, since), prepare);
                    self.drain_actions();
                }
            }
            Command::AddAccount { spec, source, reply } => {
                let _ = reply.send(self.add_account(spec, source).await);
            }
            Command::RemoveAccount { id, reply } => {
                let _ = reply.send(self.remove_account(&id).await);
            }
            Command::Accounts { reply } => {
                let views = self
                    .core
                    .accounts()
                    .into_iter()
                    .map(|a| AccountView {
                        id: a.id.clone(),
                        relation: a.relation,
                        asset_code: a.asset_code.clone(),
                        asset_scale: a.asset_scale,
                        node_id: a.node_id().map(|n| n.to_string()),
                        http_url: match &a.link {
                            Link::Http(h) => Some(h.url.clone()),
                            _ => None,
                        },
                        source: self.sources.get(&a.id).copied().unwrap_or(AccountSource::Api),
                        link_up: self.core.link_up(&a.id),
                        balance: self.core.balance(&a.id).unwrap_or(BalanceView {
                            balance: 0,
                            reserved_in: 0,
                            reserved_out: 0,
                        }),
                        stats: self.core.stats(&a.id).cloned().unwrap_or_default(),
                    })
                    .collect();
                let _ = reply.send(views);
            }
            Command::Settle { id, kind, amount, note, reply } => {
                let _ = reply.send(self.settle(&id, kind, amount, note).await);
            }
            Command::Settlements { id, reply } => {
                let result = match self.known(&id) {
                    Ok(account) => self.store.settlements(Some(account)).await.map_err(ConnectorError::from),
                    Err(e) => Err(e),
                };
                let _ = reply.send(result);
            }
            Command::Attach { id, capacity, reply } => {
                let result =
                    self.known(&id).and_then(|account| match self.core.account(&account).map(|a| a.link.clone()) {
                        Some(Link::InProcess) => {
                            let (queue, endpoint) = EndpointQueue::open(capacity, self.outcomes_tx.clone());
                            self.in_process.insert(account.clone(), queue);
                            self.core.set_link(&account, true);
                            let _ = self.events.send(IlpEvent::LinkUp { account });
                            Ok(endpoint)
                        }
                        _ => Err(ConnectorError::NotInProcess(account)),
                    });
                let _ = reply.send(result);
            }
            Command::Routes { reply } => {
                let _ = reply.send(self.core.routes().routes());
            }
            Command::AddRoute { prefix, account, reply } => {
                let result = self.known(&account).and_then(|account| {
                    crate::ilp::address::validate_prefix(&prefix).map_err(|e| {
                        ConnectorError::Account(AccountError { field: "prefix", reason: e.to_string() })
                    })?;
                    self.core.add_route(&prefix, account);
                    Ok(())
                });
                self.publish_routing_inputs();
                let _ = reply.send(result);
            }
        }
    }

    /// Attached endpoints that went away take their links down.
    fn drop_closed_endpoints(&mut self) {
        if self.in_process.values().all(|q| !q.is_closed()) {
            return;
        }
        let gone: Vec<AccountId> =
            self.in_process.iter().filter(|(_, q)| q.is_closed()).map(|(a, _)| a.clone()).collect();
        for account in gone {
            self.in_process.remove(&account);
            self.core.set_link(&account, false);
            let _ = self.events.send(IlpEvent::LinkDown { account });
        }
    }

    fn known(&self, id: &str) -> Result<AccountId, ConnectorError> {
        AccountId::new(id)
            .ok()
            .filter(|a| self.core.account(a).is_some())
            .ok_or_else(|| ConnectorError::NoAccount(id.chars().take(64).collect()))
    }

    async fn add_account(&mut self, spec: AccountSpec, source: AccountSource) -> Result<(), ConnectorError> {
        let account: Account = spec.validate(self.profile, true)?;
        for (other, other_spec) in &self.specs {
            if *other == account.id {
                continue;
            }
            if let (Some(a), Some(b)) = (&spec.http, &other_spec.http)
                && a.incoming_token == b.incoming_token
            {
                return Err(ConnectorError::Duplicate { field: "http.incoming_token", other: other.clone() });
            }
            if spec.node_id.is_some() && spec.node_id == other_spec.node_id {
                return Err(ConnectorError::Duplicate { field: "node_id", other: other.clone() });
            }
        }
        // A removed account with Prepares still open keeps its peer until they finish.
        if let Some(node) = account.node_id()
            && let Some(old) =
                self.core.retiring().into_iter().find(|a| a.node_id() == Some(node) && a.id != account.id)
        {
            return Err(ConnectorError::Duplicate { field: "node_id", other: old.id.clone() });
        }
        if source == AccountSource::Api && self.sources.get(&account.id) == Some(&AccountSource::Config) {
            return Err(ConnectorError::FromConfig(account.id));
        }
        self.store.put_account(StoredAccount { spec: spec.clone(), source }).await?;
        let balance = self
            .store
            .snapshot()
            .await?
            .balances
            .into_iter()
            .find(|(a, _)| *a == account.id)
            .map(|(_, b)| b)
            .unwrap_or(0);
        let id = account.id.clone();
        self.core.upsert_account(account, balance, self.clock.now());
        self.specs.insert(id.clone(), spec);
        self.sources.insert(id.clone(), source);
        self.refresh_indexes();
        if let Some(node) = self.core.account(&id).and_then(|a| a.node_id().cloned())
            && self.peers.contains_key(&node)
        {
            self.core.set_link(&id, true);
            self.ask_for_address();
        }
        info!(self.logger, "ILP account added"; "account" => %id);
        let _ = self.events.send(IlpEvent::AccountAdded { account: id });
        Ok(())
    }

    async fn remove_account(&mut self, id: &str) -> Result<(), ConnectorError> {
        let account = self.known(id)?;
        if self.sources.get(&account) == Some(&AccountSource::Config) {
            return Err(ConnectorError::FromConfig(account));
        }
        self.store.delete_account(account.clone()).await?;
        self.core.remove_account(&account);
        self.specs.remove(&account);
        self.sources.remove(&account);
        self.in_process.remove(&account);
        self.refresh_indexes();
        info!(self.logger, "ILP account removed"; "account" => %account);
        let _ = self.events.send(IlpEvent::AccountRemoved { account });
        Ok(())
    }

    async fn settle(
        &mut self,
        id: &str,
        kind: SettlementKind,
        amount: u64,
        note: String,
    ) -> Result<SettlementRecord, ConnectorError> {
        let account = self.known(id)?;
        if amount == 0 {
            return Err(ConnectorError::ZeroAmount);
        }
        let delta = match kind {
            SettlementKind::Outgoing => i128::from(amount),
            SettlementKind::Incoming => -i128::from(amount),
            SettlementKind::Needed => 0,
        };
        let record = SettlementRecord {
            seq: 0,
            account: account.clone(),
            kind,
            amount,
            balance: 0,
            at_unix_ms: self.clock.now().unix_ms(),
            note,
        };
        let record = self.store.settle(record, delta).await?;
        self.core.settled(&account, delta);
        info!(self.logger, "settlement recorded"; "account" => %account, "amount" => amount, "balance" => %record.balance);
        let _ = self.events.send(IlpEvent::SettlementRecorded { record: record.clone() });
        Ok(record)
    }

    fn refresh_indexes(&mut self) {
        self.node_accounts.clear();
        // Removed accounts with Prepares still in flight keep their peer, so the answers still find them.
        for account in self.core.retiring() {
            if let Link::Peer(node) = &account.link {
                self.node_accounts.insert(*node, account.id.clone());
            }
        }
        let mut tokens = Vec::new();
        for account in self.core.accounts() {
            match &account.link {
                Link::Peer(node) => {
                    self.node_accounts.insert(*node, account.id.clone());
                }
                Link::Http(h) => tokens.push((account.id.clone(), h.incoming_token.clone())),
                Link::InProcess => {}
            }
        }
        let credentials = Credentials::new(tokens.iter().map(|(a, t)| (a.clone(), t.as_str())));
        let _ = self.credentials.send(Arc::new(credentials));
        self.publish_routing_inputs();
    }

    /// The parent our address comes from: the first `parent` account with a p2p peer (the default route's).
    fn designated_parent(&self) -> Option<(AccountId, NodeId)> {
        let mut parents: Vec<(AccountId, NodeId)> = self
            .core
            .accounts()
            .iter()
            .filter(|a| a.relation == Relation::Parent)
            .filter_map(|a| a.node_id().map(|n| (a.id.clone(), *n)))
            .collect();
        parents.sort();
        parents.into_iter().next()
    }

    /// While our address is pending, asks the designated parent for it (ILDCP) if its link is up; asked again
    /// every few seconds until it answers.
    fn ask_for_address(&mut self) {
        if !self.address_pending {
            return;
        }
        self.address_retry = Some(Instant::now() + ADDRESS_RETRY);
        let Some((account, node)) = self.designated_parent() else { return };
        let Some(handle) = self.peers.get(&node) else { return };
        let request = crate::ildcp::request(self.clock.now().plus_ms(30_000));
        if handle.try_send(ILP_CHANNEL, wire::frame(ILDCP_REQUEST_ID, &request)).is_ok() {
            info!(self.logger, "asking the parent for our ILP address (ILDCP)"; "account" => %account);
        } else {
            warn!(self.logger, "cannot ask the parent for our ILP address now; trying again shortly"; "account" => %account);
        }
    }

    fn on_address_answer(&mut self, account: &AccountId, packet: &[u8]) {
        if !self.address_pending || self.designated_parent().is_none_or(|(p, _)| &p != account) {
            return;
        }
        let answer = match Packet::decode(packet) {
            Ok(Packet::Fulfill(f)) => crate::ildcp::IldcpResponse::from_fulfill(&f).map_err(|e| e.to_string()),
            Ok(Packet::Reject(r)) => Err(format!("rejected: {} {}", r.code, r.message)),
            Ok(Packet::Prepare(_)) => Err("a Prepare instead of an answer".into()),
            Err(e) => Err(e.to_string()),
        };
        match answer {
            Ok(response) => {
                info!(self.logger, "ILP address inherited from the parent";
                    "address" => %response.client_address, "parent" => %account, "asset" => &response.asset_code);
                self.address_pending = false;
                self.address_retry = None;
                self.core.set_address(response.client_address.clone());
                let _ = self.address.send(response.client_address);
                self.publish_routing_inputs();
            }
            Err(e) => warn!(self.logger, "the parent did not give us an ILP address; set [ilp] address";
                "parent" => %account, "error" => e),
        }
    }

    fn publish_routing_inputs(&mut self) {
        let accounts = self
            .core
            .accounts()
            .iter()
            .map(|a| RoutingAccount {
                id: a.id.clone(),
                relation: a.relation,
                node: a.node_id().copied(),
                send_routes: a.send_routes,
                receive_routes: a.receive_routes,
                allowed_prefixes: a.allowed_prefixes.clone(),
            })
            .collect();
        let configured = self
            .core
            .routes()
            .routes()
            .into_iter()
            .filter(|r| r.source == routing::RouteSource::Configured)
            .map(|r| (r.prefix, r.account))
            .collect();
        let address = (!self.address_pending).then(|| self.core.address().clone());
        let inputs = RoutingInputs { address, accounts, configured };
        self.routing.send_if_modified(|old| {
            let changed = **old != inputs;
            if changed {
                *old = Arc::new(inputs);
            }
            changed
        });
    }
}
