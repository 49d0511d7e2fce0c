//! A minimal client for the admin API, used by `ledgerwire peers` and `ledgerwire events`.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Why an admin request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node is not reachable.
    #[error("cannot reach the admin API at {addr}: {reason} (is the node running?)")]
    Connect {
        /// The admin address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The request failed midway.
    #[error("admin API request failed: {0}")]
    Http(String),
    /// The node answered with an error.
    #[error("admin API answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The body.
        body: String,
    },
}

async fn send(
    addr: SocketAddr,
    token: &str,
    method: hyper::Method,
    path: &str,
    body: Bytes,
) -> Result<hyper::Response<Incoming>, ClientError> {
    let stream =
        tokio::net::TcpStream::connect(addr).await.map_err(|e| ClientError::Connect { addr, reason: e.to_string() })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?;
    tokio::spawn(conn);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .map_err(|e| ClientError::Http(e.to_string()))?;
    let response = sender.send_request(request).await.map_err(|e| ClientError::Http(e.to_string()))?;
    if !response.status().is_success() {
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        return Err(ClientError::Status { status, body: String::from_utf8_lossy(&body).into_owned() });
    }
    Ok(response)
}

async fn json_of(response: hyper::Response<Incoming>) -> Result<Value, ClientError> {
    let body = response.into_body().collect().await.map_err(|e| ClientError::Http(e.to_string()))?;
    serde_json::from_slice(&body.to_bytes()).map_err(|e| ClientError::Http(format!("bad JSON: {e}")))
}

/// `GET path` and parse the JSON body.
pub async fn get_json(addr: SocketAddr, token: &str, path: &str) -> Result<Value, ClientError> {
    json_of(send(addr, token, hyper::Method::GET, path, Bytes::new()).await?).await
}

/// `POST path` with a JSON body and parse the JSON answer.
pub async fn post_json(addr: SocketAddr, token: &str, path: &str, body: &Value) -> Result<Value, ClientError> {
    json_of(send(addr, token, hyper::Method::POST, path, Bytes::from(body.to_string())).await?).await
}

/// `DELETE path` and parse the JSON answer.
pub async fn delete_json(addr: SocketAddr, token: &str, path: &str) -> Result<Value, ClientError> {
    json_of(send(addr, token, hyper::Method::DELETE, path, Bytes::new()).await?).await
}

/// Follows `GET /events` and calls `on_event` with each event's JSON until the stream ends.
pub async fn follow_events(addr: SocketAddr, token: &str, on_event: impl FnMut(Value)) -> Result<(), ClientError> {
    follow_events_from(addr, token, || {}, on_event).await
}

/// As [`follow_events`], calling `on_open` once the node has answered (from then on no event is missed).
pub async fn follow_events_from(
    addr: SocketAddr,
    token: &str,
    on_open: impl FnOnce(),
    mut on_event: impl FnMut(Value),
) -> Result<(), ClientError> {
    let mut body = send(addr, token, hyper::Method::GET, "/events", Bytes::new()).await?.into_body();
    on_open();
    let mut pending = String::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ClientError::Http(e.to_string()))?;
        let Some(data) = frame.data_ref() else { continue };
        pending.push_str(&String::from_utf8_lossy(data));
        // Server-sent events are separated by a blank line; we only need the data lines.
        while let Some(end) = pending.find("\n\n") {
            let block: String = pending.drain(..end + 2).collect();
            for line in block.lines() {
                if let Some(json) = line.strip_prefix("data:")
                    && let Ok(v) = serde_json::from_str(json.trim())
                {
                    on_event(v);
                }
            }
        }
        if pending.len() > 1 << 20 {
            return Err(ClientError::Http("an event larger than 1 MiB".into()));
        }
    }
    Ok(())
}
