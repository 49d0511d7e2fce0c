//! A reactor's inbox: its events in order, bounded in events, carried in batches.
//!
//! The delivery task of a connection first takes room in the inbox (it waits for one event's worth, and takes
//! whatever more is free, up to 64), then as many waiting messages as that room holds, and hands them over as one
//! queue entry: one queue operation and one acquisition of room per batch, not per message, and no message leaves
//! its connection's receive queue before there is room for it (beyond the one the task waits with, as before). The
//! reactor still takes events one by one ([`Inbox::recv`]) or as many as it likes ([`Inbox::recv_many`]). Room is
//! counted in events: at most the reactor's `inbox_capacity` wait in the inbox, plus the rest of the batch the
//! reactor is taking from.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};

use crate::delivery::ReactorEvent;

/// Events in one batch, at most (and at most the inbox's capacity).
pub(crate) const MAX_BATCH: usize = 64;

/// The reactor's end of its inbox.
#[derive(Debug)]
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<Vec<ReactorEvent>>,
    room: Arc<Semaphore>,
    /// The rest of the batch taken last.
    batch: std::vec::IntoIter<ReactorEvent>,
}

/// The switch's end of a reactor's inbox.
#[derive(Debug, Clone)]
pub(crate) struct InboxSender {
    tx: mpsc::UnboundedSender<Vec<ReactorEvent>>,
    room: Arc<Semaphore>,
    capacity: usize,
}

/// The reactor has dropped its inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InboxClosed;

/// A new inbox holding at most `capacity` events (at least one).
pub(crate) fn inbox(capacity: usize) -> (InboxSender, Inbox) {
    let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
    let (tx, rx) = mpsc::unbounded_channel();
    let room = Arc::new(Semaphore::new(capacity));
    (InboxSender { tx, room: room.clone(), capacity }, Inbox { rx, room, batch: Vec::new().into_iter() })
}

impl Inbox {
    /// The next event, waiting for one; `None` once the switch has stopped delivering to this reactor and every
    /// event has been taken. Cancel-safe.
    pub async fn recv(&mut self) -> Option<ReactorEvent> {
        loop {
            if let Some(event) = self.batch.next() {
                return Some(event);
            }
            let batch = self.rx.recv().await?;
            self.take(batch);
        }
    }

    /// Moves up to `limit` waiting events into `buffer`, waiting for at least one; returns how many (0 once the
    /// inbox has ended, or when `limit` is 0). Cancel-safe.
    pub async fn recv_many(&mut self, buffer: &mut Vec<ReactorEvent>, limit: usize) -> usize {
        if limit == 0 {
            return 0;
        }
        let mut n = 0;
        loop {
            while n < limit {
                let Some(event) = self.batch.next() else { break };
                buffer.push(event);
                n += 1;
            }
            if n == limit {
                return n;
            }
            // More without waiting, if some are queued; else wait only when nothing was taken yet.
            let batch = match self.rx.try_recv() {
                Ok(batch) => batch,
                Err(_) if n > 0 => return n,
                Err(_) => match self.rx.recv().await {
                    Some(batch) => batch,
                    None => return 0,
                },
            };
            self.take(batch);
        }
    }

    fn take(&mut self, batch: Vec<ReactorEvent>) {
        self.room.add_permits(batch.len());
        self.batch = batch.into_iter();
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        // Delivery tasks waiting for room learn that nobody will make any.
        self.room.close();
    }
}

impl InboxSender {
    /// Queues one event, waiting for room. Cancel-safe (nothing is taken until the event is queued).
    pub(crate) async fn send(&self, event: ReactorEvent) -> Result<(), InboxClosed> {
        self.room().await?.send(vec![event])
    }

    /// Room for at least one event: waits for one, then takes whatever more is free, up to 64 in all. Cancel-safe;
    /// room not used is given back.
    pub(crate) async fn room(&self) -> Result<Room<'_>, InboxClosed> {
        self.room.acquire().await.map_err(|_| InboxClosed)?.forget();
        let more = self.room.available_permits().min(MAX_BATCH.min(self.capacity) - 1);
        // At most MAX_BATCH: fits a u32. Another sender may have taken them meanwhile: then only the one.
        let more = match self.room.try_acquire_many(more as u32) {
            Ok(permits) => {
                permits.forget();
                more
            }
            Err(_) => 0,
        };
        Ok(Room { sender: self, n: 1 + more })
    }
}

