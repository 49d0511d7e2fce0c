//! Secret connection benchmark, printed as one JSON document.
//!
//! ```text
//! cargo bench -p ledgerwire-conn --bench secret_connection            # ~1 minute
//! cargo bench -p ledgerwire-conn --bench secret_connection -- --quick # a few seconds, rough figures
//! cargo bench -p ledgerwire-conn --bench secret_connection -- --only handshake   # or aead, throughput
//! ```
//!
//! Every figure is compared with baselines measured in the same run, because this machine is shared and noisy:
//! - throughput (one direction, over loopback TCP, flush after every message) for 1 KiB, 64 KiB and 1 MiB messages,
//!   next to plain TCP and tendermint-p2p's blocking `SecretConnection` doing the same;
//! - the in-memory rate of the AEAD alone sealing and opening 1028-byte frames (the ceiling for one direction);
//! - handshakes per second against the bare crypto a handshake needs (per side: X25519 key generation and DH, one
//!   Ed25519 signature, one verification), and tendermint-p2p's handshake rate.
//!
//! Each figure is the best of three rounds: noise only ever slows a round down.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr, missing_docs)]

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use ledgerwire_conn::SecretConnection;
use ledgerwire_types::{NodeKey, WireProfile};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

mod common;
use common::{best_of, secret_pair, stream_rate, tcp_pair};

const FRAME: usize = 1028;

struct Cfg {
    dur: Duration,
}

/// Calls `step` (which processes `bytes` bytes) for `dur` and returns bytes per second.
fn rate(dur: Duration, bytes: usize, mut step: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < dur {
        for _ in 0..64 {
            step();
        }
        n += 64;
    }
    (n as f64 * bytes as f64) / start.elapsed().as_secs_f64()
}

fn aead_chacha(cfg: &Cfg) -> (f64, f64) {
    let cipher = ChaCha20Poly1305::new(&[7u8; 32].into());
    let nonce = [0u8; 12];
    let mut buf = [0x42u8; FRAME];
    let seal = best_of(|| {
        rate(cfg.dur, 1024, || {
            black_box(cipher.encrypt_inout_detached((&nonce).into(), &[], (&mut buf[..]).into()).unwrap());
        })
    });
    let mut sealed = [0x42u8; FRAME];
    let tag = cipher.encrypt_inout_detached((&nonce).into(), &[], (&mut sealed[..]).into()).unwrap();
    let open = best_of(|| {
        rate(cfg.dur, 1024, || {
            let mut b = sealed;
            cipher.decrypt_inout_detached((&nonce).into(), &[], (&mut b[..]).into(), &tag).unwrap();
            black_box(b);
        })
    });
    (seal, open)
}

fn aead_ring(cfg: &Cfg) -> (f64, f64) {
    use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &[7u8; 32]).unwrap());
    let mut buf = [0x42u8; FRAME];
    let seal = best_of(|| {
        rate(cfg.dur, 1024, || {
            let _ = black_box(
                key.seal_in_place_separate_tag(Nonce::assume_unique_for_key([0; 12]), Aad::empty(), &mut buf).unwrap(),
            );
        })
    });
    let mut sealed = [0x42u8; FRAME];
    let tag = key.seal_in_place_separate_tag(Nonce::assume_unique_for_key([0; 12]), Aad::empty(), &mut sealed).unwrap();
    let open = best_of(|| {
        rate(cfg.dur, 1024, || {
            let mut b = sealed;
            key.open_in_place_separate_tag(Nonce::assume_unique_for_key([0; 12]), Aad::empty(), tag, &mut b, 0..)
                .unwrap();
            black_box(b);
        })
    });
    (seal, open)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// One direction: the sender writes `size`-byte messages (flushing each) for `dur`; returns bytes/s received.
fn tcp_throughput(rt: &tokio::runtime::Runtime, size: usize, dur: Duration) -> f64 {
    best_of(|| {
        rt.block_on(async {
            let (a, b) = tcp_pair().await;
            let (_, w) = a.into_split();
            let (r, _) = b.into_split();
            stream_rate(w, r, size, dur).await
        })
    })
}

fn ours_throughput(rt: &tokio::runtime::Runtime, size: usize, dur: Duration) -> f64 {
    best_of(|| {
        rt.block_on(async {
            let (a, b) = secret_pair(WireProfile::Tm2).await;
            let (_, w) = a.split();
            let (r, _) = b.split();
            stream_rate(w, r, size, dur).await
        })
    })
}

fn std_pair() -> (std::net::TcpStream, std::net::TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    a.set_nodelay(true).unwrap();
    b.set_nodelay(true).unwrap();
    (a, b)
}

fn tm_handshake(
    s: std::net::TcpStream,
    seed: u8,
) -> tendermint_p2p::secret_connection::SecretConnection<std::net::TcpStream> {
    use tendermint_p2p::secret_connection::{SecretConnection as Tm, Version};
    Tm::new(s, ed25519_consensus::SigningKey::from([seed; 32]), Version::V0_34).unwrap()
}

