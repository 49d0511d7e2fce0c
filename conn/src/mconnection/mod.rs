//! The multiplexed connection ("MConnection"): many logical channels over one secret connection.
//!
//! Each channel ([`ChannelDescriptor`]) has a priority and bounded queues. Messages are cut into packets of at most
//! `max_packet_msg_payload_size` bytes. When several channels have data, the next packet comes from the channel with
//! the least recently-sent bytes per unit of priority (decayed by 20% every 2 s). Packets are packed back to back
//! into frames, and the socket is flushed at most `flush_throttle` after the first unflushed packet, and at once
//! after a ping or pong. Both profiles' packet formats are in [`packet`].
//!
//! Two tasks run per connection, and neither waits for the application:
//! - the **send task** owns the write half, the send queues and the keepalive timers;
//! - the **receive task** owns the read half; it answers pings, notices pongs, reassembles messages, and hands
//!   complete messages to per-channel receive queues ([`ChannelReceiver`]) without ever blocking on a consumer.
//!   The policy for a consumer that stops is described in the `recv` module documentation: its queue fills, and the
//!   next message for it closes the connection with [`CloseReason::RecvQueueFull`].
//!
//! Liveness therefore does not depend on how fast messages are consumed. Send and receive rates are limited by token
//! buckets that sleep. [`MConnection::status`] reports queue depths, counters and rates.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use ledgerwire_conn::mconnection::{ChannelDescriptor, MConnection, MConnectionConfig};
//! use ledgerwire_conn::SecretConnection;
//! use ledgerwire_types::{NodeKey, WireProfile};
//!
//! let (a, b) = tokio::io::duplex(64 * 1024);
//! let (ka, kb) = (NodeKey::generate(), NodeKey::generate());
//! let t = Duration::from_secs(3);
//! let (a, b) = tokio::try_join!(
//!     SecretConnection::handshake(a, &ka, WireProfile::Tm2, t),
//!     SecretConnection::handshake(b, &kb, WireProfile::Tm2, t),
//! )?;
//! let channels = [ChannelDescriptor::new(0x20, 5), ChannelDescriptor::new(0x30, 1)];
//! let (conn_a, _) = MConnection::spawn(a, &channels, MConnectionConfig::default(), None)?;
//! let (_conn_b, mut inbox_b) = MConnection::spawn(b, &channels, MConnectionConfig::default(), None)?;
//!
//! conn_a.send(0x30, "hello over channel 0x30").await?;
//! let msg = inbox_b[1].recv().await.expect("a message");
//! assert_eq!(&msg.data[..], b"hello over channel 0x30");
//! # Ok(()) }
//! ```

mod channel;
mod config;
mod error;
mod flow;
mod keepalive;
pub mod packet;
mod permit;
mod recv;
mod scheduler;
mod send;
mod status;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

use bytes::Bytes;
use slog::{Logger, debug};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

pub use channel::{ChannelDescriptor, ConfigError, DEFAULT_RECV_BUFFER_CAPACITY};
pub use config::{MAX_PAYLOAD_SETTING, MConnectionConfig};
pub use error::{CloseReason, SecretConnectionErrorEq, SendError};
pub use permit::SendPermit;
pub use recv::{ChannelReceiver, Incoming, MESSAGE_OVERHEAD};
pub use status::{ChannelStatus, ConnectionStatus};

use crate::{SecretConnection, SecretConnectionError};
use flow::TokenBucket;
use packet::PacketLimits;
use send::Signals;
use status::Counters;

/// A channel ID: one byte on the wire.
pub type ChannelId = u8;

/// The connection's life: open, then closing with a reason, then closed (both tasks finished, socket released).
#[derive(Clone, Debug, PartialEq)]
enum State {
    Open,
    Closing(CloseReason),
    Closed(CloseReason),
}

/// Shared between the handle and the tasks: the state, and how many tasks still run.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    state: watch::Sender<State>,
    running: AtomicUsize,
    /// Set once the state leaves `Open` (after it has): every send asks whether the connection is open, and a load
    /// answers that without the watch's lock.
    left_open: AtomicBool,
}

impl Lifecycle {
    fn new(state: watch::Sender<State>, running: usize) -> Lifecycle {
        Lifecycle { state, running: AtomicUsize::new(running), left_open: AtomicBool::new(false) }
    }

    /// Records the first reason to close; later ones are ignored.
    fn close(&self, reason: CloseReason) {
        // The flag is set under the watch's lock, with the state: whoever sees the new state sees the flag.
        self.state.send_if_modified(|s| match s {
            State::Open => {
                *s = State::Closing(reason);
                self.left_open.store(true, Release);
                true
            }
            _ => false,
        });
    }

    pub(crate) fn reason(&self) -> Option<CloseReason> {
        if !self.left_open.load(Acquire) {
            return None;
        }
        match &*self.state.borrow() {
            State::Open => None,
            State::Closing(r) | State::Closed(r) => Some(r.clone()),
        }
    }
}

