//! Prometheus metrics, scraped as Prometheus would and parsed with a text-format parser: two connected nodes with
//! ILP accounts for each other.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned())
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, label: (&str, &str)) -> Option<f64> {
    scrape.samples.iter().find(|s| s.metric == name && s.labels.get(label.0) == Some(label.1)).map(|s| match s.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => f64::NAN,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_and_parse_as_prometheus_text() {
    let dir = tempfile::tempdir().unwrap();
    let (ha, hb) = (home(&dir, "a"), home(&dir, "b"));
    init(&ha, "tm2");
    init(&hb, "tm2");
    let (ida, idb) = (node_id(&ha), node_id(&hb));
    configure_ilp(&ha, "test.a", &peer_account("b", &idb));
    configure_ilp(&hb, "test.b", &peer_account("a", &ida));
    edit(&ha, |c| {
        c.replace(
            "[metrics]\n# Where GET /metrics listens, e.g. \"127.0.0.1:26660\"; empty = off.\nladdr = \"\"",
            "[metrics]\nladdr = \"127.0.0.1:0\"",
        )
    });
    let mut a = start(&ha).await;
    let url = a.started["metrics"]
        .as_str()
        .expect("the metrics address is logged")
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_owned();
    edit(&hb, |c| c.replace("persistent_peers = \"\"", &format!("persistent_peers = \"{ida}@{}\"", a.p2p)));
    let mut b = start(&hb).await;
    wait_logs(&mut a.logs, "ILP link up", 1).await;
    wait_logs(&mut b.logs, "ILP link up", 1).await;

    // Route exchange (channel 0x72) starts its first message once the link is up, on its own: scraped until that
    // has gone out (bounded).
    let mut tries = 0;
    let (text, scrape) = loop {
        let (status, text) = get(&url, "/metrics").await;
        assert_eq!(status, 200);
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text");
        tries += 1;
        if value(&scrape, "ledgerwire_channel_bytes_total", ("channel", "0x72")).unwrap_or(0.0) > 0.0 || tries == 200 {
            break (text, scrape);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(value(&scrape, "ledgerwire_peers", ("direction", "inbound")), Some(1.0), "{text}");
    assert!(value(&scrape, "ledgerwire_channel_bytes_total", ("channel", "0x72")).unwrap_or(0.0) > 0.0, "{text}");
    assert_eq!(value(&scrape, "ledgerwire_ilp_balance", ("account", "b")), Some(0.0), "{text}");
    assert!(value(&scrape, "ledgerwire_peer_events_total", ("event", "connected")).unwrap_or(0.0) >= 1.0, "{text}");
    assert!(scrape.samples.iter().any(|s| s.metric == "ledgerwire_ilp_routes"), "{text}");
    // Histograms: the peer's handshake was observed; forwarding latency is there (no payment yet).
    let count = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1.0)
    };
    assert!(count("ledgerwire_handshake_seconds_count") >= 1.0, "{text}");
    assert_eq!(count("ledgerwire_ilp_forwarding_seconds_count"), 0.0, "{text}");
    // Only /metrics.
    assert_eq!(get(&url, "/status").await.0, 404);
    for node in [&mut a, &mut b] {
        assert!(sigterm(node).await.success());
    }
}
