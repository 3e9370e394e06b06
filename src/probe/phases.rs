//! Connection phases, timed one by one: DNS lookup, TCP connect, TLS handshake.
//!
//! reqwest does all three inside `send()` and reports only the sum, so a probe first walks the
//! phases itself on a throwaway connection. That costs one extra handshake per target and buys the
//! most useful fact in a network diagnosis: *which* step fails or is slow ("DNS failed for all 7"
//! is a very different problem from "TLS failed for one"). Behind an HTTP proxy the direct path is
//! not the one requests take, so the phases are skipped and reqwest's own errors are classified.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Url;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, pki_types::ServerName};

use crate::verdict::TransportFailure;

/// Durations of each phase that ran, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Phases {
    pub dns_ms: Option<f64>,
    pub connect_ms: Option<f64>,
    pub tls_ms: Option<f64>,
}

/// Why the phases could not complete: the failure and the phases that did.
#[derive(Debug, Clone)]
pub struct PhaseFailure {
    pub failure: TransportFailure,
    pub phases: Phases,
}

/// Builds the TLS client configuration: aws-lc-rs (the one crypto provider of the whole binary,
/// shared with reqwest) and the platform's certificate store.
pub fn tls_config() -> Result<Arc<ClientConfig>, rustls::Error> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// True when requests to `url` go through a proxy configured in the environment.
pub fn proxied(url: &Url) -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let scheme_var = if url.scheme() == "https" {
        ["HTTPS_PROXY", "https_proxy"]
    } else {
        ["HTTP_PROXY", "http_proxy"]
    };
    scheme_var
        .iter()
        .chain(&["ALL_PROXY", "all_proxy"])
        .any(|v| set(v))
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Walks DNS → connect → TLS for `url` within `deadline`.
pub async fn measure(
    url: &Url,
    tls: &Arc<ClientConfig>,
    deadline: Duration,
) -> Result<Phases, PhaseFailure> {
    let started = Instant::now();
    let mut phases = Phases::default();
    let fail = |failure, phases| Err(PhaseFailure { failure, phases });
    let host = url.host_str().unwrap_or_default().to_owned();
    let port = url.port_or_known_default().unwrap_or(443);

    let t = Instant::now();
    let lookup = tokio::time::timeout(deadline, tokio::net::lookup_host((host.as_str(), port)));
    let addrs: Vec<SocketAddr> = match lookup.await {
        Ok(Ok(addrs)) => addrs.collect(),
        Ok(Err(e)) => return fail(TransportFailure::Dns(format!("{host}: {e}")), phases),
        Err(_) => {
            return fail(
                TransportFailure::Timeout {
                    phase: crate::verdict::TimeoutPhase::Dns,
                },
                phases,
            );
        }
    };
    phases.dns_ms = Some(ms(t));
    let Some(addr) = addrs.first().copied() else {
        return fail(
            TransportFailure::Dns(format!("{host}: no addresses")),
            phases,
        );
    };

    let t = Instant::now();
    let remaining = deadline.saturating_sub(started.elapsed());
    let stream = match tokio::time::timeout(remaining, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return fail(TransportFailure::Connect(format!("{addr}: {e}")), phases),
        Err(_) => {
            return fail(
                TransportFailure::Timeout {
                    phase: crate::verdict::TimeoutPhase::Connect,
                },
                phases,
            );
        }
    };
    phases.connect_ms = Some(ms(t));

    if url.scheme() != "https" {
        return Ok(phases);
    }
    let t = Instant::now();
    let Ok(server_name) = ServerName::try_from(host.clone()) else {
        return fail(
            TransportFailure::Tls(format!("{host}: not a valid TLS server name")),
            phases,
        );
    };
    let remaining = deadline.saturating_sub(started.elapsed());
    let handshake = TlsConnector::from(tls.clone()).connect(server_name, stream);
    match tokio::time::timeout(remaining, handshake).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return fail(TransportFailure::Tls(format!("{host}: {e}")), phases),
        Err(_) => {
            return fail(
                TransportFailure::Timeout {
                    phase: crate::verdict::TimeoutPhase::Tls,
                },
                phases,
            );
        }
    }
    phases.tls_ms = Some(ms(t));
    Ok(phases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plain_http_measures_dns_and_connect_but_not_tls() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/v1", listener.local_addr().unwrap())).unwrap();
        let phases = measure(&url, &tls_config().unwrap(), Duration::from_secs(5))
            .await
            .unwrap();
        assert!(phases.dns_ms.is_some() && phases.connect_ms.is_some());
        assert_eq!(phases.tls_ms, None);
    }

    #[tokio::test]
    async fn refused_connection_is_a_connect_failure_after_dns() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let url = Url::parse(&format!("http://{addr}/v1")).unwrap();
        let err = measure(&url, &tls_config().unwrap(), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            matches!(err.failure, TransportFailure::Connect(_)),
            "{err:?}"
        );
        assert!(err.phases.dns_ms.is_some());
    }

    #[tokio::test]
    async fn tls_to_a_plain_server_fails_as_tls() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let (mut socket, _) = listener.accept().await.unwrap();
            let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        });
        let url = Url::parse(&format!("https://{addr}/v1")).unwrap();
        let err = measure(&url, &tls_config().unwrap(), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err.failure, TransportFailure::Tls(_)), "{err:?}");
        assert!(err.phases.connect_ms.is_some());
    }
}