/// Marks a task finished when dropped (also if it panics); the last one marks the connection closed.
struct TaskGuard(Arc<Lifecycle>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Relaxed) == 1 {
            self.0.state.send_modify(|s| {
                let reason = match s {
                    State::Open => CloseReason::Local,
                    State::Closing(r) | State::Closed(r) => r.clone(),
                };
                *s = State::Closed(reason);
                self.0.left_open.store(true, Release);
            });
        }
    }
}

pub(crate) fn secret_error(e: std::io::Error) -> CloseReason {
    match SecretConnectionError::from_io(&e) {
        Some(inner) => inner.clone().into(),
        None => SecretConnectionError::Io(Arc::new(e)).into(),
    }
}

/// A running multiplexed connection. Dropping it closes the connection.
#[derive(Debug)]
pub struct MConnection {
    senders: Vec<mpsc::Sender<Bytes>>,
    index: [Option<u8>; 256],
    signals: Arc<Signals>,
    lifecycle: Arc<Lifecycle>,
    counters: Arc<Counters>,
    config: MConnectionConfig,
}

impl MConnection {
    /// Starts the connection's two tasks over an established secret connection and returns the handle with one
    /// receive queue per channel (in descriptor order). The channels and settings are validated first. `logger`
    /// may be `None` (nothing is logged).
    pub fn spawn<R, W>(
        conn: SecretConnection<R, W>,
        channels: &[ChannelDescriptor],
        config: MConnectionConfig,
        logger: impl Into<Option<Logger>>,
    ) -> Result<(MConnection, Vec<ChannelReceiver>), ConfigError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let logger = logger.into().unwrap_or_else(|| Logger::root(slog::Discard, slog::o!()));
        channel::validate(channels)?;
        config.validate()?;
        let profile = conn.profile();
        let now = Instant::now();
        let counters = Arc::new(Counters::new(channels, now));
        let signals = Arc::new(Signals::default());
        let (state, _) = watch::channel(State::Open);
        let lifecycle = Arc::new(Lifecycle::new(state, 2));
        let (reader, writer) = conn.split();

        let (senders, send_rxs): (Vec<_>, Vec<_>) =
            channels.iter().map(|c| mpsc::channel(c.send_queue_capacity)).unzip();
        let (deliver, receivers) = recv::queues(&counters);
        let limits = PacketLimits::new(profile, config.max_packet_msg_payload_size);
        let recv_bucket = TokenBucket::new(config.recv_rate, 64 * 1024, now);
        let receiver = recv::Receiver::new(reader, limits, counters.clone(), signals.clone(), recv_bucket, deliver);
        let sender = send::Sender::new(writer, profile, &config, send_rxs, signals.clone(), counters.clone(), now);
        let index = receiver.index;

