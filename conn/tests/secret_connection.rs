//! The secret connection's stream behaviour: wire bytes, batching, full duplex and arbitrary read/write patterns.
#![allow(clippy::unwrap_used)]

mod common;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use ledgerwire_conn::SecretConnection;
use ledgerwire_conn::secret_connection::Handshake;
use ledgerwire_conn::secret_connection::frame::SEALED_FRAME_LEN;
use ledgerwire_types::{NodeKey, WireProfile};
use proptest::prelude::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf, ReadHalf, WriteHalf};

const DEADLINE: Duration = Duration::from_secs(3);

fn unhex(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

/// The async path puts exactly the vector bytes on the wire: ephemeral message, auth frame, then data frames.
#[tokio::test]
async fn async_handshake_writes_the_golden_bytes() {
    let doc: serde_json::Value = serde_json::from_str(include_str!("data/cometbft-handshake-vectors.json")).unwrap();
    for v in doc["vectors"].as_array().unwrap() {
        let (a, b) = (&v["a"], &v["b"]);
        let key = NodeKey::from_seed(&unhex(&a["ed25519_seed"]).try_into().unwrap());
        let hs = Handshake::with_ephemeral_secret(WireProfile::CometBft, unhex(&a["eph_secret"]).try_into().unwrap());
        let (ours, mut wire) = tokio::io::duplex(1 << 16);
        let (r, w) = tokio::io::split(ours);
        // Play side b from the recorded bytes.
        wire.write_all(&unhex(&b["initial_msg"])).await.unwrap();
        wire.write_all(&unhex(&b["frame0_sealed"])).await.unwrap();
        let conn = SecretConnection::handshake_with(hs, r, w, &key, DEADLINE).await.unwrap();
        assert_eq!(conn.remote_id().to_string(), b["node_id"].as_str().unwrap());

        let mut sent = vec![0u8; 35 + SEALED_FRAME_LEN];
        wire.read_exact(&mut sent).await.unwrap();
        assert_eq!(sent[..35], unhex(&a["initial_msg"])[..]);
        assert_eq!(sent[35..], unhex(&a["frame0_sealed"])[..], "the auth message is alone in frame 0");

        let (mut reader, mut writer) = conn.split();
        writer.write_all(a["frame1_plain"].as_str().unwrap().as_bytes()).await.unwrap();
        writer.flush().await.unwrap();
        let mut frame1 = vec![0u8; SEALED_FRAME_LEN];
        wire.read_exact(&mut frame1).await.unwrap();
        assert_eq!(frame1, unhex(&a["frame1_sealed"]));

        wire.write_all(&unhex(&b["frame1_sealed"])).await.unwrap();
        let mut got = vec![0u8; b["frame1_plain"].as_str().unwrap().len()];
        reader.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b["frame1_plain"].as_str().unwrap().as_bytes());
    }
}

type Conn = SecretConnection<ReadHalf<DuplexStream>, WriteHalf<DuplexStream>>;

