//! The ILP-over-HTTP listener faces apps, possibly across a network: it answers Prepares with the right token,
//! refuses everything else with the right status and nothing forwarded, and holds up under abuse (slowed-down
//! guessing, silent and idle connections, a connection cap).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use ledgerwire_reactors::accounts::AccountId;
use ledgerwire_reactors::ilp::{Address, Fulfill, Prepare, Reply, Timestamp, condition_of};
use ledgerwire_reactors::ilp_over_http::{Credentials, HttpLimits, PacketHandler, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

const TOKEN: &str = "app-token-0123456789";

#[derive(Clone, Default)]
struct Fulfiller {
    calls: Arc<AtomicU64>,
}

impl PacketHandler for Fulfiller {
    async fn handle(&self, account: AccountId, prepare: Prepare) -> Reply {
        assert_eq!(account.as_str(), "app");
        self.calls.fetch_add(1, Ordering::SeqCst);
        Reply::Fulfill(Fulfill { fulfillment: [9; 32], data: prepare.data })
    }
}

async fn listener(limits: HttpLimits) -> (SocketAddr, Fulfiller, watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_ctx, credentials) = watch::channel(Arc::new(Credentials::new([(AccountId::new("app").unwrap(), TOKEN)])));
    let (_atx, address) = watch::channel(Address::parse("test.node").unwrap());
    let (stop, stopped) = watch::channel(false);
    let handler = Fulfiller::default();
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    tokio::spawn({
        let handler = handler.clone();
        async move {
            let _keep = (_ctx, _atx);
            serve(listener, limits, credentials, address, handler, stopped, logger).await;
        }
    });
    (addr, handler, stop)
}

fn prepare() -> Bytes {
    Prepare {
        amount: 5,
        expires_at: Timestamp::now().plus_ms(30_000),
        execution_condition: condition_of(&[9; 32]),
        destination: Address::parse("test.node.bob").unwrap(),
        data: Bytes::from_static(b"hello"),
    }
    .encode()
}

fn request(path: &str, token: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: application/ilp+octet-stream\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// Sends one request and reads the response head and body (content-length framed).
async fn exchange(conn: &mut TcpStream, req: &[u8]) -> (u16, Vec<u8>) {
    conn.write_all(req).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before a full response: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let status = head[9..12].parse().unwrap();
                return (status, buf[end + 4..end + 4 + len].to_vec());
            }
        }
    }
}

async fn closed(conn: &mut TcpStream) -> bool {
    let mut b = [0u8; 64];
    matches!(conn.read(&mut b).await, Ok(0) | Err(_))
}