        for (name, task) in [
            (
                "send",
                Box::pin({
                    // The close is recorded while the send queues still exist: a reservation used after this sees
                    // the connection closed (and keeps its message) instead of queueing it where nobody reads.
                    let lifecycle = lifecycle.clone();
                    let mut sender = sender;
                    async move {
                        let reason = sender.run().await;
                        lifecycle.close(reason.clone());
                        reason
                    }
                }) as std::pin::Pin<Box<dyn std::future::Future<Output = CloseReason> + Send>>,
            ),
            ("receive", Box::pin(receiver.run())),
        ] {
            let lifecycle = lifecycle.clone();
            let logger = logger.clone();
            tokio::spawn(async move {
                let _guard = TaskGuard(lifecycle.clone());
                let mut state = lifecycle.state.subscribe();
                tokio::select! {
                    reason = task => {
                        debug!(logger, "connection task ended"; "task" => name, "reason" => %reason);
                        lifecycle.close(reason);
                    }
                    _ = state.wait_for(|s| *s != State::Open) => {}
                }
            });
        }
        let conn = MConnection { senders, index, signals, lifecycle, counters, config };
        Ok((conn, receivers))
    }

    fn channel_index(&self, channel: ChannelId) -> Result<usize, SendError> {
        self.index[usize::from(channel)].map(usize::from).ok_or(SendError::UnknownChannel(channel))
    }

    fn closed_error(&self) -> SendError {
        SendError::Closed(self.lifecycle.reason().unwrap_or(CloseReason::Local))
    }

    fn accepting(&self) -> Result<(), SendError> {
        if self.lifecycle.reason().is_some() || self.signals.draining() { Err(self.closed_error()) } else { Ok(()) }
    }

    /// Queues `msg` on `channel`, waiting up to the configured send timeout for room in the channel's queue.
    pub async fn send(&self, channel: ChannelId, msg: impl Into<Bytes>) -> Result<(), SendError> {
        self.queue(channel, msg.into(), Instant::now().checked_add(self.config.send_timeout)).await
    }

    /// Queues `msg` on `channel`, waiting for room until `deadline` at the latest ([`SendError::Timeout`] after
    /// that). A request that expires at a known instant can pass that instant.
    pub async fn send_before(
        &self,
        channel: ChannelId,
        msg: impl Into<Bytes>,
        deadline: Instant,
    ) -> Result<(), SendError> {
        self.queue(channel, msg.into(), Some(deadline)).await
    }

    /// Waits for room until `deadline` (without one: as long as it takes).
    async fn queue(&self, channel: ChannelId, msg: Bytes, deadline: Option<Instant>) -> Result<(), SendError> {
        let i = self.channel_index(channel)?;
        self.accepting()?;
        let sent = match deadline {
            Some(t) => tokio::time::timeout_at(t, self.senders[i].send(msg)).await,
            None => Ok(self.senders[i].send(msg).await),
        };
        match sent {
            Ok(Ok(())) => {
                self.signals.data_queued();
                Ok(())
            }
            Err(_) => Err(SendError::Timeout(channel)),
            Ok(Err(_)) => Err(self.closed_error()),
        }
    }

    /// Queues `msg` on `channel` if there is room now.
    pub fn try_send(&self, channel: ChannelId, msg: impl Into<Bytes>) -> Result<(), SendError> {
        let i = self.channel_index(channel)?;
        self.accepting()?;
        match self.senders[i].try_send(msg.into()) {
            Ok(()) => {
                self.signals.data_queued();
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => Err(SendError::QueueFull(channel)),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(self.closed_error()),
        }
    }

    /// Reserves one slot in `channel`'s send queue now, or fails with [`SendError::QueueFull`]. The slot is held
    /// until the permit sends or is dropped; see [`SendPermit`].
    pub fn reserve(&self, channel: ChannelId) -> Result<SendPermit, SendError> {
        let i = self.channel_index(channel)?;
        self.accepting()?;
        match self.senders[i].clone().try_reserve_owned() {
            Ok(permit) => {
                let permit = SendPermit::new(permit, channel, self.signals.clone(), self.lifecycle.clone());
                // A graceful close that began meanwhile may already have counted the reservations and be closing:
                // this one is refused rather than left with nowhere to go (dropping it gives the slot back).
                if self.signals.draining_now() {
                    drop(permit);
                    return Err(self.closed_error());
                }
                Ok(permit)
            }
            Err(mpsc::error::TrySendError::Full(_)) => Err(SendError::QueueFull(channel)),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(self.closed_error()),
        }
    }

    /// Free slots in `channel`'s send queue now (queued messages and held permits both take slots); 0 once the
    /// connection is closing.
    pub fn send_capacity(&self, channel: ChannelId) -> Result<usize, SendError> {
        let i = self.channel_index(channel)?;
        Ok(if self.accepting().is_ok() { self.senders[i].capacity() } else { 0 })
    }

    /// Closes the connection now; queued messages are discarded.
    pub fn close(&self) {
        self.lifecycle.close(CloseReason::Local);
    }

    /// Stops accepting messages, sends everything already queued, flushes, and closes. Returns the reason the
    /// connection ended (`Local` unless it failed first).
    pub async fn close_gracefully(&self) -> CloseReason {
        self.signals.drain();
        self.closed().await
    }

    /// Waits until the connection has closed and both tasks have finished (the socket is released), and returns why.
    pub async fn closed(&self) -> CloseReason {
        let mut rx = self.lifecycle.state.subscribe();
        match rx.wait_for(|s| matches!(s, State::Closed(_))).await.map(|s| s.clone()) {
            Ok(State::Closed(reason)) => reason,
            _ => CloseReason::Local,
        }
    }

    /// Why the connection is closing or closed, or `None` while it is open.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.lifecycle.reason()
    }

    /// A snapshot of queues, counters and rates.
    pub fn status(&self) -> ConnectionStatus {
        let c = &self.counters;
        ConnectionStatus {
            duration: c.started.elapsed(),
            bytes_sent: c.wire_sent.load(Relaxed),
            bytes_received: c.wire_recv.load(Relaxed),
            send_rate: c.send_rate.load(Relaxed),
            recv_rate: c.recv_rate.load(Relaxed),
            channels: c
                .channels
                .iter()
                .zip(&self.senders)
                .map(|(ch, tx)| ChannelStatus {
                    id: ch.desc.id,
                    priority: ch.desc.priority,
                    send_queue_len: tx.max_capacity() - tx.capacity(),
                    send_queue_capacity: ch.desc.send_queue_capacity,
                    recently_sent: ch.recently_sent.load(Relaxed),
                    messages_sent: ch.sent_msgs.load(Relaxed),
                    bytes_sent: ch.sent_bytes.load(Relaxed),
                    messages_received: ch.recv_msgs.load(Relaxed),
                    bytes_received: ch.recv_bytes.load(Relaxed),
                    recv_queue_len: ch.recv_queued_msgs.load(Relaxed),
                    recv_queue_bytes: ch.recv_queued_bytes.load(Relaxed),
                    recv_queue_capacity: ch.desc.recv_buffer_capacity,
                })
                .collect(),
        }
    }
}

impl Drop for MConnection {
    fn drop(&mut self) {
        self.lifecycle.close(CloseReason::Local);
    }
}
