//! Prometheus metrics on `[metrics] laddr` (off by default): `GET /metrics` in the text format, on the same bounded
//! listener as the other HTTP endpoints.
//!
//! Counted as they happen: dial attempts and failures, rejected inbound connections by reason, peers connected and
//! disconnected, handshake durations (from the switch's events), and each Prepare's time from arrival to answer
//! (recorded by the connector). Read at scrape time from the running node: peers by direction, bytes
//! and messages per channel and direction, the address book's size, and per ILP account its Prepares in and out,
//! Fulfills, Rejects by code and balance, the routing table's size and route updates per account.
//!
//! Bytes and messages per channel are counters: the running totals of open connections plus what closed
//! connections had reached at the last scrape before they closed (traffic between that scrape and the close is not
//! counted).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ledgerwire_p2p::{EventItem, Switch, SwitchEvent};
use ledgerwire_reactors::discovery::DiscoveryHandle;
use ledgerwire_reactors::forwarding::Connector;
use ledgerwire_reactors::routing::Routing;
use ledgerwire_types::NodeId;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio_stream::StreamExt;

type Labels = Vec<(&'static str, String)>;

/// What the scrape handler reads.
#[derive(Clone)]
pub struct MetricsState {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    switch: Switch,
    connector: Connector,
    routing: Option<Routing>,
    discovery: Option<DiscoveryHandle>,
    peers: Family<Labels, Gauge>,
    channel_bytes: Family<Labels, Counter>,
    channel_messages: Family<Labels, Counter>,
    book_size: Gauge,
    ilp_prepares_in: Family<Labels, Counter>,
    ilp_fulfilled_in: Family<Labels, Counter>,
    ilp_rejected_in: Family<Labels, Counter>,
    ilp_prepares_out: Family<Labels, Counter>,
    ilp_balance: Family<Labels, Gauge>,
    routes: Gauge,
    route_updates: Family<Labels, Counter>,
    channels: std::sync::Mutex<ChannelTotals>,
}

impl std::fmt::Debug for MetricsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsState")
    }
}

/// Per-channel totals: closed connections' last values plus the open ones'.
#[derive(Default)]
struct ChannelTotals {
    /// (peer, channel) → (bytes sent, bytes received, messages sent, messages received) at the last scrape.
    open: HashMap<(NodeId, u8), [u64; 4]>,
    closed: HashMap<u8, [u64; 4]>,
}

/// Counts events; returns the registry-backed state the `/metrics` handler serves.
pub fn start(
    switch: Switch,
    connector: Connector,
    routing: Option<Routing>,
    discovery: Option<DiscoveryHandle>,
    forwarding_latency: Histogram,
) -> MetricsState {
    let mut registry = Registry::with_prefix("ledgerwire");
    let dials = Family::<Labels, Counter>::default();
    let rejected = Family::<Labels, Counter>::default();
    let connections = Family::<Labels, Counter>::default();
    registry.register("dials", "Outbound connection attempts by outcome (connected, failed)", dials.clone());
    registry.register("inbound_rejected", "Inbound connections rejected, by reason", rejected.clone());
    registry.register("peer_events", "Peers connected and disconnected", connections.clone());
    let handshakes = Histogram::new(exponential_buckets(0.001, 2.0, 12));
    registry.register(
        "handshake_seconds",
        "Secret-connection handshake and NodeInfo exchange of admitted peers",
        handshakes.clone(),
    );
    registry.register(
        "ilp_forwarding_seconds",
        "From a Prepare's arrival to its answer (Fulfill or Reject) going back",
        forwarding_latency,
    );
    let inner = Inner {
        peers: Family::default(),
        channel_bytes: Family::default(),
        channel_messages: Family::default(),
        book_size: Gauge::default(),
        ilp_prepares_in: Family::default(),
        ilp_fulfilled_in: Family::default(),
        ilp_rejected_in: Family::default(),
        ilp_prepares_out: Family::default(),
        ilp_balance: Family::default(),
        routes: Gauge::default(),
        route_updates: Family::default(),
        channels: std::sync::Mutex::default(),
        registry: Registry::default(),
        switch: switch.clone(),
        connector,
        routing,
        discovery,
    };
    registry.register("peers", "Connected peers by direction", inner.peers.clone());
    registry.register("channel_bytes", "Payload bytes per channel and direction", inner.channel_bytes.clone());
    registry.register("channel_messages", "Messages per channel and direction", inner.channel_messages.clone());
    registry.register("address_book_entries", "Addresses in the address book", inner.book_size.clone());
    registry.register("ilp_prepares_in", "ILP Prepares received per account", inner.ilp_prepares_in.clone());
    registry.register("ilp_fulfilled_in", "Of those, fulfilled", inner.ilp_fulfilled_in.clone());
    registry.register("ilp_rejected_in", "Of those, rejected, by code", inner.ilp_rejected_in.clone());
    registry.register("ilp_prepares_out", "ILP Prepares forwarded per account", inner.ilp_prepares_out.clone());
    registry.register(
        "ilp_balance",
        "Balance per account (positive: they owe us), in its units",
        inner.ilp_balance.clone(),
    );
    registry.register("ilp_routes", "Routes in the routing table", inner.routes.clone());
    registry.register("ilp_route_updates", "Route updates per account and direction", inner.route_updates.clone());
    let inner = Inner { registry, ..inner };
    if let Ok(mut events) = switch.subscribe(|_| true) {
        tokio::spawn(async move {
            while let Some(item) = events.next().await {
                let EventItem::Event(e) = item else { continue };
                match e {
                    SwitchEvent::PeerConnected { direction, handshake, .. } => {
                        connections.get_or_create(&vec![("event", "connected".into())]).inc();
                        handshakes.observe(handshake.as_secs_f64());
                        if direction.to_string() == "outbound" {
                            dials.get_or_create(&vec![("outcome", "connected".into())]).inc();
                        }
                    }
                    SwitchEvent::PeerDisconnected { .. } => {
                        connections.get_or_create(&vec![("event", "disconnected".into())]).inc();
                    }
                    SwitchEvent::DialFailed { .. } => {
                        dials.get_or_create(&vec![("outcome", "failed".into())]).inc();
                    }
                    SwitchEvent::PeerRejected { reason, .. } => {
                        let debug = format!("{reason:?}");
                        let kind: String = debug.chars().take_while(|c| c.is_alphanumeric()).collect();
                        rejected.get_or_create(&vec![("reason", kind)]).inc();
                    }
                }
            }
        });
    }
    MetricsState { inner: Arc::new(inner) }
}

