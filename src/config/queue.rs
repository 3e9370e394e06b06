//! `[queue]`: validation of the durable queue's pacing settings into [`QueueSettings`].
//!
//! It checks what the serde model cannot: that every `[queue.providers.ID]` names a known
//! provider. The queue's other settings follow the gateway's (an open gateway makes one owner of
//! every local program; the longest request line follows `max_request_bytes`). No I/O.

use std::sync::Arc;

use super::raw::RawQueue;
use super::{ConfigError, invalid_at};
use crate::gateway::settings::GatewaySettings;
use crate::provider::Provider;
use crate::queue::settings::{LINE_ENVELOPE_BYTES, ProviderLimits, QueueSettings};

pub(super) fn queue_settings(
    raw: RawQueue,
    gateway: &GatewaySettings,
    providers: &[Arc<Provider>],
    text: &str,
    file: &str,
) -> Result<QueueSettings, ConfigError> {
    let mut settings = QueueSettings {
        open: gateway.open_on_localhost,
        max_line_bytes: gateway
            .max_request_bytes
            .saturating_add(LINE_ENVELOPE_BYTES),
        ..QueueSettings::default()
    };
    if let Some(concurrency) = raw.concurrency_per_provider {
        settings.defaults.concurrency = concurrency.0;
    }
    settings.defaults.requests_per_minute = raw.requests_per_minute.map(|r| r.0);
    for (id, entry) in raw.providers {
        let at = entry.span().start;
        if !providers.iter().any(|p| p.id == id) {
            let known: Vec<&str> = providers.iter().map(|p| p.id.as_str()).collect();
            return Err(invalid_at(
                text,
                file,
                at,
                format!(
                    "unknown provider \"{id}\" in [queue.providers]; known: {}",
                    known.join(", ")
                ),
            ));
        }
        let entry = entry.into_inner();
        let limits = ProviderLimits {
            concurrency: entry
                .concurrency
                .map_or(settings.defaults.concurrency, |c| c.0),
            requests_per_minute: entry
                .requests_per_minute
                .map(|r| r.0)
                .or(settings.defaults.requests_per_minute),
        };
        settings.providers.insert(id, limits);
    }
    Ok(settings)
}
