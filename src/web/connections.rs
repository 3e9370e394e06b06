//! The accept loop of isdown's HTTP listener: how many connections it holds, how long a silent
//! one may stay, who makes room when it is full, and how shutdown drains.
//!
//! Every connection is served by hyper's HTTP/1.1 connection with a header-read deadline
//! ([`Limits::header_timeout`]). hyper starts that deadline whenever a connection waits for a
//! request's head — on a fresh connection and again each time a keep-alive connection goes idle
//! after a response — so the one setting is both the slow-header and the idle keep-alive timeout.
//!
//! At most [`Limits::max_connections`] are held at once. When a new connection arrives at the cap,
//! the connection that has been idle longest (no request in flight: a keep-alive between
//! requests, or one that never finished sending a head) is closed to make room; only when every
//! held connection is busy does the newcomer get a `503` with `Retry-After` and is closed. So a
//! flood of idle or half-open connections cannot lock out `/healthz`, the API or the gateway, and
//! the file descriptors left for probes, alerts and the database stay reserved.
//!
//! On shutdown, the listener stops accepting, idle connections close at once, and requests in
//! flight get [`Limits::drain`] to finish; whatever is still open then is dropped.
//!
//! This module owns sockets and connection tasks only; what a request means is the router's.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

/// How the listener treats connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections held at once.
    pub max_connections: usize,
    /// Longest wait for a request's head: from accept, and from the end of each response on a
    /// kept-alive connection.
    pub header_timeout: Duration,
    /// After shutdown, how long requests in flight may take to finish.
    pub drain: Duration,
}

/// 30 s: longer than any client needs to send a request head, and about what browsers and
/// reverse proxies keep an idle connection for; eviction, not this timer, protects the cap.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// 5 s: a request in flight at shutdown usually finishes in milliseconds; a stream or a silent
/// client does not, and must not hold the process (a half-open request used to cost 70 s).
pub const DRAIN: Duration = Duration::from_secs(5);
/// 4,096: far above what one team's agents and dashboards open, far below the descriptors a
/// raised limit allows.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4_096;
/// Descriptors kept out of the listener's reach for everything else isdown opens: probes (up to
/// the monitor's concurrency), alert deliveries, the database, the gateway's upstream side
/// (counted separately, one per served gateway request).
const RESERVED_DESCRIPTORS: u64 = 384;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: HEADER_TIMEOUT,
            drain: DRAIN,
        }
    }
}

impl Limits {
    /// Limits fitted to `open_files` descriptors: after the reserve, half of what is left, since
    /// each gateway request holds an upstream connection as well as its own (at least 16, at most
    /// [`DEFAULT_MAX_CONNECTIONS`]).
    pub fn for_descriptors(open_files: u64) -> Limits {
        let spare = open_files.saturating_sub(RESERVED_DESCRIPTORS) / 2;
        let max = usize::try_from(spare)
            .unwrap_or(usize::MAX)
            .clamp(16, DEFAULT_MAX_CONNECTIONS);
        Limits {
            max_connections: max,
            ..Limits::default()
        }
    }
}

/// The open-file limit now in force for this process.
pub fn open_file_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX)
}

/// Raises this process's open-file soft limit to its hard limit (Linux's default soft limit of
/// 1,024 is what a connection flood exhausts) and returns the limit now in force.
pub fn raise_open_file_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if let Some(maximum) = limit.maximum
        && maximum > current
        && setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(maximum),
                maximum: Some(maximum),
            },
        )
        .is_ok()
    {
        return maximum;
    }
    current
}

/// One held connection, as the accept loop sees it.
struct Held {
    /// Requests whose response has not been fully sent.
    busy: AtomicU32,
    /// When it last became idle, in milliseconds since the loop started.
    idle_since: AtomicU64,
    /// Told to close (to make room).
    evict: Notify,
}

/// Every held connection, by a serial number.
#[derive(Default)]
struct Table {
    held: Mutex<HashMap<u64, Arc<Held>>>,
}

