//! The ILP-over-HTTP listener apps pay through (synchronous mode, as ilp-plugin-http and interledger-rs speak it):
//! `POST /accounts/{id}/ilp` (or any path: the token names the account) with `Authorization: Bearer <token>`
//! and a Prepare as the body; the answer is `200` with the Fulfill or Reject.
//!
//! Bounded from the start: a connection cap (connections over it are closed at once), a header-read timeout, an
//! idle timeout, a body limit, and repeated authentication failures from one IP answered ever more slowly.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use sha2::{Digest, Sha256};
use slog::{Logger, info};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::listener::serve_bounded;

use ledgerwire_p2p::log_limit::LogLimit;

use crate::accounts::AccountId;
use crate::forwarding::rules::bad_prepare;
use crate::ilp::{Address, Prepare, Reply};

/// Limits of the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Open connections at most; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, and again its body.
    pub header_read_timeout: Duration,
    /// A connection with no request in progress for this long is closed.
    pub idle_timeout: Duration,
    /// Largest request body (a Prepare with 32,767 bytes of data is about 33 KB).
    pub max_body_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 256,
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            max_body_bytes: 40_000,
        }
    }
}

/// Who may send packets: the SHA-256 of each account's incoming token. Published by the connector.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    by_account: HashMap<AccountId, [u8; 32]>,
    by_token: HashMap<[u8; 32], AccountId>,
}

impl Credentials {
    /// Credentials from (account, incoming token) pairs.
    pub fn new<'a>(tokens: impl IntoIterator<Item = (AccountId, &'a str)>) -> Credentials {
        let mut c = Credentials::default();
        for (account, token) in tokens {
            let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            c.by_token.insert(digest, account.clone());
            c.by_account.insert(account, digest);
        }
        c
    }

    /// The account a token belongs to; with `claimed`, only if it is that account's token.
    fn check(&self, claimed: Option<&str>, token: &str) -> Option<AccountId> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        match claimed {
            Some(name) => {
                let id = AccountId::new(name).ok()?;
                let expected = self.by_account.get(&id)?;
                bool::from(expected.ct_eq(&digest)).then_some(id)
            }
            None => self.by_token.get(&digest).cloned(),
        }
    }
}

/// What answers the Prepares the listener accepts.
pub trait PacketHandler: Clone + Send + Sync + 'static {
    /// Forwards `prepare` from `account` and returns its answer.
    fn handle(&self, account: AccountId, prepare: Prepare) -> impl Future<Output = Reply> + Send;
}

// Authentication failures per source IP, for slowing down guessing; bounded (cleared when full).
#[derive(Debug, Default)]
struct Failures {
    by_ip: std::sync::Mutex<HashMap<IpAddr, u32>>,
}

impl Failures {
    const MAX_TRACKED: usize = 4096;

    fn record(&self, ip: IpAddr) -> Duration {
        let mut map = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= Self::MAX_TRACKED && !map.contains_key(&ip) {
            map.clear();
        }
        let n = map.entry(ip).or_default();
        *n = n.saturating_add(1);
        // The first few mistakes are free; then 100 ms more per failure, up to 2 s.
        Duration::from_millis(u64::from(n.saturating_sub(3)).saturating_mul(100).min(2000))
    }

    fn clear(&self, ip: IpAddr) {
        self.by_ip.lock().unwrap_or_else(|p| p.into_inner()).remove(&ip);
    }
}

struct Shared<H> {
    handler: H,
    credentials: watch::Receiver<Arc<Credentials>>,
    limits: HttpLimits,
    address: watch::Receiver<Address>,
    failures: Failures,
    // Refusals an app or attacker can cause at will: a few lines per second, with a count of those left out.
    refusals_logged: std::sync::Mutex<LogLimit>,
    logger: Logger,
}

