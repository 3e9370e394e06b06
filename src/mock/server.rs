//! The mock's HTTP server: the accept loop and the per-connection plumbing that lets `reset`
//! send a TCP RST and keeps hung connections from outliving shutdown. The routes live in
//! `routes`.
//!
//! The accept loop is hand-written rather than `axum::serve` because two scenarios need the
//! socket itself: `reset` closes it with zero linger from inside a handler, and shutdown must
//! drop connections whose handlers never finish (`hang`, `stream_stall`, `keepalive_only`).

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::{Extension, Router};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::MockOptions;
use super::reset::{ConnHandle, ResetSignal};
use super::routes::{Shared, router};
use super::styles::StyleTable;

/// 200 ms: in-flight answers of a healthy mock finish in microseconds; only deliberately hung
/// ones are left, and those must not hold up shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(200);

/// After a failed accept (e.g. out of file descriptors), wait before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves the mock on `listener` until `shutdown` completes, then closes every connection
/// (after a short grace for in-flight answers) and returns.
pub async fn run(
    listener: TcpListener,
    options: MockOptions,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve(listener, shared(options)?, shutdown).await
}

/// The state a mock server answers from: the embedded style table and `options`.
pub(super) fn shared(options: MockOptions) -> io::Result<Arc<Shared>> {
    let table = StyleTable::embedded()
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err.to_string()))?;
    Ok(Arc::new(Shared::new(table, options)))
}

/// As [`run`], answering from `shared`, which the caller may hold on to (`MockServer` does).
pub(super) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let router = router(shared);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "mock provider listening");
    }

    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::debug!(%peer, "mock: connection");
                    connections.spawn(serve_connection(stream, router.clone(), stop_rx.clone()));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "mock: accept failed");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    }
                }
            },
            // Reap finished connection tasks so the set does not grow with every connection.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }

    drop(listener);
    stop_tx.send_replace(true);
    while connections.join_next().await.is_some() {}
    tracing::info!("mock provider stopped");
    Ok(())
}

// === impl connections ===

/// The connection's socket, owned by hyper. When it is dropped after a reset request it closes
/// with zero linger, which makes the kernel send RST instead of FIN.
struct ConnIo {
    stream: TcpStream,
    reset: Arc<ResetSignal>,
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.reset.is_requested()
            && let Err(err) = self.stream.set_zero_linger()
        {
            tracing::warn!(error = %err, "mock: could not arm the reset");
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Serves one connection until it closes, a handler asks for a reset, or shutdown (plus grace).
async fn serve_connection(stream: TcpStream, router: Router, mut stop: watch::Receiver<bool>) {
    let reset = Arc::new(ResetSignal::default());
    let io = TokioIo::new(ConnIo {
        stream,
        reset: Arc::clone(&reset),
    });
    let service = TowerToHyperService::new(router.layer(Extension(ConnHandle(Arc::clone(&reset)))));
    let mut conn = pin!(http1::Builder::new().serve_connection(io, service));

    tokio::select! {
        result = conn.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(error = %err, "mock: connection ended with an error");
            }
        }
        // Dropping the connection drops `ConnIo`, which resets the socket.
        () = reset.requested() => {}
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                _ = conn.as_mut() => {}
                () = reset.requested() => {}
                () = tokio::time::sleep(SHUTDOWN_GRACE) => {}
            }
        }
    }
}

/// Completes when the server shuts down (or the server is gone, which means the same).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here: it must not live across an await.
    let _ = stop.wait_for(|stopped| *stopped).await;
}
