//! Peer discovery: find the network from a few known addresses, remember it across restarts, and never be turned
//! against our peers.
//!
//! - **Wire**: TM2's discovery messages on channel 0x50 (tm2 profile) or CometBFT's PEX on channel 0x00 (cometbft), so
//!   real peers of either network can ask us for addresses and answer us ([`wire`]).
//! - **Asking**: every `interval` we ask one random connected peer for addresses; outbound peers are asked when they
//!   connect if the book is short, and seeds always. Only responses to our own requests are accepted, at most 250
//!   addresses each; addresses are IP literals and are never resolved.
//! - **Answering**: at most 30 addresses, shuffled: peers we are connected to, at an address we know they listen
//!   on, and addresses we reached in the last 24 hours (from the book, so a seed still has answers after its
//!   visitors leave). Never private peers, never the requester, never invalid addresses. In the tm2 profile an empty
//!   answer is not sent (TM2 rejects empty lists).
//! - **What peers say about themselves** ([`verify`]): an advertised address on the host the connection came from
//!   is taken (an unspecified IP such as `0.0.0.0` means that host, with the advertised port); one on another host
//!   is stored and shared only once a probe has shown the peer's key answers there, a few probes per interval.
//! - **Abuse** ([`guard`]): requests faster than one per 2 s are dropped; unsolicited responses and malformed
//!   messages are strikes; only sustained abuse (30 strikes in 10 minutes) earns a temporary ban, enforced by the
//!   switch.
//! - **Dialing** stays with the switch: discovery queues candidates there. The switch ignores them for persistent
//!   peers, which its own redial logic owns.
//! - **Outbound target**: while we have fewer outbound peers than `max_outbound`, the book supplies candidates
//!   (proven first, with per-address backoff). Only when it cannot are the configured seeds dialed, and a seed is
//!   disconnected once it has answered, unless it is also persistent.
//! - **Seed mode**: crawl the book (dial, ask, disconnect after the answer) and answer every inbound request once,
//!   then disconnect the requester.
//! - **Address book** ([`book`]): read once the switch has started (a start that fails touches nothing), with
//!   the configured entries brought in line with the configuration; persisted to `book_file` (atomically) every
//!   interval when changed, and on stop.

pub mod book;
pub mod guard;
pub mod verify;
pub mod wire;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use ledgerwire_p2p::{
    BuildError, ChannelDescriptor, Direction, EventItem, EventStream, PeerHandle, PeerSendError, ReactorContext,
    ReactorEvent, SendError, SwitchBuilder, SwitchEvent,
};
use ledgerwire_types::wall_clock::WallClock;
use ledgerwire_types::{HostAddress, NetAddress, NodeId, WireProfile, random};
use slog::{Logger, debug, info, warn};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use book::{AddressBook, Entry, Source};
use guard::{Guard, GuardConfig, Verdict};
use verify::{Advertised, Offered, Verifier, VerifyConfig};
use wire::Message;

/// TM2's discovery channel.
pub const TM2_CHANNEL: u8 = 0x50;
/// CometBFT's PEX channel.
pub const COMETBFT_CHANNEL: u8 = 0x00;

/// The discovery channel of `profile`.
pub fn channel(profile: WireProfile) -> u8 {
    match profile {
        WireProfile::Tm2 => TM2_CHANNEL,
        WireProfile::CometBft => COMETBFT_CHANNEL,
    }
}

/// The channel descriptor: priority 1, short queues, messages up to 64,000 bytes (CometBFT's bound; 250 addresses).
pub fn descriptor(profile: WireProfile) -> ChannelDescriptor {
    ChannelDescriptor::new(channel(profile), 1).with_send_queue_capacity(20).with_recv_message_capacity(64_000)
}

/// Discovery settings.
#[derive(Clone, Debug)]
pub struct DiscoveryConfig {
    /// Wire profile.
    pub profile: WireProfile,
    /// How often to ask a peer for addresses and top up outbound peers. Default 30 s.
    pub interval: Duration,
    /// Outbound peers to aim for (the switch's `max_outbound`).
    pub max_outbound: usize,
    /// Seed nodes: dialed when the book cannot supply enough peers.
    pub seeds: Vec<HostAddress>,
    /// Crawl and answer-then-disconnect.
    pub seed_mode: bool,
    /// Peers never shared (and never stored).
    pub private: HashSet<NodeId>,
    /// Persistent peers (the switch dials them; discovery leaves them alone).
    pub persistent: HashSet<NodeId>,
    /// Persistent peers' configured addresses, stored in the book as `config` (IP literals only).
    pub persistent_addresses: Vec<HostAddress>,
    /// Where the book is kept; `None` keeps it in memory only.
    pub book_file: Option<PathBuf>,
    /// Most entries in the book. Default 1000.
    pub book_capacity: usize,
    /// Most addresses in one answer. Default 30.
    pub max_shared: usize,
    /// Abuse thresholds.
    pub guard: GuardConfig,
    /// Probes of addresses peers report about themselves.
    pub verify: VerifyConfig,
}