impl Table {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Held>>> {
        // Inserts and removals only: a panic cannot leave the map half-changed.
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Closes the longest-idle connection; false when every one is busy.
    fn evict_idlest(&self) -> bool {
        let held = self.lock();
        let idlest = held
            .values()
            .filter(|c| c.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|c| c.idle_since.load(Ordering::Relaxed));
        match idlest {
            Some(conn) => {
                conn.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// How long a newcomer waits for an evicted connection's slot: the eviction is a notify and a
/// socket close, microseconds when the runtime is not starved.
const EVICTION_WAIT: Duration = Duration::from_millis(500);
/// Rejections written at once; beyond it, excess connections are closed without an answer
/// (writing costs a descriptor for as long as the client takes to read).
const REJECTING_AT_ONCE: usize = 64;
/// A rejected client gets this long to take its 503.
const REJECT_WRITE: Duration = Duration::from_secs(1);
/// After the process runs out of descriptors, accepting pauses this long (the kernel would
/// otherwise report the same error in a busy loop).
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` within `limits` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let rejecting = Arc::new(Semaphore::new(REJECTING_AT_ONCE));
    let table = Arc::new(Table::default());
    let (stop, stopping) = watch::channel(false);
    let epoch = Instant::now();
    let mut tasks = JoinSet::new();
    let mut serial = 0u64;
    tokio::pin!(shutdown);
    loop {
        // Finished connection tasks are reaped as we go, so the set stays the size of the table.
        while tasks.try_join_next().is_some() {}
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    if is_out_of_descriptors(&e) {
                        tracing::warn!("out of file descriptors: closing an idle connection");
                        table.evict_idlest();
                        tokio::time::sleep(ACCEPT_PAUSE).await;
                    } else {
                        tracing::debug!(error = %e, "accept failed");
                    }
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // No Nagle delay: a streamed answer is many small writes, and without TCP_NODELAY each
        // chunk after the first waits for the client's delayed ACK (~40 ms on Linux).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => match make_room(&slots, &table).await {
                Some(permit) => permit,
                None => {
                    reject(stream, &rejecting, limits.max_connections, &mut tasks);
                    continue;
                }
            },
        };
        serial += 1;
        let held = Arc::new(Held {
            busy: AtomicU32::new(0),
            idle_since: AtomicU64::new(millis_since(epoch)),
            evict: Notify::new(),
        });
        table.lock().insert(serial, held.clone());
        let connection = Connection {
            id: serial,
            held,
            table: table.clone(),
            epoch,
            _permit: permit,
        };
        tasks.spawn(connection.run(stream, router.clone(), limits, stopping.clone()));
    }
    // Stop accepting (the listener closes here), let requests in flight finish within the
    // drain bound, then drop whatever is left.
    drop(listener);
    let _ = stop.send(true);
    let drained = tokio::time::timeout(limits.drain, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!(
            left = tasks.len(),
            "connections still open after the drain; closing them"
        );
        tasks.shutdown().await;
    }
    Ok(())
}

/// At the cap: evicts the idlest connection and waits briefly for its slot.
async fn make_room(slots: &Arc<Semaphore>, table: &Table) -> Option<OwnedSemaphorePermit> {
    if !table.evict_idlest() {
        return None;
    }
    tokio::time::timeout(EVICTION_WAIT, slots.clone().acquire_owned())
        .await
        .ok()?
        .ok()
}

/// Answers `503` and closes, within a small budget of concurrent rejections.
fn reject(mut stream: TcpStream, rejecting: &Arc<Semaphore>, max: usize, tasks: &mut JoinSet<()>) {
    let Ok(permit) = rejecting.clone().try_acquire_owned() else {
        return; // dropping the stream closes it
    };
    tasks.spawn(async move {
        let body = format!(
            "{{\"error\":{{\"message\":\"isdown is holding its maximum of {max} connections, all \
             busy; retry in a moment\",\"type\":\"overloaded\",\"param\":null,\"code\":\"too_many_connections\"}}}}"
        );
        let response = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = tokio::time::timeout(REJECT_WRITE, async {
            stream.write_all(response.as_bytes()).await?;
            stream.shutdown().await
        })
        .await;
        drop(permit);
    });
}

fn is_out_of_descriptors(e: &std::io::Error) -> bool {
    // EMFILE (this process) and ENFILE (the whole system).
    matches!(e.raw_os_error(), Some(24 | 23))
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// One connection's task and its place in the table.
struct Connection {
    id: u64,
    held: Arc<Held>,
    table: Arc<Table>,
    epoch: Instant,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.table.lock().remove(&self.id);
    }
}

impl Connection {
    async fn run(
        self,
        stream: TcpStream,
        router: Router,
        limits: Limits,
        mut stopping: watch::Receiver<bool>,
    ) {
        let held = self.held.clone();
        let epoch = self.epoch;
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let router = router.clone();
            let guard = Busy::begin(held.clone(), epoch);
            async move {
                let response = router
                    .oneshot(request.map(Body::new))
                    .await
                    .unwrap_or_else(|never: Infallible| match never {});
                Ok::<_, Infallible>(response.map(|body| Body::new(Tracked { body, guard })))
            }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            }
            _ = self.held.evict.notified() => {
                tracing::debug!("closing an idle connection to make room");
            }
            () = stopped(&mut stopping) => {
                // Idle: closes now. Busy: after the response in flight (the drain bounds it).
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
    }
}

/// Resolves once shutdown began (or the loop is gone).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// Marks a connection busy from a request's start until its response body is done.
struct Busy {
    held: Arc<Held>,
    epoch: Instant,
}

impl Busy {
    fn begin(held: Arc<Held>, epoch: Instant) -> Busy {
        held.busy.fetch_add(1, Ordering::AcqRel);
        Busy { held, epoch }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.held
            .idle_since
            .store(millis_since(self.epoch), Ordering::Relaxed);
        self.held.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its connection marked busy until it is sent or dropped.
struct Tracked {
    body: Body,
    guard: Busy,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let _ = &self.guard;
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::oneshot;

    use super::*;

    /// `/` answers at once; `/forever` never does (a request that stays in flight).
    fn app() -> Router {
        Router::new()
            .route("/", get(|| async { "ok" }))
            .route("/forever", get(std::future::pending::<&'static str>))
    }

    struct Running {
        addr: std::net::SocketAddr,
        stop: Option<oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<std::io::Result<()>>,
    }

    async fn start(limits: Limits) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, app(), limits, async {
            let _ = stopped.await;
        }));
        Running {
            addr,
            stop: Some(stop),
            task,
        }
    }

    // The clients below are raw sockets on purpose: these tests need connections no HTTP client
    // makes (silent, half-sent, idle between requests) and to see exactly when the server closes
    // them.

    /// Sends a GET on a new connection and returns the whole answer (the server closes).
    async fn get_once(addr: std::net::SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    /// Resolves when the server has closed `stream` (EOF or reset).
    async fn closed(stream: &mut TcpStream) {
        let mut buf = [0u8; 256];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    fn limits(max_connections: usize) -> Limits {
        Limits {
            max_connections,
            ..Limits::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_is_closed_after_the_header_timeout() {
        let server = start(limits(8)).await;
        let started = Instant::now();
        let mut silent = TcpStream::connect(server.addr).await.unwrap();
        closed(&mut silent).await;
        assert!(started.elapsed() >= HEADER_TIMEOUT);
        assert!(started.elapsed() < HEADER_TIMEOUT * 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_alive_connection_is_closed_after_the_idle_timeout() {
        let server = start(limits(8)).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        let idle_from = Instant::now();
        closed(&mut stream).await;
        assert!(idle_from.elapsed() >= HEADER_TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_cap_the_idlest_connection_makes_room() {
        let server = start(limits(4)).await;
        let mut idle = Vec::new();
        for _ in 0..4 {
            idle.push(TcpStream::connect(server.addr).await.unwrap());
            // Distinct idle ages, oldest first.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let answer = get_once(server.addr, "/").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // The oldest was closed to make room; the others are still held.
        closed(&mut idle[0]).await;
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_cap_with_every_connection_busy_a_newcomer_gets_503() {
        let server = start(limits(2)).await;
        let mut busy = Vec::new();
        for _ in 0..2 {
            let mut stream = TcpStream::connect(server.addr).await.unwrap();
            stream
                .write_all(b"GET /forever HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
            busy.push(stream);
        }
        // Let both requests reach the router before the third connects.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let answer = get_once(server.addr, "/").await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("retry-after: 1"), "{answer}");
        assert!(answer.contains("too_many_connections"), "{answer}");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_waits_for_a_half_sent_request_no_longer_than_the_drain() {
        let mut server = start(limits(8)).await;
        let mut half = TcpStream::connect(server.addr).await.unwrap();
        half.write_all(b"GET / HTTP/1.1\r\nhost:").await.unwrap();
        let mut busy = TcpStream::connect(server.addr).await.unwrap();
        busy.write_all(b"GET /forever HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let asked = Instant::now();
        server.stop.take().unwrap().send(()).unwrap();
        server.task.await.unwrap().unwrap();
        assert!(asked.elapsed() <= DRAIN + Duration::from_millis(100));
        closed(&mut half).await;
        closed(&mut busy).await;
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_lets_a_request_in_flight_finish() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let slow = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                "done"
            }),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, slow, limits(8), async {
            let _ = stopped.await;
        }));
        let client = tokio::spawn(get_once(addr, "/slow"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.send(()).unwrap();
        let answer = client.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("done"), "{answer}");
        task.await.unwrap().unwrap();
    }

    #[test]
    fn the_cap_leaves_descriptors_for_everything_else() {
        assert_eq!(Limits::for_descriptors(1_024).max_connections, 320);
        assert_eq!(Limits::for_descriptors(256).max_connections, 16);
        assert_eq!(
            Limits::for_descriptors(1 << 20).max_connections,
            DEFAULT_MAX_CONNECTIONS
        );
    }
}
