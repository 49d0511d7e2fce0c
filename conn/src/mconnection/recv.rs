//! The receive task: reads packets, answers liveness, reassembles messages and hands them to per-channel queues.
//!
//! Delivery never waits for a consumer. Each channel has its own queue, bounded in bytes by the channel's
//! `recv_buffer_capacity` (each message counts its length plus [`MESSAGE_OVERHEAD`]; one message always fits). A
//! slow consumer therefore backs up only its own queue while pings, pongs and other channels keep flowing. Once any
//! queue is more than half full the task yields after each batch of packets, so consumers sharing its thread get to
//! run before anyone is judged to have stalled. If a
//! message arrives for a channel whose queue is full, the connection closes with
//! [`CloseReason::RecvQueueFull`]: the protocol has no per-channel flow control, and the alternatives are to stall
//! every channel (a slow reactor would then make healthy peers time out, as in the reference implementations) or to
//! drop messages that reactors expect to arrive.
//!
//! Messages completed by one read from the socket go to their channel's queue together (one queue operation and one
//! update of the counters per channel and read, not per message); the consumer takes them one by one. A batch
//! counts as queued until the consumer takes its first message.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncBufReadExt, AsyncRead};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::flow::TokenBucket;
use super::packet::{self, Packet, PacketError, PacketLimits};
use super::send::Signals;
use super::status::Counters;
use super::{ChannelId, CloseReason};
use crate::SecretReader;

/// Bytes each queued message counts beyond its length, so that empty messages are bounded too.
pub const MESSAGE_OVERHEAD: usize = 64;

/// A complete message and the instant its last bytes were read from the socket.
///
/// The instant is taken when the receive task read the data, not when the consumer takes the message, so deadlines
/// computed from it (a request's expiry, a round-trip time) do not drift while the message waits in a queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    /// The message.
    pub data: Bytes,
    /// When it was read from the socket.
    pub received_at: Instant,
}

/// The consumer's end of one channel's receive queue.
#[derive(Debug)]
pub struct ChannelReceiver {
    id: ChannelId,
    rx: mpsc::UnboundedReceiver<Vec<Incoming>>,
    counters: Arc<Counters>,
    index: usize,
    /// The rest of the batch taken last.
    batch: std::vec::IntoIter<Incoming>,
}

impl ChannelReceiver {
    /// The channel.
    pub fn id(&self) -> ChannelId {
        self.id
    }