impl DiscoveryConfig {
    /// Defaults for `profile`.
    pub fn new(profile: WireProfile, max_outbound: usize) -> Self {
        DiscoveryConfig {
            profile,
            interval: Duration::from_secs(30),
            max_outbound,
            seeds: Vec::new(),
            seed_mode: false,
            private: HashSet::new(),
            persistent: HashSet::new(),
            persistent_addresses: Vec::new(),
            book_file: None,
            book_capacity: 1000,
            max_shared: 30,
            guard: GuardConfig::default(),
            verify: VerifyConfig::default(),
        }
    }
}

/// Something discovery did, for operators and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscoveryEvent {
    /// We answered a peer's request with these addresses.
    Answered {
        /// The requester.
        peer: NodeId,
        /// What we sent.
        addresses: Vec<NetAddress>,
    },
    /// We asked a peer for addresses.
    Asked {
        /// The peer.
        peer: NodeId,
    },
    /// A peer answered our request.
    Learned {
        /// The peer.
        peer: NodeId,
        /// Addresses that were new to the book.
        new: usize,
        /// Entries that did not parse.
        invalid: usize,
    },
    /// A peer's message was ignored.
    Dropped {
        /// The peer.
        peer: NodeId,
        /// Why.
        reason: &'static str,
    },
    /// A peer was banned for abuse.
    Banned {
        /// The peer.
        peer: NodeId,
    },
    /// A peer advertised an address on another host than it connected from; it waits for a probe.
    Unverified {
        /// The address.
        address: NetAddress,
        /// Whether it was queued (false: the queue was full, or it was probed recently).
        queued: bool,
    },
    /// A probe of a self-reported address finished.
    Probed {
        /// The address.
        address: NetAddress,
        /// Whether the peer's key answered there (the address is then stored and may be shared).
        verified: bool,
    },
    /// We queued a dial.
    Dialing {
        /// The address.
        address: HostAddress,
        /// Whether it is a seed.
        seed: bool,
    },
}

enum Query {
    Book(oneshot::Sender<Vec<Entry>>),
}

/// A handle to the running discovery reactor.
#[derive(Clone, Debug)]
pub struct DiscoveryHandle {
    queries: mpsc::Sender<Query>,
    events: broadcast::Sender<DiscoveryEvent>,
    stopped: tokio::sync::watch::Receiver<bool>,
}

impl DiscoveryHandle {
    /// The address book's entries, sorted by ID (empty if the reactor stopped).
    pub async fn address_book(&self) -> Vec<Entry> {
        let (tx, rx) = oneshot::channel();
        if self.queries.send(Query::Book(tx)).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Discovery events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DiscoveryEvent> {
        self.events.subscribe()
    }

    /// Waits until the reactor has stopped (after the switch stopped) and written the address book a last time.
    pub async fn stopped(&self) {
        let mut rx = self.stopped.clone();
        let _ = rx.wait_for(|done| *done).await;
    }
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Query")
    }
}

