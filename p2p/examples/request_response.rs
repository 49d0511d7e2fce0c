//! Request/response on the reactor API, the way a forwarding reactor does it: every request gets exactly one answer,
//! no peer can make the reactor wait, and nothing a peer sends is queued beyond a bound.
//!
//! ```text
//! cargo run -p ledgerwire-p2p --example request_response -- --calls 20000 --window 256
//! ```
//!
//! Two nodes on loopback; one calls the other `--calls` times, `--window` at a time, and prints a JSON summary. Each
//! call ends exactly once: answered, busy (the server had too many of our requests in hand), timed out, or failed
//! (not sent, or the peer went away). The rules it shows:
//! - **Answer through a reservation.** A request is accepted only with room reserved for its answer
//!   (`PeerHandle::reserve`); the answer is sent through it later, whatever else was queued meanwhile.
//! - **Bound what a peer may have in hand** (`MAX_SERVING`). Beyond it, answer "busy" at once, through a
//!   reservation of its own (the queue holds one slot more for it). A peer that leaves no room even for that is
//!   disconnected: it broke the limit.
//! - **Never wait on a peer.** Requests go out with `try_send`; a full queue fails the call at once.
//! - **Track our own requests** in a `PendingRequests` table: answers resolve them (only once, only from the peer
//!   asked), the timer expires them, and `PeerDown` fails the rest.
//! - **Size the queues** from these bounds: see `descriptor`.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use ledgerwire_p2p::pending::{PendingRequests, RequestId};
use ledgerwire_p2p::{
    ChannelDescriptor, MConnectionConfig, PeerHandle, ReactorContext, ReactorEvent, Reservation, SwitchBuilder,
    SwitchConfig,
};
use ledgerwire_types::deadline::Timer;
use ledgerwire_types::{HostAddress, NodeId, NodeKey, WireProfile};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// The channel.
pub const RPC: u8 = 0x72;
/// Requests of one peer we accept and have not answered yet.
pub const MAX_SERVING: usize = 64;
/// Our own requests in flight to one peer.
pub const MAX_CALLING: usize = 256;
/// Largest message: a 1-byte kind, an 8-byte ID, at most 1 KiB of payload.
pub const MAX_MESSAGE: usize = 1 + 8 + 1024;

const REQUEST: u8 = 1;
const ANSWER: u8 = 2;
const BUSY: u8 = 3;

/// The descriptor, sized from the bounds: room for every answer we may owe plus one "busy", and for our own requests;
/// a receive queue that holds a full window of requests and answers from one peer.
pub fn descriptor() -> ChannelDescriptor {
    ChannelDescriptor::new(RPC, 1)
        .with_send_queue_capacity(MAX_SERVING + 1 + MAX_CALLING)
        .with_recv_buffer_capacity((MAX_SERVING + 1 + MAX_CALLING) * (MAX_MESSAGE + 64))
        .with_recv_message_capacity(MAX_MESSAGE)
        .with_low_latency()
}

/// How a call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The answer.
    Answered(Bytes),
    /// The peer had too many of our requests in hand.
    Busy,
    /// No answer by the deadline.
    TimedOut,
    /// Not sent (no such peer, or its queue was full), or the peer went away before answering.
    Failed(&'static str),
}

fn encode(kind: u8, id: u64, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(9 + payload.len());
    b.put_u8(kind);
    b.put_u64(id);
    b.put_slice(payload);
    b.freeze()
}

fn decode(msg: &Bytes) -> Option<(u8, u64, Bytes)> {
    let kind = *msg.first()?;
    let id = u64::from_be_bytes(msg.get(1..9)?.try_into().ok()?);
    matches!(kind, REQUEST | ANSWER | BUSY).then(|| (kind, id, msg.slice(9..)))
}

struct Call {
    peer: NodeId,
    payload: Bytes,
    deadline: Instant,
    reply: oneshot::Sender<Outcome>,
}

/// Asks the reactor to call peers.
#[derive(Clone, Debug)]
pub struct RpcHandle {
    calls: mpsc::Sender<Call>,
}

