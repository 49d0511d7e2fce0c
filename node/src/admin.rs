//! The admin HTTP API. Every route but `GET /health` requires `Authorization: Bearer <token>` (the scheme name in
//! any case). Every error is `{"error": "…"}` with its status.
//!
//! | route | |
//! |---|---|
//! | `GET /health` | `{"status": "ok"}` while the node runs; no token needed |
//! | `GET /status` | our ID, profile, network, listen address and the full NodeInfo we advertise |
//! | `GET /peers` | connected peers: ID, address, direction, persistent, private, connected since, bytes in and out, RTT |
//! | `POST /peers` | `{"address": "id@host:port", "persistent": false}` queues a dial |
//! | `DELETE /peers/{id}` | disconnects a peer and stops redialing it until restart |
//! | `GET /bans` | the bans in force: peer, reason, by operator or automatic, seconds left |
//! | `POST /bans` | `{"id": "…", "duration": "1h", "reason": "…"}` disconnects a peer and refuses it for that long |
//! | `DELETE /bans/{id}` | lifts a ban (a persistent peer is dialed at once) |
//! | `GET /events` | switch events as server-sent events; `missed` reports events a slow reader lost |
//! | `GET /addrbook` | the address book: address, source, first seen, last attempt, last success, failures |
//! | `GET /accounts` | ILP accounts: relation, asset, link, source, balance and in-flight amounts, counters |
//! | `POST /accounts` | adds or replaces an account (the `[[ilp.accounts]]` fields as JSON) |
//! | `DELETE /accounts/{id}` | removes an account made through the API (its balance is kept) |
//! | `GET /accounts/{id}/balance` | balance (positive: they owe us), amounts in flight, asset |
//! | `POST /accounts/{id}/settlements` | `{"amount": "100", "direction": "outgoing"\|"incoming", "note": "…"}` records a settlement made outside |
//! | `GET /accounts/{id}/settlements` | the account's settlement records (needed, outgoing, incoming) |
//! | `GET /routes` | the routing table: prefix, next-hop account (none: here), path, source, age |
//! | `GET /routes/peers` | route exchange per account: state, epochs, updates and controls sent and received, bytes |

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ledgerwire_p2p::node_info::{NodeInfo, ProtocolVersions};
use ledgerwire_p2p::{BanSummary, EventItem, Switch, SwitchError, SwitchEvent};
use ledgerwire_reactors::accounts::AccountSpec;
use ledgerwire_reactors::accounts::store::{AccountSource, SettlementKind};
use ledgerwire_reactors::discovery::DiscoveryHandle;
use ledgerwire_reactors::discovery::book::Source;
use ledgerwire_reactors::forwarding::routing::RouteSource;
use ledgerwire_reactors::forwarding::{Connector, ConnectorError, IlpEvent};
use ledgerwire_reactors::ilp_over_http::{HttpLimits, serve_bounded};
use ledgerwire_reactors::ping::PingHandle;
use ledgerwire_reactors::routing::core::RouteEvent;
use ledgerwire_reactors::routing::{Routing, RoutingError};
use ledgerwire_types::{HostAddress, NodeId, WireProfile};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio_stream::StreamExt;

/// What the handlers need.
#[derive(Clone, Debug)]
pub struct AdminState {
    /// The ILP connector.
    pub connector: Connector,
    /// Route exchange, if on.
    pub routing: Option<Routing>,
    /// The switch.
    pub switch: Switch,
    /// Ping measurements.
    pub pings: PingHandle,
    /// Peer discovery, if enabled.
    pub discovery: Option<DiscoveryHandle>,
    /// The bearer token.
    pub token: Arc<str>,
    /// Our profile.
    pub profile: WireProfile,
}

/// The router: authentication on every route but `GET /health`; every error answered as `{"error": "…"}`.
pub fn router(state: AdminState) -> Router {
    let authenticated = Router::new()
        .route("/status", get(status))
        .route("/peers", get(peers).post(dial))
        .route("/peers/{id}", axum::routing::delete(disconnect))
        .route("/bans", get(bans).post(ban))
        .route("/bans/{id}", axum::routing::delete(unban))
        .route("/events", get(events))
        .route("/addrbook", get(addrbook))
        .route("/accounts", get(accounts).post(add_account))
        .route("/accounts/{id}", axum::routing::delete(remove_account))
        .route("/accounts/{id}/balance", get(balance))
        .route("/accounts/{id}/settlements", get(settlements).post(settle))
        .route("/routes", get(routes))
        .route("/routes/peers", get(route_peers))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state.clone());
    Router::new()
        .route("/health", get(health))
        .route("/openapi.json", get(|| async { axum::Json(crate::openapi::document()) }))
        .with_state(state)
        .merge(authenticated)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route (see GET /openapi.json)") })
        .layer(middleware::from_fn(header_limit))
        .layer(middleware::map_response(json_errors))
}

