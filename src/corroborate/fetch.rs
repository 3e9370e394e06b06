//! Reading a source over HTTP, within bounds: one deadline for the whole read (redirects and
//! body included), at most [`MAX_BODY`] bytes, at most [`MAX_REDIRECTS`] redirects followed by
//! hand and never the same URL twice, a conditional GET when validators are known (ETag,
//! Last-Modified), and the source's own 429 and `Retry-After` reported so the caller can
//! honour it.
//!
//! The client is isdown's transport builder (`crate::transport::client_builder`: no redirects
//! followed by the client, typed DNS failures) with a pool of its own, so a slow status page
//! never holds a connection a probe needs. No credentials are ever sent: sources are public.
//! Failures are typed ([`FetchError`]); their text is what a source shows as its reason.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use thiserror::Error;
use tokio::time::Instant;

use crate::verdict::{TimeoutPhase, TransportFailure};

/// 4 MiB: a large page's `incidents.json` (50 incidents with their updates) is well under a
/// megabyte; anything bigger is not what was asked for.
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// Redirects followed: enough for http→https and a vanity domain to its statuspage.io host.
pub const MAX_REDIRECTS: usize = 3;
/// A source's `Retry-After` is honoured up to this: a page asking for a day is read again in an
/// hour (the next reading after that may say otherwise).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3_600);

/// What a conditional GET sends back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<HeaderValue>,
    pub last_modified: Option<HeaderValue>,
}

/// A read that worked.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    Body {
        bytes: Bytes,
        validators: Validators,
    },
    /// 304: what was read before still holds.
    NotModified,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum FetchError {
    #[error("no answer within {}", seconds(*.0))]
    Timeout(Duration),
    #[error("{0}")]
    Transport(&'static str),
    #[error("HTTP {0}")]
    Status(u16),
    #[error("rate limited (HTTP 429{})", .retry_after.map(|d| format!(", retry after {} s", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    #[error("redirects in a loop")]
    RedirectLoop,
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("a redirect to an unusable location")]
    BadRedirect,
    #[error("an answer larger than {} MiB", MAX_BODY / (1024 * 1024))]
    TooLarge,
}

/// "10 s", "1.5 s": a deadline in the words of a reason.
fn seconds(d: Duration) -> String {
    let tenths = (d.as_secs_f64() * 10.0).round() / 10.0;
    if tenths.fract() == 0.0 {
        format!("{tenths:.0} s")
    } else {
        format!("{tenths:.1} s")
    }
}

impl FetchError {
    /// How long the source asked to be left alone, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

/// A transport failure in a few words (the detail may name internal addresses; the kind is
/// what a reader of a status page needs).
fn transport_words(failure: &TransportFailure) -> &'static str {
    match failure {
        TransportFailure::Dns(_) => "DNS lookup failed",
        TransportFailure::Connect(_) => "connection refused or unreachable",
        TransportFailure::Tls(_) => "TLS handshake failed",
        TransportFailure::Reset(_) => "connection reset",
        TransportFailure::Timeout { .. } => "timed out",
        TransportFailure::LocalResources(_) => "out of file descriptors on this machine",
        TransportFailure::Other(_) => "transport error",
    }
}

/// When a read must be done by, and how long that allowed (for the reason when it is missed).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub at: Instant,
    pub allowed: Duration,
}

impl Deadline {
    /// `allowed` from now.
    pub fn after(allowed: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + allowed,
            allowed,
        }
    }
}

/// The HTTP client of every source read.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
}

impl Fetcher {
    pub fn new() -> Result<Fetcher, reqwest::Error> {
        let client = crate::transport::client_builder()
            // Two idle connections per host: sources are read every few minutes.
            .pool_max_idle_per_host(2)
            .build()?;
        Ok(Fetcher { client })
    }

    /// GETs `url` before `deadline`, following redirects by hand.
    pub async fn get(
        &self,
        url: &Url,
        validators: &Validators,
        deadline: Deadline,
    ) -> Result<Fetched, FetchError> {
        match tokio::time::timeout_at(deadline.at, self.follow(url, validators)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(deadline.allowed)),
        }
    }

    async fn follow(&self, url: &Url, validators: &Validators) -> Result<Fetched, FetchError> {
        let mut visited = vec![url.clone()];
        let mut current = url.clone();
        loop {
            let response = self
                .client
                .get(current.clone())
                .headers(conditional(validators))
                .header(
                    header::ACCEPT,
                    "application/json, application/feed+json, application/atom+xml, \
                     application/rss+xml, application/xml;q=0.9, */*;q=0.5",
                )
                .send()
                .await
                .map_err(|e| {
                    FetchError::Transport(transport_words(&crate::transport::failure(
                        &e,
                        TimeoutPhase::Response,
                    )))
                })?;
            let status = response.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let next = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| current.join(l).ok())
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or(FetchError::BadRedirect)?;
                if visited.contains(&next) {
                    return Err(FetchError::RedirectLoop);
                }
                if visited.len() > MAX_REDIRECTS {
                    return Err(FetchError::TooManyRedirects);
                }
                visited.push(next.clone());
                current = next;
                continue;
            }
            return match status {
                StatusCode::NOT_MODIFIED => Ok(Fetched::NotModified),
                StatusCode::TOO_MANY_REQUESTS => Err(FetchError::RateLimited {
                    retry_after: crate::verdict::retry_after_from_headers(response.headers())
                        .filter(|s| s.is_finite() && *s >= 0.0)
                        .map(|s| Duration::from_secs_f64(s.min(1e9)).min(MAX_RETRY_AFTER)),
                }),
                s if s.is_success() => {
                    let validators = validators_of(response.headers());
                    let bytes = read_bounded(response).await?;
                    Ok(Fetched::Body { bytes, validators })
                }
                s => Err(FetchError::Status(s.as_u16())),
            };
        }
    }
}

fn conditional(validators: &Validators) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(etag) = &validators.etag {
        headers.insert(header::IF_NONE_MATCH, etag.clone());
    }
    if let Some(modified) = &validators.last_modified {
        headers.insert(header::IF_MODIFIED_SINCE, modified.clone());
    }
    headers
}

fn validators_of(headers: &HeaderMap) -> Validators {
    Validators {
        etag: headers.get(header::ETAG).cloned(),
        last_modified: headers.get(header::LAST_MODIFIED).cloned(),
    }
}

/// The body, refusing to hold more than [`MAX_BODY`] bytes: a declared length over it is
/// refused before reading, a body that grows past it is cut off as it does.
async fn read_bounded(mut response: reqwest::Response) -> Result<Bytes, FetchError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(FetchError::TooLarge);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        FetchError::Transport(transport_words(&crate::transport::failure(
            &e,
            TimeoutPhase::Response,
        )))
    })? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
