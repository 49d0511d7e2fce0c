//! ILP route exchange as a reactor (CCP semantics) on [`ROUTING_CHANNEL`].
//!
//! The [`core`] decides (pure, tested without sockets); this module drives it: it follows the connector's
//! accounts, address and configured routes ([`Connector::routing_inputs`]), maps p2p peers to accounts, passes
//! [`wire`] messages in and out, and hands the best learned next hops to the connector's forwarding table. A
//! [`Routing`] handle shows the table and per-peer counters and reports [`RouteEvent`]s.
//!
//! ```no_run
//! # async fn demo(connector: ledgerwire_reactors::forwarding::Connector,
//! #               builder: &mut ledgerwire_p2p::SwitchBuilder) -> Result<(), Box<dyn std::error::Error>> {
//! use ledgerwire_reactors::routing::{self, core::RouterConfig};
//!
//! let config = RouterConfig::new(routing::random_secret(), routing::random_table_id());
//! let routes = routing::register(builder, config, connector, None)?;
//! for route in routes.routes().await? {
//!     println!("{} via {:?} ({:?})", route.prefix, route.next_hop, route.path);
//! }
//! # Ok(()) }
//! ```

pub mod core;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use ledgerwire_conn::mconnection::ChannelDescriptor;
use ledgerwire_p2p::log_limit::LogLimit;
use ledgerwire_p2p::{BuildError, PeerHandle, ReactorContext, ReactorEvent, SwitchBuilder};
use ledgerwire_types::NodeId;
use ledgerwire_types::deadline::Timer;
use rustc_hash::FxHashMap as HashMap;
use slog::{Logger, debug, info, warn};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use self::core::{Action, PeerRouting, RouteEvent, RouteView, Router, RouterConfig, RoutingInputs};
use self::wire::CcpMessage;
use crate::accounts::AccountId;
use crate::forwarding::Connector;

/// The route-exchange channel.
pub const ROUTING_CHANNEL: u8 = 0x72;

/// The largest message taken from a peer (ours stay under about 300 KiB).
pub const MAX_MESSAGE_BYTES: usize = 512 * 1024;

/// The channel's descriptor: below forwarding in priority, a small send queue (an update that does not fit is
/// sent again later, from the peer's last epoch), and flushed as soon as its queue drains: convergence waits
/// on every hop, and the connection's flush throttle (100 ms by default) would be paid on each.
pub fn descriptor() -> ChannelDescriptor {
    ChannelDescriptor::new(ROUTING_CHANNEL, 3)
        .with_send_queue_capacity(32)
        .with_recv_buffer_capacity(2 * MAX_MESSAGE_BYTES)
        .with_recv_message_capacity(MAX_MESSAGE_BYTES)
        .with_low_latency()
}

/// A random routing secret.
pub fn random_secret() -> [u8; 32] {
    let mut s = [0u8; 32];
    // Without randomness the secret is only predictable, not wrong: it keys an authentication value nobody checks.
    let _ = getrandom::fill(&mut s);
    s
}

/// A random routing table ID.
pub fn random_table_id() -> [u8; 16] {
    let mut s = [0u8; 16];
    if getrandom::fill(&mut s).is_err() {
        // Distinct per start is what matters: a peer takes a new ID as a restart.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        s.copy_from_slice(&t.as_nanos().to_be_bytes());
    }
    s
}

/// Why a routing operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RoutingError {
    /// The router has stopped.
    #[error("route exchange has stopped")]
    Stopped,
}

enum Command {
    Routes(oneshot::Sender<Vec<RouteView>>),
    Peers(oneshot::Sender<Vec<PeerRouting>>),
}

/// A handle to route exchange. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Routing {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<RouteEvent>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("routing command")
    }
}

impl Routing {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, RoutingError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| RoutingError::Stopped)?;
        rx.await.map_err(|_| RoutingError::Stopped)
    }

    /// Our routing table: configured, local and learned routes with their path and age.
    pub async fn routes(&self) -> Result<Vec<RouteView>, RoutingError> {
        self.ask(Command::Routes).await
    }

    /// Route exchange with each account: state and counters.
    pub async fn peers(&self) -> Result<Vec<PeerRouting>, RoutingError> {
        self.ask(Command::Peers).await
    }

    /// Route changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<RouteEvent> {
        self.events.subscribe()
    }
}

/// Registers route exchange on the switch, next to `connector`, whose accounts and address it follows and whose
/// forwarding table it feeds.
pub fn register(
    builder: &mut SwitchBuilder,
    config: RouterConfig,
    connector: Connector,
    logger: impl Into<Option<Logger>>,
) -> Result<Routing, BuildError> {
    let logger = logger.into().unwrap_or_else(|| Logger::root(slog::Discard, slog::o!()));
    let ctx = builder.add_reactor("ilp-routing", &[descriptor()], 64)?;
    let (commands_tx, commands) = mpsc::channel(64);
    let (events, _) = broadcast::channel(1024);
    let actor = Actor {
        core: Router::new(config),
        inputs: connector.routing_inputs(),
        connector,
        peers: HashMap::default(),
        nodes: HashMap::default(),
        events: events.clone(),
        logger,
        refused_logged: LogLimit::new(5, Duration::from_secs(1)),
    };
    tokio::spawn(actor.run(ctx, commands));
    Ok(Routing { commands: commands_tx, events })
}

