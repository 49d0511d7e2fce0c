//! MConnection benchmark, printed as one JSON document.
//!
//! ```text
//! cargo bench -p ledgerwire-conn --bench mconnection            # ~30 s
//! cargo bench -p ledgerwire-conn --bench mconnection -- --quick # rough
//! ```
//!
//! Over a secret connection on loopback TCP, rate limits off, one direction:
//! - messages per second for 100-byte messages on one channel and spread over four channels;
//! - MB/s for 64 KiB messages, next to the raw secret connection moving 64 KiB writes (flushed each) in the same run.
//!
//! Each figure is the best of three rounds.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ledgerwire_conn::mconnection::{ChannelDescriptor, MConnection, MConnectionConfig};
use ledgerwire_types::WireProfile;
use serde_json::json;

mod common;
use common::{best_of, secret_pair, stream_rate};

fn config() -> MConnectionConfig {
    MConnectionConfig { send_rate: 0, recv_rate: 0, ..Default::default() }
}

fn channel(id: u8) -> ChannelDescriptor {
    ChannelDescriptor::new(id, 1)
        .with_send_queue_capacity(1024)
        .with_recv_buffer_capacity(256 << 20)
        .with_recv_message_capacity(1 << 20)
}

/// Sends `size`-byte messages round-robin over `channels` channels for `dur`; returns (messages/s, bytes/s) as seen
/// by the consumers (counting until the last message arrives). Producer and consumers are tasks; nothing spins.
async fn mconn_rate(profile: WireProfile, channels: usize, size: usize, dur: Duration) -> (f64, f64) {
    let (a, b) = secret_pair(profile).await;
    let descs: Vec<_> = (0..channels as u8).map(|i| channel(0x20 + i)).collect();
    let (tx, _) = MConnection::spawn(a, &descs, config(), None).unwrap();
    let (_rx_conn, inbox) = MConnection::spawn(b, &descs, config(), None).unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let consumers: Vec<_> = inbox
        .into_iter()
        .map(|mut rx| {
            let count = count.clone();
            tokio::spawn(async move {
                let mut last = start;
                while let Some(m) = rx.recv().await {
                    std::hint::black_box(&m);
                    count.fetch_add(1, Relaxed);
                    last = Instant::now();
                }
                last
            })
        })
        .collect();
    let producer = tokio::spawn(async move {
        let msg = Bytes::from(vec![0x5a; size]);
        let mut i = 0usize;
        while start.elapsed() < dur {
            for _ in 0..64 {
                tx.send(0x20 + (i % channels) as u8, msg.clone()).await.unwrap();
                i += 1;
            }
        }
        // Send what is queued, then close: the consumers' queues end.
        tx.close_gracefully().await;
    });
    producer.await.unwrap();
    let mut last = start;
    for c in consumers {
        last = last.max(c.await.unwrap());
    }
    let secs = (last - start).as_secs_f64();
    let got = count.load(Relaxed) as f64;
    (got / secs, got * size as f64 / secs)
}

async fn raw_rate(profile: WireProfile, size: usize, dur: Duration) -> f64 {
    let (a, b) = secret_pair(profile).await;
    let (_, w) = a.split();
    let (r, _) = b.split();
    stream_rate(w, r, size, dur).await
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let dur = if quick { Duration::from_millis(200) } else { Duration::from_secs(1) };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let profile = WireProfile::Tm2;

    let one = best_of(|| rt.block_on(mconn_rate(profile, 1, 100, dur)).0);
    let four = best_of(|| rt.block_on(mconn_rate(profile, 4, 100, dur)).0);
    let big = best_of(|| rt.block_on(mconn_rate(profile, 1, 64 * 1024, dur)).1);
    let raw = best_of(|| rt.block_on(raw_rate(profile, 64 * 1024, dur)));
    let comet_one = best_of(|| rt.block_on(mconn_rate(WireProfile::CometBft, 1, 100, dur)).0);

    let report = json!({
        "benchmark": "mconnection",
        "quick": quick,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "aead_backend": if cfg!(feature = "ring") { "ring" } else { "chacha20poly1305" },
        "messages_per_sec_100B": {
            "tm2_one_channel": one.round(),
            "tm2_four_channels": four.round(),
            "cometbft_one_channel": comet_one.round(),
        },
        "throughput_64KiB_MBps": {
            "mconnection": (big / 1e5).round() / 10.0,
            "raw_secret_connection": (raw / 1e5).round() / 10.0,
            "mconnection_over_raw": (big / raw * 100.0).round() / 100.0,
        },
        "goals": {
            "at_least_300k_msgs_per_sec_one_channel": one >= 300_000.0,
            "at_least_300k_msgs_per_sec_four_channels": four >= 300_000.0,
            "64KiB_at_least_0.8_of_raw": big >= 0.8 * raw,
        },
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
