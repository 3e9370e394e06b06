//! A TCP relay on 127.0.0.1 in front of a real server (PostgreSQL), which a test can cut and
//! mend: cut, it closes every relayed connection and every new one at once — to the program
//! behind it, the database has gone away — and mended, it relays again. The real database
//! and the real program on both sides; only the path between them breaks.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use super::background;

pub struct Relay {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Relay {
    /// A relay in front of the server a `postgres://` (or any) URL names, and the same URL
    /// pointing at the relay instead.
    pub fn in_front_of(url: &str) -> (Relay, String) {
        let mut url = reqwest::Url::parse(url).expect("a URL");
        let server = (
            url.host_str().expect("a host"),
            // PostgreSQL's own port when the URL names none.
            url.port().unwrap_or(5432),
        )
            .to_socket_addrs()
            .expect("a resolvable host")
            .next()
            .expect("an address");
        let relay = Relay::start(server);
        url.set_host(Some("127.0.0.1")).expect("a host");
        url.set_port(Some(relay.addr.port())).expect("a port");
        (relay, url.to_string())
    }

    /// Relays a free loopback port to `target`.
    pub fn start(target: SocketAddr) -> Relay {
        let cut = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::<AbortHandle>::new()));
        let listener = background()
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let (is_cut, relayed) = (cut.clone(), open.clone());
        let accept = background().spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if is_cut.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                relayed.lock().unwrap().push(task.abort_handle());
            }
        });
        Relay {
            addr,
            cut,
            open,
            accept: accept.abort_handle(),
        }
    }

    /// Closes every relayed connection and refuses new ones until [`Relay::mend`].
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for task in self.open.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    pub fn mend(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
