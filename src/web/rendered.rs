//! One rendered view as it is served: its bytes in every encoding a client may ask for
//! (identity, gzip, brotli — badges identity only, see [`SVG`]), compressed once when the view
//! is rendered, with the validators that let browsers, proxies and CDNs skip the body (a strong
//! `ETag`, `Last-Modified`).
//!
//! Every public view's bytes — cached ([`Rendered::publish`]) or drawn for one request
//! ([`once`]) — pass through one function, `outgoing`, before they are compressed or sent:
//! whatever must see each public byte (a secret scrubber) belongs there, once. Serving a cached
//! view ([`Rendered::respond`]) is header work on shared [`Bytes`]: no copy, no I/O, no lock, so
//! a flood of requests costs what a static file costs.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::time::Millis;

/// What a view is: its media type and how long others may keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub content_type: &'static str,
    pub cache_control: &'static str,
    /// Whether gzip and brotli versions are kept beside the identity bytes.
    pub compress: bool,
}

/// 5 s fresh, then up to 30 s served stale while a proxy or CDN fetches the new version: the
/// views change at most once a second, a probe lands every few seconds, and a page that is a
/// few seconds old is still within one probe of the truth. Browsers revalidate with the ETag.
const VIEW_CACHE: &str = "public, max-age=5, stale-while-revalidate=30";

impl Kind {
    /// A view rendered on change and kept: cached by others for [`VIEW_CACHE`], compressed.
    const fn view(content_type: &'static str) -> Kind {
        Kind {
            content_type,
            cache_control: VIEW_CACHE,
            compress: true,
        }
    }

    /// A view drawn per request: never kept by others, compressed.
    const fn once(content_type: &'static str) -> Kind {
        Kind {
            content_type,
            cache_control: "no-cache",
            compress: true,
        }
    }
}

pub const HTML: Kind = Kind::view("text/html; charset=utf-8");
pub const JSON: Kind = Kind::view("application/json");
pub const ATOM: Kind = Kind::view("application/atom+xml; charset=utf-8");
/// Badges are sent uncompressed: one is ~1 KB, of which compression saves ~0.8 KB on the wire,
/// and a badge is drawn per request (`badge/table.rs`), where compressing it would cost more
/// than drawing it (BENCHMARKS.md "Memory per monitor").
pub const SVG: Kind = Kind {
    compress: false,
    ..Kind::view("image/svg+xml; charset=utf-8")
};
/// The page's script changes only with the binary: five minutes, then a cheap revalidation.
pub const SCRIPT: Kind = Kind {
    content_type: "text/javascript; charset=utf-8",
    cache_control: "public, max-age=300",
    compress: true,
};
/// Views drawn per request from the store (a monitor's page, older incident pages, the JSON API
/// beyond `/api/v1/status`): never kept by others, since nothing tells when they change.
pub const HTML_ONCE: Kind = Kind::once("text/html; charset=utf-8");
pub const JSON_ONCE: Kind = Kind::once("application/json");
pub const METRICS_ONCE: Kind =
    Kind::once("application/openmetrics-text; version=1.0.0; charset=utf-8");

/// The one place every public view's bytes pass before they are compressed or sent: the last
/// check that no configured secret leaves (the text was scrubbed on its way into the store and
/// the health view already; this catches whatever did not come that way). Exact values only —
/// pattern masking could mangle markup, and everything it would catch was masked at the source.
fn outgoing(body: String) -> String {
    match crate::secret::scrub_registered(&body) {
        std::borrow::Cow::Borrowed(_) => body,
        std::borrow::Cow::Owned(clean) => clean,
    }
}