struct Actor {
    core: Router,
    connector: Connector,
    inputs: watch::Receiver<Arc<RoutingInputs>>,
    peers: HashMap<NodeId, PeerHandle>,
    /// Node → account, from the inputs.
    nodes: HashMap<NodeId, AccountId>,
    events: broadcast::Sender<RouteEvent>,
    logger: Logger,
    refused_logged: LogLimit,
}

impl Actor {
    async fn run(mut self, mut ctx: ReactorContext, mut commands: mpsc::Receiver<Command>) {
        let mut timer = Timer::new();
        self.inputs.mark_changed();
        let mut inputs_open = true;
        loop {
            timer.set(self.core.next_deadline().map(Instant::from_std));
            tokio::select! {
                ev = ctx.events.recv() => match ev {
                    Some(ev) => self.on_reactor_event(ev),
                    None => break,
                },
                changed = self.inputs.changed(), if inputs_open => match changed {
                    Ok(()) => self.on_inputs(),
                    Err(_) => inputs_open = false,
                },
                Some(cmd) = commands.recv() => match cmd {
                    Command::Routes(tx) => {
                        let _ = tx.send(self.core.routes(Instant::now().into_std()));
                    }
                    Command::Peers(tx) => {
                        let _ = tx.send(self.core.peers());
                    }
                },
                () = timer.wait() => self.core.tick(Instant::now().into_std()),
            }
            self.carry_out();
        }
        // Stopped: what it learned is no longer kept current, so it leaves the forwarding table.
        let now = Instant::now().into_std();
        let learned: Vec<(String, Option<AccountId>)> = self
            .core
            .routes(now)
            .into_iter()
            .filter(|r| r.source == crate::forwarding::routing::RouteSource::Learned)
            .map(|r| (r.prefix, None))
            .collect();
        self.connector.set_learned_routes(learned);
        debug!(self.logger, "route exchange stopped");
    }

    fn on_inputs(&mut self) {
        let inputs = self.inputs.borrow_and_update().clone();
        let now = Instant::now().into_std();
        self.nodes = inputs.accounts.iter().filter_map(|a| a.node.map(|n| (n, a.id.clone()))).collect();
        self.core.set_inputs((*inputs).clone(), now);
        // Links follow the connected peers: an account added for a peer already connected is linked now.
        for account in &inputs.accounts {
            let connected = account.node.is_some_and(|n| self.peers.contains_key(&n));
            match (connected, self.core.is_linked(&account.id)) {
                (true, false) => self.core.link_up(&account.id, now),
                (false, true) => self.core.link_down(&account.id, now),
                _ => {}
            }
        }
    }

    fn on_reactor_event(&mut self, ev: ReactorEvent) {
        let now = Instant::now().into_std();
        match ev {
            ReactorEvent::PeerUp(handle) => {
                let node = handle.id();
                self.peers.insert(node, handle);
                if let Some(account) = self.nodes.get(&node) {
                    self.core.link_up(account, now);
                }
            }
            ReactorEvent::PeerDown { peer, .. } => {
                self.peers.remove(&peer);
                if let Some(account) = self.nodes.get(&peer) {
                    self.core.link_down(account, now);
                }
            }
            ReactorEvent::Message { peer, msg, .. } => {
                let message = match CcpMessage::from_bytes(&msg) {
                    Ok(m) => m,
                    Err(e) => {
                        warn!(self.logger, "malformed route-exchange message; disconnecting the peer";
                            "peer" => %peer, "error" => %e);
                        if let Some(h) = self.peers.get(&peer) {
                            h.stop_for_error(format!("malformed route-exchange message: {e}"));
                        }
                        return;
                    }
                };
                let result = match self.nodes.get(&peer) {
                    Some(account) => self.core.on_message(account, message, now).map_err(|e| e.to_string()),
                    None => Err("no ILP account for this peer".to_owned()),
                };
                if let Err(reason) = result
                    && let Some(skipped) = self.refused_logged.allow(Instant::now())
                {
                    info!(self.logger, "route-exchange message refused";
                        "peer" => %peer, "reason" => reason, "similar_lines_skipped" => skipped);
                }
            }
        }
    }

    fn carry_out(&mut self) {
        let mut learned = Vec::new();
        let now = Instant::now().into_std();
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::Send { to, message } => {
                    let handle = self.nodes.iter().find(|(_, a)| **a == to).and_then(|(n, _)| self.peers.get(n));
                    let sent = handle.is_some_and(|h| h.try_send(ROUTING_CHANNEL, message.to_bytes()).is_ok());
                    if !sent {
                        debug!(self.logger, "route-exchange message not queued; resent later"; "account" => %to);
                        self.core.send_failed(&to, &message, now);
                    }
                }
                Action::SetLearned { prefix, next_hop } => learned.push((prefix, next_hop)),
                Action::Event(e) => {
                    match &e {
                        RouteEvent::RouteAdded { prefix, next_hop, .. } => {
                            debug!(self.logger, "route added"; "prefix" => prefix, "next_hop" => ?next_hop)
                        }
                        RouteEvent::RouteChanged { prefix, next_hop, .. } => {
                            debug!(self.logger, "route changed"; "prefix" => prefix, "next_hop" => ?next_hop)
                        }
                        RouteEvent::RouteWithdrawn { prefix, .. } => {
                            debug!(self.logger, "route withdrawn"; "prefix" => prefix)
                        }
                    }
                    let _ = self.events.send(e);
                }
            }
        }
        if !learned.is_empty() {
            self.connector.set_learned_routes(learned);
        }
    }
}