    /// The next complete message, or `None` once the connection has closed and the queue is empty.
    pub async fn recv(&mut self) -> Option<Incoming> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next message: `Ready(None)` once the connection has closed and the queue is empty.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Incoming>> {
        loop {
            if let Some(msg) = self.batch.next() {
                return Poll::Ready(Some(msg));
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(batch)) => self.take(batch),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// The next message if one is queued.
    pub fn try_recv(&mut self) -> Option<Incoming> {
        loop {
            if let Some(msg) = self.batch.next() {
                return Some(msg);
            }
            let batch = self.rx.try_recv().ok()?;
            self.take(batch);
        }
    }

    fn take(&mut self, batch: Vec<Incoming>) {
        let c = &self.counters.channels[self.index];
        let bytes: usize = batch.iter().map(|m| m.data.len() + MESSAGE_OVERHEAD).sum();
        c.recv_queued_msgs.fetch_sub(batch.len(), Relaxed);
        c.recv_queued_bytes.fetch_sub(bytes, Relaxed);
        self.batch = batch.into_iter();
    }
}

/// Receive-side state of one channel.
struct RecvChannel {
    recving: BytesMut,
    tx: mpsc::UnboundedSender<Vec<Incoming>>,
    /// Messages completed by the current read, handed over together once it is decoded.
    pending: Vec<Incoming>,
    /// Their queue cost (length plus [`MESSAGE_OVERHEAD`] each).
    pending_cost: usize,
}

/// The task's end of one channel's queue.
pub(crate) type ChannelSender = mpsc::UnboundedSender<Vec<Incoming>>;

/// Creates the per-channel queues: the task's ends and the consumers' ends.
pub(crate) fn queues(counters: &Arc<Counters>) -> (Vec<ChannelSender>, Vec<ChannelReceiver>) {
    counters
        .channels
        .iter()
        .enumerate()
        .map(|(index, c)| {
            let (tx, rx) = mpsc::unbounded_channel();
            let batch = Vec::new().into_iter();
            (tx, ChannelReceiver { id: c.desc.id, rx, counters: counters.clone(), index, batch })
        })
        .unzip()
}

/// The receive task's state.
pub(crate) struct Receiver<R> {
    pub(crate) reader: SecretReader<R>,
    pub(crate) limits: PacketLimits,
    pub(crate) counters: Arc<Counters>,
    pub(crate) signals: Arc<Signals>,
    pub(crate) bucket: TokenBucket,
    /// Channel index by ID.
    pub(crate) index: [Option<u8>; 256],
    channels: Vec<RecvChannel>,
    buf: BytesMut,
    /// When the bytes in `buf` were read.
    read_at: Instant,
    /// A queue passed half its capacity: let consumers run before reading on.
    crowded: bool,
}

impl<R: AsyncRead + Unpin> Receiver<R> {
    pub(crate) fn new(
        reader: SecretReader<R>,
        limits: PacketLimits,
        counters: Arc<Counters>,
        signals: Arc<Signals>,
        bucket: TokenBucket,
        senders: Vec<ChannelSender>,
    ) -> Self {
        let mut index = [None; 256];
        for (i, c) in counters.channels.iter().enumerate() {
            // At most 256 distinct channels, so i fits in a u8.
            index[usize::from(c.desc.id)] = Some(i as u8);
        }
        let channels = senders
            .into_iter()
            .map(|tx| RecvChannel { recving: BytesMut::new(), tx, pending: Vec::new(), pending_cost: 0 })
            .collect();
        let (buf, read_at, crowded) = (BytesMut::new(), Instant::now(), false);
        Receiver { reader, limits, counters, signals, bucket, index, channels, buf, read_at, crowded }
    }

    /// Reads and dispatches until the connection fails or the peer closes it.
    pub(crate) async fn run(mut self) -> CloseReason {
        loop {
            let failed = loop {
                match packet::decode(&self.limits, &mut self.buf) {
                    Ok(Some(p)) => {
                        if let Err(reason) = self.dispatch(p) {
                            break Some(reason);
                        }
                    }
                    Ok(None) => break None,
                    Err(e) => break Some(e.into()),
                }
            };
            // What was complete before a failure is still delivered, as it would have been one by one.
            self.hand_over();
            if let Some(reason) = failed {
                return reason;
            }
            if std::mem::take(&mut self.crowded) {
                tokio::task::yield_now().await;
            }
            let chunk = match self.reader.fill_buf().await {
                Ok(chunk) => chunk,
                Err(e) => return super::secret_error(e),
            };
            if chunk.is_empty() {
                return if self.buf.is_empty() {
                    CloseReason::PeerClosed
                } else {
                    PacketError::Decode("connection closed inside a packet".into()).into()
                };
            }
            let n = chunk.len();
            // One clock read per socket read: every message completed by these bytes arrived now.
            self.read_at = Instant::now();
            self.buf.reserve(16 * 1024);
            self.buf.extend_from_slice(chunk);
            self.reader.consume(n);
            self.counters.wire_recv.fetch_add(n as u64, Relaxed);
            if let Some(wait) = self.bucket.charge(n, self.read_at) {
                tokio::time::sleep(wait).await;
            }
        }
    }

    fn dispatch(&mut self, packet: Packet) -> Result<(), CloseReason> {
        match packet {
            Packet::Ping => self.signals.pong_requested(),
            Packet::Pong => self.signals.pong_received(),
            Packet::Msg { channel, eof, data } => {
                let i = self.index[usize::from(channel)].ok_or(CloseReason::UnknownChannel(channel))? as usize;
                let counters = &self.counters.channels[i];
                let max = counters.desc.recv_message_capacity;
                let ch = &mut self.channels[i];
                if ch.recving.len() + data.len() > max {
                    return Err(CloseReason::MessageTooLarge { channel, max });
                }
                if !eof {
                    ch.recving.extend_from_slice(&data);
                    return Ok(());
                }
                let msg = if ch.recving.is_empty() {
                    data
                } else {
                    ch.recving.extend_from_slice(&data);
                    ch.recving.split().freeze()
                };
                let cost = msg.len() + MESSAGE_OVERHEAD;
                let queued = counters.recv_queued_bytes.load(Relaxed) + ch.pending_cost;
                if queued > 0 && queued + cost > counters.desc.recv_buffer_capacity {
                    return Err(CloseReason::RecvQueueFull(channel));
                }
                self.crowded |= (queued + cost) * 2 > counters.desc.recv_buffer_capacity;
                ch.pending.push(Incoming { data: msg, received_at: self.read_at });
                ch.pending_cost += cost;
            }
        }
        Ok(())
    }

    /// Hands each channel's messages of this read to its queue, in one piece.
    fn hand_over(&mut self) {
        for (ch, counters) in self.channels.iter_mut().zip(&self.counters.channels) {
            if ch.pending.is_empty() {
                continue;
            }
            let (n, cost) = (ch.pending.len(), std::mem::take(&mut ch.pending_cost));
            let bytes = cost - n * MESSAGE_OVERHEAD;
            let batch = std::mem::replace(&mut ch.pending, Vec::with_capacity(n));
            counters.recv_msgs.fetch_add(n as u64, Relaxed);
            counters.recv_bytes.fetch_add(bytes as u64, Relaxed);
            counters.recv_queued_msgs.fetch_add(n, Relaxed);
            counters.recv_queued_bytes.fetch_add(cost, Relaxed);
            if ch.tx.send(batch).is_err() {
                // The consumer dropped its receiver: it does not want this channel's messages.
                counters.recv_queued_msgs.fetch_sub(n, Relaxed);
                counters.recv_queued_bytes.fetch_sub(cost, Relaxed);
            }
        }
    }
}
