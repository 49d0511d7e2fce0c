//! `GET /openapi.json` checked against the live server: every documented operation's example request gets one of
//! the answers the document lists, and every operation's CLI face is a real command.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The status of a request (the headers are enough: `/events` never ends).
async fn status_of(addr: std::net::SocketAddr, method: &str, path: &str, token: &str, body: Option<&str>) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.unwrap_or("");
    let request = format!(
        "{} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        method.to_uppercase(),
        body.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await.expect("an answer").unwrap();
    String::from_utf8_lossy(&buf[..n]).split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_live_server_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let h = home(&dir, "a");
    init(&h, "tm2");
    let mut node = start(&h).await;
    let doc: serde_json::Value = {
        let mut s = tokio::net::TcpStream::connect(node.admin).await.unwrap();
        s.write_all(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        let text = String::from_utf8_lossy(&out).to_string();
        serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap()
    };
    assert_eq!(doc["openapi"], "3.0.3");
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let example = &op["x-example"];
            let status =
                status_of(node.admin, method, example["path"].as_str().unwrap(), &node.token, example["body"].as_str())
                    .await;
            let documented: Vec<u16> =
                op["responses"].as_object().unwrap().keys().map(|k| k.parse().unwrap()).collect();
            assert!(documented.contains(&status), "{method} {path}: {status} is not among {documented:?}");
            // The CLI face exists.
            let cli = op["x-cli"].as_str().unwrap();
            if let Some(rest) = cli.strip_prefix("ledgerwire ") {
                let words: Vec<&str> = rest
                    .split(' ')
                    .take_while(|w| !w.starts_with('<') && !w.starts_with('[') && !w.starts_with('-'))
                    .collect();
                let mut args = words.clone();
                args.push("--help");
                assert!(
                    run(&args).status.success(),
                    "{method} {path}: `ledgerwire {}` is not a command",
                    words.join(" ")
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 16, "{checked} operations");
    // The token is checked where the document says so.
    assert_eq!(status_of(node.admin, "get", "/status", "wrong-token-wrong-token", None).await, 401);
    assert!(sigterm(&mut node).await.success());
}
