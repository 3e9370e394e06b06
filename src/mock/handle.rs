//! [`MockServer`]: a mock provider running in-process, on a free port of 127.0.0.1, and the one
//! handle to it — its address, the scenario in force, the requests it received, and its stop.
//! Tests and the demo hold it; `isdown mock-provider` is the same server ([`run`](super::run))
//! on an address of the user's choosing, driven over HTTP instead.
//!
//! It owns the server's lifetime only: what the server answers is `routes`' business, and the
//! handle changes it only the way `POST /_mock/scenario` does. It spawns on the caller's tokio
//! runtime, so a test on paused time gets a mock on paused time.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::log::RecordedRequest;
use super::routes::Shared;
use super::server::{serve, shared};
use super::{MockOptions, Scenario};

/// A running in-process mock provider. Dropping it stops the server (in the background);
/// [`MockServer::stop`] stops it and waits until every connection is closed.
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl MockServer {
    /// Binds a free port of 127.0.0.1 and serves the mock there on the current tokio runtime.
    /// The server accepts connections as soon as this returns: there is nothing to wait for.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub async fn start(options: MockOptions) -> io::Result<MockServer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = shared(options)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, Arc::clone(&shared), async {
            // A dropped sender means the same as a sent one: stop.
            let _ = stopped.await;
        }));
        Ok(MockServer {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the base URL of Anthropic-style clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1`: the base URL of OpenAI-style clients.
    pub fn v1(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Puts `scenario` in force from the next request on, as `POST /_mock/scenario` does
    /// (`flapping` and the first-request scenarios start over); style and delay stay.
    pub fn set_scenario(&self, scenario: Scenario) {
        self.shared.switch(scenario, None, None);
    }

    /// The API requests received so far (the newest 1,000), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.list()
    }

    /// Completes once `count` API requests have arrived since start — at once if they have.
    /// A request counts as it arrives, before it is answered (a hung one counts too).
    pub async fn received(&self, count: usize) {
        self.shared.requests.received(count).await;
    }

    /// Stops accepting, closes every connection (in-flight answers get a short grace; hung ones
    /// are dropped) and returns what the server returned.
    pub async fn stop(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}