async fn pair(profile: WireProfile, capacity: usize) -> (Conn, Conn) {
    let (x, y) = tokio::io::duplex(capacity);
    let (ka, kb) = (NodeKey::generate(), NodeKey::generate());
    let (a, b) = tokio::try_join!(
        SecretConnection::handshake(x, &ka, profile, DEADLINE),
        SecretConnection::handshake(y, &kb, profile, DEADLINE),
    )
    .unwrap();
    assert_eq!(a.remote_id(), kb.node_id(profile));
    assert_eq!(b.remote_id(), ka.node_id(profile));
    (a, b)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[tokio::test]
async fn both_directions_stream_at_once_through_a_small_pipe() {
    // With a 16 KiB pipe, a half-duplex implementation deadlocks: both sides block writing 2 MiB.
    for profile in WireProfile::ALL {
        let (a, b) = pair(profile, 16 * 1024).await;
        let ((mut ra, mut wa), (mut rb, mut wb)) = (a.split(), b.split());
        let (to_b, to_a) = (pattern(2 << 20, 1), pattern(2 << 20, 2));
        let send_a = {
            let d = to_b.clone();
            tokio::spawn(async move {
                wa.write_all(&d).await.unwrap();
                wa.flush().await.unwrap();
                wa
            })
        };
        let send_b = {
            let d = to_a.clone();
            tokio::spawn(async move {
                wb.write_all(&d).await.unwrap();
                wb.flush().await.unwrap();
                wb
            })
        };
        let recv_a = tokio::spawn(async move {
            let mut got = vec![0u8; 2 << 20];
            ra.read_exact(&mut got).await.unwrap();
            got
        });
        let mut got_b = vec![0u8; 2 << 20];
        rb.read_exact(&mut got_b).await.unwrap();
        assert!(got_b == to_b, "{profile}: a→b corrupted");
        assert!(recv_a.await.unwrap() == to_a, "{profile}: b→a corrupted");
        send_a.await.unwrap();
        send_b.await.unwrap();
    }
}

#[tokio::test]
async fn small_writes_share_a_frame_until_flushed() {
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let key = NodeKey::generate();
    let (conn, mut peer) = tokio::join!(SecretConnection::handshake(ours, &key, WireProfile::Tm2, DEADLINE), async {
        let mut p = common::exchange_keys(theirs, WireProfile::Tm2).await;
        let auth = p.handshake.auth_message(&NodeKey::generate());
        p.send_frame(&auth).await;
        p.recv_frame().await;
        p
    });
    let mut conn = conn.unwrap();
    for i in 0..10u8 {
        conn.write_all(&[i; 100]).await.unwrap();
    }
    // Nothing is on the wire before the flush.
    let mut probe = [0u8; 1];
    assert!(tokio::time::timeout(Duration::from_millis(20), peer.io.read(&mut probe)).await.is_err());
    conn.flush().await.unwrap();
    let data = peer.recv_frame().await;
    assert_eq!(data.len(), 1000, "ten 100-byte writes travel in one frame");
    assert_eq!(&data[900..], &[9; 100]);
}

/// Counts `poll_write`/`poll_read` calls that reach the transport: one per system call on a real socket.
struct Counted<T> {
    inner: T,
    calls: Arc<AtomicUsize>,
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

#[tokio::test]
async fn a_megabyte_costs_a_few_dozen_transport_calls_not_one_per_frame() {
    const TOTAL: usize = 1 << 20;
    let frames = TOTAL / 1024;
    // Pipes big enough to hold everything, so the counts do not depend on scheduling.
    let (x, y) = tokio::io::duplex(4 << 20);
    let (writes, reads) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (xr, xw) = tokio::io::split(x);
    let (yr, yw) = tokio::io::split(y);
    let xw = Counted { inner: xw, calls: writes.clone() };
    let yr = Counted { inner: yr, calls: reads.clone() };
    let (ka, kb) = (NodeKey::generate(), NodeKey::generate());
    let (a, b) = tokio::try_join!(
        SecretConnection::handshake((xr, xw), &ka, WireProfile::CometBft, DEADLINE),
        SecretConnection::handshake((yr, yw), &kb, WireProfile::CometBft, DEADLINE),
    )
    .unwrap();
    let (_, mut tx) = a.split();
    let (mut rx, _) = b.split();
    let (w0, r0) = (writes.load(Ordering::Relaxed), reads.load(Ordering::Relaxed));
    let data = pattern(TOTAL, 9);
    tx.write_all(&data).await.unwrap();
    tx.flush().await.unwrap();
    let mut got = vec![0u8; TOTAL];
    rx.read_exact(&mut got).await.unwrap();
    assert!(got == data);
    let (w, r) = (writes.load(Ordering::Relaxed) - w0, reads.load(Ordering::Relaxed) - r0);
    assert!(w <= frames / 32, "{w} write calls for {frames} frames");
    assert!(r <= frames / 32, "{r} read calls for {frames} frames");
}

#[tokio::test]
async fn a_clean_close_at_a_frame_boundary_is_end_of_stream() {
    for profile in WireProfile::ALL {
        let (a, b) = pair(profile, 4096).await;
        let ((_ra, mut wa), (mut rb, _wb)) = (a.split(), b.split());
        wa.write_all(b"last words").await.unwrap();
        wa.shutdown().await.unwrap();
        let mut got = Vec::new();
        rb.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"last words");
    }
}

#[derive(Debug, Clone)]
struct Pattern {
    profile: WireProfile,
    pipe: usize,
    writes: Vec<(usize, bool)>,
    reads: Vec<usize>,
}

fn patterns() -> impl Strategy<Value = Pattern> {
    (
        prop::sample::select(WireProfile::ALL.to_vec()),
        prop::sample::select(vec![64usize, 1044, 1500, 70_000]),
        prop::collection::vec((1usize..5000, any::<bool>()), 1..24),
        prop::collection::vec(1usize..5000, 1..24),
    )
        .prop_map(|(profile, pipe, writes, reads)| Pattern { profile, pipe, writes, reads })
}

/// Writes with the given sizes and flush points in both directions at once, reads with the given sizes; both
/// sides must receive exactly what the other sent.
fn round_trip(p: &Pattern) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (a, b) = pair(p.profile, p.pipe).await;
        let total: usize = p.writes.iter().map(|w| w.0).sum();
        let mut writers = Vec::new();
        let mut readers = Vec::new();
        for ((mut r, mut w), seed) in [(a.split(), 3u8), (b.split(), 4u8)] {
            let writes = p.writes.clone();
            writers.push(tokio::spawn(async move {
                let data = pattern(total, seed);
                let mut at = 0;
                for (len, flush) in writes {
                    w.write_all(&data[at..at + len]).await.unwrap();
                    at += len;
                    if flush {
                        w.flush().await.unwrap();
                    }
                }
                w.flush().await.unwrap();
                w
            }));
            let reads = p.reads.clone();
            // Side a's reader receives what b sent (seed 4), and vice versa.
            let want = pattern(total, seed ^ 7);
            readers.push(tokio::spawn(async move {
                let mut got = Vec::with_capacity(total);
                let mut buf = vec![0u8; 5000];
                let mut i = 0;
                while got.len() < total {
                    let n = r.read(&mut buf[..reads[i % reads.len()]]).await.unwrap();
                    assert_ne!(n, 0, "early end of stream");
                    got.extend_from_slice(&buf[..n]);
                    i += 1;
                }
                assert!(got == want, "stream corrupted");
            }));
        }
        for r in readers {
            r.await.unwrap();
        }
        for w in writers {
            w.await.unwrap();
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn random_write_and_read_sizes_round_trip(p in patterns()) {
        round_trip(&p);
    }
}