/// Registers the discovery reactor with a switch under construction and starts it. The reactor waits for the
/// switch to start; only then does it read the address book (a corrupt file is moved aside with a warning, and the
/// node relies on its seeds). If the switch never starts, the book is left untouched. `logger` may be `None`.
pub fn register(
    builder: &mut SwitchBuilder,
    config: DiscoveryConfig,
    logger: impl Into<Option<Logger>>,
) -> Result<DiscoveryHandle, BuildError> {
    let logger = logger.into().unwrap_or_else(|| Logger::root(slog::Discard, slog::o!()));
    let ctx = builder.add_reactor("discovery", &[descriptor(config.profile)], 256)?;
    let own_id = builder.handle().id();
    let (queries_tx, queries) = mpsc::channel(8);
    let (stopped_tx, stopped) = tokio::sync::watch::channel(false);
    let (events, _) = broadcast::channel(1024);
    let switch_events = ctx
        .switch
        .subscribe(|e| {
            matches!(
                e,
                SwitchEvent::DialFailed { .. } | SwitchEvent::PeerConnected { direction: Direction::Outbound, .. }
            )
        })
        .ok();
    let seeds = config.seeds.iter().map(|s| (s.id(), s.clone())).collect();
    let clock = WallClock::new();
    let book = AddressBook::new(own_id, config.private.clone(), config.book_capacity);
    let (probed_tx, probed) = mpsc::channel(config.verify.per_interval.max(1));
    let reactor = Discovery {
        ctx,
        verifier: Verifier::new(config.verify),
        config,
        logger,
        own_id,
        book,
        peers: HashMap::new(),
        seeds,
        recently_dialed: HashMap::new(),
        clock,
        events: events.clone(),
        queries,
        switch_events,
        probed_tx,
        probed,
    };
    tokio::spawn(async move {
        if reactor.ctx.switch.started().await.is_ok() {
            reactor.run().await;
        }
        let _ = stopped_tx.send(true);
    });
    Ok(DiscoveryHandle { queries: queries_tx, events, stopped })
}

struct PeerState {
    handle: PeerHandle,
    outbound: bool,
    persistent: bool,
    asked_at: Option<Instant>,
    guard: Guard,
    /// Where the peer listens, once we know it: the address we dialed, or the one it advertised on the host it
    /// connected from, or a probed one. Only this is shared.
    listens_at: Option<NetAddress>,
    /// An address it claims on another host, until a probe has settled it.
    claim: Option<NetAddress>,
}

struct Discovery {
    ctx: ReactorContext,
    config: DiscoveryConfig,
    logger: Logger,
    own_id: NodeId,
    book: AddressBook,
    peers: HashMap<NodeId, PeerState>,
    seeds: HashMap<NodeId, HostAddress>,
    recently_dialed: HashMap<NodeId, Instant>,
    clock: WallClock,
    events: broadcast::Sender<DiscoveryEvent>,
    queries: mpsc::Receiver<Query>,
    switch_events: Option<EventStream>,
    verifier: Verifier,
    probed_tx: mpsc::Sender<(NetAddress, bool)>,
    probed: mpsc::Receiver<(NetAddress, bool)>,
}

use random::shuffle;

impl Discovery {
    fn emit(&self, e: DiscoveryEvent) {
        let _ = self.events.send(e);
    }

    /// Reads the book, and brings its configured entries in line with the configuration.
    fn load(&mut self) {
        let now = self.clock.unix_secs();
        if let Some(path) = &self.config.book_file {
            let (own_id, private, capacity) = (self.own_id, self.config.private.clone(), self.config.book_capacity);
            match AddressBook::load(path, self.config.profile, own_id, private, capacity, now) {
                Ok(loaded) => {
                    if let Some(aside) = &loaded.moved_aside {
                        warn!(self.logger, "address book was corrupt; moved aside, starting from seeds";
                            "file" => %path.display(), "moved_to" => %aside.display());
                    }
                    if loaded.leftovers > 0 {
                        info!(self.logger, "deleted temporary files of interrupted address book writes";
                            "count" => loaded.leftovers);
                    }
                    if loaded.skipped > 0 {
                        warn!(self.logger, "address book entries skipped"; "count" => loaded.skipped);
                    }
                    info!(self.logger, "address book loaded"; "entries" => loaded.book.len(), "file" => %path.display());
                    self.book = loaded.book;
                }
                Err(e) => {
                    warn!(self.logger, "cannot read the address book; starting empty"; "file" => %path.display(), "err" => %e)
                }
            }
        }
        // The operator's own addresses (IP literals; names are resolved only when dialing) are stored as `config`:
        // shared once reached, never overwritten by what peers say, and gone once the configuration drops them.
        let configured: Vec<NetAddress> = self
            .config
            .seeds
            .iter()
            .chain(&self.config.persistent_addresses)
            .filter_map(HostAddress::to_net_address)
            .collect();
        let sync = self.book.sync_config(&configured, now);
        if sync.replaced + sync.removed > 0 {
            info!(self.logger, "address book follows the configuration";
                "replaced" => sync.replaced, "removed" => sync.removed, "added" => sync.added);
        }
    }

