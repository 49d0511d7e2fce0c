//! Helpers shared by the conn benchmarks: best-of rounds, loopback pairs, and one-way stream throughput.

use std::time::{Duration, Instant};

use ledgerwire_conn::SecretConnection;
use ledgerwire_types::{NodeKey, WireProfile};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// Rounds per figure: noise only ever slows a round down, so the best one counts.
const ROUNDS: usize = 3;

/// The best of [`ROUNDS`] runs of `f`.
pub(crate) fn best_of(mut f: impl FnMut() -> f64) -> f64 {
    (0..ROUNDS).map(|_| f()).fold(0.0, f64::max)
}

/// A connected loopback TCP pair with Nagle off.
pub(crate) async fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (b, _) = l.accept().await.unwrap();
    a.set_nodelay(true).unwrap();
    b.set_nodelay(true).unwrap();
    (a, b)
}

/// A secret connection over loopback TCP.
pub(crate) type Secret = SecretConnection<OwnedReadHalf, OwnedWriteHalf>;

/// Both ends of a secret connection between two fresh keys.
pub(crate) async fn secret_pair(profile: WireProfile) -> (Secret, Secret) {
    let (a, b) = tcp_pair().await;
    let (ka, kb) = (NodeKey::generate(), NodeKey::generate());
    let t = Duration::from_secs(5);
    tokio::try_join!(SecretConnection::handshake(a, &ka, profile, t), SecretConnection::handshake(b, &kb, profile, t))
        .unwrap()
}

/// Writes `size`-byte messages to `w` (flushing each) for `dur` while `r` reads them; returns bytes per second
/// received.
pub(crate) async fn stream_rate<W, R>(mut w: W, mut r: R, size: usize, dur: Duration) -> f64
where
    W: AsyncWrite + Unpin + Send + 'static,
    R: AsyncRead + Unpin + Send + 'static,
{
    let start = Instant::now();
    let sender = tokio::spawn(async move {
        let msg = vec![0x5au8; size];
        while start.elapsed() < dur {
            w.write_all(&msg).await.unwrap();
            w.flush().await.unwrap();
        }
        w.shutdown().await.unwrap();
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    sender.await.unwrap();
    total as f64 / secs
}