/// The `/metrics` route (and nothing else: every other path is 404).
pub fn router(state: MetricsState) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(state)
}

fn set_counter(c: &Counter, total: u64) {
    let now = c.get();
    if total > now {
        c.inc_by(total - now);
    }
}

async fn scrape(State(state): State<MetricsState>) -> Response {
    let m = &state.inner;
    // Peers and channels.
    let peers = m.switch.peers().unwrap_or_default();
    let (mut inbound, mut outbound) = (0, 0);
    let mut totals: HashMap<u8, [u64; 4]> = HashMap::new();
    {
        let mut channels = m.channels.lock().unwrap_or_else(|p| p.into_inner());
        let mut seen = HashMap::new();
        for p in &peers {
            if p.info.direction.to_string() == "inbound" {
                inbound += 1;
            } else {
                outbound += 1;
            }
            for c in &p.status.channels {
                let now = [c.bytes_sent, c.bytes_received, c.messages_sent, c.messages_received];
                seen.insert((p.info.id, c.id), now);
            }
        }
        // Connections gone (or restarted from zero) since the last scrape keep what they had reached.
        let ChannelTotals { open, closed } = &mut *channels;
        for (key, last) in open.iter() {
            let restarted = seen.get(key).is_some_and(|now| now.iter().zip(last).any(|(n, l)| n < l));
            if !seen.contains_key(key) || restarted {
                let acc = closed.entry(key.1).or_default();
                for i in 0..4 {
                    acc[i] += last[i];
                }
            }
        }
        *open = seen;
        for (channel, acc) in closed.iter() {
            totals.insert(*channel, *acc);
        }
        for ((_, channel), now) in open.iter() {
            let t = totals.entry(*channel).or_default();
            for i in 0..4 {
                t[i] += now[i];
            }
        }
    }
    m.peers.get_or_create(&vec![("direction", "inbound".into())]).set(inbound);
    m.peers.get_or_create(&vec![("direction", "outbound".into())]).set(outbound);
    for (channel, t) in totals {
        let ch = format!("{channel:#04x}");
        set_counter(&m.channel_bytes.get_or_create(&vec![("channel", ch.clone()), ("direction", "out".into())]), t[0]);
        set_counter(&m.channel_bytes.get_or_create(&vec![("channel", ch.clone()), ("direction", "in".into())]), t[1]);
        set_counter(
            &m.channel_messages.get_or_create(&vec![("channel", ch.clone()), ("direction", "out".into())]),
            t[2],
        );
        set_counter(&m.channel_messages.get_or_create(&vec![("channel", ch), ("direction", "in".into())]), t[3]);
    }
    if let Some(d) = &m.discovery {
        m.book_size.set(d.address_book().await.len() as i64);
    }
    // ILP.
    for a in m.connector.accounts().await.unwrap_or_default() {
        let account = || vec![("account", a.id.to_string())];
        set_counter(&m.ilp_prepares_in.get_or_create(&account()), a.stats.prepares_in);
        set_counter(&m.ilp_fulfilled_in.get_or_create(&account()), a.stats.fulfilled_in);
        set_counter(&m.ilp_prepares_out.get_or_create(&account()), a.stats.prepares_out);
        for (code, n) in &a.stats.rejected_in {
            let labels = vec![("account", a.id.to_string()), ("code", code.clone())];
            set_counter(&m.ilp_rejected_in.get_or_create(&labels), *n);
        }
        let balance =
            i64::try_from(a.balance.balance).unwrap_or(if a.balance.balance < 0 { i64::MIN } else { i64::MAX });
        m.ilp_balance.get_or_create(&account()).set(balance);
    }
    if let Some(r) = &m.routing {
        m.routes.set(r.routes().await.map(|v| v.len() as i64).unwrap_or(0));
        for p in r.peers().await.unwrap_or_default() {
            let sent = vec![("account", p.account.clone()), ("direction", "sent".into())];
            let received = vec![("account", p.account.clone()), ("direction", "received".into())];
            set_counter(&m.route_updates.get_or_create(&sent), p.updates_sent);
            set_counter(&m.route_updates.get_or_create(&received), p.updates_received);
        }
    }
    let mut text = String::new();
    if encode(&mut text, &m.registry).is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode the metrics").into_response();
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}
