//! The switch actor: the I/O around the [core](super::core).
//!
//! It owns the transport's outlet, the dial and probe tasks, the live connections and their delivery to reactors,
//! and feeds everything that happens to the core: commands from handles, inbound connections, dial outcomes,
//! connections that closed, and the time. It carries out the core's actions and publishes a snapshot of the
//! connections after each change. It decides nothing itself.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use ledgerwire_conn::mconnection::{ChannelDescriptor, CloseReason, MConnection};
use ledgerwire_types::{NodeId, deadline};
use slog::{Logger, debug, error, info, o, warn};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::config::SwitchConfig;
use super::core::{Action, Admitted, Ban, BansFull, Candidate, ConnId, SwitchCore};
use super::dial_queue::DialTarget;
use super::handle::{BanSummary, Command, Connected, PeerTable, ProbeError, Shared, SwitchError};
use crate::delivery::{Delivery, ReactorInbox};
use crate::events::SwitchEvent;
use crate::log_limit::LogLimit;
use crate::peer::{DisconnectReason, PeerInfo};
use crate::transport::{DialError, Direction, Inbound, Transport, Upgraded};

/// An admitted connection.
struct Live {
    peer: NodeId,
    info: Arc<PeerInfo>,
    conn: Arc<MConnection>,
    /// Set before we close the connection on purpose; read by delivery for `PeerDown`.
    stop_reason: Arc<OnceLock<DisconnectReason>>,
}

/// A connection that closed.
struct Closed {
    peer: NodeId,
    conn: ConnId,
    reason: CloseReason,
}

pub(crate) struct Actor {
    shared: Arc<Shared>,
    transport: Arc<Transport>,
    core: SwitchCore,
    config: SwitchConfig,
    inboxes: Vec<ReactorInbox>,
    descriptors: Vec<ChannelDescriptor>,
    live: HashMap<ConnId, Live>,
    /// Each peer's latest delivery: the next connection's delivery waits for it, so reactors hear `PeerDown` before
    /// the next `PeerUp`.
    deliveries: HashMap<NodeId, Delivery>,
    dials: JoinSet<(DialTarget, Result<Upgraded, DialError>)>,
    probes: JoinSet<()>,
    closers: JoinSet<()>,
    watchers: JoinSet<Closed>,
    cmd_rx: mpsc::Receiver<Command>,
    inbound_rx: mpsc::Receiver<Inbound>,
    accept_task: JoinHandle<()>,
    events: broadcast::Sender<SwitchEvent>,
    dial_log: LogLimit,
    reject_log: LogLimit,
    logger: Logger,
}