/// The most header bytes a request may carry (the listener refuses more than 64 KiB before we see them).
const MAX_HEADER_BYTES: usize = 16 * 1024;

async fn header_limit(request: Request, next: Next) -> Response {
    let size: usize = request.headers().iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    if size > MAX_HEADER_BYTES {
        return error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("request headers of {size} bytes (at most {MAX_HEADER_BYTES})"),
        );
    }
    next.run(request).await
}

/// Errors made outside the handlers (axum's body limit, method not allowed) get the same JSON shape.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).trim().to_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let mut r = error(status, text);
    for (name, value) in parts.headers.iter().filter(|(n, _)| *n == header::WWW_AUTHENTICATE || *n == header::ALLOW) {
        r.headers_mut().insert(name.clone(), value.clone());
    }
    r
}

/// For load balancers and supervisors: no token, nothing secret.
async fn health(State(state): State<AdminState>) -> Response {
    if state.switch.is_stopped() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "stopping");
    }
    axum::Json(json!({ "status": "ok" })).into_response()
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, axum::Json(json!({ "error": message.to_string() }))).into_response()
}

async fn authenticate(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .unwrap_or("");
    if !bool::from(presented.as_bytes().ct_eq(state.token.as_bytes())) {
        let mut r = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    next.run(request).await
}

/// NodeInfo as JSON.
pub fn node_info_json(info: &NodeInfo) -> Value {
    let protocol = match &info.versions {
        ProtocolVersions::Tm2(set) => json!(
            set.iter()
                .map(|v| json!({ "name": v.name, "version": v.version, "optional": v.optional }))
                .collect::<Vec<_>>()
        ),
        ProtocolVersions::CometBft { p2p, block, app } => json!({ "p2p": p2p, "block": block, "app": app }),
    };
    json!({
        "id": info.id.to_string(),
        "listen_addr": info.listen_addr,
        "network": info.network,
        "software": info.software,
        "version": info.version,
        "channels": info.channels.iter().map(|c| format!("{c:#04x}")).collect::<Vec<_>>(),
        "moniker": info.moniker,
        "tx_index": info.tx_index,
        "rpc_address": info.rpc_address,
        "protocol_versions": protocol,
    })
}

async fn status(State(state): State<AdminState>) -> Response {
    let Some(info) = state.switch.node_info() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "switch not started");
    };
    let peers = match state.switch.peers() {
        Ok(p) => p.len(),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    axum::Json(json!({
        "id": state.switch.id().to_string(),
        "profile": state.profile.as_str(),
        "network": info.network,
        "listen_address": state.switch.listen_addr().map(|a| a.to_string()),
        "peers": peers,
        "ilp_address": state.connector.address().borrow().to_string(),
        "version": env!("CARGO_PKG_VERSION"),
        "node_info": node_info_json(info),
    }))
    .into_response()
}

