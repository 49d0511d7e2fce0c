//! Answers owed to the Prepares of [`Connector::send_batch`](super::Connector::send_batch).
//!
//! A batch travels to the connector with one copy of its sender's answer channel, not one per Prepare: the
//! connector keeps each channel once, in a table, with the number of its Prepares still open, and a Prepare's
//! answer route is that table's index and the Prepare's tag (plain numbers: nothing to count up and down across
//! threads per Prepare). Answers gathered during a connector turn go to each channel as one message at its end.
//!
//! Exactly once: a batch answers T00 every Prepare it still holds when it is dropped (a stopped connector, a
//! cancelled `send_batch`, a connector that panics while taking it in: it hands its Prepares over one at a time); a
//! connector that stops with Prepares open answers those (T00, or the answer it had ready) through
//! [`AnswerChannels::answer`] before it drops the table. One case is left: a connector that panics (a bug) inside
//! the forwarding core while taking a Prepare in, before the core holds it, leaves that one Prepare unanswered, and
//! its sender, which holds its own copy of the channel, does not see the channel close. Channel indices carry a generation, so an index kept by
//! mistake after its channel is gone reaches nobody rather than another sender.

use std::collections::VecDeque;

use slab::Slab;
use tokio::sync::mpsc;

use crate::ilp::{ErrorCode, Prepare, Reject, Reply};

/// Where the answers to [`Connector::send_batch`](super::Connector::send_batch) go: each with its Prepare's tag,
/// in batches.
pub type BatchAnswers = mpsc::UnboundedSender<Vec<(u64, Reply)>>;

/// The Reject for a Prepare whose connector stopped before answering it (no `triggeredBy`: it is not a node's
/// answer).
pub(super) fn stopped() -> Reject {
    Reject {
        code: ErrorCode::T00_INTERNAL_ERROR,
        triggered_by: None,
        message: "the connector stopped.".into(),
        data: bytes::Bytes::new(),
    }
}

/// Tagged Prepares on their way to the connector, with the channel their answers go to. Dropped, it answers each
/// Prepare it still holds T00 (one message); the connector takes them out one at a time.
#[derive(Debug)]
pub(super) struct TaggedBatch {
    to: BatchAnswers,
    prepares: VecDeque<(u64, Prepare)>,
}

impl TaggedBatch {
    /// `prepares`, answered on `to`.
    pub(super) fn new(to: &BatchAnswers, prepares: Vec<(u64, Prepare)>) -> TaggedBatch {
        TaggedBatch { to: to.clone(), prepares: prepares.into() }
    }

    /// Prepares in the batch.
    pub(super) fn len(&self) -> usize {
        self.prepares.len()
    }

    /// Splits the first `n` Prepares off into a batch of their own, answered on the same channel.
    pub(super) fn split_first(&mut self, n: usize) -> TaggedBatch {
        let rest = self.prepares.split_off(n.min(self.prepares.len()));
        let first = std::mem::replace(&mut self.prepares, rest);
        TaggedBatch { to: self.to.clone(), prepares: first }
    }

    /// The channel the answers go to.
    pub(super) fn to(&self) -> &BatchAnswers {
        &self.to
    }

    /// The next Prepare, which is now the taker's to answer (the batch still answers the rest if it is dropped).
    pub(super) fn pop(&mut self) -> Option<(u64, Prepare)> {
        self.prepares.pop_front()
    }
}

impl Drop for TaggedBatch {
    fn drop(&mut self) {
        if !self.prepares.is_empty() {
            let _ = self.to.send(self.prepares.drain(..).map(|(tag, _)| (tag, Reply::Reject(stopped()))).collect());
        }
    }
}

/// A channel of [`AnswerChannels`]: its index and the generation that index had when the channel was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AnswerChannel {
    index: usize,
    generation: u64,
}

/// Where one Prepare's answer goes: a channel of [`AnswerChannels`] and the Prepare's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AnswerSlot {
    channel: AnswerChannel,
    tag: u64,
}

/// The answer channels of the batch senders with Prepares open, and the answers gathered for them this turn.
#[derive(Debug, Default)]
pub(super) struct AnswerChannels {
    channels: Slab<Channel>,
    /// Channels with answers gathered this turn, in the order of their first.
    touched: Vec<usize>,
    next_generation: u64,
}

#[derive(Debug)]
struct Channel {
    generation: u64,
    to: BatchAnswers,
    /// Prepares taken in and not yet answered.
    open: usize,
    gathered: Vec<(u64, Reply)>,
    /// Room the next turn's vector starts with: as many as this channel's last message had (growing a vector of
    /// answers by doubling copies them).
    room: usize,
}

/// The room a channel's first vector of answers starts with.
const FIRST_ROOM: usize = 16;

