//! How peers' events reach reactors: one delivery task per connection and reactor, each on its own.
//!
//! For one connection and one reactor, the task hands over, in this order: `PeerUp` with a [`PeerHandle`], the
//! messages of the reactor's channels (in order per channel, each with the instant it was read), and `PeerDown`
//! after the last of them. Tasks of different reactors never wait for each other, so a reactor that stops
//! consuming delays only its own events; the others get their `PeerUp`, messages and `PeerDown` on time.
//!
//! What a stalled reactor costs is bounded. Its delivery task waits at the reactor's inbox; the connection keeps
//! receiving into the stalled channels' receive queues until one is full, and then the connection closes
//! (`RecvQueueFull`, see `ledgerwire_conn::mconnection`). A connection that ends while its `PeerUp` still waits for
//! room in the reactor's inbox is never reported to that reactor at all, nor are its messages, so a peer that
//! reconnects while a reactor is stalled does not pile up connections waiting to be reported. (Once `PeerUp` is in
//! the inbox, `PeerDown` follows, even if the connection has closed meanwhile.)
//!
//! When a connection replaces another to the same peer, each reactor gets the old connection's `PeerDown` before
//! the new one's `PeerUp`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use ledgerwire_conn::mconnection::{ChannelId, ChannelReceiver, CloseReason, Incoming, MConnection};
use ledgerwire_types::NodeId;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::inbox::InboxSender;
use crate::peer::{DisconnectReason, PeerHandle, PeerInfo};

/// What a reactor hears from the switch.
#[derive(Debug)]
pub enum ReactorEvent {
    /// A peer connected; keep the handle to send to it.
    PeerUp(PeerHandle),
    /// A message arrived on one of the reactor's channels.
    Message {
        /// The sender.
        peer: NodeId,
        /// The channel.
        channel: ChannelId,
        /// The message.
        msg: Bytes,
        /// When the message was read from the socket: compute deadlines from this, not from when the event is
        /// taken, so they do not drift while the inbox backs up.
        received_at: Instant,
    },
    /// A peer is gone; no more messages will come from this connection.
    PeerDown {
        /// The peer.
        peer: NodeId,
        /// Why.
        reason: DisconnectReason,
    },
}

/// A registered reactor's inbox, as the switch keeps it.
#[derive(Clone, Debug)]
pub(crate) struct ReactorInbox {
    pub(crate) channels: Arc<[ChannelId]>,
    pub(crate) tx: InboxSender,
}

/// What a delivery task leaves when it ends: the previous connection's task if it ended before that one had (its
/// connection closed first), for the next connection to wait on in its place. The chain stays one task deep.
#[derive(Debug)]
pub(crate) struct Unfinished(Option<JoinHandle<Unfinished>>);

/// The delivery tasks of one connection, one per reactor (in registration order).
#[derive(Debug, Default)]
pub(crate) struct Delivery {
    tasks: Vec<Option<JoinHandle<Unfinished>>>,
}

impl Delivery {
    /// Starts delivering the connection's events to every reactor. `previous` is the delivery of the connection this
    /// one replaces: each reactor's `PeerUp` waits for that reactor's previous `PeerDown`. `stop_reason` is read when
    /// the connection ends (the switch sets it before closing a connection on purpose).
    pub(crate) fn start(
        info: Arc<PeerInfo>,
        conn: Arc<MConnection>,
        receivers: Vec<ChannelReceiver>,
        inboxes: &[ReactorInbox],
        stop_reason: Arc<OnceLock<DisconnectReason>>,
        previous: Option<Delivery>,
    ) -> Delivery {
        let mut mine: Vec<Vec<ChannelReceiver>> = inboxes.iter().map(|_| Vec::new()).collect();
        for rx in receivers {
            if let Some(i) = inboxes.iter().position(|inbox| inbox.channels.contains(&rx.id())) {
                mine[i].push(rx);
            }
        }
        let mut previous = previous.unwrap_or_default().tasks.into_iter();
        let tasks = inboxes
            .iter()
            .zip(mine)
            .map(|(inbox, receivers)| {
                let handle = PeerHandle::new(info.clone(), conn.clone(), inbox.channels.clone(), stop_reason.clone());
                let task = deliver(
                    inbox.tx.clone(),
                    handle,
                    receivers,
                    conn.clone(),
                    stop_reason.clone(),
                    previous.next().flatten(),
                );
                Some(tokio::spawn(task))
            })
            .collect();
        Delivery { tasks }
    }