    async fn run(mut self) {
        self.load();
        let mut next_tick = Instant::now();
        loop {
            tokio::select! {
                event = self.ctx.events.recv() => match event {
                    Some(e) => self.on_event(e).await,
                    None => break,
                },
                Some(item) = next_event(&mut self.switch_events) => self.on_switch_event(item),
                Some(Query::Book(reply)) = self.queries.recv() => {
                    let _ = reply.send(self.book.entries());
                }
                Some((address, verified)) = self.probed.recv() => self.on_probed(address, verified),
                () = tokio::time::sleep_until(next_tick) => {
                    self.tick().await;
                    next_tick = Instant::now() + self.config.interval;
                }
            }
        }
        self.save(true);
    }

    fn save(&mut self, force: bool) {
        let Some(path) = self.config.book_file.clone() else { return };
        let result = if force {
            self.book.flush(&path, self.config.profile).map(|()| true)
        } else {
            self.book.save(&path, self.config.profile)
        };
        match result {
            Ok(true) => debug!(self.logger, "address book saved"; "entries" => self.book.len()),
            Ok(false) => {}
            Err(e) => warn!(self.logger, "cannot save the address book"; "file" => %path.display(), "err" => %e),
        }
    }

    /// Credits or blames the book entry of the very address that was dialed.
    fn on_switch_event(&mut self, item: EventItem) {
        let now = self.clock.unix_secs();
        match item {
            EventItem::Event(SwitchEvent::DialFailed { address, .. }) => {
                if let Ok(address) = NetAddress::parse(&address, self.config.profile) {
                    self.book.mark_failure(&address, now);
                }
            }
            EventItem::Event(SwitchEvent::PeerConnected { peer, address, .. }) => {
                self.book.mark_success(&NetAddress::new(peer, address), now);
            }
            _ => {}
        }
    }

    /// Offers the claims of connected peers again (in random order: when the queue is short of room, nobody is
    /// always first), then starts the probes that are due; each reports back through `probed`.
    fn start_probes(&mut self) {
        let now = self.clock.unix_secs();
        let mut claims: Vec<(NetAddress, std::net::SocketAddr)> =
            self.peers.values().filter_map(|p| p.claim.map(|c| (c, p.handle.info().remote_addr))).collect();
        shuffle(&mut claims);
        for (claim, source) in claims {
            self.verifier.offer(claim, source, now);
        }
        for address in self.verifier.due(now) {
            let (switch, done) = (self.ctx.switch.clone(), self.probed_tx.clone());
            tokio::spawn(async move {
                let verified = switch.probe(address).await.is_ok();
                let _ = done.send((address, verified)).await;
            });
        }
    }

    fn on_probed(&mut self, address: NetAddress, verified: bool) {
        let now = self.clock.unix_secs();
        self.verifier.finished(address, now);
        self.emit(DiscoveryEvent::Probed { address, verified });
        // Settled either way: no more offers for this claim.
        if let Some(p) = self.peers.get_mut(&address.id())
            && p.claim == Some(address)
        {
            p.claim = None;
        }
        if !verified {
            debug!(self.logger, "self-reported address did not verify"; "address" => %address);
            return;
        }
        self.book.add(address, Source::SelfReported, now);
        self.book.mark_success(&address, now);
        if let Some(p) = self.peers.get_mut(&address.id())
            && p.claim == Some(address)
        {
            p.listens_at = Some(address);
        }
    }

    async fn tick(&mut self) {
        let now = self.clock.unix_secs();
        let expired = self.book.expire(now);
        if expired > 0 {
            debug!(self.logger, "address book entries expired"; "count" => expired);
        }
        let ttl = self.config.interval * 2;
        self.recently_dialed.retain(|_, t| t.elapsed() < ttl);
        self.top_up().await;
        self.ask_someone().await;
        self.start_probes();
        self.save(false);
    }

    /// Dials book candidates while below the outbound target; seeds only when the book cannot supply enough.
    async fn top_up(&mut self) {
        let outbound = self.peers.values().filter(|p| p.outbound && !p.persistent).count();
        let need = self.config.max_outbound.saturating_sub(outbound);
        if need == 0 {
            return;
        }
        let now = self.clock.unix_secs();
        // Seeds are dialed only as a fallback below, never as ordinary peers (they hang up after answering).
        let exclude = |id: &NodeId| {
            self.peers.contains_key(id)
                || self.recently_dialed.contains_key(id)
                || self.config.persistent.contains(id)
                || self.seeds.contains_key(id)
        };
        let candidates = self.book.dial_candidates(now, need, exclude, |v| shuffle(v));
        let short = candidates.len() < need;
        for address in candidates {
            self.book.mark_attempt(&address.id(), now);
            self.dial(HostAddress::from(address), false).await;
        }
        if short {
            let mut seeds: Vec<HostAddress> = self
                .seeds
                .values()
                .filter(|s| !self.peers.contains_key(&s.id()) && !self.recently_dialed.contains_key(&s.id()))
                .cloned()
                .collect();
            shuffle(&mut seeds);
            for s in seeds {
                self.dial(s, true).await;
            }
        }
    }

