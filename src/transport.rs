//! The outbound HTTP client every provider request goes through (probes and the gateway), and the
//! one mapping of its failures to [`TransportFailure`].
//!
//! It owns how isdown talks to providers at the transport level: no redirects are followed (a
//! prompt and a key must never be re-sent to another origin; a 3xx is answered and classified
//! instead), DNS goes through a resolver of our own so that a lookup failure is recognisable by
//! its type, and a failure is mapped by walking the error's sources for typed causes — never by
//! reading its text. It classifies nothing (`verdict` does) and holds no connections of its own.

use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::verdict::{TimeoutPhase, TransportFailure};

/// A builder with isdown's transport rules applied; callers add their timeouts and pool sizes.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("isdown/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(TypedDns)
        .tcp_nodelay(true)
}

/// A failed DNS lookup, as a type the failure mapping can find in the error chain.
#[derive(Debug, thiserror::Error)]
#[error("DNS lookup of {host} failed: {source}")]
pub struct DnsFailure {
    host: String,
    source: std::io::Error,
}

/// The system resolver (`getaddrinfo` through tokio), with failures typed as [`DnsFailure`].
struct TypedDns;

impl Resolve for TypedDns {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map(|addrs| addrs.collect::<Vec<SocketAddr>>());
            match found {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as Addrs),
                Err(source) => Err(Box::new(DnsFailure { host, source }) as _),
            }
        })
    }
}

/// `errno` values that mean this machine ran out of file descriptors (EMFILE: the process, ENFILE:
/// the system): isdown's own resources, not the provider and not the network.
const OUT_OF_DESCRIPTORS: [i32; 2] = [24, 23];

/// Maps a reqwest error to a transport failure by the types in its source chain: a timeout is
/// the `phase` deadline; [`DnsFailure`] is DNS; a TLS error is TLS; `io::Error` kinds tell
/// refused from reset; running out of file descriptors is isdown's own resources.
pub fn failure(err: &reqwest::Error, phase: TimeoutPhase) -> TransportFailure {
    if err.is_timeout() {
        return TransportFailure::Timeout { phase };
    }
    let detail = crate::secret::scrub(&chain_text(err));
    let mut kind = Kind::Other;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        kind = kind.max(classify_cause(cause));
        source = cause.source();
    }
    match kind {
        Kind::LocalResources => TransportFailure::LocalResources(detail),
        Kind::Dns => TransportFailure::Dns(detail),
        Kind::Tls => TransportFailure::Tls(detail),
        Kind::Reset => TransportFailure::Reset(detail),
        Kind::Connect => TransportFailure::Connect(detail),
        Kind::Other if err.is_connect() => TransportFailure::Connect(detail),
        Kind::Other => TransportFailure::Other(detail),
    }
}

/// What one error in the chain says; the most specific across the chain wins (ordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Other,
    Connect,
    Reset,
    Tls,
    Dns,
    LocalResources,
}

fn classify_cause(cause: &(dyn std::error::Error + 'static)) -> Kind {
    if cause.downcast_ref::<DnsFailure>().is_some() {
        return Kind::Dns;
    }
    if cause
        .downcast_ref::<tokio_rustls::rustls::Error>()
        .is_some()
    {
        return Kind::Tls;
    }
    // The connection ended before the message did (a cut body, a closed keep-alive socket).
    if let Some(hyper) = cause.downcast_ref::<hyper::Error>()
        && (hyper.is_incomplete_message() || hyper.is_closed() || hyper.is_canceled())
    {
        return Kind::Reset;
    }
    let Some(io) = cause.downcast_ref::<std::io::Error>() else {
        return Kind::Other;
    };
    if io
        .raw_os_error()
        .is_some_and(|code| OUT_OF_DESCRIPTORS.contains(&code))
    {
        return Kind::LocalResources;
    }
    // rustls reports through io::Error(InvalidData) wrapping its own error.
    if io.get_ref().is_some_and(|inner| {
        inner
            .downcast_ref::<tokio_rustls::rustls::Error>()
            .is_some()
    }) {
        return Kind::Tls;
    }
    use std::io::ErrorKind;
    match io.kind() {
        ErrorKind::ConnectionRefused
        | ErrorKind::HostUnreachable
        | ErrorKind::NetworkUnreachable => Kind::Connect,
        ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe
        | ErrorKind::UnexpectedEof => Kind::Reset,
        _ => Kind::Other,
    }
}

/// The error and its sources on one line, for the explanation's detail.
fn chain_text(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_read_from_error_types_not_text() {
        let io = |e: std::io::Error| classify_cause(&e);
        assert_eq!(
            io(std::io::Error::from_raw_os_error(24)),
            Kind::LocalResources
        );
        assert_eq!(
            io(std::io::Error::from_raw_os_error(23)),
            Kind::LocalResources
        );
        assert_eq!(
            io(std::io::ErrorKind::ConnectionRefused.into()),
            Kind::Connect
        );
        assert_eq!(io(std::io::ErrorKind::ConnectionReset.into()), Kind::Reset);
        assert_eq!(io(std::io::ErrorKind::UnexpectedEof.into()), Kind::Reset);
        // Words in a message decide nothing.
        assert_eq!(
            io(std::io::Error::other("dns error: tls handshake reset")),
            Kind::Other
        );
        let dns = DnsFailure {
            host: "api.example.invalid".into(),
            source: std::io::Error::other("no such host"),
        };
        assert_eq!(classify_cause(&dns), Kind::Dns);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_failure() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = client_builder()
            .build()
            .unwrap()
            .get(format!("http://{addr}/v1/models"))
            .send()
            .await
            .unwrap_err();
        assert!(matches!(
            failure(&err, TimeoutPhase::Connect),
            TransportFailure::Connect(_)
        ));
    }

    #[tokio::test]
    async fn redirects_are_answered_not_followed() {
        use axum::response::Redirect;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route(
                "/v1/chat/completions",
                axum::routing::post(|| async { Redirect::temporary("http://127.0.0.1:9/steal") }),
            )
            .route("/steal", axum::routing::post(|| async { "followed" }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let response = client_builder()
            .build()
            .unwrap()
            .post(format!("http://{addr}/v1/chat/completions"))
            .body("{\"messages\":[]}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 307);
    }
}
