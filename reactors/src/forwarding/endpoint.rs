//! In-process endpoints: an application in the same process as the connector, on an account without `node_id` or
//! `http`. The connector hands it the Prepares routed to that account and takes its answers back, both in batches:
//! one channel message per connector turn one way and per [`Endpoint::reply_all`] the other, however many
//! Prepares they carry.
//!
//! The queue to the endpoint is bounded in Prepares (the `capacity` given to
//! [`Connector::attach`](super::Connector::attach)): a Prepare that finds it full is rejected F02 at once, as one
//! whose link failed, rather than waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

use super::core::OutboundId;
use crate::accounts::AccountId;
use crate::ilp::{Prepare, Reply};

/// A Prepare for an in-process endpoint. Answer it with [`Endpoint::reply`] or [`Endpoint::reply_all`] (or a
/// [`Replier`]); dropping it unanswered leaves the packet to expire (R00 upstream), like a silent peer.
#[derive(Debug)]
pub struct IncomingPrepare {
    /// The Prepare.
    pub prepare: Prepare,
    pub(super) id: OutboundId,
    /// The account it was forwarded to (an answer is taken only from the account a Prepare went to, so it travels
    /// with the Prepare: any [`Replier`] of the connector answers it right).
    pub(super) account: AccountId,
}

/// The answer to one forwarded Prepare, as it goes back to the connector (in batches).
#[derive(Debug)]
pub(super) struct Outcome {
    pub(super) account: AccountId,
    pub(super) id: OutboundId,
    /// Its answer, or why it could not be delivered.
    pub(super) result: Result<Reply, String>,
}

/// The application's side of an in-process endpoint.
#[derive(Debug)]
pub struct Endpoint {
    prepares: mpsc::UnboundedReceiver<Vec<IncomingPrepare>>,
    queued: Arc<AtomicUsize>,
    replier: Replier,
}

impl Endpoint {
    /// The Prepares forwarded since the last call, in order (waits for at least one); `None` once the connector
    /// has stopped or attached another endpoint to the account.
    pub async fn recv(&mut self) -> Option<Vec<IncomingPrepare>> {
        let batch = self.prepares.recv().await?;
        self.queued.fetch_sub(batch.len(), Ordering::Relaxed);
        Some(batch)
    }

    /// Answers one Prepare.
    pub fn reply(&self, incoming: IncomingPrepare, reply: Reply) {
        self.replier.reply(incoming, reply);
    }

    /// Answers many Prepares in one message to the connector.
    pub fn reply_all(&self, replies: impl IntoIterator<Item = (IncomingPrepare, Reply)>) {
        self.replier.reply_all(replies);
    }

    /// A handle that answers this endpoint's Prepares from elsewhere (another task).
    pub fn replier(&self) -> Replier {
        self.replier.clone()
    }
}

/// Answers Prepares handed to in-process endpoints (each carries the account it went to, so any replier of the
/// connector answers it right); cheap to clone.
#[derive(Debug, Clone)]
pub struct Replier {
    outcomes: mpsc::UnboundedSender<Vec<Outcome>>,
}

impl Replier {
    /// Answers one Prepare.
    pub fn reply(&self, incoming: IncomingPrepare, reply: Reply) {
        self.reply_all([(incoming, reply)]);
    }

    /// Answers many Prepares in one message to the connector.
    pub fn reply_all(&self, replies: impl IntoIterator<Item = (IncomingPrepare, Reply)>) {
        let results: Vec<_> =
            replies.into_iter().map(|(i, reply)| Outcome { account: i.account, id: i.id, result: Ok(reply) }).collect();
        if !results.is_empty() {
            let _ = self.outcomes.send(results);
        }
    }
}

/// The connector's side of an endpoint: Prepares gathered during a turn, handed over together at its end.
#[derive(Debug)]
pub(super) struct EndpointQueue {
    tx: mpsc::UnboundedSender<Vec<IncomingPrepare>>,
    /// Handed over and not yet taken by [`Endpoint::recv`].
    queued: Arc<AtomicUsize>,
    capacity: usize,
    pending: Vec<IncomingPrepare>,
}

impl EndpointQueue {
    /// A new endpoint holding at most `capacity` Prepares not yet taken; its answers go to `outcomes`.
    pub(super) fn open(capacity: usize, outcomes: mpsc::UnboundedSender<Vec<Outcome>>) -> (EndpointQueue, Endpoint) {
        let (tx, prepares) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let queue = EndpointQueue { tx, queued: queued.clone(), capacity: capacity.max(1), pending: Vec::new() };
        (queue, Endpoint { prepares, queued, replier: Replier { outcomes } })
    }