impl AnswerChannels {
    /// Takes in `n` Prepares answered on `to` and returns the channel (its index and generation) for their
    /// [`AnswerSlot`]s. A channel
    /// already open (the same sender's earlier batch) is found by a look through the open ones: once per batch, and
    /// there are as many as there are in-process senders with Prepares in flight.
    pub(super) fn open(&mut self, to: BatchAnswers, n: usize) -> AnswerChannel {
        if let Some((index, c)) = self.channels.iter_mut().find(|(_, c)| c.to.same_channel(&to)) {
            c.open += n;
            return AnswerChannel { index, generation: c.generation };
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        let index = self.channels.insert(Channel { generation, to, open: n, gathered: Vec::new(), room: FIRST_ROOM });
        AnswerChannel { index, generation }
    }

    /// The slot of the Prepare tagged `tag` on `channel`.
    pub(super) fn slot(channel: AnswerChannel, tag: u64) -> AnswerSlot {
        AnswerSlot { channel, tag }
    }

    /// Gathers the answer for `slot`, sent with the rest of its channel's at [`AnswerChannels::flush`]. False if
    /// its channel is gone (which the open counts rule out: every open slot's channel stays until its last answer
    /// is flushed).
    pub(super) fn answer(&mut self, slot: AnswerSlot, reply: Reply) -> bool {
        let AnswerChannel { index, generation } = slot.channel;
        let Some(c) = self.channels.get_mut(index).filter(|c| c.generation == generation) else {
            return false;
        };
        if c.gathered.is_empty() {
            c.gathered.reserve(c.room);
            self.touched.push(index);
        }
        c.gathered.push((slot.tag, reply));
        c.open = c.open.saturating_sub(1);
        true
    }

    /// Sends each channel the answers gathered since the last flush, as one message, and forgets the channels
    /// with nothing left open.
    pub(super) fn flush(&mut self) {
        for i in self.touched.drain(..) {
            let Some(c) = self.channels.get_mut(i) else { continue };
            let answers = std::mem::take(&mut c.gathered);
            c.room = answers.len().clamp(FIRST_ROOM, super::PREPARES_PER_TURN);
            // A sender that stopped listening has given up on its answers.
            let _ = c.to.send(answers);
            if c.open == 0 {
                self.channels.remove(i);
            }
        }
    }

    /// Channels with Prepares open or answers not yet flushed.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.channels.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forwarding::endpoint::tests::prepare;
    use crate::ilp::Fulfill;
    use bytes::Bytes;

    fn fulfill() -> Reply {
        Reply::Fulfill(Fulfill { fulfillment: [0; 32], data: Bytes::new() })
    }

    #[test]
    fn a_batch_dropped_before_it_is_taken_answers_each_prepare_t00_in_one_message() {
        let (to, mut rx) = mpsc::unbounded_channel();
        let mut batch = TaggedBatch::new(&to, (0..5).map(|t| (t, prepare())).collect());
        let mut first = batch.split_first(2);
        drop(batch);
        let rest = rx.try_recv().unwrap();
        assert_eq!(rest.iter().map(|(t, _)| *t).collect::<Vec<_>>(), [2, 3, 4]);
        assert!(rest.iter().all(|(_, r)| matches!(r, Reply::Reject(r) if r.code == ErrorCode::T00_INTERNAL_ERROR)));
        assert_eq!(first.pop().map(|(t, _)| t), Some(0));
        drop(first);
        let rest = rx.try_recv().unwrap();
        assert_eq!(
            rest.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            [1],
            "a Prepare taken out is the taker's to answer"
        );
    }

    #[test]
    fn answers_of_one_turn_go_to_their_channel_as_one_message() {
        let (to, mut rx) = mpsc::unbounded_channel();
        let mut table = AnswerChannels::default();
        let a = table.open(to.clone(), 2);
        let b = table.open(to, 1);
        assert_eq!(a, b, "the same sender's batches share one channel");
        assert!(table.answer(AnswerChannels::slot(a, 7), fulfill()));
        assert!(table.answer(AnswerChannels::slot(a, 9), fulfill()));
        assert!(rx.try_recv().is_err(), "nothing is sent before the turn ends");
        table.flush();
        assert_eq!(rx.try_recv().unwrap().iter().map(|(t, _)| *t).collect::<Vec<_>>(), [7, 9]);
        assert_eq!(table.len(), 1, "one Prepare is still open");
        assert!(table.answer(AnswerChannels::slot(a, 8), fulfill()));
        table.flush();
        assert_eq!(rx.try_recv().unwrap().len(), 1);
        assert_eq!(table.len(), 0, "a channel with nothing open is forgotten");
        // Its index, reused by another sender, does not take a stale slot's answer.
        let (other, mut other_rx) = mpsc::unbounded_channel();
        let c = table.open(other, 1);
        assert_eq!(c.index, a.index);
        assert!(!table.answer(AnswerChannels::slot(a, 8), fulfill()));
        table.flush();
        assert!(other_rx.try_recv().is_err());
    }

    #[test]
    fn different_senders_get_their_own_answers() {
        let ((one, mut rx1), (two, mut rx2)) = (mpsc::unbounded_channel(), mpsc::unbounded_channel());
        let mut table = AnswerChannels::default();
        let (a, b) = (table.open(one, 1), table.open(two, 1));
        assert_ne!(a, b);
        assert!(table.answer(AnswerChannels::slot(b, 2), fulfill()));
        assert!(table.answer(AnswerChannels::slot(a, 1), fulfill()));
        table.flush();
        assert_eq!(rx1.try_recv().unwrap()[0].0, 1);
        assert_eq!(rx2.try_recv().unwrap()[0].0, 2);
    }
}
