//! Client authentication of the gateway: `Authorization: Bearer <key>` against the keys of
//! `[gateway] client_keys_env`, or nothing at all when `open_on_localhost` is set (allowed only on
//! a loopback listener, checked when the gateway is built).
//!
//! Keys are compared in constant time; neither the key sent nor the keys configured ever appear
//! in an answer or a log line.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use secrecy::{ExposeSecret, SecretString};

use super::error::ApiError;

#[derive(Debug)]
pub struct ClientAuth {
    keys: Vec<SecretString>,
    open: bool,
    /// The variables named in the config, for the "not configured" message.
    vars: Vec<String>,
}

impl ClientAuth {
    pub fn new(keys: Vec<SecretString>, open: bool, vars: Vec<String>) -> ClientAuth {
        ClientAuth { keys, open, vars }
    }

    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.open {
            return Ok(());
        }
        if self.keys.is_empty() {
            return Err(ApiError::no_keys_configured(&self.vars));
        }
        let sent = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(ApiError::missing_key)?;
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

    #[test]
    fn bearer_keys_table() {
        let auth = ClientAuth::new(
            vec![SecretString::from("gw-one"), SecretString::from("gw-two")],
            false,
            vec!["A".into()],
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
            assert_eq!(auth.check(&headers(sent)).is_ok(), ok, "{sent:?}");
        }
    }

    #[test]
    fn without_keys_the_gateway_is_closed_unless_opened() {
        let closed = ClientAuth::new(vec![], false, vec!["GW_KEY".into()]);
        let err = closed.check(&headers(Some("Bearer x"))).unwrap_err();
        assert!(err.message.contains("GW_KEY"), "{}", err.message);
        let open = ClientAuth::new(vec![], true, vec![]);
        assert!(open.check(&headers(None)).is_ok());
    }

    #[test]
    fn errors_never_echo_the_key_sent() {
        let auth = ClientAuth::new(vec![SecretString::from("gw-one")], false, vec![]);
        let err = auth
            .check(&headers(Some("Bearer sk-secret-guess-123")))
            .unwrap_err();
        assert!(!err.body().to_string().contains("sk-secret-guess-123"));
    }
}