    async fn dial(&mut self, address: HostAddress, seed: bool) {
        self.recently_dialed.insert(address.id(), Instant::now());
        self.emit(DiscoveryEvent::Dialing { address: address.clone(), seed });
        if let Err(e) = self.ctx.switch.dial(address.clone()).await {
            debug!(self.logger, "dial not queued"; "err" => %e);
        }
    }

    /// Asks one random connected peer without an outstanding request.
    async fn ask_someone(&mut self) {
        let timeout = self.config.interval;
        let mut ids: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.asked_at.is_none_or(|t| t.elapsed() >= timeout))
            .map(|(id, _)| *id)
            .collect();
        shuffle(&mut ids);
        if let Some(id) = ids.first() {
            self.ask(*id).await;
        }
    }

    /// Sends never wait for room: a peer that stops reading must not stall discovery for everyone else.
    async fn ask(&mut self, id: NodeId) {
        let channel = channel(self.config.profile);
        let bytes = wire::encode(self.config.profile, &Message::Request);
        if let Some(p) = self.peers.get_mut(&id)
            && p.handle.try_send(channel, bytes).is_ok()
        {
            p.asked_at = Some(Instant::now());
            self.emit(DiscoveryEvent::Asked { peer: id });
        }
    }

    async fn on_event(&mut self, event: ReactorEvent) {
        match event {
            ReactorEvent::PeerUp(handle) => {
                let info = handle.info();
                let id = handle.id();
                let now = self.clock.unix_secs();
                let dialed = info.direction == Direction::Outbound;
                let (listens_at, claim) = if dialed {
                    // We reached it: that is where it listens (what it advertises may be another of its addresses).
                    let reached = NetAddress::new(id, info.remote_addr);
                    self.book.mark_success(&reached, now);
                    (Some(reached), None)
                } else {
                    let listen = info.node_info.listen_host_address().ok().and_then(|a| a.to_net_address());
                    match verify::judge(id, listen.map(|a| a.socket_addr()), info.remote_addr) {
                        Advertised::Observed(address) => {
                            self.book.add(address, Source::SelfReported, now);
                            (Some(address), None)
                        }
                        Advertised::Unverified(address) => {
                            let queued = self.verifier.offer(address, info.remote_addr, now) == Offered::Queued;
                            self.emit(DiscoveryEvent::Unverified { address, queued });
                            (None, Some(address))
                        }
                        Advertised::Unusable => (None, None),
                    }
                };
                let persistent = info.persistent || self.config.persistent.contains(&id);
                // Outbound as the switch counts it (a swapped-in connection can keep an outbound place).
                let outbound = info.counted_as == Direction::Outbound;
                let guard = Guard::default();
                let state = PeerState { handle, outbound, persistent, asked_at: None, guard, listens_at, claim };
                self.peers.insert(id, state);
                let short = self.book.len() < self.config.book_capacity / 2;
                if outbound && (short || self.seeds.contains_key(&id) || self.config.seed_mode) {
                    self.ask(id).await;
                }
            }
            ReactorEvent::PeerDown { peer, .. } => {
                self.peers.remove(&peer);
            }
            ReactorEvent::Message { peer, msg, .. } => self.on_message(peer, &msg).await,
        }
    }

    async fn strike(&mut self, peer: NodeId, weight: usize, reason: &'static str) {
        let Some(p) = self.peers.get_mut(&peer) else { return };
        let verdict = p.guard.strike(Instant::now(), weight, &self.config.guard);
        self.judge(peer, verdict, reason).await;
    }

    async fn judge(&mut self, peer: NodeId, verdict: Verdict, reason: &'static str) {
        match verdict {
            Verdict::Accept => {}
            Verdict::Drop => self.emit(DiscoveryEvent::Dropped { peer, reason }),
            Verdict::Ban => {
                warn!(self.logger, "banning peer for discovery abuse"; "peer" => %peer, "last" => reason);
                self.emit(DiscoveryEvent::Banned { peer });
                let why = format!("discovery abuse ({reason})");
                let _ = self.ctx.switch.ban(peer, self.config.guard.ban_duration, why).await;
            }
        }
    }

    async fn on_message(&mut self, peer: NodeId, msg: &[u8]) {
        match wire::decode(self.config.profile, msg) {
            Err(e) => {
                debug!(self.logger, "malformed discovery message"; "peer" => %peer, "err" => %e);
                self.strike(peer, 5, "malformed message").await;
            }
            Ok(Message::Request) => {
                let Some(p) = self.peers.get_mut(&peer) else { return };
                let verdict = p.guard.on_request(Instant::now(), &self.config.guard);
                if verdict != Verdict::Accept {
                    return self.judge(peer, verdict, "request too soon").await;
                }
                self.answer(peer).await;
            }
            Ok(Message::Response { addresses, invalid }) => {
                let Some(p) = self.peers.get_mut(&peer) else { return };
                if p.asked_at.take().is_none() {
                    return self.strike(peer, 1, "unsolicited response").await;
                }
                let persistent = p.persistent;
                let source = p.handle.info().remote_addr;
                let now = self.clock.unix_secs();
                let (mut new, mut invalid) = (0, invalid);
                for a in addresses {
                    // A peer on a public address has no business sending us loopback or private addresses.
                    if !verify::admissible(&a, source) {
                        invalid += 1;
                        continue;
                    }
                    if a.id() != self.own_id && self.book.add(a, Source::Peer(peer), now) == book::Added::New {
                        new += 1;
                    }
                }
                self.emit(DiscoveryEvent::Learned { peer, new, invalid });
                let is_seed = self.seeds.contains_key(&peer);
                if (is_seed || self.config.seed_mode) && !persistent {
                    let why = if is_seed { "seed answered" } else { "crawled" };
                    let _ = self.ctx.switch.finish_peer(peer, why).await;
                }
                if new > 0 {
                    self.top_up().await;
                }
            }
        }
    }

    /// Answers a request: up to `max_shared` connected or recently reached addresses, shuffled.
    async fn answer(&mut self, requester: NodeId) {
        let now = self.clock.unix_secs();
        let private = &self.config.private;
        let skip = |id: &NodeId| *id == requester || private.contains(id);
        let mut addresses = self.book.recently_reached(now, skip);
        let mut listed: HashSet<NodeId> = addresses.iter().map(NetAddress::id).collect();
        for (id, p) in &self.peers {
            if skip(id) {
                continue;
            }
            // Only where the peer is known to listen: never an address it merely claims on another host.
            if let Some(a) = p.listens_at
                && listed.insert(a.id())
            {
                addresses.push(a);
            }
        }
        // A requester on a public address learns no loopback or private addresses (useless to it, and our business).
        if let Some(p) = self.peers.get(&requester) {
            let source = p.handle.info().remote_addr;
            addresses.retain(|a| verify::admissible(a, source));
        }
        shuffle(&mut addresses);
        addresses.truncate(self.config.max_shared);
        let persistent = self.peers.get(&requester).is_some_and(|p| p.persistent);
        // TM2 treats an empty response as invalid: say nothing instead.
        if !(addresses.is_empty() && self.config.profile == WireProfile::Tm2) {
            let bytes =
                wire::encode(self.config.profile, &Message::Response { addresses: addresses.clone(), invalid: 0 });
            let Some(p) = self.peers.get(&requester) else { return };
            // Never wait for room (see `ask`): a requester that does not read its answers loses them.
            match p.handle.try_send(channel(self.config.profile), bytes) {
                Ok(()) => self.emit(DiscoveryEvent::Answered { peer: requester, addresses }),
                Err(PeerSendError::Send(SendError::QueueFull(_))) => {
                    self.emit(DiscoveryEvent::Dropped { peer: requester, reason: "send queue full" });
                }
                // Closing, or a peer that does not speak the channel: nobody to answer.
                Err(e) => debug!(self.logger, "answer not sent"; "peer" => %requester, "err" => %e),
            }
        }
        if self.config.seed_mode && !persistent {
            let _ = self.ctx.switch.finish_peer(requester, "seed answered").await;
        }
    }
}

/// The next switch event, or never if there is no subscription.
async fn next_event(events: &mut Option<EventStream>) -> Option<EventItem> {
    match events {
        Some(e) => e.recv().await,
        None => std::future::pending().await,
    }
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery").field("peers", &self.peers.len()).field("book", &self.book.len()).finish()
    }
}