/// Room taken in an inbox, for [`Room::len`] events.
#[derive(Debug)]
pub(crate) struct Room<'a> {
    sender: &'a InboxSender,
    n: usize,
}

impl Room<'_> {
    /// Events it holds.
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// Queues `events` (at most [`Room::len`]: callers stop there) and gives the rest of the room back.
    pub(crate) fn send(mut self, mut events: Vec<ReactorEvent>) -> Result<(), InboxClosed> {
        debug_assert!(events.len() <= self.n, "{} events for room of {}", events.len(), self.n);
        events.truncate(self.n);
        self.n -= events.len();
        if events.is_empty() {
            return Ok(());
        }
        self.sender.tx.send(events).map_err(|_| InboxClosed)
    }
}

impl Drop for Room<'_> {
    fn drop(&mut self) {
        self.sender.room.add_permits(self.n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::DisconnectReason;
    use ledgerwire_types::{NodeId, WireProfile};

    fn down(n: u8) -> ReactorEvent {
        let peer = NodeId::from_bytes([n; 20], WireProfile::Tm2);
        ReactorEvent::PeerDown { peer, reason: DisconnectReason::Error(n.to_string()) }
    }

    fn tag(e: &ReactorEvent) -> String {
        match e {
            ReactorEvent::PeerDown { reason: DisconnectReason::Error(s), .. } => s.clone(),
            other => format!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn events_come_out_one_by_one_in_order_across_batches() {
        let (tx, mut rx) = inbox(16);
        tx.room().await.unwrap().send(vec![down(1), down(2), down(3)]).unwrap();
        tx.send(down(4)).await.unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(tag(&rx.recv().await.unwrap()));
        }
        assert_eq!(seen, ["1", "2", "3", "4"]);
        drop(tx);
        assert!(rx.recv().await.is_none(), "the inbox ends with its senders");
    }

    #[tokio::test]
    async fn recv_many_takes_what_waits_up_to_the_limit_without_waiting_for_more() {
        let (tx, mut rx) = inbox(16);
        tx.room().await.unwrap().send(vec![down(1), down(2), down(3)]).unwrap();
        tx.room().await.unwrap().send(vec![down(4), down(5)]).unwrap();
        let mut buffer = Vec::new();
        assert_eq!(rx.recv_many(&mut buffer, 4).await, 4);
        assert_eq!(rx.recv_many(&mut buffer, 4).await, 1, "one was left; it does not wait for more");
        assert_eq!(buffer.iter().map(tag).collect::<Vec<_>>(), ["1", "2", "3", "4", "5"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_inbox_holds_the_sender_until_the_reactor_takes_events() {
        let (tx, mut rx) = inbox(2);
        let room = tx.room().await.unwrap();
        assert_eq!(room.len(), 2, "what is free is taken");
        room.send(vec![down(1), down(2)]).unwrap();
        let blocked = tokio::time::timeout(std::time::Duration::from_secs(5), tx.send(down(3))).await;
        assert!(blocked.is_err(), "no room: the third waits");
        assert_eq!(tag(&rx.recv().await.unwrap()), "1");
        tx.send(down(3)).await.unwrap();
    }

    #[tokio::test]
    async fn room_not_used_is_given_back() {
        let (tx, mut rx) = inbox(4);
        let room = tx.room().await.unwrap();
        assert_eq!(room.len(), 4);
        room.send(vec![down(1)]).unwrap();
        let room = tx.room().await.unwrap();
        assert_eq!(room.len(), 3, "three left while one waits");
        drop(room);
        assert_eq!(tag(&rx.recv().await.unwrap()), "1");
        assert_eq!(tx.room().await.unwrap().len(), 4, "all of it back");
    }

    #[tokio::test(start_paused = true)]
    async fn a_sender_waiting_for_room_learns_when_the_reactor_drops_its_inbox() {
        let (tx, rx) = inbox(1);
        tx.send(down(1)).await.unwrap();
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(down(2)).await }
        });
        tokio::task::yield_now().await;
        drop(rx);
        assert_eq!(waiting.await.unwrap(), Err(InboxClosed));
        assert_eq!(tx.send(down(3)).await, Err(InboxClosed));
    }
}