#[tokio::test]
async fn a_prepare_with_the_right_token_is_answered_on_the_account_path_or_any_path() {
    let (addr, handler, _stop) = listener(HttpLimits::default()).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    let (status, body) = exchange(&mut c, &request("/accounts/app/ilp", TOKEN, &prepare())).await;
    assert_eq!(status, 200);
    assert_eq!(
        Reply::decode(&body).unwrap(),
        Reply::Fulfill(Fulfill { fulfillment: [9; 32], data: Bytes::from_static(b"hello") })
    );
    // Keep-alive, and ilp-plugin-http's habit of any path.
    let (status, _) = exchange(&mut c, &request("/", TOKEN, &prepare())).await;
    assert_eq!(status, 200);
    let (status, body) = exchange(&mut c, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert_eq!((status, &body[..]), (200, &b"OK"[..]));
    assert_eq!(handler.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn wrong_tokens_get_401_and_nothing_is_forwarded() {
    let (addr, handler, _stop) = listener(HttpLimits::default()).await;
    for (path, token) in [("/accounts/app/ilp", "wrong-token-0123456789"), ("/accounts/other/ilp", TOKEN), ("/x", "")] {
        let mut c = TcpStream::connect(addr).await.unwrap();
        let (status, body) = exchange(&mut c, &request(path, token, &prepare())).await;
        assert_eq!(status, 401, "{path} {token}");
        assert!(String::from_utf8_lossy(&body).contains("\"error\""));
        assert!(closed(&mut c).await, "a refused client gets a new connection per guess");
    }
    assert_eq!(handler.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn repeated_authentication_failures_from_one_address_are_answered_ever_more_slowly() {
    let (addr, _, _stop) = listener(HttpLimits::default()).await;
    let mut waits = Vec::new();
    for _ in 0..8 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        let started = tokio::time::Instant::now();
        let (status, _) = exchange(&mut c, &request("/", "guess-guess-guess-guess", &prepare())).await;
        assert_eq!(status, 401);
        waits.push(started.elapsed());
    }
    assert!(waits[..3].iter().all(|w| *w < Duration::from_millis(100)), "{waits:?}");
    assert!(waits[7] >= Duration::from_millis(500), "{waits:?}");
    assert!(waits.windows(2).skip(3).all(|w| w[1] > w[0]), "{waits:?}");
    // The right token clears the slate.
    let mut c = TcpStream::connect(addr).await.unwrap();
    assert_eq!(exchange(&mut c, &request("/", TOKEN, &prepare())).await.0, 200);
    let started = tokio::time::Instant::now();
    let mut c = TcpStream::connect(addr).await.unwrap();
    assert_eq!(exchange(&mut c, &request("/", "guess-guess-guess-guess", &prepare())).await.0, 401);
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[tokio::test]
async fn a_body_that_is_not_a_prepare_is_400_and_an_oversized_body_is_413() {
    let (addr, handler, _stop) = listener(HttpLimits::default()).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    let fulfill = Fulfill { fulfillment: [0; 32], data: Bytes::new() }.encode();
    let (status, body) = exchange(&mut c, &request("/", TOKEN, &fulfill)).await;
    assert_eq!(status, 400);
    assert!(
        String::from_utf8_lossy(&body).contains("invalid packet type received. type=13"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _) = exchange(&mut c, &request("/", TOKEN, b"garbage")).await;
    assert_eq!(status, 400);
    let mut c = TcpStream::connect(addr).await.unwrap();
    let (status, _) = exchange(&mut c, &request("/", TOKEN, &vec![0u8; 40_001])).await;
    assert_eq!(status, 413);
    assert_eq!(handler.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn silent_and_idle_connections_are_closed_by_their_timeouts() {
    let limits = HttpLimits {
        header_read_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(60),
        ..HttpLimits::default()
    };
    let (addr, _, _stop) = listener(limits).await;
    // Half a request line, then nothing.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    silent.write_all(b"POST / HTTP/1.1\r\nhost:").await.unwrap();
    let started = tokio::time::Instant::now();
    assert!(closed(&mut silent).await);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(5) && waited < Duration::from_secs(60), "{waited:?}");
    // Headers, then a body that stops halfway.
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    let full = request("/", TOKEN, &prepare());
    let started = tokio::time::Instant::now();
    let (status, _) = exchange(&mut stalled, &full[..full.len() - 10]).await;
    assert_eq!(status, 408);
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert!(closed(&mut stalled).await);
    // One request, then idle.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    assert_eq!(exchange(&mut idle, &request("/", TOKEN, &prepare())).await.0, 200);
    let started = tokio::time::Instant::now();
    assert!(closed(&mut idle).await);
    assert!(started.elapsed() >= Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once_and_the_listener_recovers() {
    let limits =
        HttpLimits { max_connections: 2, header_read_timeout: Duration::from_secs(300), ..HttpLimits::default() };
    let (addr, _, _stop) = listener(limits).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        // Served: each answers a request, then stays open.
        assert_eq!(exchange(&mut c, &request("/", TOKEN, &prepare())).await.0, 200);
        held.push(c);
    }
    let mut extra = TcpStream::connect(addr).await.unwrap();
    assert!(closed(&mut extra).await, "over the cap");
    drop(held.pop());
    // The freed slot is reused; connections can race the close, so allow a few attempts (bounded).
    let mut served = false;
    for _ in 0..50 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        if c.write_all(&request("/", TOKEN, &prepare())).await.is_ok() {
            let mut b = [0u8; 12];
            if c.read_exact(&mut b).await.is_ok() && &b[9..12] == b"200" {
                served = true;
                break;
            }
        }
        tokio::task::yield_now().await;
    }
    assert!(served, "a slot freed by a closed connection is used again");
}