impl<H> Shared<H> {
    /// Whether a refusal may be logged now (`Some(lines left out since the last one)`).
    fn refusal_log(&self) -> Option<u64> {
        self.refusals_logged.lock().unwrap_or_else(|p| p.into_inner()).allow(tokio::time::Instant::now())
    }
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "error": message.to_string() }).to_string();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Serves ILP-over-HTTP on `listener` until `shutdown` becomes true; returns when every connection has closed.
/// `address` is our ILP address (for the Rejects of malformed packets).
pub async fn serve<H: PacketHandler>(
    listener: TcpListener,
    limits: HttpLimits,
    credentials: watch::Receiver<Arc<Credentials>>,
    address: watch::Receiver<Address>,
    handler: H,
    shutdown: watch::Receiver<bool>,
    logger: Logger,
) {
    let logger_for_listener = logger.clone();
    let shared = Arc::new(Shared {
        handler,
        credentials,
        limits,
        address,
        failures: Failures::default(),
        refusals_logged: std::sync::Mutex::new(LogLimit::new(5, Duration::from_secs(1))),
        logger,
    });
    serve_bounded(
        listener,
        limits,
        move |peer| {
            let shared = shared.clone();
            hyper::service::service_fn(move |request: Request<Incoming>| {
                let shared = shared.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&shared, peer, request).await) }
            })
        },
        shutdown,
        logger_for_listener,
        "ilp-over-http",
    )
    .await;
}

async fn handle<H: PacketHandler>(
    shared: &Shared<H>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if request.method() == Method::GET {
        // ilp-plugin-http answers GET as a health check.
        let mut r = Response::new(Full::new(Bytes::from_static(b"OK")));
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        return r;
    }
    if request.method() != Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "POST a Prepare");
    }
    let claimed = {
        let parts: Vec<&str> = request.uri().path().trim_matches('/').split('/').collect();
        match parts[..] {
            ["accounts", id, "ilp"] => Some(id.to_owned()),
            _ => None,
        }
    };
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| match v.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            // ilp-plugin-http up to 1.5 sent the token without a scheme.
            _ => v.trim(),
        })
        .unwrap_or("");
    let account = shared.credentials.borrow().check(claimed.as_deref(), token);
    let Some(account) = account else {
        let delay = shared.failures.record(peer.ip());
        if delay > Duration::ZERO {
            tokio::time::sleep(delay).await;
        }
        if let Some(skipped) = shared.refusal_log() {
            info!(shared.logger, "ILP-over-HTTP request refused: wrong or missing token";
                "remote" => %peer, "account" => claimed.as_deref().unwrap_or("-"), "similar_lines_skipped" => skipped);
        }
        let mut r = error(StatusCode::UNAUTHORIZED, "invalid authorization");
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        // A client that guesses gets a new connection (and its delay) per guess.
        r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    };
    shared.failures.clear(peer.ip());
    // The body, like the headers, must arrive in time (an app that starts a request and stalls holds a slot).
    let collected = tokio::time::timeout(
        shared.limits.header_read_timeout,
        Limited::new(request.into_body(), shared.limits.max_body_bytes).collect(),
    )
    .await;
    let Ok(collected) = collected else {
        let mut r = error(StatusCode::REQUEST_TIMEOUT, "the request body did not arrive in time");
        r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    };
    let body = match collected {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body over {} bytes", shared.limits.max_body_bytes),
            );
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("cannot read the body: {e}")),
    };
    let prepare = match Prepare::decode(&body) {
        Ok(p) => p,
        Err(e) => {
            let reject = bad_prepare(&e, &shared.address.borrow());
            if let Some(skipped) = shared.refusal_log() {
                info!(shared.logger, "ILP-over-HTTP body is not a Prepare";
                    "account" => %account, "error" => %e, "similar_lines_skipped" => skipped);
            }
            return error(StatusCode::BAD_REQUEST, format!("{} ({})", reject.message, reject.code));
        }
    };
    let reply = shared.handler.handle(account, prepare).await;
    let mut r = Response::new(Full::new(reply.encode()));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    r
}
