//! The send task: schedules packets across channels, keeps the connection alive, flushes on a throttle.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::time::Duration;

use bytes::Bytes;
use ledgerwire_types::{WireProfile, deadline};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::flow::TokenBucket;
use super::keepalive::Keepalive;
use super::packet::{self, PacketLimits};
use super::scheduler::Scheduler;
use super::status::{Counters, RateMeter};
use super::{CloseReason, MConnectionConfig};
use crate::SecretWriter;

/// Scheduling and statistics period (the reference's `updateStats`).
const STATS_PERIOD: Duration = Duration::from_secs(2);
/// Packets written before the task looks at pings, pongs and timers again.
const BATCH: usize = 32;
/// Least time between two pongs. Pings in between are answered by the next pong, so a ping flood costs at most ten
/// flushes a second (tendermint#1190); honest peers ping once a minute and never notice.
const PONG_SPACING: Duration = Duration::from_millis(100);

/// Events the send task must notice, set by the receive task and by the connection handle.
#[derive(Debug, Default)]
pub(crate) struct Signals {
    pong_requested: AtomicBool,
    pong_received: AtomicBool,
    drain: AtomicBool,
    /// Reservations taken and not yet used or dropped: a graceful close waits for them.
    permits: AtomicUsize,
    wake: Notify,
}

impl Signals {
    /// The peer pinged: send a pong (several pings before we get to it coalesce into one pong).
    pub(crate) fn pong_requested(&self) {
        self.pong_requested.store(true, Relaxed);
        self.wake.notify_one();
    }

    /// The peer ponged.
    pub(crate) fn pong_received(&self) {
        self.pong_received.store(true, Relaxed);
        self.wake.notify_one();
    }

    /// A message was queued.
    pub(crate) fn data_queued(&self) {
        self.wake.notify_one();
    }

    /// Send what is queued, flush, then close.
    pub(crate) fn drain(&self) {
        self.drain.store(true, SeqCst);
        self.wake.notify_one();
    }

    pub(crate) fn draining(&self) -> bool {
        self.drain.load(Relaxed)
    }

    /// A reservation was taken.
    pub(crate) fn permit_taken(&self) {
        self.permits.fetch_add(1, SeqCst);
    }

    /// Whether a drain has begun, read in the same sequentially consistent order as [`Signals::permit_taken`]: a
    /// reservation taken and then checked against this either counts for the drain or sees it.
    pub(crate) fn draining_now(&self) -> bool {
        self.drain.load(SeqCst)
    }

    /// A reservation was used or dropped. Only a draining send task waits for that: it is woken only then. (A
    /// release that sees no drain yet comes before the drain in the sequentially consistent order, so the task
    /// that the drain wakes sees the release.)
    pub(crate) fn permit_released(&self) {
        self.permits.fetch_sub(1, SeqCst);
        if self.drain.load(SeqCst) {
            self.wake.notify_one();
        }
    }

    fn permits_outstanding(&self) -> bool {
        self.permits.load(SeqCst) > 0
    }
}

/// One channel's send side.
struct SendChannel {
    rx: mpsc::Receiver<Bytes>,
    /// The message being sent and how much of it is out.
    current: Option<(Bytes, usize)>,
    payload_limit: usize,
}

/// The send task's state.
pub(crate) struct Sender<W> {
    writer: SecretWriter<W>,
    profile: WireProfile,
    channels: Vec<SendChannel>,
    scheduler: Scheduler,
    keepalive: Keepalive,
    bucket: TokenBucket,
    flush_throttle: Duration,
    flush_at: Option<Instant>,
    /// A low-latency channel's packet was written and not yet flushed.
    urgent: bool,
    last_pong: Option<Instant>,
    next_stats: Instant,
    meter: RateMeter,
    signals: Arc<Signals>,
    counters: Arc<Counters>,
    header: Vec<u8>,
}

impl<W: AsyncWrite + Unpin> Sender<W> {
    pub(crate) fn new(
        writer: SecretWriter<W>,
        profile: WireProfile,
        config: &MConnectionConfig,
        receivers: Vec<mpsc::Receiver<Bytes>>,
        signals: Arc<Signals>,
        counters: Arc<Counters>,
        now: Instant,
    ) -> Self {
        let limits = PacketLimits::new(profile, config.max_packet_msg_payload_size);
        let channels = receivers
            .into_iter()
            .zip(&counters.channels)
            .map(|(rx, c)| SendChannel { rx, current: None, payload_limit: limits.payload_limit(c.desc.id) })
            .collect();
        let max_packet = packet::msg_packet_len(profile, 0xff, true, config.max_packet_msg_payload_size);
        Sender {
            writer,
            profile,
            channels,
            scheduler: Scheduler::new(counters.channels.iter().map(|c| c.desc.priority)),
            keepalive: Keepalive::new(config.ping_interval, config.pong_timeout, now),
            bucket: TokenBucket::new(config.send_rate, max_packet, now),
            flush_throttle: config.flush_throttle,
            flush_at: None,
            urgent: false,
            last_pong: None,
            next_stats: now + STATS_PERIOD,
            meter: RateMeter::new(now),
            signals,
            counters,
            header: Vec::with_capacity(16),
        }
    }