/// A view drawn for one request, sent as it is with `status`.
pub fn once(status: StatusCode, kind: Kind, body: String) -> Response {
    let mut response = Response::new(Body::from(outgoing(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(kind.content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(kind.cache_control),
    );
    response
}

/// A view drawn for one request and sent as it is written (`/metrics`): each chunk passes
/// [`outgoing`] on its way. Chunks are whole lines, and no secret spans two lines.
pub fn streamed(
    status: StatusCode,
    kind: Kind,
    chunks: impl futures_util::Stream<Item = String> + Send + 'static,
) -> Response {
    use futures_util::StreamExt;
    let body = chunks.map(|chunk| Ok::<_, std::convert::Infallible>(outgoing(chunk)));
    let mut response = once(status, kind, String::new());
    *response.body_mut() = Body::from_stream(body);
    response
}

/// A busy page is re-rendered every second, so compression must be cheap as well as small.
/// Measured on a 200-monitor overview (500 KB): gzip 6 takes 7 ms for 40.4 KB where 9 takes
/// 11 ms for 39.7 KB; brotli 5 takes 7 ms for 36.1 KB where 9 takes 33 ms for 33.1 KB and 11
/// over a second for 28 KB.
const GZIP_LEVEL: u32 = 6;
const BROTLI_QUALITY: i32 = 5;
/// Below this size brotli 4: from quality 5 on, brotli sets up about a millisecond of hash
/// tables whatever the body's size, and a page has hundreds of 1 KB badges (quality 4: 30 µs
/// each, 6 % larger).
const BROTLI_SMALL: usize = 16 * 1024;
const BROTLI_SMALL_QUALITY: i32 = 4;
/// Brotli's window, at most 4 MiB, no larger than the body: a 1 KB badge must not pay for
/// setting up a 4 MiB window (that made each badge cost a millisecond).
const BROTLI_WINDOW_MAX: i32 = 22;
const BROTLI_WINDOW_MIN: i32 = 10;

/// A content coding a response can carry, with its `Accept-Encoding` token and the suffix its
/// ETag gets (RFC 9110 §8.8.3: a strong validator differs between content codings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

impl Encoding {
    /// Preferred first when a client weighs several equally: the smallest.
    const BY_PREFERENCE: [Encoding; 3] = [Encoding::Brotli, Encoding::Gzip, Encoding::Identity];

    fn token(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
            Encoding::Brotli => "br",
        }
    }

    fn etag_suffix(self) -> &'static str {
        match self {
            Encoding::Identity => "",
            Encoding::Gzip => "-gzip",
            Encoding::Brotli => "-br",
        }
    }
}

/// The client's weight (`q`, 0–1000) for each encoding, from `Accept-Encoding`. Without the
/// header only identity is sent: a client that says nothing may not decode anything (curl
/// without `--compressed`), though RFC 9110 would allow more.
fn weights(accept: Option<&str>) -> [(Encoding, u16); 3] {
    let Some(accept) = accept else {
        return [
            (Encoding::Brotli, 0),
            (Encoding::Gzip, 0),
            (Encoding::Identity, 1000),
        ];
    };
    let mut star = None;
    let mut explicit: [Option<u16>; 3] = [None; 3];
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let token = parts.next().unwrap_or_default().trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
            .map(quality)
            .next()
            .unwrap_or(1000);
        if token == "*" {
            star = Some(q);
        }
        for (slot, encoding) in explicit.iter_mut().zip(Encoding::BY_PREFERENCE) {
            if token.eq_ignore_ascii_case(encoding.token())
                || (encoding == Encoding::Gzip && token.eq_ignore_ascii_case("x-gzip"))
            {
                *slot = Some(q);
            }
        }
    }
    let mut out = [(Encoding::Identity, 0); 3];
    for ((slot, encoding), given) in out.iter_mut().zip(Encoding::BY_PREFERENCE).zip(explicit) {
        // An unnamed identity stays acceptable (unless `*;q=0`), but below anything the client
        // named: `gzip;q=0.5` asks for gzip.
        let unnamed = match encoding {
            Encoding::Identity => star.unwrap_or(1),
            _ => star.unwrap_or(0),
        };
        *slot = (encoding, given.unwrap_or(unnamed));
    }
    out
}

