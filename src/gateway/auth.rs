//! Client authentication of the gateway: `Authorization: Bearer <key>` against the keys of
//! `[gateway] client_keys_env`, or no key at all when `open_on_localhost` is set (allowed only on
//! a loopback listener, checked when the gateway is built).
//!
//! An open gateway is reachable by every web page the user visits, through their browser: a
//! cross-site form or `text/plain` POST needs no CORS permission, and DNS rebinding makes a
//! foreign name resolve to 127.0.0.1. So without a key, requests must look like a local program's:
//! a JSON body, a `Host` that is a loopback name or the configured public host, and no `Origin`
//! from anywhere but a loopback page. With keys, a page cannot know one, and nothing more is asked.
//!
//! Keys are compared in constant time; neither the key sent nor the keys configured ever appear
//! in an answer or a log line.
//!
//! The durable queue's endpoints (`/v1/files`, `/v1/batches`) are gated by the same keys and the
//! same guard ([`Gateway::check_client`]); the queue tells its owners apart by the key a request
//! presents ([`presented_key`]). The queue's own requests through the gateway's router carry
//! [`InProcess`] instead of a key.

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN};
use secrecy::{ExposeSecret, SecretString};

use super::Gateway;
use super::error::ApiError;

/// Marks a request that isdown itself makes inside the process — the durable queue sending a
/// batch line through the gateway's own router — as authenticated by being there. It is a
/// request extension, which only code in this process can attach: no header or anything else a
/// client sends can produce it.
#[derive(Debug, Clone, Copy)]
pub struct InProcess(());

impl InProcess {
    pub(crate) fn new() -> InProcess {
        InProcess(())
    }
}

impl Gateway {
    /// Checks a client of the gateway's keys: the gateway's own endpoints and the queue's.
    pub fn check_client(&self, headers: &HeaderMap, body: Body) -> Result<(), ApiError> {
        self.table().auth.check(headers, body)
    }
}

/// The bearer token a request presents (`Authorization: Bearer <key>`), if any. Only compare it
/// or hash it; never log or store it.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

#[derive(Debug)]
pub struct ClientAuth {
    keys: Vec<SecretString>,
    open: bool,
    /// The variables named in the config, for the "not configured" message.
    vars: Vec<String>,
    /// Besides loopback names, the host (with its port, if any) of `[web] public_url`.
    public_host: Option<String>,
}

/// Whether a request carries a body that must be JSON (a POST) or none (a GET).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    Json,
    None,
}

impl ClientAuth {
    pub fn new(
        keys: Vec<SecretString>,
        open: bool,
        vars: Vec<String>,
        public_host: Option<String>,
    ) -> ClientAuth {
        ClientAuth {
            keys,
            open,
            vars,
            public_host,
        }
    }

    pub fn check(&self, headers: &HeaderMap, body: Body) -> Result<(), ApiError> {
        if self.open {
            return self.local_program_only(headers, body);
        }
        if self.keys.is_empty() {
            return Err(ApiError::no_keys_configured(&self.vars));
        }
        let sent = presented_key(headers).ok_or_else(ApiError::missing_key)?;
        // Compare against every key, without stopping early, so timing says nothing.
        let mut ok = false;
        for key in &self.keys {
            ok |= constant_time_eq(sent.as_bytes(), key.expose_secret().as_bytes());
        }
        if ok {
            Ok(())
        } else {
            Err(ApiError::wrong_key())
        }
    }
}