fn tendermint_throughput(size: usize, dur: Duration) -> f64 {
    best_of(|| {
        let (a, b) = std_pair();
        let ta = std::thread::spawn(move || tm_handshake(a, 1));
        let mut rb = tm_handshake(b, 2);
        let mut wa = ta.join().unwrap();
        let start = Instant::now();
        let sender = std::thread::spawn(move || {
            let msg = vec![0x5au8; size];
            while start.elapsed() < dur {
                wa.write_all(&msg).unwrap();
                wa.flush().unwrap();
            }
            // tendermint-p2p has no half-close: send an end marker the reader recognises by length.
            wa.write_all(&[0xee]).unwrap();
        });
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = rb.read(&mut buf).unwrap();
            if n == 1 && buf[0] == 0xee {
                break;
            }
            total += n as u64;
        }
        let secs = start.elapsed().as_secs_f64();
        sender.join().unwrap();
        total as f64 / secs
    })
}

/// The crypto one side of a handshake needs, per second, on one core: X25519 key generation and DH, one Ed25519
/// signature, and one verification of a signature by a key received as bytes (which includes decompressing it).
fn crypto_per_side(cfg: &Cfg) -> f64 {
    let key = NodeKey::generate();
    let peer = NodeKey::generate();
    let peer_pub_bytes = peer.public_key().to_bytes();
    let challenge = [9u8; 32];
    let peer_sig = peer.sign(&challenge);
    let other_eph = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([3u8; 32]));
    best_of(|| {
        rate(cfg.dur, 1, || {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).unwrap();
            let secret = x25519_dalek::StaticSecret::from(seed);
            black_box(x25519_dalek::PublicKey::from(&secret));
            black_box(secret.diffie_hellman(&other_eph));
            black_box(key.sign(&challenge));
            let peer_pub = ledgerwire_types::PublicKey::from_bytes(black_box(&peer_pub_bytes)).unwrap();
            assert!(peer_pub.verify(&challenge, &peer_sig));
        })
    })
}

