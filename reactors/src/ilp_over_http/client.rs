//! Delivering packets to apps over ILP-over-HTTP: a POST of the Prepare to the account's URL with its outgoing
//! token; a `200` body is the Fulfill or Reject. Connections are kept alive and reused.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::header::{self, HeaderValue};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::ilp::{Prepare, Reply};

/// The largest reply body accepted.
const MAX_REPLY_BYTES: usize = 40_000;

/// Why a POST to an app failed (the connector answers upstream with F02, as ilp-connector does).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The URL is not usable.
    #[error("bad URL {0:?}")]
    Url(String),
    /// No answer before the Prepare expired.
    #[error("no answer before the packet expired")]
    Timeout,
    /// The connection failed.
    #[error("{0}")]
    Http(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The app answered with an error status.
    #[error("the app answered HTTP {0}")]
    Status(u16),
    /// The body is not a Fulfill or Reject.
    #[error("invalid reply: {0}")]
    Reply(#[from] crate::ilp::PacketError),
}

/// A pooled HTTP client for ILP-over-HTTP.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build(connector);
        HttpClient { client }
    }
}

impl HttpClient {
    /// POSTs `prepare` to `url` with `token`, waiting at most `timeout`.
    pub async fn send(&self, url: &str, token: &str, prepare: &Prepare, timeout: Duration) -> Result<Reply, SendError> {
        let uri: hyper::Uri = url.parse().map_err(|_| SendError::Url(url.to_owned()))?;
        let auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| SendError::Url(url.to_owned()))?;
        let request = Request::post(uri)
            .header(header::AUTHORIZATION, auth)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::ACCEPT, "application/octet-stream")
            .body(Full::new(prepare.encode()))
            .map_err(|e| SendError::Http(Box::new(e)))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| SendError::Http(Box::new(e)))?;
            let status = response.status();
            if !status.is_success() {
                return Err(SendError::Status(status.as_u16()));
            }
            let body = Limited::new(response.into_body(), MAX_REPLY_BYTES)
                .collect()
                .await
                .map_err(SendError::Http)?
                .to_bytes();
            Ok(Reply::decode(&body)?)
        };
        tokio::time::timeout(timeout, exchange).await.map_err(|_| SendError::Timeout)?
    }
}