    /// Queues a Prepare forwarded to `account` for the end of the turn, or refuses it when the endpoint holds
    /// `capacity` already.
    pub(super) fn push(&mut self, prepare: Prepare, id: OutboundId, account: AccountId) -> Result<(), &'static str> {
        if self.queued.load(Ordering::Relaxed) + self.pending.len() >= self.capacity {
            return Err("the endpoint's queue is full");
        }
        self.pending.push(IncomingPrepare { prepare, id, account });
        Ok(())
    }

    /// Hands this turn's Prepares over; returns the IDs of those that could not be (the endpoint is gone).
    pub(super) fn flush(&mut self) -> Vec<OutboundId> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        // The next turn's vector starts with room for as many as this one had.
        let room = self.pending.len();
        let batch = std::mem::replace(&mut self.pending, Vec::with_capacity(room));
        self.queued.fetch_add(batch.len(), Ordering::Relaxed);
        match self.tx.send(batch) {
            Ok(()) => Vec::new(),
            Err(mpsc::error::SendError(batch)) => {
                self.queued.fetch_sub(batch.len(), Ordering::Relaxed);
                batch.into_iter().map(|i| i.id).collect()
            }
        }
    }

    /// Whether the application dropped its [`Endpoint`].
    pub(super) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Prepares waiting for the end of the turn.
    pub(super) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::ilp::{Address, Fulfill, Timestamp};

    fn app() -> AccountId {
        AccountId::new("app").unwrap()
    }

    /// A Prepare for tests of the forwarding driver's parts.
    pub(in crate::forwarding) fn prepare() -> Prepare {
        Prepare {
            amount: 1,
            expires_at: Timestamp::from_unix_ms(0),
            execution_condition: [0; 32],
            destination: Address::parse("test.x").unwrap(),
            data: bytes::Bytes::new(),
        }
    }

    #[tokio::test]
    async fn a_turns_prepares_arrive_as_one_batch_and_count_against_the_capacity_until_taken() {
        let (outcomes, _rx) = mpsc::unbounded_channel();
        let (mut queue, mut endpoint) = EndpointQueue::open(3, outcomes);
        for id in 1..=3 {
            queue.push(prepare(), id, app()).unwrap();
        }
        assert!(queue.push(prepare(), 4, app()).is_err(), "a fourth is over the capacity");
        assert!(queue.flush().is_empty());
        assert!(queue.push(prepare(), 5, app()).is_err(), "handed over but not taken still counts");
        let batch = endpoint.recv().await.unwrap();
        assert_eq!(batch.iter().map(|i| i.id).collect::<Vec<_>>(), [1, 2, 3]);
        queue.push(prepare(), 6, app()).unwrap();
    }

    #[tokio::test]
    async fn answers_go_back_in_one_message_with_the_account() {
        let (outcomes, mut rx) = mpsc::unbounded_channel();
        let (mut queue, mut endpoint) = EndpointQueue::open(8, outcomes);
        queue.push(prepare(), 7, app()).unwrap();
        queue.push(prepare(), 8, app()).unwrap();
        queue.flush();
        let batch = endpoint.recv().await.unwrap();
        let fulfill = Reply::Fulfill(Fulfill { fulfillment: [1; 32], data: bytes::Bytes::new() });
        endpoint.reply_all(batch.into_iter().map(|i| (i, fulfill.clone())));
        let o = rx.try_recv().unwrap();
        assert!(o.iter().all(|o| o.account.as_str() == "app"));
        assert_eq!(o.iter().map(|o| o.id).collect::<Vec<_>>(), [7, 8]);
        assert!(rx.try_recv().is_err(), "one message for the whole batch");
    }

    #[test]
    fn prepares_for_a_dropped_endpoint_come_back_as_undeliverable() {
        let (outcomes, _rx) = mpsc::unbounded_channel();
        let (mut queue, endpoint) = EndpointQueue::open(8, outcomes);
        drop(endpoint);
        assert!(queue.is_closed());
        queue.push(prepare(), 9, app()).unwrap();
        assert_eq!(queue.flush(), [9]);
        queue.push(prepare(), 10, app()).unwrap();
        assert!(queue.has_pending());
    }
}
