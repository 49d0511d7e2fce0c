//! The admin listener under abuse, as an attacker on the admin port would try it: connections that never send
//! their headers are closed after the header-read timeout, those over the cap at once, and the API keeps
//! answering; errors have one JSON shape; undialable addresses are refused at once; `/health` needs no token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A raw request; the status and the body.
async fn raw(addr: std::net::SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await.expect("an answer").unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

/// Whether the server closes `s` within `within` (a read returns end of file or an error).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(tokio::time::timeout(within, s.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_sheds_silent_connections_and_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let h = home(&dir, "a");
    init(&h, "tm2");
    edit(&h, |c| {
        c.replace("max_connections = 64", "max_connections = 8").replace(
            "\nheader_read_timeout = \"5s\"\n# Connections idle",
            "\nheader_read_timeout = \"2s\"\n# Connections idle",
        )
    });
    let mut node = start(&h).await;
    let admin = node.admin;

    // Thirty connections that never send a header: eight are held, the rest closed at once (looked at together,
    // well before the header-read timeout closes the held ones).
    let mut checks = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let mut s = TcpStream::connect(admin).await.unwrap();
        checks.spawn(async move { (closed_within(&mut s, Duration::from_millis(800)).await, s) });
    }
    let mut held = Vec::new();
    while let Some(r) = checks.join_next().await {
        let (closed, s) = r.unwrap();
        if !closed {
            held.push(s);
        }
    }
    assert_eq!(held.len(), 8, "the 22 over the cap of 8 are closed at once, the 8 held are not");
    // The held ones are closed once their headers are late (2 s); then the API answers again.
    for s in held.iter_mut() {
        assert!(closed_within(s, Duration::from_secs(10)).await, "a silent connection is closed");
    }
    let auth = format!("Authorization: bearer {}\r\n", node.token);
    let (status, body) =
        raw(admin, &format!("GET /status HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&node.id), "the scheme name is case-insensitive");

    // Health without a token; errors in one JSON shape.
    let (status, body) = raw(admin, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, body) = raw(admin, &format!("GET /nope HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n")).await;
    assert_eq!(status, 404);
    assert!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"].is_string(), "{body}");
    let big = "x".repeat(20_000);
    let (status, body) = raw(
        admin,
        &format!(
            "POST /peers HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{big}",
            big.len()
        ),
    )
    .await;
    assert_eq!(status, 413);
    assert!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"].is_string(), "{body}");
    let (status, _) = raw(admin, "GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 401);
    let huge = "y".repeat(20_000);
    let (status, body) =
        raw(admin, &format!("GET /status HTTP/1.1\r\nHost: x\r\n{auth}X-Big: {huge}\r\nConnection: close\r\n\r\n"))
            .await;
    assert_eq!(status, 431);
    assert!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"].is_string(), "{body}");

    // Addresses that can never be dialed are refused at once (another node's real ID, so only the address is wrong).
    let other = home(&dir, "b");
    init(&other, "tm2");
    let id = node_id(&other);
    for (bad, why) in [
        ("0.0.0.0:26656", "unspecified"),
        ("255.255.255.255:26656", "broadcast"),
        ("224.0.0.1:26656", "multicast"),
        ("127.0.0.1:0", "port"),
    ] {
        let body = format!(r#"{{"address": "{id}@{bad}"}}"#);
        let (status, text) = raw(
            admin,
            &format!(
                "POST /peers HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {text}");
        assert!(text.to_lowercase().contains(why), "{bad}: {text}");
    }
    assert!(sigterm(&mut node).await.success());
}