impl RpcHandle {
    /// Sends `payload` to `peer` and waits for the outcome (at most until `timeout`).
    pub async fn call(&self, peer: NodeId, payload: Bytes, timeout: Duration) -> Outcome {
        let (reply, rx) = oneshot::channel();
        let call = Call { peer, payload, deadline: Instant::now() + timeout, reply };
        if self.calls.send(call).await.is_err() {
            return Outcome::Failed("reactor stopped");
        }
        rx.await.unwrap_or(Outcome::Failed("reactor stopped"))
    }
}

/// Registers the reactor; the server side answers each request with its payload reversed, after `work`.
pub fn register(builder: &mut SwitchBuilder, work: Duration) -> RpcHandle {
    let ctx = builder.add_reactor("rpc", &[descriptor()], 1024).unwrap();
    let (calls_tx, calls) = mpsc::channel(1024);
    tokio::spawn(run(ctx, calls, work));
    RpcHandle { calls: calls_tx }
}

/// A request we accepted: the reservation its answer goes through.
struct Serving {
    answer: Reservation,
    id: u64,
}

async fn run(mut ctx: ReactorContext, mut calls: mpsc::Receiver<Call>, work: Duration) {
    let mut peers: HashMap<NodeId, PeerHandle> = HashMap::new();
    let mut pending: PendingRequests<oneshot::Sender<Outcome>> = PendingRequests::unpredictable();
    let mut serving: HashMap<NodeId, usize> = HashMap::new();
    // Work in progress comes back here: (peer, accepted request, result).
    let (done_tx, mut done) = mpsc::channel::<(Serving, Bytes)>(MAX_SERVING);
    let mut timer = Timer::new();
    loop {
        timer.set(pending.next_deadline());
        tokio::select! {
            event = ctx.events.recv() => match event {
                None => return,
                Some(ReactorEvent::PeerUp(peer)) => {
                    if peer.speaks(RPC) {
                        peers.insert(peer.id(), peer);
                    }
                }
                Some(ReactorEvent::PeerDown { peer, .. }) => {
                    peers.remove(&peer);
                    serving.remove(&peer);
                    for (_, reply) in pending.remove_peer(peer) {
                        let _ = reply.send(Outcome::Failed("peer went away"));
                    }
                }
                Some(ReactorEvent::Message { peer, msg, .. }) => {
                    let Some(handle) = peers.get(&peer).cloned() else { continue };
                    match decode(&msg) {
                        Some((REQUEST, id, payload)) => {
                            let in_hand = serving.entry(peer).or_insert(0);
                            // The answer's room first: without it, the request is not accepted.
                            let Ok(answer) = handle.reserve(RPC) else {
                                handle.stop_for_error("requests beyond the in-flight limit");
                                peers.remove(&peer);
                                continue;
                            };
                            if *in_hand >= MAX_SERVING {
                                let _ = answer.send(encode(BUSY, id, &[]));
                                continue;
                            }
                            *in_hand += 1;
                            let done = done_tx.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(work).await;
                                let result: Vec<u8> = payload.iter().rev().copied().collect();
                                let _ = done.send((Serving { answer, id }, result.into())).await;
                            });
                        }
                        Some((kind, id, payload)) => {
                            // An answer resolves its call once, and only if it comes from the peer asked.
                            if let Some(reply) = pending.resolve(peer, RequestId::from_wire(id)) {
                                let outcome = if kind == ANSWER { Outcome::Answered(payload) } else { Outcome::Busy };
                                let _ = reply.send(outcome);
                            }
                        }
                        None => {
                            handle.stop_for_error("malformed rpc message");
                            peers.remove(&peer);
                        }
                    }
                }
            },
            Some((work, result)) = done.recv() => {
                let peer = work.answer.peer();
                if let Some(n) = serving.get_mut(&peer) {
                    *n = n.saturating_sub(1);
                }
                // Fails only if the connection is gone: the caller's own timeout or PeerDown covers it.
                let _ = work.answer.send(encode(ANSWER, work.id, &result));
            }
            Some(call) = calls.recv() => {
                let Some(handle) = peers.get(&call.peer) else {
                    let _ = call.reply.send(Outcome::Failed("not connected"));
                    continue;
                };
                if pending.in_flight(call.peer) >= MAX_CALLING {
                    let _ = call.reply.send(Outcome::Failed("too many calls in flight"));
                    continue;
                }
                let id = pending.insert(call.peer, call.deadline, call.reply);
                if handle.try_send(RPC, encode(REQUEST, id.get(), &call.payload)).is_err()
                    && let Some((_, reply)) = pending.cancel(id)
                {
                    let _ = reply.send(Outcome::Failed("send queue full"));
                }
            }
            () = timer.wait() => {
                for expired in pending.expire(Instant::now()) {
                    let _ = expired.value.send(Outcome::TimedOut);
                }
            }
        }
    }
}