impl ClientAuth {
    /// The open gateway's guard against web pages (see the module doc).
    fn local_program_only(&self, headers: &HeaderMap, body: Body) -> Result<(), ApiError> {
        if body == Body::Json {
            let json = headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
            if !json {
                return Err(ApiError::browser_refused(
                    "send the body with `Content-Type: application/json`",
                ));
            }
        }
        let host = headers
            .get(HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_loopback_authority(host) && self.public_host.as_deref() != Some(host) {
            return Err(ApiError::browser_refused(
                "the Host is not a loopback name (a page that rebinds a foreign name to \
                 127.0.0.1 looks like this)",
            ));
        }
        if let Some(origin) = headers.get(ORIGIN) {
            let page = origin.to_str().ok().and_then(|o| o.split_once("://"));
            let local = page.is_some_and(|(scheme, authority)| {
                matches!(scheme, "http" | "https") && is_loopback_authority(authority)
            });
            if !local {
                return Err(ApiError::browser_refused(
                    "a web page from another site may not use the open gateway",
                ));
            }
        }
        Ok(())
    }
}

/// `localhost`, `*.localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback_authority(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Equal lengths are compared byte by byte without branching on the content; the length itself
/// is not secret enough to hide (keys have public formats).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = auth {
            h.insert(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// A request as a program on this machine sends it, with `extra` headers on top.
    fn local(extra: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("127.0.0.1:8080"));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in extra {
            h.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    fn open() -> ClientAuth {
        ClientAuth::new(vec![], true, vec![], Some("status.example.com".into()))
    }

    #[test]
    fn bearer_keys_table() {
        let auth = ClientAuth::new(
            vec![SecretString::from("gw-one"), SecretString::from("gw-two")],
            false,
            vec!["A".into()],
            None,
        );
        let rows = [
            (Some("Bearer gw-one"), true),
            (Some("Bearer gw-two"), true),
            (Some("bearer gw-two"), true),
            (Some("Bearer gw-three"), false),
            (Some("Bearer gw-on"), false),
            (Some("gw-one"), false),
            (None, false),
        ];
        for (sent, ok) in rows {
            assert_eq!(
                auth.check(&headers(sent), Body::Json).is_ok(),
                ok,
                "{sent:?}"
            );
        }
    }

    #[test]
    fn without_keys_the_gateway_is_closed_unless_opened() {
        let closed = ClientAuth::new(vec![], false, vec!["GW_KEY".into()], None);
        let err = closed
            .check(&headers(Some("Bearer x")), Body::Json)
            .unwrap_err();
        assert!(err.message.contains("GW_KEY"), "{}", err.message);
        assert!(open().check(&local(&[]), Body::Json).is_ok());
    }

    #[test]
    fn the_open_gateway_takes_local_programs_and_refuses_web_pages() {
        type Row<'a> = (&'a [(&'a str, &'a str)], Body, bool);
        let rows: [Row; 12] = [
            (&[], Body::Json, true),
            (&[("host", "localhost:8080")], Body::Json, true),
            (&[("host", "[::1]:8080")], Body::Json, true),
            (&[("host", "status.example.com")], Body::Json, true),
            (&[("origin", "http://localhost:3000")], Body::Json, true),
            (
                &[("content-type", "application/json; charset=utf-8")],
                Body::Json,
                true,
            ),
            // A cross-site form or text/plain POST: no CORS preflight, so refused here.
            (&[("content-type", "text/plain")], Body::Json, false),
            (
                &[("content-type", "application/x-www-form-urlencoded")],
                Body::Json,
                false,
            ),
            // DNS rebinding: a foreign name that resolves to 127.0.0.1.
            (&[("host", "evil.example:8080")], Body::Json, false),
            (&[("origin", "https://evil.example")], Body::Json, false),
            (&[("origin", "null")], Body::Json, false),
            // A GET has no body to check, but the same Host and Origin rules.
            (
                &[
                    ("content-type", "text/plain"),
                    ("origin", "https://evil.example"),
                ],
                Body::None,
                false,
            ),
        ];
        for (extra, body, ok) in rows {
            let result = open().check(&local(extra), body);
            assert_eq!(result.is_ok(), ok, "{extra:?}: {result:?}");
            if let Err(e) = result {
                assert_eq!(e.status, axum::http::StatusCode::FORBIDDEN);
                assert!(e.message.contains("client_keys_env"), "{}", e.message);
            }
        }
        // With keys, nothing more is asked: a page cannot know a key.
        let keyed = ClientAuth::new(vec![SecretString::from("gw-one")], false, vec![], None);
        let mut cross = headers(Some("Bearer gw-one"));
        cross.insert(ORIGIN, HeaderValue::from_static("https://app.example"));
        assert!(keyed.check(&cross, Body::Json).is_ok());
    }

    #[test]
    fn errors_never_echo_the_key_sent() {
        let auth = ClientAuth::new(vec![SecretString::from("gw-one")], false, vec![], None);
        let err = auth
            .check(&headers(Some("Bearer sk-secret-guess-123")), Body::Json)
            .unwrap_err();
        assert!(!err.body().to_string().contains("sk-secret-guess-123"));
    }
}