/// `0.8` → 800; anything unparsable counts as 0 (not acceptable), as the RFC's grammar allows
/// nothing else.
fn quality(text: &str) -> u16 {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let whole: u16 = match whole {
        "0" => 0,
        "1" => 1,
        _ => return 0,
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    let frac: u16 = format!("{frac:0<3}").parse().unwrap_or(0);
    (whole * 1000 + frac).min(1000)
}

/// One version of one view.
#[derive(Debug)]
pub struct Rendered {
    kind: Kind,
    identity: Bytes,
    /// `None` when compressing would not make the body smaller (tiny bodies).
    gzip: Option<Bytes>,
    brotli: Option<Bytes>,
    /// Digest of the identity bytes, without quotes or suffix.
    tag: String,
    /// When these bytes were first rendered, as an HTTP date.
    last_modified: HeaderValue,
    /// The same instant, in whole seconds since the epoch (for `If-Modified-Since`).
    modified_s: u64,
}

impl Rendered {
    /// The view `kind` whose bytes are now `body`, rendered at `at`. When `previous` holds the
    /// same bytes it is returned unchanged — same ETag, same `Last-Modified`, nothing
    /// compressed again — so an unchanged view stays cached everywhere.
    ///
    pub fn publish(
        previous: Option<&Arc<Rendered>>,
        kind: Kind,
        body: String,
        at: Millis,
    ) -> Arc<Rendered> {
        let mut body = outgoing(body);
        if let Some(previous) = previous
            && previous.kind == kind
            && previous.identity == body.as_bytes()
        {
            return previous.clone();
        }
        // A view is kept until the next render: without the spare capacity that writing it
        // left (up to half of a buffer grown by doubling), which `Bytes` would keep.
        body.shrink_to_fit();
        Arc::new(Rendered::new(kind, Bytes::from(body), at))
    }

    fn new(kind: Kind, identity: Bytes, at: Millis) -> Rendered {
        let digest = Sha256::digest(&identity);
        let tag: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let smaller = |mut packed: Vec<u8>| {
            packed.shrink_to_fit();
            (packed.len() < identity.len()).then(|| Bytes::from(packed))
        };
        let (gzip, brotli) = if kind.compress {
            (smaller(gzip(&identity)), smaller(brotli(&identity)))
        } else {
            (None, None)
        };
        let modified_s = u64::try_from(at.max(0) / 1000).unwrap_or(0);
        let date = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(modified_s));
        Rendered {
            kind,
            identity,
            gzip,
            brotli,
            tag,
            last_modified: HeaderValue::from_str(&date).expect("an HTTP date is a valid header"),
            modified_s,
        }
    }

    /// The uncompressed bytes.
    pub fn identity(&self) -> &Bytes {
        &self.identity
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The bytes in `encoding`, if that encoding is kept for this view.
    pub fn encoded(&self, encoding: Encoding) -> Option<&Bytes> {
        match encoding {
            Encoding::Identity => Some(&self.identity),
            Encoding::Gzip => self.gzip.as_ref(),
            Encoding::Brotli => self.brotli.as_ref(),
        }
    }

    /// The strong ETag of the identity bytes, quoted.
    pub fn etag(&self) -> String {
        self.etag_for(Encoding::Identity)
    }

    fn etag_for(&self, encoding: Encoding) -> String {
        format!("\"{}{}\"", self.tag, encoding.etag_suffix())
    }

    /// The encoding to send for `Accept-Encoding`: the highest weight among those kept, the
    /// smallest on a tie; identity when nothing else is acceptable.
    pub fn negotiate(&self, accept: Option<&str>) -> Encoding {
        let mut best = (Encoding::Identity, 0);
        for (encoding, q) in weights(accept) {
            if q > best.1 && self.encoded(encoding).is_some() {
                best = (encoding, q);
            }
        }
        best.0
    }

    /// Whether the client's cached copy is this version: `If-None-Match` (weak comparison, any
    /// encoding's tag, or `*`), else `If-Modified-Since` (RFC 9110 §13.2.2: the former wins).
    fn not_modified(&self, request: &HeaderMap) -> bool {
        if let Some(tags) = request.get(header::IF_NONE_MATCH) {
            let Ok(tags) = tags.to_str() else {
                return false;
            };
            return tags.split(',').map(str::trim).any(|tag| {
                let tag = tag.strip_prefix("W/").unwrap_or(tag);
                tag == "*"
                    || Encoding::BY_PREFERENCE
                        .iter()
                        .any(|e| tag == self.etag_for(*e))
            });
        }
        request
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|since| since.duration_since(UNIX_EPOCH).ok())
            .is_some_and(|since| self.modified_s <= since.as_secs())
    }

    /// The response to a GET (or HEAD) carrying `request`'s headers: 304 when the client's copy
    /// is current, else the body in the best encoding the client accepts.
    pub fn respond(&self, request: &HeaderMap) -> Response {
        let accept = request
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok());
        let encoding = self.negotiate(accept);
        let (status, body) = if self.not_modified(request) {
            (StatusCode::NOT_MODIFIED, Body::empty())
        } else {
            let bytes = self
                .encoded(encoding)
                .expect("negotiate picks an encoding that is kept")
                .clone();
            (StatusCode::OK, Body::from(bytes))
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.kind.content_type),
        );
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(self.kind.cache_control),
        );
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        headers.insert(
            header::ETAG,
            HeaderValue::from_str(&self.etag_for(encoding)).expect("hex digits form a valid ETag"),
        );
        headers.insert(header::LAST_MODIFIED, self.last_modified.clone());
        if encoding != Encoding::Identity {
            headers.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(encoding.token()),
            );
        }
        response
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4),
        flate2::Compression::new(GZIP_LEVEL),
    );
    encoder
        .write_all(bytes)
        .expect("writing into a Vec cannot fail");
    encoder.finish().expect("writing into a Vec cannot fail")
}

