//! What every HTTP channel shares: the one client and its send timeout, posting JSON, judging the
//! receiver's answer for the outbox, and turning config text into a receiver URL (a webhook URL
//! from the environment, or a documented regional endpoint that `api_url` may override).
//!
//! No message formats and no secrets of its own: channels hand it a body and a URL, and scrub
//! their own secrets from the errors it returns. Transport errors are redacted here because
//! reqwest quotes the URL, which for a webhook is the credential.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use super::{Deliver, Env, FieldError, secret_from_env};
use crate::alert::render::Digest;
use crate::alert::{AlertMessage, DeliveryError};

/// 15 s per attempt, for every receiver: webhooks and event APIs answer in well under a second,
/// and a hung receiver must not hold its channel's delivery slot longer than one retry step of
/// the outbox (which then retries with backoff). One figure for all, so no receiver is waited on
/// twice as long for no reason.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(15);
/// 10 s to connect: a receiver that cannot even accept a connection is retried, not waited on.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest receiver answer quoted in an error (after redaction).
const EXCERPT_MAX: usize = 200;

/// The client every HTTP channel of a config shares (one connection pool), with isdown's user
/// agent and the send timeout. Redirects are not followed: a message (and its signature or token)
/// goes only to the address configured; a receiver that redirects is a permanent failure naming
/// its status.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("isdown/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(SEND_TIMEOUT)
        .build()
        .expect("a client with rustls and no custom roots builds: it reads no system state")
}

/// One POST of a JSON body, judged by status.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
) -> Result<(), DeliveryError> {
    let response = client
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|err| transport_error(&err))?;
    judge_response(response).await
}

/// The table of a channel whose only setting is its webhook URL (Slack, Teams): `url_env`, the
/// environment variable holding it, since whoever has the URL can post.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlEnvConfig {
    pub url_env: String,
}

impl UrlEnvConfig {
    /// The webhook URL, checked to be http(s).
    pub fn resolve(self, env: Env<'_>) -> Result<SecretString, FieldError> {
        webhook_url_from_env("url_env", &self.url_env, env)
    }
}

/// Renders a message's [`Digest`] as a receiver's JSON body.
pub type Payload = fn(&Digest<'_>) -> Value;

/// A receiver that takes each message as one JSON POST to a secret URL (Slack, Discord, Teams):
/// the channel module supplies only the body.
#[derive(Debug)]
pub struct JsonPost {
    url: SecretString,
    client: reqwest::Client,
    payload: Payload,
}

impl JsonPost {
    pub fn new(url: SecretString, client: reqwest::Client, payload: Payload) -> Self {
        JsonPost {
            url,
            client,
            payload,
        }
    }
}

#[async_trait]
impl Deliver for JsonPost {
    async fn send(&self, message: &AlertMessage) -> Result<(), DeliveryError> {
        let body = (self.payload)(&Digest::of(message));
        post_json(&self.client, self.url.expose_secret(), &body).await
    }
}

/// Maps an HTTP answer to the outbox's view: 2xx delivered; 408, 429 and 5xx worth retrying;
/// any other status permanent. The body excerpt is redacted and kept short.
pub async fn judge_response(response: reqwest::Response) -> Result<(), DeliveryError> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    let excerpt: String = crate::secret::scrub(body.trim())
        .chars()
        .take(EXCERPT_MAX)
        .collect();
    let message = format!("HTTP {}: {excerpt}", status.as_u16());
    if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() {
        Err(DeliveryError::Retryable(message))
    } else {
        Err(DeliveryError::Permanent(message))
    }
}

/// A transport error (no HTTP answer) is always worth retrying. The text is redacted: webhook
/// URLs are secrets and reqwest errors quote the URL.
pub fn transport_error(err: &reqwest::Error) -> DeliveryError {
    let text = match err.url() {
        Some(url) => err.to_string().replace(url.as_str(), "<receiver>"),
        None => err.to_string(),
    };
    DeliveryError::Retryable(crate::secret::scrub(&text))
}

/// Parses an absolute http(s) URL. `source` says where the text came from; the error names it
/// and never the text, which may be a secret.
pub fn http_url(field: &'static str, text: &str, source: &str) -> Result<Url, FieldError> {
    let invalid = || FieldError::new(field, format!("{source} does not hold an http(s) URL"));
    let url = Url::parse(text.trim()).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid());
    }
    Ok(url)
}

/// Resolves a webhook URL (a secret: whoever has it can post) from the environment variable
/// named by `field`, and checks it is an http(s) URL. Errors never quote the URL.
pub fn webhook_url_from_env(
    field: &'static str,
    var: &str,
    env: Env<'_>,
) -> Result<SecretString, FieldError> {
    let url = secret_from_env(field, var, env)?;
    http_url(
        field,
        url.expose_secret(),
        &format!("environment variable {var}"),
    )?;
    Ok(url)
}

/// A service region of a receiver with one documented API host per region (PagerDuty,
/// Opsgenie).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    Us,
    Eu,
}

/// A receiver's documented API hosts, one per region.
pub struct Hosts {
    pub us: &'static str,
    pub eu: &'static str,
}

/// The endpoint `{base}/{path…}`, where the base is `api_url` when given (tests, proxies), else
/// the region's host (US by default). Setting both is refused: one of them would be ignored.
pub fn endpoint(
    hosts: &Hosts,
    region: Option<Region>,
    api_url: Option<&str>,
    path: &[&str],
) -> Result<Url, FieldError> {
    let base = match (api_url, region) {
        (Some(_), Some(_)) => {
            return Err(FieldError::new(
                "api_url",
                "set either `region` or `api_url`, not both",
            ));
        }
        (Some(url), None) => url,
        (None, Some(Region::Eu)) => hosts.eu,
        (None, Some(Region::Us) | None) => hosts.us,
    };
    let mut url = Url::parse(base)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
        .ok_or_else(|| FieldError::new("api_url", format!("`{base}` is not an http(s) URL")))?;
    url.path_segments_mut()
        .expect("an http(s) URL with a host has path segments")
        .pop_if_empty()
        .extend(path);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: Hosts = Hosts {
        us: "https://api.example.com",
        eu: "https://api.eu.example.com",
    };

    #[test]
    fn endpoints_follow_the_region_or_the_override_never_both() {
        let us = endpoint(&HOSTS, None, None, &["v2", "x"]).unwrap();
        assert_eq!(us.as_str(), "https://api.example.com/v2/x");
        let eu = endpoint(&HOSTS, Some(Region::Eu), None, &["v2"]).unwrap();
        assert_eq!(eu.as_str(), "https://api.eu.example.com/v2");
        let own = endpoint(&HOSTS, None, Some("http://127.0.0.1:9/base/"), &["v2"]).unwrap();
        assert_eq!(own.as_str(), "http://127.0.0.1:9/base/v2");
        let both = endpoint(&HOSTS, Some(Region::Us), Some("http://x"), &[]).unwrap_err();
        assert_eq!(both.field, "api_url");
        let bad = endpoint(&HOSTS, None, Some("ftp://x"), &[]).unwrap_err();
        assert_eq!(bad.field, "api_url");
    }

    #[test]
    fn a_url_error_names_its_source_never_the_text() {
        let err = http_url(
            "url_env",
            "not a url with secret-token",
            "environment variable X",
        )
        .unwrap_err();
        assert_eq!(err.field, "url_env");
        assert!(err.message.contains("environment variable X"));
        assert!(!err.message.contains("secret-token"));
    }
}
