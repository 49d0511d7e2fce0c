//! The switch core: admission, replacement, limits, bans and dial scheduling, as a state machine without I/O.
//!
//! Like `quinn-proto`, it is fed events and the current time, and answers with decisions and [`Action`]s; it
//! never touches a socket, a task or a clock. The [actor](super::actor) drives it: it dials what the core says,
//! spawns connections the core admits, closes the ones it names and publishes its events. Every rule below is
//! therefore tested here, without sockets.
//!
//! - **Admission** of an upgraded connection (dialed or accepted): a banned peer is refused; a second connection
//!   to a peer is settled by the simultaneous-dial tie-break; a non-persistent peer must fit its direction's
//!   limit. All of it is decided before anything is acted on, so a refused connection never costs an existing one.
//! - **Replacement.** When the tie-break keeps the new connection, the old one is closed. The new one counts in its
//!   own direction if that has room, and otherwise takes over the old one's place (a peer that connected outbound
//!   stays counted as outbound). So the swap never needs room (refusing it would leave this side with the old
//!   connection, which the other side closes by the same tie-break, and both would end), and swaps never let a
//!   direction's count grow past its limit.
//! - **Limits** count open, non-persistent peers per direction (the direction each was admitted in); outbound dials
//!   in flight count too.
//! - **Bans** refuse a peer's connections and dials until they expire.
//! - **Dials** come from a time-ordered queue, at most `max_dials_in_flight` at once. Persistent peers are dialed at
//!   their configured address, and again after every failure or drop, with backoff.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use ledgerwire_types::random::SplitMix64;
use ledgerwire_types::{HostAddress, NodeId};
use tokio::time::Instant;

use super::backoff::Backoff;
use super::config::SwitchConfig;
use super::dial_queue::{DialQueue, DialTarget, Pushed};
use super::handle::SwitchError;
use crate::events::SwitchEvent;
use crate::peer::DisconnectReason;
use crate::transport::{DialError, Direction, RejectReason};

/// Most bans remembered at once; beyond it, the automatic ban closest to expiry is forgotten first (operators' bans
/// never are).
const MAX_BANS: usize = 10_000;

/// A connection's number, unique for the life of a switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ConnId(u64);

/// An upgraded connection waiting for a verdict.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    pub(crate) id: NodeId,
    pub(crate) direction: Direction,
    pub(crate) remote_addr: SocketAddr,
    pub(crate) handshake: std::time::Duration,
}

/// The verdict on an admitted connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Admitted {
    pub(crate) conn: ConnId,
    pub(crate) persistent: bool,
    pub(crate) private: bool,
    pub(crate) configured_address: Option<HostAddress>,
    pub(crate) counted_as: Direction,
}

/// What the core asks its driver to do.
#[derive(Clone, Debug)]
pub(crate) enum Action {
    /// Dial this target (resolve, connect, upgrade) and report the outcome.
    Dial(DialTarget),
    /// Close a connection: at once, or after sending what is queued (`graceful`).
    Close { peer: NodeId, conn: ConnId, reason: DisconnectReason, graceful: bool },
    /// Publish an event.
    Emit(SwitchEvent),
}

#[derive(Clone, Debug, PartialEq)]
enum State {
    Open,
    /// We decided to close it; the driver has not reported it closed yet.
    Closing(DisconnectReason),
}

#[derive(Clone, Debug)]
struct Peer {
    conn: ConnId,
    /// The current connection's direction.
    direction: Direction,
    /// The limit the peer counts against: its connection's direction, or the place of the connection it replaced.
    counted_as: Direction,
    persistent: bool,
    remote_addr: SocketAddr,
    state: State,
}

/// Two live connections to one peer: whether the new one replaces the existing one. Connections in the same
/// direction keep the existing one. A simultaneous dial (one each way) keeps the connection dialed by the lower node
/// ID, so both sides choose the same connection without talking to each other.
pub fn keep_new_connection(ours: NodeId, theirs: NodeId, existing: Direction, new: Direction) -> bool {
    if existing == new {
        return false;
    }
    let new_dialer = if new == Direction::Outbound { ours } else { theirs };
    new_dialer == ours.min(theirs)
}

/// The longest wait the core schedules (a ban or a backoff): about 100 years. Longer ones are cut to it, far from
/// where the clock (and the timer wheel built on it) would overflow.
pub(crate) const FOREVER: Duration = Duration::from_secs(100 * 365 * 86_400);

/// `now + d`, with `d` cut to [`FOREVER`].
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d.min(FOREVER)).unwrap_or(now)
}

/// The switch's decisions.
#[derive(Debug)]
pub(crate) struct SwitchCore {
    id: NodeId,
    max_inbound: usize,
    max_outbound: usize,
    max_dials_in_flight: usize,
    backoff: Backoff,
    rng: SplitMix64,
    persistent: HashMap<NodeId, HostAddress>,
    private: HashSet<NodeId>,
    queue: DialQueue,
    /// Dials in flight, and whether each is a persistent peer's.
    dialing: HashMap<NodeId, bool>,
    peers: HashMap<NodeId, Peer>,
    bans: HashMap<NodeId, Ban>,
    next_conn: u64,
    actions: VecDeque<Action>,
}

/// A peer refused until `until`, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ban {
    pub(crate) until: Instant,
    pub(crate) reason: String,
    /// An operator's ban is never evicted to make room.
    pub(crate) by_operator: bool,
}

/// The ban table is full of operators' bans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BansFull;