/// Handshakes per second with `clients` concurrent dialers; both sides run in this process.
fn ours_handshakes(rt: &tokio::runtime::Runtime, profile: WireProfile, clients: usize, dur: Duration) -> f64 {
    best_of(|| {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server_key = Arc::new(NodeKey::generate());
            let server = tokio::spawn(async move {
                loop {
                    let (s, _) = listener.accept().await.unwrap();
                    s.set_nodelay(true).unwrap();
                    let k = server_key.clone();
                    tokio::spawn(async move {
                        let _ = SecretConnection::handshake(s, &k, profile, Duration::from_secs(5)).await;
                    });
                }
            });
            let done = Arc::new(AtomicU64::new(0));
            let start = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..clients {
                let done = done.clone();
                tasks.push(tokio::spawn(async move {
                    let key = NodeKey::generate();
                    while start.elapsed() < dur {
                        let s = TcpStream::connect(addr).await.unwrap();
                        s.set_nodelay(true).unwrap();
                        SecretConnection::handshake(s, &key, profile, Duration::from_secs(5)).await.unwrap();
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            let r = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
            server.abort();
            r
        })
    })
}

/// Handshakes per second with both sides over in-memory pipes: the handshake's own cost, without the kernel's TCP
/// connection setup and teardown.
fn ours_handshakes_in_memory(rt: &tokio::runtime::Runtime, profile: WireProfile, pairs: usize, dur: Duration) -> f64 {
    best_of(|| {
        rt.block_on(async {
            let done = Arc::new(AtomicU64::new(0));
            let start = Instant::now();
            let tasks: Vec<_> = (0..pairs)
                .map(|_| {
                    let done = done.clone();
                    tokio::spawn(async move {
                        let (ka, kb) = (NodeKey::generate(), NodeKey::generate());
                        let t = Duration::from_secs(5);
                        while start.elapsed() < dur {
                            let (x, y) = tokio::io::duplex(4096);
                            let (a, b) = tokio::join!(
                                SecretConnection::handshake(x, &ka, profile, t),
                                SecretConnection::handshake(y, &kb, profile, t)
                            );
                            a.unwrap();
                            b.unwrap();
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
        })
    })
}

fn tendermint_handshakes(clients: usize, dur: Duration) -> f64 {
    best_of(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let mut servers = Vec::new();
        for _ in 0..clients {
            let l = listener.try_clone().unwrap();
            let stop = stop.clone();
            servers.push(std::thread::spawn(move || {
                while let Ok((s, _)) = l.accept() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    s.set_nodelay(true).unwrap();
                    let _ = tm_handshake(s, 1);
                }
            }));
        }
        let done = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let clients_t: Vec<_> = (0..clients)
            .map(|_| {
                let done = done.clone();
                std::thread::spawn(move || {
                    while start.elapsed() < dur {
                        let s = std::net::TcpStream::connect(addr).unwrap();
                        s.set_nodelay(true).unwrap();
                        tm_handshake(s, 2);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for c in clients_t {
            c.join().unwrap();
        }
        let r = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        for _ in 0..clients {
            let _ = std::net::TcpStream::connect(addr);
        }
        for s in servers {
            s.join().unwrap();
        }
        r
    })
}

fn mb(x: f64) -> Value {
    json!((x / 1e6 * 10.0).round() / 10.0)
}

fn ratio(a: f64, b: f64) -> Value {
    json!((a / b * 100.0).round() / 100.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).cloned();
    let run = |section: &str| only.as_deref().is_none_or(|o| o == section);
    let cfg = Cfg { dur: if quick { Duration::from_millis(150) } else { Duration::from_millis(1000) } };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let rt = runtime();
    let mut report = serde_json::Map::new();
    report.insert("benchmark".into(), json!("secret_connection"));
    report.insert("quick".into(), json!(quick));
    report.insert("cores".into(), json!(cores));
    report.insert("aead_backend".into(), json!(if cfg!(feature = "ring") { "ring" } else { "chacha20poly1305" }));
    // What this binary was compiled with (from .cargo/config.toml or RUSTFLAGS).
    report.insert(
        "poly1305_backend".into(),
        json!(if cfg!(poly1305_backend = "soft") { "soft (portable)" } else { "autodetect (AVX2 at run time)" }),
    );
    report.insert("static_avx2".into(), json!(cfg!(target_feature = "avx2")));
    let mut goals = serde_json::Map::new();

    let (cc_seal, cc_open) = aead_chacha(&cfg);
    let (ring_seal, ring_open) = aead_ring(&cfg);
    let seal = if cfg!(feature = "ring") { ring_seal } else { cc_seal };
    report.insert(
        "aead_in_memory_MBps".into(),
        json!({
            "chacha20poly1305_seal": mb(cc_seal), "chacha20poly1305_open": mb(cc_open),
            "ring_seal": mb(ring_seal), "ring_open": mb(ring_open),
            "chacha20poly1305_over_ring_seal": ratio(cc_seal, ring_seal),
        }),
    );

    if run("throughput") {
        let mut throughput = serde_json::Map::new();
        for (name, size) in [("1KiB", 1024usize), ("64KiB", 64 * 1024), ("1MiB", 1 << 20)] {
            let tcp = tcp_throughput(&rt, size, cfg.dur);
            let ours = ours_throughput(&rt, size, cfg.dur);
            let tm = tendermint_throughput(size, cfg.dur);
            if size == 64 * 1024 {
                goals.insert("64KiB_at_least_0.7_of_aead_seal".into(), json!(ours >= 0.7 * seal));
                goals.insert("64KiB_at_least_2x_tendermint_p2p".into(), json!(ours >= 2.0 * tm));
            }
            throughput.insert(
                name.into(),
                json!({
                    "ours_MBps": mb(ours), "plain_tcp_MBps": mb(tcp), "tendermint_p2p_MBps": mb(tm),
                    "ours_over_aead_seal": ratio(ours, seal), "ours_over_tendermint_p2p": ratio(ours, tm),
                    "ours_over_plain_tcp": ratio(ours, tcp),
                }),
            );
        }
        report.insert("throughput_one_direction".into(), throughput.into());
    }

    if run("handshake") {
        let clients = 4;
        let per_side = crypto_per_side(&cfg);
        // Both sides of every handshake run here, on `cores` cores: the crypto alone allows cores × per_side / 2.
        let crypto_bound = per_side * cores as f64 / 2.0;
        let hs_tm2 = ours_handshakes(&rt, WireProfile::Tm2, clients, cfg.dur);
        let hs_comet = ours_handshakes(&rt, WireProfile::CometBft, clients, cfg.dur);
        let hs_tm = tendermint_handshakes(clients, cfg.dur);
        let hs_mem = ours_handshakes_in_memory(&rt, WireProfile::CometBft, clients, cfg.dur);
        goals.insert(
            "handshakes_at_least_0.7_of_crypto_bound".into(),
            json!(hs_tm2.min(hs_comet) >= 0.7 * crypto_bound),
        );
        report.insert(
            "handshakes_per_sec".into(),
            json!({
                "tm2": hs_tm2.round(), "cometbft": hs_comet.round(), "tendermint_p2p": hs_tm.round(),
                "bare_crypto_per_side_per_core": per_side.round(),
                "crypto_bound_both_sides_in_process": crypto_bound.round(),
                "tm2_over_crypto_bound": ratio(hs_tm2, crypto_bound),
                "cometbft_over_crypto_bound": ratio(hs_comet, crypto_bound),
                "cometbft_over_tendermint_p2p": ratio(hs_comet, hs_tm),
                "cometbft_in_memory": hs_mem.round(),
                "in_memory_over_crypto_bound": ratio(hs_mem, crypto_bound),
            }),
        );
    }
    report.insert("goals".into(), goals.into());
    println!("{}", serde_json::to_string_pretty(&Value::Object(report)).unwrap());
}