    /// Runs until a write fails, the pong deadline passes, or a graceful close has drained the queues.
    /// The caller races this against the close signal; a step is only ever cancelled when the connection ends, so a
    /// half-written packet is never followed by another. The pong deadline is read before each step, so every step
    /// that changes it (a pong received, a ping sent) returns at once.
    pub(crate) async fn run(&mut self) -> CloseReason {
        loop {
            let deadline = self.keepalive.pong_deadline();
            tokio::select! {
                biased;
                () = deadline::sleep_until(deadline) => return CloseReason::PongTimeout,
                r = self.step() => if let Err(reason) = r { return reason },
            }
        }
    }

    /// Does the most urgent thing there is to do, or waits for something to do.
    async fn step(&mut self) -> Result<(), CloseReason> {
        let now = Instant::now();
        if self.signals.pong_received.swap(false, Relaxed) {
            self.keepalive.on_pong();
            return Ok(());
        }
        let mut pong_due = None;
        if self.signals.pong_requested.load(Relaxed) {
            let due = self.last_pong.map_or(now, |t| t + PONG_SPACING);
            if now >= due {
                self.signals.pong_requested.store(false, Relaxed);
                self.last_pong = Some(now);
                return self.write_control(packet::pong_bytes(self.profile)).await;
            }
            pong_due = Some(due);
        }
        if self.keepalive.ping_due(now) {
            self.keepalive.on_ping_sent(now);
            return self.write_control(packet::ping_bytes(self.profile)).await;
        }
        if now >= self.next_stats {
            self.scheduler.decay();
            for (i, c) in self.counters.channels.iter().enumerate() {
                c.recently_sent.store(self.scheduler.recently_sent(i), Relaxed);
            }
            self.meter.sample(&self.counters, now);
            self.next_stats = now + STATS_PERIOD;
        }
        if self.flush_at.is_some_and(|t| now >= t) {
            self.flush().await?;
        }
        if self.refill() {
            for _ in 0..BATCH {
                self.send_packet().await?;
                if !self.refill() {
                    break;
                }
            }
            if (self.flush_throttle.is_zero() || self.urgent) && !self.refill() {
                self.flush().await?;
            } else if self.flush_at.is_none() {
                self.flush_at = Some(Instant::now() + self.flush_throttle);
            }
            return Ok(());
        }
        // A graceful close ends once the queues are empty and every reservation is used or dropped (the caller
        // bounds how long it waits).
        if self.signals.draining_now() && !self.signals.permits_outstanding() {
            // A reservation used and released since the queues were last looked at left its message queued (its
            // message went in before its release, which this read of the count follows): that goes out first.
            if self.refill() {
                return Ok(());
            }
            self.flush().await?;
            return Err(CloseReason::Local);
        }
        // Nothing to send: sleep until a signal or the next timer.
        let mut wake_at = self.keepalive.next_ping().min(self.next_stats);
        for t in [self.flush_at, pong_due].into_iter().flatten() {
            wake_at = wake_at.min(t);
        }
        tokio::select! {
            () = self.signals.wake.notified() => {}
            () = tokio::time::sleep_until(wake_at) => {}
        }
        Ok(())
    }

    /// Makes sure every channel with queued messages has a current message; true if any channel has data.
    fn refill(&mut self) -> bool {
        let mut any = false;
        for ch in &mut self.channels {
            if ch.current.is_none()
                && let Ok(msg) = ch.rx.try_recv()
            {
                ch.current = Some((msg, 0));
            }
            any |= ch.current.is_some();
        }
        any
    }

    /// Writes the next packet of the channel the scheduler picks.
    async fn send_packet(&mut self) -> Result<(), CloseReason> {
        let Some(i) = self.scheduler.pick(|i| self.channels[i].current.is_some()) else {
            return Ok(());
        };
        let id = self.counters.channels[i].desc.id;
        let ch = &mut self.channels[i];
        let Some((msg, offset)) = ch.current.take() else {
            return Ok(());
        };
        let n = (msg.len() - offset).min(ch.payload_limit);
        let eof = offset + n == msg.len();
        self.header.clear();
        packet::encode_msg_header(self.profile, id, eof, n, &mut self.header);
        let wire = self.header.len() + n;
        // The clock is read per packet only when a rate limit needs it.
        if self.bucket.limits()
            && let Some(wait) = self.bucket.charge(wire, Instant::now())
        {
            tokio::time::sleep(wait).await;
        }
        let w = &mut self.writer;
        w.write_all(&self.header).await.map_err(super::secret_error)?;
        w.write_all(&msg[offset..offset + n]).await.map_err(super::secret_error)?;
        self.scheduler.record(i, wire);
        let c = &self.counters.channels[i];
        self.urgent |= c.desc.low_latency;
        self.counters.wire_sent.fetch_add(wire as u64, Relaxed);
        c.sent_bytes.fetch_add(n as u64, Relaxed);
        if eof {
            c.sent_msgs.fetch_add(1, Relaxed);
        } else {
            ch.current = Some((msg, offset + n));
        }
        Ok(())
    }

    /// Writes a ping or pong and flushes at once.
    async fn write_control(&mut self, bytes: &[u8]) -> Result<(), CloseReason> {
        self.writer.write_all(bytes).await.map_err(super::secret_error)?;
        self.counters.wire_sent.fetch_add(bytes.len() as u64, Relaxed);
        self.flush().await
    }

    async fn flush(&mut self) -> Result<(), CloseReason> {
        self.flush_at = None;
        self.urgent = false;
        self.writer.flush().await.map_err(super::secret_error)
    }
}