impl SwitchCore {
    /// A core for node `id` with `config`'s limits, persistent and private peers; persistent peers are due at
    /// `now`. `seed` drives the redial jitter.
    pub(crate) fn new(id: NodeId, config: &SwitchConfig, seed: u64, now: Instant) -> Self {
        let mut core = SwitchCore {
            id,
            max_inbound: config.max_inbound,
            max_outbound: config.max_outbound,
            max_dials_in_flight: config.max_dials_in_flight.max(1),
            backoff: config.backoff,
            rng: SplitMix64::new(seed),
            persistent: config.persistent_peers.iter().map(|a| (a.id(), a.clone())).collect(),
            private: config.private_peer_ids.iter().copied().collect(),
            queue: DialQueue::new(config.dial_queue_capacity),
            dialing: HashMap::new(),
            peers: HashMap::new(),
            bans: HashMap::new(),
            next_conn: 0,
            actions: VecDeque::new(),
        };
        for address in config.persistent_peers.iter().filter(|a| a.id() != id) {
            core.queue.push(DialTarget { address: address.clone(), persistent: true, attempts: 0 }, now);
        }
        core
    }

    /// The next action to carry out.
    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`SwitchCore::handle_timeout`] has something to do.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.dialing.len() < self.max_dials_in_flight { self.queue.next_due() } else { None }
    }

    fn emit(&mut self, event: SwitchEvent) {
        self.actions.push_back(Action::Emit(event));
    }

    /// The connection currently admitted for `peer` (open or closing).
    pub(crate) fn current_conn(&self, peer: &NodeId) -> Option<ConnId> {
        self.peers.get(peer).map(|p| p.conn)
    }

    /// Whether `peer` is banned at `now`; an expired ban is forgotten.
    fn is_banned(&mut self, peer: &NodeId, now: Instant) -> bool {
        self.banned_until(peer, now).is_some()
    }

    /// When `peer`'s ban ends, if it is banned at `now`; an expired ban is forgotten.
    fn banned_until(&mut self, peer: &NodeId, now: Instant) -> Option<Instant> {
        match self.bans.get(peer) {
            Some(ban) if ban.until > now => Some(ban.until),
            Some(_) => {
                self.bans.remove(peer);
                None
            }
            None => None,
        }
    }

    /// Open, non-persistent peers counted against `direction`'s limit.
    fn count(&self, direction: Direction) -> usize {
        self.peers.values().filter(|p| p.state == State::Open && !p.persistent && p.counted_as == direction).count()
    }

    /// Queues a dial to `address`. A persistent peer is redialed forever at this address and exempt from limits; an
    /// ordinary dial to a persistent peer is ignored (its own schedule dials it).
    pub(crate) fn dial(&mut self, address: HostAddress, persistent: bool, now: Instant) -> Result<(), SwitchError> {
        let id = address.id();
        if id == self.id {
            return Err(SwitchError::DialSelf);
        }
        if !persistent && self.persistent.contains_key(&id) {
            return Ok(());
        }
        if persistent {
            self.persistent.insert(id, address.clone());
        }
        match self.queue.push(DialTarget { address, persistent, attempts: 0 }, now) {
            Pushed::Full => Err(SwitchError::DialQueueFull),
            Pushed::Added | Pushed::Merged => Ok(()),
        }
    }

    /// Starts the dials that are due, as many as may run.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        while self.dialing.len() < self.max_dials_in_flight {
            let Some(target) = self.queue.pop_due(now) else { break };
            let id = target.address.id();
            if id == self.id
                || self.dialing.contains_key(&id)
                || self.peers.get(&id).is_some_and(|p| p.state == State::Open)
            {
                continue;
            }
            let address = target.address.to_string();
            if let Some(until) = self.banned_until(&id, now) {
                let reason = DialError::Rejected(RejectReason::Banned);
                self.emit(SwitchEvent::DialFailed { peer: id, address, reason });
                // A persistent peer stays persistent: it is dialed again when the ban ends.
                if self.persistent.contains_key(&id) {
                    self.queue.push(target, until);
                }
                continue;
            }
            if !target.persistent {
                let ordinary_dials = self.dialing.values().filter(|persistent| !**persistent).count();
                if self.count(Direction::Outbound) + ordinary_dials >= self.max_outbound {
                    let reason = DialError::Rejected(RejectReason::OverLimit("max_num_outbound_peers"));
                    self.emit(SwitchEvent::DialFailed { peer: id, address, reason });
                    continue;
                }
            }
            self.dialing.insert(id, target.persistent);
            self.actions.push_back(Action::Dial(target));
        }
    }

    /// Retry number `retry` of a persistent peer (0 = the first after a failure or a drop) waits
    /// `backoff.delay(retry)`: 1 s, 2 s, 4 s, … up to 10 min, with jitter.
    /// A banned peer waits for the end of its ban instead.
    fn requeue_persistent(&mut self, id: NodeId, retry: u32, now: Instant) {
        if let Some(address) = self.persistent.get(&id).cloned() {
            let at = later(now, self.backoff.delay(retry, self.rng.next_signed_unit()));
            let at = self.banned_until(&id, now).map_or(at, |until| at.max(until));
            self.queue.push(DialTarget { address, persistent: true, attempts: retry.saturating_add(1) }, at);
        }
    }

    /// A dial failed before producing a connection.
    pub(crate) fn dial_failed(&mut self, target: DialTarget, reason: DialError, now: Instant) {
        let id = target.address.id();
        self.dialing.remove(&id);
        self.emit(SwitchEvent::DialFailed { peer: id, address: target.address.to_string(), reason });
        if self.persistent.contains_key(&id) {
            self.requeue_persistent(id, target.attempts, now);
        }
    }

    /// A dial produced an upgraded connection: admit it, or say why not (and retry a persistent peer).
    pub(crate) fn dial_succeeded(
        &mut self,
        target: DialTarget,
        candidate: Candidate,
        now: Instant,
    ) -> Result<Admitted, RejectReason> {
        let id = target.address.id();
        self.dialing.remove(&id);
        match self.admit(candidate.clone(), now) {
            Ok(admitted) => Ok(admitted),
            // The tie-break kept the other connection: we are connected, nothing to retry.
            Err(RejectReason::Duplicate) => {
                let reason = RejectReason::Duplicate;
                self.emit(SwitchEvent::PeerRejected { address: candidate.remote_addr, peer: Some(id), reason });
                Err(RejectReason::Duplicate)
            }
            Err(reason) => {
                let address = target.address.to_string();
                self.emit(SwitchEvent::DialFailed { peer: id, address, reason: DialError::Rejected(reason.clone()) });
                if self.persistent.contains_key(&id) {
                    self.requeue_persistent(id, target.attempts, now);
                }
                Err(reason)
            }
        }
    }

    /// An inbound connection passed the transport: admit it, or say why not.
    pub(crate) fn inbound(&mut self, candidate: Candidate, now: Instant) -> Result<Admitted, RejectReason> {
        let (address, peer) = (candidate.remote_addr, candidate.id);
        self.admit(candidate, now).inspect_err(|reason| {
            self.emit(SwitchEvent::PeerRejected { address, peer: Some(peer), reason: reason.clone() });
        })
    }

    /// The transport refused an inbound connection.
    pub(crate) fn inbound_rejected(&mut self, address: SocketAddr, peer: Option<NodeId>, reason: RejectReason) {
        self.emit(SwitchEvent::PeerRejected { address, peer, reason });
    }

    /// Decides on a connection, then acts: nothing changes unless it is admitted.
    fn admit(&mut self, candidate: Candidate, now: Instant) -> Result<Admitted, RejectReason> {
        let id = candidate.id;
        if self.is_banned(&id, now) {
            return Err(RejectReason::Banned);
        }
        let persistent = self.persistent.contains_key(&id);
        let swapped = match self.peers.get(&id) {
            Some(existing) if existing.state == State::Open => {
                if !keep_new_connection(self.id, id, existing.direction, candidate.direction) {
                    return Err(RejectReason::Duplicate);
                }
                Some(existing.counted_as)
            }
            _ => None,
        };
        let (max, what) = match candidate.direction {
            Direction::Inbound => (self.max_inbound, "max_num_inbound_peers"),
            Direction::Outbound => (self.max_outbound, "max_num_outbound_peers"),
        };
        let room = persistent || self.count(candidate.direction) < max;
        let counted_as = match swapped {
            // A swap counts in its own direction if there is room, else keeps the old connection's place.
            Some(place) if !room => place,
            Some(_) => candidate.direction,
            None if room => candidate.direction,
            None => return Err(RejectReason::OverLimit(what)),
        };
        // Decided: from here on, act.
        if let Some(old) = self.peers.remove(&id) {
            let reason = match old.state {
                State::Open => {
                    let reason = DisconnectReason::Replaced;
                    self.actions.push_back(Action::Close {
                        peer: id,
                        conn: old.conn,
                        reason: reason.clone(),
                        graceful: false,
                    });
                    reason
                }
                // Closing but not yet reported: report it now; its own report will be stale.
                State::Closing(reason) => reason,
            };
            self.emit(SwitchEvent::PeerDisconnected { peer: id, address: old.remote_addr, reason });
        }
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        let private = self.private.contains(&id);
        self.peers.insert(
            id,
            Peer {
                conn,
                direction: candidate.direction,
                counted_as,
                persistent,
                remote_addr: candidate.remote_addr,
                state: State::Open,
            },
        );
        self.queue.remove(&id);
        self.emit(SwitchEvent::PeerConnected {
            peer: id,
            address: candidate.remote_addr,
            direction: candidate.direction,
            persistent,
            private,
            handshake: candidate.handshake,
        });
        Ok(Admitted { conn, persistent, private, configured_address: self.persistent.get(&id).cloned(), counted_as })
    }

    /// A connection has closed (whoever closed it). Stale reports, of connections already replaced, are ignored.
    pub(crate) fn closed(&mut self, peer: NodeId, conn: ConnId, reason: DisconnectReason, now: Instant) {
        if self.peers.get(&peer).is_none_or(|p| p.conn != conn) {
            return;
        }
        let Some(p) = self.peers.remove(&peer) else { return };
        self.emit(SwitchEvent::PeerDisconnected { peer, address: p.remote_addr, reason });
        if self.persistent.contains_key(&peer) {
            self.requeue_persistent(peer, 0, now);
        }
    }

    fn close(&mut self, peer: NodeId, reason: DisconnectReason, graceful: bool) -> bool {
        let Some(p) = self.peers.get_mut(&peer).filter(|p| p.state == State::Open) else { return false };
        p.state = State::Closing(reason.clone());
        let conn = p.conn;
        self.actions.push_back(Action::Close { peer, conn, reason, graceful });
        true
    }

    /// Disconnects `peer` at once; with `forget`, it also stops being persistent (until restart). Returns whether it
    /// was connected.
    pub(crate) fn stop_peer(&mut self, peer: NodeId, reason: DisconnectReason, forget: bool) -> bool {
        if forget && self.persistent.remove(&peer).is_some() {
            self.queue.remove(&peer);
        }
        self.close(peer, reason, false)
    }

    /// Closes the connection to `peer` once what is queued for it is sent.
    pub(crate) fn finish_peer(&mut self, peer: NodeId, reason: String) -> bool {
        self.close(peer, DisconnectReason::Finished(reason), true)
    }

    /// Refuses `peer` until `now + duration` (at most [`FOREVER`]) and disconnects it; returns whether the ban is
    /// kept. A persistent peer stays persistent: it is dialed again when the ban ends.
    ///
    /// A ban never shortens one in force: the later end holds. An operator's ban stays an operator's, with the
    /// latest operator's reason; otherwise the reason of the ban that ends later is kept.
    ///
    /// At most [`MAX_BANS`] are kept. To make room, expired bans go first, then the automatic ban that ends soonest;
    /// operators' bans are never evicted. When every ban is an operator's, a new automatic ban is not kept (the peer
    /// is still disconnected) and a new operator's ban is refused. A ban of zero length only disconnects.
    pub(crate) fn ban(
        &mut self,
        peer: NodeId,
        duration: Duration,
        reason: String,
        by_operator: bool,
        now: Instant,
    ) -> Result<bool, BansFull> {
        let new = Ban { until: later(now, duration), reason, by_operator };
        let close_reason = DisconnectReason::Banned(new.reason.clone());
        let kept = if new.until <= now {
            false
        } else if let Some(old) = self.bans.get_mut(&peer).filter(|old| old.until > now) {
            let reason = match (old.by_operator, new.by_operator) {
                (_, true) => new.reason,
                (true, false) => std::mem::take(&mut old.reason),
                (false, false) if new.until >= old.until => new.reason,
                (false, false) => std::mem::take(&mut old.reason),
            };
            *old = Ban { until: old.until.max(new.until), reason, by_operator: old.by_operator || new.by_operator };
            true
        } else if self.make_room_for(&peer, now).is_ok() {
            self.bans.insert(peer, new);
            true
        } else if by_operator {
            return Err(BansFull);
        } else {
            false
        };
        // A persistent peer is dialed again when the ban ends, not before.
        if let Some(until) = self.banned_until(&peer, now) {
            self.queue.remove(&peer);
            if let Some(address) = self.persistent.get(&peer).cloned() {
                self.queue.push(DialTarget { address, persistent: true, attempts: 0 }, until);
            }
        }
        self.close(peer, close_reason, false);
        Ok(kept)
    }

    /// Frees a place in the ban table for `peer` if it is full; see [`SwitchCore::ban`].
    fn make_room_for(&mut self, peer: &NodeId, now: Instant) -> Result<(), BansFull> {
        if self.bans.len() < MAX_BANS || self.bans.contains_key(peer) {
            return Ok(());
        }
        self.bans.retain(|_, ban| ban.until > now);
        if self.bans.len() < MAX_BANS {
            return Ok(());
        }
        let automatic = self.bans.iter().filter(|(_, ban)| !ban.by_operator);
        match automatic.min_by_key(|(_, ban)| ban.until).map(|(id, _)| *id) {
            Some(soonest) => {
                self.bans.remove(&soonest);
                // Its redial was queued for the end of the ban, which is now.
                if let Some(address) = self.persistent.get(&soonest).cloned() {
                    self.queue.push(DialTarget { address, persistent: true, attempts: 0 }, now);
                }
                Ok(())
            }
            None => Err(BansFull),
        }
    }

    /// Lifts `peer`'s ban; a persistent peer is dialed at once. Returns whether it was banned.
    pub(crate) fn unban(&mut self, peer: &NodeId, now: Instant) -> bool {
        if self.banned_until(peer, now).is_none() {
            return false;
        }
        self.bans.remove(peer);
        if let Some(address) = self.persistent.get(peer).cloned() {
            self.queue.push(DialTarget { address, persistent: true, attempts: 0 }, now);
        }
        true
    }

    /// `peer`'s ban in force at `now`, if any.
    pub(crate) fn ban_of(&mut self, peer: &NodeId, now: Instant) -> Option<Ban> {
        self.banned_until(peer, now)?;
        self.bans.get(peer).cloned()
    }

    /// The bans in force at `now`, soonest to end first (expired ones are forgotten).
    pub(crate) fn bans(&mut self, now: Instant) -> Vec<(NodeId, Ban)> {
        self.bans.retain(|_, ban| ban.until > now);
        let mut bans: Vec<_> = self.bans.iter().map(|(id, ban)| (*id, ban.clone())).collect();
        bans.sort_by_key(|(id, ban)| (ban.until, *id));
        bans
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{Inbound, Outbound};
    use ledgerwire_types::{NodeKey, WireProfile};

    fn id(seed: u8) -> NodeId {
        NodeKey::from_seed(&[seed; 32]).node_id(WireProfile::Tm2)
    }

    fn addr(peer: NodeId, port: u16) -> HostAddress {
        HostAddress::parse(&format!("{peer}@127.0.0.1:{port}"), WireProfile::Tm2).unwrap()
    }

    fn cand(peer: NodeId, direction: Direction, port: u16) -> Candidate {
        Candidate { id: peer, direction, remote_addr: ([127, 0, 0, 1], port).into(), handshake: Duration::ZERO }
    }

    fn config() -> SwitchConfig {
        SwitchConfig::new(([127, 0, 0, 1], 0).into(), "net")
    }

    /// Two IDs ordered: (lower, higher).
    fn ordered(a: u8, b: u8) -> (NodeId, NodeId) {
        (id(a).min(id(b)), id(a).max(id(b)))
    }

    fn drain(core: &mut SwitchCore) -> Vec<Action> {
        std::iter::from_fn(|| core.poll_action()).collect()
    }

    fn closes(actions: &[Action]) -> Vec<(NodeId, ConnId, DisconnectReason)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Close { peer, conn, reason, .. } => Some((*peer, *conn, reason.clone())),
                _ => None,
            })
            .collect()
    }

    fn kinds(actions: &[Action]) -> Vec<&'static str> {
        actions
            .iter()
            .map(|a| match a {
                Action::Dial(_) => "dial",
                Action::Close { .. } => "close",
                Action::Emit(e) => e.kind(),
            })
            .collect()
    }

    #[test]
    fn both_sides_of_a_simultaneous_dial_keep_the_same_connection() {
        let (low, high) = ordered(1, 2);
        // The low node dialed connection X (outbound for low, inbound for high); the high node dialed Y.
        // Whichever each side admitted first, both end with X.
        for (low_first, high_first) in
            [(Outbound, Inbound), (Inbound, Outbound), (Outbound, Outbound), (Inbound, Inbound)]
        {
            let low_keeps_x = if low_first == Outbound {
                !keep_new_connection(low, high, Outbound, Inbound)
            } else {
                keep_new_connection(low, high, Inbound, Outbound)
            };
            let high_keeps_x = if high_first == Inbound {
                !keep_new_connection(high, low, Inbound, Outbound)
            } else {
                keep_new_connection(high, low, Outbound, Inbound)
            };
            assert!(low_keeps_x && high_keeps_x, "{low_first:?} {high_first:?}");
        }
        // Same direction twice: keep what we have.
        assert!(!keep_new_connection(low, high, Inbound, Inbound));
        assert!(!keep_new_connection(low, high, Outbound, Outbound));
    }

    #[test]
    fn a_replacement_at_a_full_limit_swaps_the_connections_instead_of_losing_both() {
        // We are the higher ID; the peer (lower) dialed us while our dial to it was already connected. The
        // tie-break keeps the peer's dial, an inbound connection, and our inbound limit is full.
        let (peer, me) = ordered(1, 2);
        let mut c = SwitchConfig { max_inbound: 1, ..config() };
        c.max_outbound = 5;
        let t = Instant::now();
        let mut core = SwitchCore::new(me, &c, 7, t);
        core.inbound(cand(id(3), Inbound, 1000), t).unwrap(); // fills the inbound limit
        let ours = core.dial_succeeded(
            DialTarget { address: addr(peer, 26656), persistent: false, attempts: 0 },
            cand(peer, Outbound, 26656),
            t,
        );
        let ours = ours.unwrap().conn;
        drain(&mut core);
        let theirs = core.inbound(cand(peer, Inbound, 40000), t).expect("the swap is admitted despite the full limit");
        let actions = drain(&mut core);
        assert_eq!(closes(&actions), vec![(peer, ours, DisconnectReason::Replaced)], "only the old one closes");
        assert_eq!(kinds(&actions), vec!["close", "peer_disconnected", "peer_connected"]);
        assert_eq!(core.current_conn(&peer), Some(theirs.conn));
        // The old connection's own close report comes later and changes nothing.
        core.closed(peer, ours, DisconnectReason::Replaced, t);
        assert!(drain(&mut core).is_empty());
        assert_eq!(core.current_conn(&peer), Some(theirs.conn));
        // The swapped-in connection keeps the outbound place: inbound is still full with the filler alone, and
        // outbound still counts the peer.
        assert_eq!((core.count(Inbound), core.count(Outbound)), (1, 1));
        assert!(matches!(
            core.inbound(cand(id(4), Inbound, 2000), t),
            Err(RejectReason::OverLimit("max_num_inbound_peers"))
        ));
    }

    #[test]
    fn swaps_never_grow_a_direction_past_its_limit() {
        // An attacker with IDs below ours answers each of our dials by dialing back; each time the tie-break keeps
        // its inbound connection. The swaps fill inbound, then keep their outbound places: never more peers than
        // the two limits together.
        let me = id(200);
        let c = SwitchConfig { max_inbound: 2, max_outbound: 2, ..config() };
        let t = Instant::now();
        let mut core = SwitchCore::new(me, &c, 7, t);
        let attackers: Vec<NodeId> = (0..50u8).map(id).filter(|a| *a < me).take(6).collect();
        let target = |a: NodeId| DialTarget { address: addr(a, 1), persistent: false, attempts: 0 };
        let mut admitted = 0;
        for (i, a) in attackers.iter().enumerate() {
            let port = 1000 + i as u16;
            if core.dial_succeeded(target(*a), cand(*a, Outbound, port), t).is_ok() {
                core.inbound(cand(*a, Inbound, port + 100), t).expect("the swap");
                admitted += 1;
            }
        }
        assert!(attackers.len() >= 5, "enough low IDs to try more than the limits allow");
        assert_eq!(admitted, 4, "the inbound places, then the outbound ones");
        assert_eq!((core.count(Inbound), core.count(Outbound)), (2, 2));
        assert_eq!(core.peers.len(), 4);
    }

    #[test]
    fn a_refused_replacement_leaves_the_existing_connection_alone() {
        let (peer, me) = ordered(1, 2);
        let t = Instant::now();
        let mut core = SwitchCore::new(me, &config(), 7, t);
        let first = core.inbound(cand(peer, Inbound, 1), t).unwrap().conn;
        drain(&mut core);
        // Same direction again: the existing connection stays, the new one is a duplicate.
        assert!(matches!(core.inbound(cand(peer, Inbound, 2), t), Err(RejectReason::Duplicate)));
        // A ban decided meanwhile refuses the newcomer before the tie-break is acted on.
        core.bans.insert(peer, Ban { until: t + Duration::from_secs(60), reason: "abuse".into(), by_operator: false });
        assert!(matches!(core.inbound(cand(peer, Outbound, 3), t), Err(RejectReason::Banned)));
        let actions = drain(&mut core);
        assert!(closes(&actions).is_empty(), "nothing was closed: {actions:?}");
        assert_eq!(kinds(&actions), vec!["peer_rejected", "peer_rejected"]);
        assert_eq!(core.current_conn(&peer), Some(first));
    }

    #[test]
    fn limits_count_open_ordinary_connections_and_persistent_peers_are_exempt() {
        let t = Instant::now();
        let vip = id(9);
        let mut c = SwitchConfig { max_inbound: 2, ..config() };
        c.persistent_peers = vec![addr(vip, 1)];
        let mut core = SwitchCore::new(id(100), &c, 7, t);
        core.inbound(cand(id(1), Inbound, 1), t).unwrap();
        core.inbound(cand(id(2), Inbound, 2), t).unwrap();
        assert!(matches!(
            core.inbound(cand(id(3), Inbound, 3), t),
            Err(RejectReason::OverLimit("max_num_inbound_peers"))
        ));
        core.inbound(cand(vip, Inbound, 4), t).expect("persistent peers are not counted");
        // A peer we are closing no longer counts.
        assert!(core.stop_peer(id(1), DisconnectReason::Operator, false));
        core.inbound(cand(id(3), Inbound, 3), t).unwrap();
        assert!(!core.stop_peer(id(1), DisconnectReason::Operator, false), "already closing");
    }

    #[test]
    fn dials_start_when_due_at_most_max_in_flight_and_outbound_dials_count_against_the_limit() {
        let t = Instant::now();
        let c = SwitchConfig { max_dials_in_flight: 2, max_outbound: 3, ..config() };
        let mut core = SwitchCore::new(id(100), &c, 7, t);
        assert_eq!(core.dial(addr(id(100), 1), false, t), Err(SwitchError::DialSelf));
        for i in 1..=5u8 {
            core.dial(addr(id(i), u16::from(i)), false, t + Duration::from_secs(u64::from(i))).unwrap();
        }
        assert_eq!(core.poll_timeout(), Some(t + Duration::from_secs(1)));
        core.handle_timeout(t);
        assert!(drain(&mut core).is_empty(), "nothing due yet");
        core.handle_timeout(t + Duration::from_secs(10));
        let dials = kinds(&drain(&mut core));
        assert_eq!(dials, vec!["dial", "dial"], "two in flight at most");
        assert_eq!(core.poll_timeout(), None, "no room for more dials");
        // One succeeds, one fails: room for the next two; the outbound limit (3) counts the open one and the
        // dial in flight, so the fifth is dropped with an event.
        let target = |i: u8| DialTarget { address: addr(id(i), u16::from(i)), persistent: false, attempts: 0 };
        core.dial_succeeded(target(1), cand(id(1), Outbound, 1), t).unwrap();
        core.dial_failed(target(2), DialError::ConnectTimeout, t);
        drain(&mut core);
        core.handle_timeout(t + Duration::from_secs(10));
        assert_eq!(kinds(&drain(&mut core)), vec!["dial", "dial"]);
        core.dial_succeeded(target(3), cand(id(3), Outbound, 3), t).unwrap();
        core.dial_succeeded(target(4), cand(id(4), Outbound, 4), t).unwrap();
        drain(&mut core);
        core.dial(addr(id(6), 6), false, t).unwrap();
        core.handle_timeout(t);
        let actions = drain(&mut core);
        assert!(
            matches!(
                &actions[..],
                [Action::Emit(SwitchEvent::DialFailed { reason: DialError::Rejected(RejectReason::OverLimit(_)), .. })]
            ),
            "{actions:?}"
        );
    }

    #[test]
    fn persistent_peers_are_redialed_with_backoff_after_failures_and_drops() {
        let t0 = Instant::now();
        let vip = id(9);
        let mut c = config();
        c.persistent_peers = vec![addr(vip, 26656)];
        let mut core = SwitchCore::new(id(100), &c, 7, t0);
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..6 {
            core.handle_timeout(now);
            let Some(Action::Dial(target)) = core.poll_action() else { panic!("a dial") };
            assert_eq!(target.address, addr(vip, 26656), "always the configured address");
            core.dial_failed(target, DialError::ConnectTimeout, now);
            drain(&mut core);
            let next = core.poll_timeout().unwrap();
            waits.push((next - now).as_secs_f64());
            now = next;
        }
        for (i, (got, want)) in waits.iter().zip([1.0, 2.0, 4.0, 8.0, 16.0, 32.0]).enumerate() {
            assert!((got - want).abs() <= want * 0.1 + 1e-9, "retry {i}: {got} s, want {want} s ± 10%");
        }
        // Connected, then dropped by the peer: redialed after the first backoff step.
        core.handle_timeout(now);
        let Some(Action::Dial(target)) = core.poll_action() else { panic!("a dial") };
        let conn = core.dial_succeeded(target, cand(vip, Outbound, 26656), now).unwrap().conn;
        drain(&mut core);
        core.closed(vip, conn, DisconnectReason::Connection(ledgerwire_conn::CloseReason::PeerClosed), now);
        let delay = core.poll_timeout().unwrap() - now;
        assert!(delay >= Duration::from_millis(900) && delay <= Duration::from_millis(1100), "{delay:?}");
        // An ordinary dial to a persistent peer is left to the persistent schedule; the operator can forget it.
        core.dial(addr(vip, 1), false, now).unwrap();
        assert!(!core.stop_peer(vip, DisconnectReason::Operator, true));
        assert_eq!(core.poll_timeout(), None, "forgotten: no more redials");
    }

    #[test]
    fn a_banned_peer_is_refused_and_not_dialed_until_the_ban_expires() {
        let t = Instant::now();
        let mut core = SwitchCore::new(id(100), &config(), 7, t);
        core.inbound(cand(id(1), Inbound, 1), t).unwrap();
        drain(&mut core);
        core.ban(id(1), Duration::from_secs(60), "abuse".into(), false, t).unwrap();
        let actions = drain(&mut core);
        assert!(matches!(&closes(&actions)[..], [(_, _, DisconnectReason::Banned(r))] if r == "abuse"));
        assert!(matches!(core.inbound(cand(id(1), Inbound, 2), t), Err(RejectReason::Banned)));
        assert_eq!(kinds(&drain(&mut core)), vec!["peer_rejected"]);
        core.dial(addr(id(1), 1), false, t).unwrap();
        core.handle_timeout(t);
        assert!(matches!(
            &drain(&mut core)[..],
            [Action::Emit(SwitchEvent::DialFailed { reason: DialError::Rejected(RejectReason::Banned), .. })]
        ));
        let later = t + Duration::from_secs(61);
        core.inbound(cand(id(1), Inbound, 3), later).expect("the ban expired");
        // A ban of any length never overflows the clock.
        core.ban(id(2), Duration::MAX, "forever".into(), false, t).unwrap();
        assert!(core.is_banned(&id(2), t + Duration::from_secs(10 * 365 * 86_400)));
    }

    #[test]
    fn a_banned_persistent_peer_is_dialed_again_when_the_ban_ends() {
        let t = Instant::now();
        let (vip, ban) = (id(9), Duration::from_secs(600));
        let mut c = config();
        c.persistent_peers = vec![addr(vip, 26656)];
        let mut core = SwitchCore::new(id(100), &c, 7, t);
        core.handle_timeout(t);
        let Some(Action::Dial(target)) = core.poll_action() else { panic!("a dial") };
        let conn = core.dial_succeeded(target, cand(vip, Outbound, 26656), t).unwrap().conn;
        drain(&mut core);

        // Banned while connected: no redial is even tried until the ban ends.
        core.ban(vip, ban, "abuse".into(), false, t).unwrap();
        drain(&mut core);
        core.closed(vip, conn, DisconnectReason::Banned("abuse".into()), t);
        drain(&mut core);
        assert_eq!(core.poll_timeout(), Some(t + ban), "queued for the end of the ban");
        // A dial asked for meanwhile is refused, and the redial stays queued.
        core.dial(addr(vip, 26656), true, t + Duration::from_secs(1)).unwrap();
        core.handle_timeout(t + Duration::from_secs(1));
        assert_eq!(kinds(&drain(&mut core)), vec!["dial_failed"], "refused while banned");
        assert_eq!(core.poll_timeout(), Some(t + ban));
        core.handle_timeout(t + ban);
        let Some(Action::Dial(target)) = core.poll_action() else { panic!("dialed once the ban is over") };
        assert_eq!(target.address, addr(vip, 26656));

        // Banned while waiting between failed dials: dialed when the ban ends, not at the next backoff step.
        let now = t + ban;
        core.dial_failed(target, DialError::ConnectTimeout, now);
        drain(&mut core);
        assert!(core.poll_timeout().is_some_and(|at| at < now + Duration::from_secs(2)));
        core.ban(vip, ban, "again".into(), false, now).unwrap();
        assert_eq!(core.poll_timeout(), Some(now + ban));

        // Banned while a dial is in flight: its result is refused, and the redial waits for the ban.
        let now = now + ban;
        core.handle_timeout(now);
        let Some(Action::Dial(target)) = core.poll_action() else { panic!("a dial") };
        core.ban(vip, ban, "in flight".into(), false, now).unwrap();
        let refused = core.dial_succeeded(target, cand(vip, Outbound, 26656), now);
        assert!(matches!(refused, Err(RejectReason::Banned)), "{refused:?}");
        drain(&mut core);
        assert_eq!(core.poll_timeout(), Some(now + ban));
    }

    #[test]
    fn a_ban_never_shortens_another_and_operators_bans_are_never_evicted() {
        let t = Instant::now();
        let mut core = SwitchCore::new(id(100), &config(), 7, t);
        let (hour, day) = (Duration::from_secs(3600), Duration::from_secs(86_400));
        core.ban(id(1), day, "operator".into(), true, t).unwrap();
        core.ban(id(1), hour, "discovery abuse".into(), false, t).unwrap();
        let ban = core.ban_of(&id(1), t).unwrap();
        assert_eq!((ban.until, ban.reason.as_str(), ban.by_operator), (t + day, "operator", true));
        core.ban(id(1), 2 * day, "longer".into(), false, t).unwrap();
        let ban = core.ban_of(&id(1), t).unwrap();
        assert_eq!((ban.until, ban.reason.as_str(), ban.by_operator), (t + 2 * day, "operator", true), "still theirs");
        // An operator's shorter ban takes over a longer automatic one: the later end, the operator's reason.
        core.ban(id(5), day, "discovery abuse".into(), false, t).unwrap();
        core.ban(id(5), hour, "operator".into(), true, t).unwrap();
        let ban = core.ban_of(&id(5), t).unwrap();
        assert_eq!((ban.until, ban.reason.as_str(), ban.by_operator), (t + day, "operator", true));
        // Between automatic bans, the later one's reason.
        core.ban(id(6), day, "first".into(), false, t).unwrap();
        core.ban(id(6), hour, "second".into(), false, t).unwrap();
        assert_eq!(core.ban_of(&id(6), t).unwrap().reason, "first");
        for n in [5, 6] {
            core.unban(&id(n), t);
        }

        // A full table: the operator's ban ends soonest, but the automatic ban that ends soonest makes room.
        let peer = |n: usize| {
            let mut bytes = [0xee; 20];
            bytes[..8].copy_from_slice(&(n as u64).to_le_bytes());
            NodeId::from_bytes(bytes, WireProfile::Tm2)
        };
        core.unban(&id(1), t);
        core.ban(id(1), Duration::from_secs(10), "operator".into(), true, t).unwrap();
        core.dial(addr(peer(1), 1), true, t).unwrap();
        for n in 1..MAX_BANS {
            core.ban(peer(n), hour + Duration::from_secs(n as u64), "automatic".into(), false, t).unwrap();
        }
        assert_eq!(core.poll_timeout(), Some(t + hour + Duration::from_secs(1)), "persistent peer(1) waits");
        assert_eq!(core.ban(id(2), day, "newcomer".into(), false, t), Ok(true));
        assert!(core.ban_of(&id(1), t).is_some(), "the operator's ban stays");
        assert!(core.ban_of(&peer(1), t).is_none(), "the soonest automatic ban made room");
        assert_eq!(core.poll_timeout(), Some(t), "no longer banned: dialed now");
        assert_eq!(core.bans(t).len(), MAX_BANS);
        assert_eq!(core.ban(id(4), Duration::ZERO, "zero".into(), true, t), Ok(false), "only disconnects");
        assert!(core.ban_of(&peer(2), t).is_some(), "nothing made room for it");

        // Only operators' bans: an automatic ban still disconnects but is not kept; an operator's is refused.
        core.bans.values_mut().for_each(|b| b.by_operator = true);
        let conn = core.inbound(cand(id(3), Inbound, 3), t).unwrap().conn;
        drain(&mut core);
        assert_eq!(core.ban(id(3), hour, "automatic".into(), false, t), Ok(false));
        assert_eq!(closes(&drain(&mut core)), vec![(id(3), conn, DisconnectReason::Banned("automatic".into()))]);
        assert!(core.ban_of(&id(3), t).is_none());
        assert_eq!(core.ban(id(3), hour, "operator".into(), true, t), Err(BansFull));
        assert!(drain(&mut core).is_empty(), "a refused ban does nothing");
        // Expired bans always make room.
        core.ban(id(3), hour, "operator".into(), true, t + Duration::from_secs(11)).unwrap();
    }

    #[test]
    fn bans_are_listed_until_they_end_and_lifting_one_dials_a_persistent_peer_at_once() {
        let t = Instant::now();
        let (vip, other) = (id(9), id(1));
        let mut c = config();
        c.persistent_peers = vec![addr(vip, 26656)];
        let mut core = SwitchCore::new(id(100), &c, 7, t);
        core.ban(vip, Duration::from_secs(600), "operator".into(), true, t).unwrap();
        core.ban(other, Duration::from_secs(60), "abuse".into(), false, t).unwrap();
        let listed: Vec<_> = core.bans(t).into_iter().map(|(id, ban)| (id, ban.reason)).collect();
        assert_eq!(listed, vec![(other, "abuse".to_owned()), (vip, "operator".to_owned())], "soonest first");

        core.handle_timeout(t);
        assert!(drain(&mut core).is_empty(), "the persistent peer waits for its ban");
        let later = t + Duration::from_secs(5);
        assert!(core.unban(&vip, later));
        assert!(!core.unban(&vip, later), "already lifted");
        core.handle_timeout(later);
        let Some(Action::Dial(target)) = core.poll_action() else { panic!("dialed at once") };
        assert_eq!(target.address, addr(vip, 26656));
        core.inbound(cand(other, Inbound, 2), later).expect_err("the other ban stands");
        assert!(core.bans(t + Duration::from_secs(60)).is_empty(), "neither a lifted ban nor an ended one is listed");
        assert!(!core.unban(&other, t + Duration::from_secs(61)), "already ended");
    }

    #[test]
    fn a_connection_closing_on_our_side_is_reported_once_even_if_a_new_one_arrives_first() {
        let t = Instant::now();
        let mut core = SwitchCore::new(id(100), &config(), 7, t);
        let old = core.inbound(cand(id(1), Inbound, 1), t).unwrap().conn;
        assert!(core.finish_peer(id(1), "done".into()));
        let actions = drain(&mut core);
        assert!(matches!(&actions[..], [_, Action::Close { graceful: true, .. }]));
        let new = core.inbound(cand(id(1), Inbound, 2), t).unwrap().conn;
        let actions = drain(&mut core);
        assert_eq!(kinds(&actions), vec!["peer_disconnected", "peer_connected"], "no second close");
        core.closed(id(1), old, DisconnectReason::Finished("done".into()), t);
        assert!(drain(&mut core).is_empty(), "the stale report is ignored");
        assert_eq!(core.current_conn(&id(1)), Some(new));
    }
}
