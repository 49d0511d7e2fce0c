//! The bounded HTTP/1.1 listener every HTTP endpoint of a node runs on (ILP-over-HTTP, the admin API): a
//! connection cap (connections over it are closed as soon as they are accepted), a header-read timeout (hyper's,
//! for the headers of each request), an idle timeout (a connection with no request in progress is closed), and a
//! graceful stop (requests in progress finish, then connections close).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use slog::{Logger, warn};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::HttpLimits;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves connections from `listener` until `shutdown` turns true (or its sender is dropped). `make` builds the
/// service of each connection from the client's address. `what` names the listener in log lines.
pub async fn serve_bounded<S, B, F>(
    listener: TcpListener,
    limits: HttpLimits,
    make: F,
    mut shutdown: watch::Receiver<bool>,
    logger: Logger,
    what: &'static str,
) where
    F: Fn(SocketAddr) -> S,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Send + Sync + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let refused = AtomicUsize::new(0);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little instead of spinning.
                        warn!(logger, "accept failed"; "listener" => what, "error" => %e);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    let n = refused.fetch_add(1, Ordering::Relaxed);
                    if n.is_power_of_two() {
                        warn!(logger, "connection cap reached; closing new connections";
                            "listener" => what, "cap" => limits.max_connections, "refused_so_far" => n + 1);
                    }
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let service = make(peer);
                let shutdown = shutdown.clone();
                connections.spawn(async move {
                    serve_connection(stream, service, limits, shutdown).await;
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    // Connections finish their request in progress and close.
    while connections.join_next().await.is_some() {}
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // A dropped sender counts as a shutdown too.
    let _ = shutdown.wait_for(|s| *s).await;
}

async fn serve_connection<S, B>(
    stream: tokio::net::TcpStream,
    service: S,
    limits: HttpLimits,
    mut shutdown: watch::Receiver<bool>,
) where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Send + Sync + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    // Counts request starts and ends: odd while a request is in progress.
    let (activity_tx, mut activity) = watch::channel(0usize);
    let activity_tx = Arc::new(activity_tx);
    let service = Arc::new(service);
    let tracked = hyper::service::service_fn(move |request: Request<Incoming>| {
        let (service, activity) = (service.clone(), activity_tx.clone());
        async move {
            activity.send_modify(|n| *n += 1);
            let response = service.call(request).await;
            activity.send_modify(|n| *n += 1);
            response
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // Headers beyond this get hyper's own 431 (hyper's default is about 400 KiB).
        .max_buf_size(64 * 1024)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), tracked);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let idle = *activity.borrow() % 2 == 0;
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = activity.changed() => {}
            _ = tokio::time::sleep(limits.idle_timeout), if idle && !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = stopped(&mut shutdown), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}