impl Actor {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        shared: Arc<Shared>,
        transport: Arc<Transport>,
        config: SwitchConfig,
        inboxes: Vec<ReactorInbox>,
        descriptors: Vec<ChannelDescriptor>,
        cmd_rx: mpsc::Receiver<Command>,
        events: broadcast::Sender<SwitchEvent>,
        listener: TcpListener,
        logger: Logger,
    ) -> Self {
        let (inbound_tx, inbound_rx) = mpsc::channel(64);
        let accept_task = tokio::spawn(transport.clone().accept_loop(listener, inbound_tx));
        let core = SwitchCore::new(shared.id, &config, ledgerwire_types::random::u64(), Instant::now());
        Actor {
            shared,
            transport,
            core,
            config,
            inboxes,
            descriptors,
            live: HashMap::new(),
            deliveries: HashMap::new(),
            dials: JoinSet::new(),
            probes: JoinSet::new(),
            closers: JoinSet::new(),
            watchers: JoinSet::new(),
            cmd_rx,
            inbound_rx,
            accept_task,
            events,
            dial_log: LogLimit::default(),
            reject_log: LogLimit::default(),
            logger,
        }
    }

    pub(crate) async fn run(mut self) {
        let stop_reply = loop {
            self.apply_actions();
            tokio::select! {
                cmd = self.cmd_rx.recv() => match cmd {
                    Some(Command::Stop { reply }) => break Some(reply),
                    Some(cmd) => self.on_command(cmd),
                    None => break None,
                },
                Some(inbound) = self.inbound_rx.recv() => self.on_inbound(inbound),
                Some(done) = self.dials.join_next(), if !self.dials.is_empty() => {
                    if let Ok((target, result)) = done {
                        self.on_dial_result(target, result);
                    }
                }
                Some(done) = self.watchers.join_next(), if !self.watchers.is_empty() => {
                    if let Ok(closed) = done {
                        self.on_closed(closed);
                    }
                }
                Some(_) = self.probes.join_next(), if !self.probes.is_empty() => {}
                Some(_) = self.closers.join_next(), if !self.closers.is_empty() => {}
                () = deadline::sleep_until(self.core.poll_timeout()) => self.core.handle_timeout(Instant::now()),
            }
        };
        self.shutdown().await;
        if let Some(reply) = stop_reply {
            let _ = reply.send(());
        }
    }

    fn apply_actions(&mut self) {
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::Dial(target) => {
                    let transport = self.transport.clone();
                    self.dials.spawn(async move {
                        let result = match target.address.resolve().await {
                            Ok(addr) => transport.dial(addr).await,
                            Err(e) => Err(e.into()),
                        };
                        (target, result)
                    });
                }
                Action::Close { peer, conn, reason, graceful } => {
                    let Some(live) = self.live.get(&conn) else { continue };
                    debug!(self.logger, "closing connection"; "peer" => %peer, "reason" => %reason, "graceful" => graceful);
                    let _ = live.stop_reason.set(reason);
                    if graceful {
                        let (conn, grace) = (live.conn.clone(), self.config.stop_grace);
                        self.closers.spawn(async move {
                            if tokio::time::timeout(grace, conn.close_gracefully()).await.is_err() {
                                conn.close();
                            }
                        });
                    } else {
                        live.conn.close();
                    }
                }
                Action::Emit(event) => {
                    self.log(&event);
                    // No subscribers is fine.
                    let _ = self.events.send(event);
                }
            }
        }
    }

    /// Every event shows in the log; the ones peers can cause in bulk are rate-limited.
    fn log(&mut self, event: &SwitchEvent) {
        let now = Instant::now();
        match event {
            SwitchEvent::PeerConnected { peer, address, direction, persistent, .. } => {
                info!(self.logger, "peer connected"; "peer" => %peer, "address" => %address, "direction" => %direction,
                    "persistent" => persistent);
            }
            SwitchEvent::PeerDisconnected { peer, reason, .. } => {
                info!(self.logger, "peer disconnected"; "peer" => %peer, "reason" => %reason);
            }
            SwitchEvent::DialFailed { peer, address, reason } => {
                if let Some(suppressed) = self.dial_log.allow(now) {
                    info!(self.logger, "dial failed"; "peer" => %peer, "address" => address, "reason" => %reason,
                        "suppressed_before" => suppressed);
                }
            }
            SwitchEvent::PeerRejected { address, peer, reason } => {
                if let Some(suppressed) = self.reject_log.allow(now) {
                    let peer = peer.map(|p| p.to_string());
                    info!(self.logger, "inbound connection rejected"; "address" => %address, "peer" => peer,
                        "reason" => %reason, "suppressed_before" => suppressed);
                }
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Dial { address, persistent, reply } => {
                let _ = reply.send(self.core.dial(address, persistent, now));
            }
            Command::StopPeer { id, reason, forget, reply } => {
                let _ = reply.send(self.core.stop_peer(id, reason, forget));
            }
            Command::FinishPeer { id, reason } => {
                self.core.finish_peer(id, reason);
            }
            Command::Ban { id, duration, reason, by_operator, reply } => {
                // What a ban that is not kept (zero length, or no room) answers: it only disconnected.
                let ended = BanSummary { peer: id, remaining: Duration::ZERO, reason: reason.clone(), by_operator };
                let result = match self.core.ban(id, duration, reason, by_operator, now) {
                    Ok(kept) => {
                        let ban = self.core.ban_of(&id, now).map_or(ended, |ban| summary(id, ban, now));
                        if kept {
                            // The ban in force: a longer one already there, or this one cut to ~100 years.
                            warn!(self.logger, "peer banned"; "peer" => %id, "for" => ?ban.remaining,
                                "reason" => &ban.reason, "by_operator" => ban.by_operator);
                        } else {
                            warn!(self.logger, "peer disconnected, ban not kept (zero length, or the ban table is full \
                                of operators' bans)"; "peer" => %id, "reason" => &ban.reason);
                        }
                        Ok(ban)
                    }
                    Err(BansFull) => {
                        warn!(self.logger, "ban refused: the ban table is full of operators' bans"; "peer" => %id);
                        Err(SwitchError::TooManyBans)
                    }
                };
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            Command::Unban { id, reply } => {
                let was = self.core.unban(&id, now);
                if was {
                    info!(self.logger, "peer unbanned"; "peer" => %id);
                }
                let _ = reply.send(was);
            }
            Command::Bans { reply } => {
                let bans = self.core.bans(now).into_iter().map(|(peer, ban)| summary(peer, ban, now));
                let _ = reply.send(bans.collect());
            }
            Command::Probe { address, reply } => {
                if self.probes.len() >= self.config.max_probes_in_flight {
                    let _ = reply.send(Err(ProbeError::Busy));
                    return;
                }
                let transport = self.transport.clone();
                self.probes.spawn(async move {
                    let _ = reply.send(transport.probe(address).await.map_err(ProbeError::Failed));
                });
            }
            Command::Stop { reply } => {
                let _ = reply.send(());
            }
        }
    }

    /// Reports a connection of `peer` that closed before we heard of it, so that a newcomer is judged against what
    /// is really open.
    fn sync(&mut self, peer: NodeId) {
        let Some(conn) = self.core.current_conn(&peer) else { return };
        let Some(reason) = self.live.get(&conn).and_then(|l| l.conn.close_reason()) else { return };
        self.on_closed(Closed { peer, conn, reason });
    }

    fn on_dial_result(&mut self, target: DialTarget, result: Result<Upgraded, DialError>) {
        let now = Instant::now();
        match result {
            Ok(up) => {
                let candidate = Candidate {
                    id: up.node_info.id,
                    direction: Direction::Outbound,
                    remote_addr: up.remote_addr,
                    handshake: up.handshake,
                };
                self.sync(candidate.id);
                if let Ok(admitted) = self.core.dial_succeeded(target, candidate, now) {
                    self.spawn_peer(up, admitted);
                }
            }
            Err(e) => self.core.dial_failed(target, e, now),
        }
    }

    fn on_inbound(&mut self, inbound: Inbound) {
        match inbound {
            Inbound::Upgraded(up) => {
                let candidate = Candidate {
                    id: up.node_info.id,
                    direction: Direction::Inbound,
                    remote_addr: up.remote_addr,
                    handshake: up.handshake,
                };
                self.sync(candidate.id);
                if let Ok(admitted) = self.core.inbound(candidate, Instant::now()) {
                    self.spawn_peer(*up, admitted);
                }
            }
            Inbound::Rejected { remote_addr, peer, reason } => self.core.inbound_rejected(remote_addr, peer, reason),
        }
    }

    /// Runs an admitted connection: multiplexing, delivery to reactors, and a watcher that reports its end.
    fn spawn_peer(&mut self, up: Upgraded, admitted: Admitted) {
        let id = up.node_info.id;
        let logger = self.logger.new(o!("peer" => id.to_string()));
        let (conn, receivers) = match MConnection::spawn(up.conn, &self.descriptors, self.config.connection, logger) {
            Ok(spawned) => spawned,
            Err(e) => {
                // The settings were checked when the switch started; this cannot happen, but must not go unseen.
                error!(self.logger, "cannot run a connection"; "peer" => %id, "err" => %e);
                let reason = DisconnectReason::Connection(CloseReason::Local);
                self.core.closed(id, admitted.conn, reason, Instant::now());
                return;
            }
        };
        let info = Arc::new(PeerInfo {
            id,
            node_info: up.node_info,
            remote_addr: up.remote_addr,
            direction: up.direction,
            counted_as: admitted.counted_as,
            persistent: admitted.persistent,
            private: admitted.private,
            connected_since: SystemTime::now(),
            configured_address: admitted.configured_address,
        });
        let conn = Arc::new(conn);
        let stop_reason = Arc::new(OnceLock::new());
        let conn_id = admitted.conn;
        let live = Live { peer: id, info: info.clone(), conn: conn.clone(), stop_reason: stop_reason.clone() };
        self.live.insert(conn_id, live);
        // Listed before any reactor hears of it: whoever acts on `PeerUp` finds the peer in `Switch::peers`.
        self.publish(id);
        let previous = self.deliveries.remove(&id);
        let delivery = Delivery::start(info, conn.clone(), receivers, &self.inboxes, stop_reason, previous);
        self.deliveries.insert(id, delivery);
        self.watchers.spawn(async move { Closed { peer: id, conn: conn_id, reason: conn.closed().await } });
    }

    fn on_closed(&mut self, closed: Closed) {
        let Some(live) = self.live.remove(&closed.conn) else { return };
        let reason = live.stop_reason.get().cloned().unwrap_or(DisconnectReason::Connection(closed.reason));
        self.core.closed(closed.peer, closed.conn, reason, Instant::now());
        // Deliveries of peers that are gone, once finished, are no longer needed for ordering.
        let live_peers: std::collections::HashSet<NodeId> = self.live.values().map(|l| l.peer).collect();
        self.deliveries.retain(|peer, d| live_peers.contains(peer) || !d.settle());
        self.publish(closed.peer);
    }

    /// Publishes `peer`'s current connection (or its absence) in the snapshot. The table is changed in place unless
    /// a reader still holds the previous snapshot, so an update costs O(log n), not a copy of every peer.
    fn publish(&self, peer: NodeId) {
        let current = self
            .core
            .current_conn(&peer)
            .and_then(|conn| self.live.get(&conn))
            .map(|live| Connected { info: live.info.clone(), conn: live.conn.clone() });
        self.shared.peers.send_modify(|table| {
            let table: &mut PeerTable = Arc::make_mut(table);
            match current {
                Some(c) => table.insert(peer, c),
                None => table.remove(&peer),
            };
        });
    }

    async fn shutdown(mut self) {
        info!(self.logger, "switch stopping"; "peers" => self.live.len());
        // Stop accepting (the accept loop sees its outlet close, and aborts its pending handshakes) and dialing.
        drop(std::mem::replace(&mut self.inbound_rx, mpsc::channel(1).1));
        self.dials.shutdown().await;
        self.probes.shutdown().await;
        let grace = self.config.stop_grace;
        let mut closing = JoinSet::new();
        for live in self.live.values() {
            let _ = live.stop_reason.set(DisconnectReason::Shutdown);
            let conn = live.conn.clone();
            closing.spawn(async move {
                if tokio::time::timeout(grace, conn.close_gracefully()).await.is_err() {
                    conn.close();
                }
                conn.closed().await;
            });
        }
        while closing.join_next().await.is_some() {}
        self.closers.shutdown().await;
        self.watchers.shutdown().await;
        // Reactors get their last events unless they are stuck; a stuck reactor cannot hold us.
        let deadline = Instant::now() + grace;
        for (peer, delivery) in self.deliveries.drain() {
            if !delivery.finish_by(deadline).await {
                debug!(self.logger, "a reactor did not take its last events in time"; "peer" => %peer);
            }
        }
        if tokio::time::timeout(grace, &mut self.accept_task).await.is_err() {
            self.accept_task.abort();
        }
        for live in self.live.values() {
            let _ = self.events.send(SwitchEvent::PeerDisconnected {
                peer: live.peer,
                address: live.info.remote_addr,
                reason: DisconnectReason::Shutdown,
            });
        }
        self.shared.set_stopped();
        info!(self.logger, "switch stopped");
    }
}

/// A ban as operators see it.
fn summary(peer: NodeId, ban: Ban, now: Instant) -> BanSummary {
    BanSummary {
        peer,
        remaining: ban.until.saturating_duration_since(now),
        reason: ban.reason,
        by_operator: ban.by_operator,
    }
}