fn brotli(bytes: &[u8]) -> Vec<u8> {
    let bits = usize::BITS - bytes.len().leading_zeros();
    let params = brotli::enc::BrotliEncoderParams {
        quality: if bytes.len() < BROTLI_SMALL {
            BROTLI_SMALL_QUALITY
        } else {
            BROTLI_QUALITY
        },
        lgwin: i32::try_from(bits)
            .unwrap_or(BROTLI_WINDOW_MAX)
            .clamp(BROTLI_WINDOW_MIN, BROTLI_WINDOW_MAX),
        size_hint: bytes.len(),
        ..Default::default()
    };
    let mut out = Vec::with_capacity(bytes.len() / 4);
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params)
        .expect("reading a slice into a Vec cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn page() -> String {
        let rows: String = (0..200)
            .map(|i| {
                format!("<li class=\"row\" id=\"monitor-p{i}\">Provider {i}: Operational</li>\n")
            })
            .collect();
        format!("<!doctype html><ul>{rows}</ul>")
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    async fn body(response: Response) -> Vec<u8> {
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec()
    }

    fn decode(encoding: &str, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match encoding {
            "gzip" => {
                flate2::read::GzDecoder::new(bytes)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            "br" => {
                brotli::Decompressor::new(bytes, 4096)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            other => panic!("unexpected encoding {other}"),
        }
        out
    }

    #[tokio::test]
    async fn gzip_and_brotli_bodies_decode_to_the_identity_bytes() {
        let view = Rendered::publish(None, HTML, page(), 0);
        let plain = body(view.respond(&HeaderMap::new())).await;
        assert_eq!(plain, page().as_bytes());
        for (accept, encoding) in [("gzip", "gzip"), ("br", "br"), ("gzip, deflate, br", "br")] {
            let response = view.respond(&headers(&[(header::ACCEPT_ENCODING, accept)]));
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()[header::CONTENT_ENCODING], encoding);
            assert_eq!(response.headers()[header::VARY], "accept-encoding");
            let sent = body(response).await;
            assert!(sent.len() * 5 < plain.len(), "{encoding} barely compresses");
            assert_eq!(
                decode(encoding, &sent),
                plain,
                "{encoding} decodes differently"
            );
        }
    }

    #[test]
    fn accept_encoding_weights_pick_the_encoding() {
        let view = Rendered::publish(None, HTML, page(), 0);
        let cases = [
            (None, Encoding::Identity),
            (Some(""), Encoding::Identity),
            (Some("identity"), Encoding::Identity),
            (Some("gzip"), Encoding::Gzip),
            (Some("x-gzip"), Encoding::Gzip),
            (Some("GZIP;q=0.5"), Encoding::Gzip),
            (Some("br"), Encoding::Brotli),
            (Some("gzip, br"), Encoding::Brotli),
            (Some("br;q=0.5, gzip"), Encoding::Gzip),
            (Some("br;q=0, gzip;q=0"), Encoding::Identity),
            (Some("*"), Encoding::Brotli),
            (Some("*;q=0.3, gzip;q=0.5"), Encoding::Gzip),
            (Some("deflate"), Encoding::Identity),
            (Some("gzip;q=banana"), Encoding::Identity),
            // Nothing acceptable at all: identity anyway (RFC 9110 lets the server choose).
            (Some("identity;q=0"), Encoding::Identity),
            (Some("*;q=0"), Encoding::Identity),
        ];
        for (accept, want) in cases {
            assert_eq!(view.negotiate(accept), want, "Accept-Encoding: {accept:?}");
        }
    }

    #[test]
    fn a_tiny_body_is_only_sent_as_is() {
        let view = Rendered::publish(None, JSON, "{}".to_owned(), 0);
        assert_eq!(view.negotiate(Some("br, gzip")), Encoding::Identity);
        assert!(view.encoded(Encoding::Gzip).is_none());
    }

    #[tokio::test]
    async fn a_matching_if_none_match_gets_304_with_the_validators() {
        let view = Rendered::publish(None, HTML, page(), 1_795_615_380_000);
        let first = view.respond(&headers(&[(header::ACCEPT_ENCODING, "gzip")]));
        let etag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.ends_with("-gzip\""), "{etag}");
        assert_eq!(
            first.headers()[header::CACHE_CONTROL],
            "public, max-age=5, stale-while-revalidate=30"
        );
        assert_eq!(
            first.headers()[header::LAST_MODIFIED],
            "Wed, 25 Nov 2026 14:03:00 GMT"
        );
        let identity_tag = view.etag();
        // Any encoding's tag names this version: a proxy may have stored another encoding.
        for (accept, presented) in [
            ("gzip", etag.as_str()),
            ("br", etag.as_str()),
            ("", identity_tag.as_str()),
            ("gzip", "*"),
        ] {
            let response = view.respond(&headers(&[
                (header::ACCEPT_ENCODING, accept),
                (header::IF_NONE_MATCH, presented),
            ]));
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{presented}");
            assert!(response.headers().contains_key(header::ETAG));
            assert_eq!(response.headers()[header::VARY], "accept-encoding");
            assert!(body(response).await.is_empty());
        }
        let weak = format!("W/{etag}");
        let listed = format!("\"other\", {etag}");
        for presented in [weak.as_str(), listed.as_str()] {
            let response = view.respond(&headers(&[(header::IF_NONE_MATCH, presented)]));
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{presented}");
        }
        let stale = view.respond(&headers(&[(header::IF_NONE_MATCH, "\"0123456789abcdef\"")]));
        assert_eq!(stale.status(), StatusCode::OK);
        assert_eq!(body(stale).await, page().as_bytes());
    }

    #[test]
    fn if_modified_since_is_honoured_only_without_if_none_match() {
        let view = Rendered::publish(None, HTML, page(), 1_795_615_380_000);
        let at = "Wed, 25 Nov 2026 14:03:00 GMT";
        let earlier = "Wed, 25 Nov 2026 14:02:59 GMT";
        let status = |pairs: &[(header::HeaderName, &str)]| view.respond(&headers(pairs)).status();
        assert_eq!(
            status(&[(header::IF_MODIFIED_SINCE, at)]),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            status(&[(header::IF_MODIFIED_SINCE, earlier)]),
            StatusCode::OK
        );
        assert_eq!(
            status(&[(header::IF_MODIFIED_SINCE, "yesterday")]),
            StatusCode::OK
        );
        assert_eq!(
            status(&[
                (header::IF_MODIFIED_SINCE, at),
                (header::IF_NONE_MATCH, "\"other\"")
            ]),
            StatusCode::OK
        );
    }

    #[test]
    fn the_same_bytes_keep_their_version_and_new_bytes_get_a_new_one() {
        let first = Rendered::publish(None, HTML, page(), 1_000);
        let same = Rendered::publish(Some(&first), HTML, page(), 9_000);
        assert!(
            Arc::ptr_eq(&first, &same),
            "unchanged bytes were compressed again"
        );
        let changed = Rendered::publish(
            Some(&first),
            HTML,
            page().replace("Provider 7:", "Provider seven:"),
            9_000,
        );
        assert_ne!(changed.etag(), first.etag());
        let other_kind = Rendered::publish(Some(&first), JSON, page(), 9_000);
        assert!(!Arc::ptr_eq(&first, &other_kind));
    }
}