    /// Whether every reactor has had the last event of this connection and of every connection before it. A task
    /// that ended first hands its unfinished predecessor over; that one takes its place here.
    pub(crate) fn settle(&mut self) -> bool {
        for slot in &mut self.tasks {
            while let Some(task) = slot {
                if !task.is_finished() {
                    break;
                }
                let mut cx = Context::from_waker(Waker::noop());
                *slot = match Pin::new(task).poll(&mut cx) {
                    Poll::Ready(Ok(Unfinished(previous))) => previous,
                    Poll::Ready(Err(_)) | Poll::Pending => None,
                };
            }
        }
        self.tasks.iter().all(Option::is_none)
    }

    /// Waits for every task and the predecessors they hand over (for a stop), aborting what still runs at
    /// `deadline`.
    pub(crate) async fn finish_by(self, deadline: Instant) -> bool {
        let mut all_done = true;
        for mut next in self.tasks {
            while let Some(mut task) = next.take() {
                match tokio::time::timeout_at(deadline, &mut task).await {
                    Ok(Ok(Unfinished(previous))) => next = previous,
                    Ok(Err(_)) => {}
                    Err(_) => {
                        task.abort();
                        all_done = false;
                    }
                }
            }
        }
        all_done
    }
}

/// One connection's events for one reactor. First waits for the previous connection's task (and whatever that one
/// handed over); if this connection closes first, it hands that task over instead, unreported itself.
async fn deliver(
    inbox: InboxSender,
    handle: PeerHandle,
    mut receivers: Vec<ChannelReceiver>,
    conn: Arc<MConnection>,
    stop_reason: Arc<OnceLock<DisconnectReason>>,
    mut previous: Option<JoinHandle<Unfinished>>,
) -> Unfinished {
    let peer = handle.id();
    while let Some(mut task) = previous.take() {
        tokio::select! {
            done = &mut task => previous = done.ok().and_then(|Unfinished(p)| p),
            _ = conn.closed() => return Unfinished(Some(task)),
        }
    }
    tokio::select! {
        sent = inbox.send(ReactorEvent::PeerUp(handle)) => if sent.is_err() { return Unfinished(None) },
        _ = conn.closed() => return Unfinished(None),
    }
    let mut next = 0;
    while let Some(first) = std::future::poll_fn(|cx| poll_any(&mut receivers, &mut next, cx)).await {
        // Room first (waiting with this one message, as a single send would), then as many waiting messages as it
        // holds go along in one batch (in order per channel): the rest stay in their byte-bounded receive queues.
        let Ok(room) = inbox.room().await else { return Unfinished(None) };
        let mut batch = Vec::with_capacity(room.len().min(8));
        let mut more = Some(first);
        while let Some((channel, Incoming { data, received_at })) = more.take() {
            batch.push(ReactorEvent::Message { peer, channel, msg: data, received_at });
            if batch.len() < room.len() {
                more = try_any(&mut receivers, &mut next);
            }
        }
        if room.send(batch).is_err() {
            return Unfinished(None);
        }
    }
    let close: CloseReason = conn.closed().await;
    let reason = stop_reason.get().cloned().unwrap_or(DisconnectReason::Connection(close));
    let _ = inbox.send(ReactorEvent::PeerDown { peer, reason }).await;
    Unfinished(None)
}

/// The next message from any of `receivers`, taking turns from `next` on; `None` once all have ended.
fn poll_any(
    receivers: &mut [ChannelReceiver],
    next: &mut usize,
    cx: &mut Context<'_>,
) -> Poll<Option<(ChannelId, Incoming)>> {
    let n = receivers.len();
    let mut open = 0;
    for k in 0..n {
        let i = (*next + k) % n;
        match receivers[i].poll_recv(cx) {
            Poll::Ready(Some(msg)) => {
                *next = (i + 1) % n;
                return Poll::Ready(Some((receivers[i].id(), msg)));
            }
            Poll::Ready(None) => {}
            Poll::Pending => open += 1,
        }
    }
    if open == 0 { Poll::Ready(None) } else { Poll::Pending }
}

/// The next message already queued on any of `receivers`, taking turns from `next` on; `None` if none is.
fn try_any(receivers: &mut [ChannelReceiver], next: &mut usize) -> Option<(ChannelId, Incoming)> {
    let n = receivers.len();
    for k in 0..n {
        let i = (*next + k) % n;
        if let Some(msg) = receivers[i].try_recv() {
            *next = (i + 1) % n;
            return Some((receivers[i].id(), msg));
        }
    }
    None
}