/// Counts of how calls ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Calls made.
    pub calls: usize,
    /// Answered correctly.
    pub answered: usize,
    /// Answered wrongly (must stay 0).
    pub wrong: usize,
    /// Busy.
    pub busy: usize,
    /// Timed out.
    pub timed_out: usize,
    /// Failed.
    pub failed: usize,
}

/// Starts two nodes, calls from the first to the second `calls` times, `window` at a time; if `stop_server_after`
/// is set, the server stops after that many calls were made. Every call's outcome is counted.
pub async fn demo(calls: usize, window: usize, stop_server_after: Option<usize>) -> Summary {
    let node = |work| {
        let mut config = SwitchConfig::new(([127, 0, 0, 1], 0).into(), "rpc-demo");
        config.connection =
            MConnectionConfig { flush_throttle: Duration::ZERO, send_rate: 0, recv_rate: 0, ..config.connection };
        let mut b = SwitchBuilder::new(Arc::new(NodeKey::generate()), WireProfile::Tm2, config, None);
        let rpc = register(&mut b, work);
        (b, rpc)
    };
    let (sb, _) = node(Duration::from_millis(1));
    let server = sb.start().await.unwrap();
    let (cb, rpc) = node(Duration::ZERO);
    let client = cb.start().await.unwrap();
    let mut connected = client.subscribe(|e| matches!(e, ledgerwire_p2p::SwitchEvent::PeerConnected { .. })).unwrap();
    let address = HostAddress::parse(&format!("{}@{}", server.id(), server.listen_addr().unwrap()), WireProfile::Tm2);
    client.dial(address.unwrap(), false).await.unwrap();
    connected.recv().await;
    let mut summary = Summary { calls, ..Summary::default() };
    let mut running = tokio::task::JoinSet::new();
    for i in 0..calls {
        if stop_server_after == Some(i) {
            server.stop().await;
        }
        while running.len() >= window {
            count(&mut summary, running.join_next().await.unwrap().unwrap());
        }
        let (rpc, to) = (rpc.clone(), server.id());
        running.spawn(async move {
            let payload = Bytes::from(format!("call {i}"));
            let expected: Vec<u8> = payload.iter().rev().copied().collect();
            (rpc.call(to, payload, Duration::from_secs(5)).await, expected)
        });
    }
    while let Some(done) = running.join_next().await {
        count(&mut summary, done.unwrap());
    }
    client.stop().await;
    server.stop().await;
    summary
}

fn count(s: &mut Summary, (outcome, expected): (Outcome, Vec<u8>)) {
    match outcome {
        Outcome::Answered(a) if a[..] == expected[..] => s.answered += 1,
        Outcome::Answered(_) => s.wrong += 1,
        Outcome::Busy => s.busy += 1,
        Outcome::TimedOut => s.timed_out += 1,
        Outcome::Failed(_) => s.failed += 1,
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut calls, mut window) = (20_000, 256);
    while let Some(flag) = args.next() {
        let value = args.next().and_then(|v| v.parse().ok());
        match (flag.as_str(), value) {
            ("--calls", Some(v)) => calls = v,
            ("--window", Some(v)) => window = v,
            _ => {
                println!("usage: request_response [--calls N] [--window N]");
                return;
            }
        }
    }
    let started = std::time::Instant::now();
    let s = demo(calls, window, None).await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"calls\": {}, \"answered\": {}, \"busy\": {}, \"timed_out\": {}, \"failed\": {}, \"wrong\": {}, \"calls_per_sec\": {:.0}}}",
        s.calls,
        s.answered,
        s.busy,
        s.timed_out,
        s.failed,
        s.wrong,
        s.calls as f64 / secs
    );
}