async fn peers(State(state): State<AdminState>) -> Response {
    let pings = state.pings.snapshot().await;
    let peers = match state.switch.peers() {
        Ok(p) => p,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    let list: Vec<Value> = peers
        .into_iter()
        .map(|p| {
            let i = &p.info;
            let rtt = pings.get(&i.id).and_then(|s| s.rtt).map(|d| d.as_secs_f64() * 1e3);
            json!({
                "id": i.id.to_string(),
                "address": i.remote_addr.to_string(),
                "advertised_address": i.node_info.listen_addr,
                "direction": i.direction.to_string(),
                "persistent": i.persistent,
                "private": i.private,
                "moniker": i.node_info.moniker,
                "protocol_versions": node_info_json(&i.node_info)["protocol_versions"],
                "connected_since": i.connected_since.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
                "bytes_in": p.status.bytes_received,
                "bytes_out": p.status.bytes_sent,
                "rtt_ms": rtt,
            })
        })
        .collect();
    axum::Json(Value::Array(list)).into_response()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DialRequest {
    address: String,
    #[serde(default)]
    persistent: bool,
}

async fn dial(State(state): State<AdminState>, body: Bytes) -> Response {
    let req: DialRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"address\": \"id@host:port\", \"persistent\": bool}}: {e}"),
            );
        }
    };
    let address = match HostAddress::parse(&req.address, state.profile) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("address: {e}")),
    };
    // An address that can never be dialed (port 0, 0.0.0.0, broadcast, multicast) is refused now, not queued.
    if let Some(Err(e)) = address.to_net_address().map(|a| a.validate()) {
        return error(StatusCode::BAD_REQUEST, format!("address: {e}"));
    }
    if address.port() == 0 {
        return error(StatusCode::BAD_REQUEST, "address: port 0 cannot be dialed");
    }
    match state.switch.dial(address.clone(), req.persistent).await {
        Ok(()) => {
            (StatusCode::ACCEPTED, axum::Json(json!({ "queued": address.to_string(), "persistent": req.persistent })))
                .into_response()
        }
        Err(e @ SwitchError::DialSelf) => error(StatusCode::BAD_REQUEST, e),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn disconnect(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    match NodeId::parse(&id, state.profile) {
        Ok(id) => peer_answer(id, state.switch.disconnect(id).await, "disconnected", "connected"),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

/// The answer to a request about one peer that the switch did (`Ok(true)`: 200 `{done: id}`) or found nothing to do
/// (404: the peer is not `state`).
fn peer_answer(id: NodeId, result: Result<bool, SwitchError>, done: &str, state: &str) -> Response {
    match result {
        Ok(true) => axum::Json(json!({ done: id.to_string() })).into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, format!("{id} is not {state}")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn bans(State(state): State<AdminState>) -> Response {
    match state.switch.bans().await {
        Ok(bans) => axum::Json(Value::Array(bans.into_iter().map(|b| ban_json(&b)).collect())).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

fn ban_json(ban: &BanSummary) -> Value {
    json!({
        "id": ban.peer.to_string(),
        "reason": ban.reason,
        "by": if ban.by_operator { "operator" } else { "automatic" },
        "remaining_secs": ban.remaining.as_secs(),
    })
}

/// Zero-width and bidirectional-override characters: they would let a reason disguise what the log and `bans`
/// table show.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// The longest reason an operator's ban keeps (it is logged and listed).
const MAX_BAN_REASON: usize = 200;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BanRequest {
    id: String,
    duration: String,
    #[serde(default)]
    reason: Option<String>,
}

async fn ban(State(state): State<AdminState>, body: Bytes) -> Response {
    let req: BanRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"id\": \"node ID\", \"duration\": \"1h\", \"reason\": \"…\"}}: {e}"),
            );
        }
    };
    let id = match NodeId::parse(&req.id, state.profile) {
        Ok(id) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("id: {e}")),
    };
    if id == state.switch.id() {
        return error(StatusCode::BAD_REQUEST, "id: that is this node");
    }
    let duration = match crate::duration::parse(&req.duration) {
        Ok(d) if !d.is_zero() => d,
        Ok(_) => return error(StatusCode::BAD_REQUEST, "duration: must be longer than zero"),
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("duration: {e}")),
    };
    let reason = req.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).unwrap_or("operator");
    if reason.chars().count() > MAX_BAN_REASON {
        return error(StatusCode::BAD_REQUEST, format!("reason: longer than {MAX_BAN_REASON} characters"));
    }
    if reason.chars().any(|c| c.is_control() || is_invisible_format(c)) {
        return error(
            StatusCode::BAD_REQUEST,
            "reason: control, zero-width and direction-changing characters are not allowed",
        );
    }
    match state.switch.ban_by_operator(id, duration, reason).await {
        Ok(ban) => (StatusCode::CREATED, axum::Json(ban_json(&ban))).into_response(),
        Err(e @ SwitchError::TooManyBans) => error(StatusCode::CONFLICT, e),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn unban(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    match NodeId::parse(&id, state.profile) {
        Ok(id) => peer_answer(id, state.switch.unban(id).await, "unbanned", "banned"),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

async fn addrbook(State(state): State<AdminState>) -> Response {
    let Some(discovery) = &state.discovery else {
        return error(StatusCode::NOT_FOUND, "peer discovery is off (p2p.pex = false)");
    };
    let entries: Vec<Value> = discovery
        .address_book()
        .await
        .into_iter()
        .map(|e| {
            json!({
                "address": e.address.to_string(),
                "source": match e.source {
                    Source::Config => "config".to_owned(),
                    Source::SelfReported => "self".to_owned(),
                    Source::Peer(id) => id.to_string(),
                },
                "first_seen": e.first_seen,
                "last_attempt": e.last_attempt,
                "last_success": e.last_success,
                "failures": e.failures,
            })
        })
        .collect();
    axum::Json(Value::Array(entries)).into_response()
}

fn connector_error(e: ConnectorError) -> Response {
    let status = match &e {
        ConnectorError::Account(_) | ConnectorError::ZeroAmount | ConnectorError::NotInProcess(_) => {
            StatusCode::BAD_REQUEST
        }
        ConnectorError::NoAccount(_) => StatusCode::NOT_FOUND,
        ConnectorError::FromConfig(_) | ConnectorError::Duplicate { .. } => StatusCode::CONFLICT,
        ConnectorError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        ConnectorError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, e)
}

async fn accounts(State(state): State<AdminState>) -> Response {
    match state.connector.accounts().await {
        Ok(list) => axum::Json(list).into_response(),
        Err(e) => connector_error(e),
    }
}

async fn add_account(State(state): State<AdminState>, body: Bytes) -> Response {
    let spec: AccountSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            return error(StatusCode::BAD_REQUEST, format!("expected an account as JSON (docs/configuration.md): {e}"));
        }
    };
    let id = spec.id.clone();
    match state.connector.add_account(spec, AccountSource::Api).await {
        Ok(()) => (StatusCode::CREATED, axum::Json(json!({ "added": id }))).into_response(),
        Err(e) => connector_error(e),
    }
}

async fn remove_account(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    match state.connector.remove_account(&id).await {
        Ok(()) => axum::Json(json!({ "removed": id })).into_response(),
        Err(e) => connector_error(e),
    }
}

async fn balance(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    match state.connector.accounts().await {
        Ok(list) => match list.into_iter().find(|a| a.id.as_str() == id) {
            Some(a) => axum::Json(json!({
                "account": a.id,
                "balance": a.balance.balance.to_string(),
                "reserved_in": a.balance.reserved_in.to_string(),
                "reserved_out": a.balance.reserved_out.to_string(),
                "asset_code": a.asset_code,
                "asset_scale": a.asset_scale,
            }))
            .into_response(),
            None => error(StatusCode::NOT_FOUND, format!("no account {id}")),
        },
        Err(e) => connector_error(e),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SettlementRequest {
    #[serde(with = "ledgerwire_reactors::accounts::store::as_string")]
    amount: u64,
    direction: Direction,
    #[serde(default)]
    note: String,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum Direction {
    Outgoing,
    Incoming,
}

async fn settle(State(state): State<AdminState>, Path(id): Path<String>, body: Bytes) -> Response {
    let req: SettlementRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "expected {{\"amount\": \"123\", \"direction\": \"outgoing\" or \"incoming\", \"note\": \"…\"}}: {e}"
                ),
            );
        }
    };
    if req.note.len() > 1024 {
        return error(StatusCode::BAD_REQUEST, "note: at most 1024 bytes");
    }
    let kind = match req.direction {
        Direction::Outgoing => SettlementKind::Outgoing,
        Direction::Incoming => SettlementKind::Incoming,
    };
    match state.connector.record_settlement(&id, kind, req.amount, req.note).await {
        Ok(record) => (StatusCode::CREATED, axum::Json(record)).into_response(),
        Err(e) => connector_error(e),
    }
}

async fn settlements(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    match state.connector.settlements(&id).await {
        Ok(list) => axum::Json(list).into_response(),
        Err(e) => connector_error(e),
    }
}

async fn routes(State(state): State<AdminState>) -> Response {
    let table = match state.connector.routes().await {
        Ok(list) => list,
        Err(e) => return connector_error(e),
    };
    // The default route (to the first parent) is the forwarding table's; everything else, with paths and ages,
    // is route exchange's when it runs.
    let default = table
        .iter()
        .filter(|r| r.source == RouteSource::Default)
        .map(|r| json!({ "prefix": r.prefix, "next_hop": r.account, "path": [], "source": r.source, "age_ms": null }));
    let rows: Vec<Value> = match &state.routing {
        Some(routing) => match tokio::time::timeout(Duration::from_secs(5), routing.routes()).await.unwrap_or(Err(RoutingError::Stopped)) {
            Ok(list) => list.iter().map(|r| serde_json::to_value(r).unwrap_or(Value::Null)).chain(default).collect(),
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e),
        },
        None => table
            .iter()
            .filter(|r| r.source != RouteSource::Default)
            .map(|r| json!({ "prefix": r.prefix, "next_hop": r.account, "path": [], "source": r.source, "age_ms": null }))
            .chain(default)
            .collect(),
    };
    axum::Json(rows).into_response()
}

