//! Counters shared by the connection's tasks and snapshots of them for operators.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;

use super::{ChannelDescriptor, ChannelId};

/// Per-channel counters. Written by one task each, read by anyone.
#[derive(Debug)]
pub(crate) struct ChannelCounters {
    pub(crate) desc: ChannelDescriptor,
    pub(crate) sent_msgs: AtomicU64,
    pub(crate) sent_bytes: AtomicU64,
    pub(crate) recently_sent: AtomicU64,
    pub(crate) recv_msgs: AtomicU64,
    pub(crate) recv_bytes: AtomicU64,
    /// Messages and bytes (with per-message overhead) delivered but not yet taken by the consumer.
    pub(crate) recv_queued_msgs: AtomicUsize,
    pub(crate) recv_queued_bytes: AtomicUsize,
}

/// Connection counters.
#[derive(Debug)]
pub(crate) struct Counters {
    pub(crate) started: Instant,
    pub(crate) wire_sent: AtomicU64,
    pub(crate) wire_recv: AtomicU64,
    /// Bytes per second, smoothed, updated every 2 s by the send task.
    pub(crate) send_rate: AtomicU64,
    pub(crate) recv_rate: AtomicU64,
    pub(crate) channels: Vec<ChannelCounters>,
}

impl Counters {
    pub(crate) fn new(channels: &[ChannelDescriptor], now: Instant) -> Self {
        Counters {
            started: now,
            wire_sent: AtomicU64::new(0),
            wire_recv: AtomicU64::new(0),
            send_rate: AtomicU64::new(0),
            recv_rate: AtomicU64::new(0),
            channels: channels
                .iter()
                .map(|&desc| ChannelCounters {
                    desc,
                    sent_msgs: AtomicU64::new(0),
                    sent_bytes: AtomicU64::new(0),
                    recently_sent: AtomicU64::new(0),
                    recv_msgs: AtomicU64::new(0),
                    recv_bytes: AtomicU64::new(0),
                    recv_queued_msgs: AtomicUsize::new(0),
                    recv_queued_bytes: AtomicUsize::new(0),
                })
                .collect(),
        }
    }
}

/// Smooths byte counters into rates: an exponential moving average over ~4 s, fed every 2 s.
#[derive(Debug)]
pub(crate) struct RateMeter {
    last_at: Instant,
    last_sent: u64,
    last_recv: u64,
}

impl RateMeter {
    pub(crate) fn new(now: Instant) -> Self {
        RateMeter { last_at: now, last_sent: 0, last_recv: 0 }
    }

    pub(crate) fn sample(&mut self, c: &Counters, now: Instant) {
        let secs = now.saturating_duration_since(self.last_at).as_secs_f64();
        if secs <= 0.0 {
            return;
        }
        let (sent, recv) = (c.wire_sent.load(Relaxed), c.wire_recv.load(Relaxed));
        let smooth = |old: u64, delta: u64| (0.5 * old as f64 + 0.5 * delta as f64 / secs) as u64;
        c.send_rate.store(smooth(c.send_rate.load(Relaxed), sent - self.last_sent), Relaxed);
        c.recv_rate.store(smooth(c.recv_rate.load(Relaxed), recv - self.last_recv), Relaxed);
        (self.last_at, self.last_sent, self.last_recv) = (now, sent, recv);
    }
}

/// A snapshot of a connection for operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionStatus {
    /// Time since the connection was set up.
    pub duration: Duration,
    /// Bytes written to the secret connection (packets, including pings and pongs).
    pub bytes_sent: u64,
    /// Bytes read from the secret connection.
    pub bytes_received: u64,
    /// Recent send rate, bytes per second.
    pub send_rate: u64,
    /// Recent receive rate, bytes per second.
    pub recv_rate: u64,
    /// Per channel, in descriptor order.
    pub channels: Vec<ChannelStatus>,
}

/// A snapshot of one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelStatus {
    /// The channel.
    pub id: ChannelId,
    /// Its priority.
    pub priority: u32,
    /// Slots of the send queue in use: messages waiting to be sent, and reservations not yet used.
    pub send_queue_len: usize,
    /// The send queue's capacity.
    pub send_queue_capacity: usize,
    /// Bytes sent recently (decays by 20% every 2 s); drives scheduling.
    pub recently_sent: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Payload bytes sent.
    pub bytes_sent: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Payload bytes received.
    pub bytes_received: u64,
    /// Received messages waiting for the consumer.
    pub recv_queue_len: usize,
    /// Bytes those messages take in the receive queue (with per-message overhead).
    pub recv_queue_bytes: usize,
    /// The receive queue's capacity in bytes.
    pub recv_queue_capacity: usize,
}
