//! A chat reactor: the template for writing your own protocol on ledgerwire.
//!
//! ```text
//! cargo run -p ledgerwire-p2p --example chat -- --listen 127.0.0.1:26656 --name alice
//! cargo run -p ledgerwire-p2p --example chat -- --listen 127.0.0.1:26657 --name bob --peer <alice's id>@127.0.0.1:26656
//! ```
//!
//! Lines typed on standard input go to every connected peer (`@name text` goes to one peer only); lines from peers are
//! printed with the sender's name.
//! What it shows, in about a hundred lines:
//! - a reactor is a task that owns its state and reads `ReactorEvent`s;
//! - per-peer state (the peer's chosen name, its message budget) lives in the reactor's own map;
//! - sending goes through the `PeerHandle` (scoped to the reactor's channel) or `ReactorSwitch::try_broadcast`, and
//!   never waits: the task serves every peer, so a peer that stops reading loses its lines instead of stalling the
//!   chat for everyone;
//! - input from peers is bounded (message size by the channel descriptor, rate by a per-peer budget) and a peer that
//!   breaks the protocol is disconnected with a reason.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use ledgerwire_p2p::{ChannelDescriptor, PeerHandle, ReactorContext, ReactorEvent, SwitchBuilder, SwitchConfig};
use ledgerwire_types::{HostAddress, NodeId, NodeKey, WireProfile};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::Instant;

/// The chat channel.
const CHAT: u8 = 0x71;
/// Messages a peer may send per second; the rest are dropped.
const PER_SECOND: u32 = 10;

#[derive(Parser, Debug)]
struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:26656")]
    listen: SocketAddr,
    /// Our name in the chat.
    #[arg(long, default_value = "anon")]
    name: String,
    /// A peer to connect to, id@host:port.
    #[arg(long)]
    peer: Option<String>,
    /// Wire profile.
    #[arg(long, default_value = "tm2")]
    profile: WireProfile,
}

/// What the chat remembers about a peer.
struct Peer {
    handle: PeerHandle,
    name: String,
    budget: u32,
    budget_reset: Instant,
}

/// Messages on the wire: `N‹name›` announces a name, `M‹text›` is a line. UTF-8, at most 1 KiB (the descriptor's limit).
async fn chat(mut ctx: ReactorContext, our_name: String, mut lines: tokio::sync::mpsc::Receiver<String>) {
    let mut peers: HashMap<NodeId, Peer> = HashMap::new();
    loop {
        tokio::select! {
            event = ctx.events.recv() => match event {
                None => return, // the switch stopped
                Some(ReactorEvent::PeerUp(handle)) => {
                    println!("* {} joined", handle.id());
                    let _ = handle.try_send(CHAT, format!("N{our_name}"));
                    let name = handle.id().to_string();
                    peers.insert(handle.id(), Peer { handle, name, budget: PER_SECOND, budget_reset: Instant::now() });
                }
                Some(ReactorEvent::PeerDown { peer, reason }) => {
                    if let Some(p) = peers.remove(&peer) {
                        println!("* {} left ({reason})", p.name);
                    }
                }
                Some(ReactorEvent::Message { peer, msg, .. }) => {
                    let Some(p) = peers.get_mut(&peer) else { continue };
                    // Bounded input: a peer gets PER_SECOND messages a second; the excess is dropped, not queued.
                    if p.budget_reset.elapsed() >= Duration::from_secs(1) {
                        (p.budget, p.budget_reset) = (PER_SECOND, Instant::now());
                    }
                    if p.budget == 0 {
                        continue;
                    }
                    p.budget -= 1;
                    match std::str::from_utf8(&msg).ok().and_then(|s| s.split_at_checked(1)) {
                        Some(("N", name)) if !name.is_empty() && name.len() <= 32 => p.name = name.to_owned(),
                        Some(("M", text)) => println!("<{}> {text}", p.name),
                        _ => {
                            // Breaking the protocol costs the connection (at once; nobody waits for it).
                            p.handle.stop_for_error("malformed chat message");
                        }
                    }
                }
            },
            line = lines.recv() => {
                let Some(line) = line else { return };
                // `@name text`: a private line, sent through that peer's handle.
                if let Some((to, text)) = line.strip_prefix('@').and_then(|l| l.split_once(' ')) {
                    match peers.values().find(|p| p.name == to) {
                        Some(p) => match p.handle.try_send(CHAT, format!("M(private) {text}")) {
                            Ok(()) => eprintln!("  (to {to}: sent)"),
                            Err(e) => eprintln!("  (to {to}: not sent: {e})"),
                        },
                        None => eprintln!("  (nobody called {to})"),
                    }
                    continue;
                }
                if let Ok(r) = ctx.switch.try_broadcast(CHAT, format!("M{line}")) {
                    eprintln!("  (sent to {} of {} peers)", r.delivered(), r.results.len());
                }
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let key = Arc::new(NodeKey::generate());
    let mut builder = SwitchBuilder::new(key, args.profile, SwitchConfig::new(args.listen, "chat"), None);
    let descriptor = ChannelDescriptor::new(CHAT, 1)
        .with_send_queue_capacity(16)
        .with_recv_message_capacity(1024)
        .with_low_latency();
    let ctx = builder.add_reactor("chat", &[descriptor], 256)?;
    let (tx, lines) = tokio::sync::mpsc::channel(16);
    let chat_task = tokio::spawn(chat(ctx, args.name, lines));
    let switch = builder.start().await?;
    println!("* listening on {} as {}", switch.listen_addr().unwrap(), switch.id());
    if let Some(peer) = &args.peer {
        switch.dial(HostAddress::parse(peer, args.profile)?, true).await?;
    }
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = stdin.next_line().await? {
        if tx.send(line).await.is_err() {
            break;
        }
    }
    switch.stop().await;
    chat_task.await?;
    Ok(())
}