async fn route_peers(State(state): State<AdminState>) -> Response {
    let Some(routing) = &state.routing else {
        return error(StatusCode::NOT_FOUND, "route exchange is off ([ilp] route_broadcast = false)");
    };
    match tokio::time::timeout(Duration::from_secs(5), routing.peers()).await.unwrap_or(Err(RoutingError::Stopped)) {
        Ok(list) => axum::Json(list).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// A route event as JSON (`route_added`, `route_changed`, `route_withdrawn`).
pub fn route_event_json(event: &RouteEvent) -> Value {
    let mut v = serde_json::to_value(event).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut()
        && let Some(kind) = obj.remove("type")
    {
        obj.insert("event".into(), kind);
    }
    v
}

/// An ILP event as JSON (its `event` is the kind: `account_added`, `link_up`, `settlement_needed`, …).
pub fn ilp_event_json(event: &IlpEvent) -> Value {
    let mut v = serde_json::to_value(event).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut()
        && let Some(kind) = obj.remove("type")
    {
        obj.insert("event".into(), kind);
    }
    v
}

/// A switch event as JSON (what `/events` sends and `ledgerwire events` prints).
pub fn event_json(event: &SwitchEvent) -> Value {
    let peer = event.peer().map(|p| p.to_string());
    match event {
        SwitchEvent::PeerConnected { address, direction, persistent, private, handshake, .. } => json!({
            "event": event.kind(), "peer": peer, "address": address.to_string(),
            "direction": direction.to_string(), "persistent": persistent, "private": private,
            "handshake_ms": (handshake.as_secs_f64() * 1e4).round() / 10.0,
        }),
        SwitchEvent::PeerDisconnected { address, reason, .. } => json!({
            "event": event.kind(), "peer": peer, "address": address.to_string(), "reason": reason.to_string(),
        }),
        SwitchEvent::DialFailed { address, reason, .. } => json!({
            "event": event.kind(), "peer": peer, "address": address, "reason": reason.to_string(),
        }),
        SwitchEvent::PeerRejected { address, reason, .. } => json!({
            "event": event.kind(), "peer": peer, "address": address.to_string(), "reason": reason.to_string(),
        }),
    }
}

async fn events(State(state): State<AdminState>) -> Response {
    let Ok(subscription) = state.switch.subscribe(|_| true) else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the switch has stopped");
    };
    let switch_events = subscription.map(|item| -> Result<Event, Infallible> {
        Ok(match item {
            EventItem::Event(e) => Event::default().event(e.kind()).data(event_json(&e).to_string()),
            EventItem::Missed(n) => {
                Event::default().event("missed").data(json!({ "event": "missed", "count": n }).to_string())
            }
        })
    });
    let ilp_events = tokio_stream::wrappers::BroadcastStream::new(state.connector.subscribe()).map(
        |item| -> Result<Event, Infallible> {
            Ok(match item {
                Ok(e) => {
                    let v = ilp_event_json(&e);
                    let kind = v["event"].as_str().unwrap_or("ilp").to_owned();
                    Event::default().event(kind).data(v.to_string())
                }
                Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                    Event::default().event("missed").data(json!({ "event": "missed", "count": n }).to_string())
                }
            })
        },
    );
    let route_events = match &state.routing {
        Some(r) => tokio_stream::wrappers::BroadcastStream::new(r.subscribe()),
        None => {
            // Off: a stream that never yields (its sender is dropped at once, so it ends; switch events decide).
            let (tx, rx) = tokio::sync::broadcast::channel(1);
            drop(tx);
            tokio_stream::wrappers::BroadcastStream::new(rx)
        }
    }
    .map(|item| -> Result<Event, Infallible> {
        Ok(match item {
            Ok(e) => {
                let v = route_event_json(&e);
                let kind = v["event"].as_str().unwrap_or("route").to_owned();
                Event::default().event(kind).data(v.to_string())
            }
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                Event::default().event("missed").data(json!({ "event": "missed", "count": n }).to_string())
            }
        })
    });
    // The stream ends when the switch stops (the ILP events never end on their own): the switch events end with
    // a `None` that cuts the merged stream.
    let stream = switch_events
        .map(Some)
        .chain(tokio_stream::once(None))
        .merge(ilp_events.map(Some))
        .merge(route_events.map(Some))
        .take_while(Option::is_some)
        .filter_map(|item| item);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

/// Serves the API on `listener` until `shutdown` turns true, on the bounded listener (connection cap,
/// header-read and idle timeouts).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AdminState,
    limits: HttpLimits,
    shutdown: tokio::sync::watch::Receiver<bool>,
    logger: slog::Logger,
) {
    let app = router(state);
    serve_bounded(
        listener,
        limits,
        move |_peer| hyper_util::service::TowerToHyperService::new(app.clone()),
        shutdown,
        logger,
        "admin",
    )
    .await;
}

/// Where the admin API listens, for messages.
pub fn describe(addr: SocketAddr) -> String {
    format!("http://{addr}")
}
