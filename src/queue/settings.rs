//! The queue's typed settings (`[queue]` in isdown.toml, validated by `config`), its fixed
//! limits, and the pacing limits that apply to each provider.

use std::collections::BTreeMap;
use std::time::Duration;

/// OpenAI's limit on an input file of the Batch API: 200 MB.
pub const MAX_FILE_BYTES: u64 = 200 * 1_000_000;

/// OpenAI's limit on the requests of one batch.
pub const MAX_BATCH_LINES: u32 = 50_000;

/// 16: enough to keep a fast provider busy (a batch finishes at tens of lines per second with
/// answers of a second or two), few enough that a batch never looks like a flood to a provider
/// whose account allows a few dozen requests at once.
pub const DEFAULT_CONCURRENCY: u32 = 16;

/// How long result files and finished batches are kept, and uploads no batch reads: 30 days,
/// as OpenAI keeps batch files.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 86_400);

/// How many lines of one provider may be in flight at once, and how many may start per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderLimits {
    pub concurrency: u32,
    /// `None`: no limit of our own (the provider's rate limits still pause the queue).
    pub requests_per_minute: Option<u32>,
}

impl Default for ProviderLimits {
    fn default() -> Self {
        ProviderLimits {
            concurrency: DEFAULT_CONCURRENCY,
            requests_per_minute: None,
        }
    }
}

/// `[queue]` after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSettings {
    /// What every provider gets unless `providers` says otherwise.
    pub defaults: ProviderLimits,
    /// `[queue.providers.ID]`: per-provider limits (keys are known provider ids).
    pub providers: BTreeMap<String, ProviderLimits>,
    /// The gateway takes requests without keys (open on localhost): every local program is one
    /// owner of files and batches.
    pub open: bool,
    /// Largest request line accepted in an upload: the gateway's own request limit plus room
    /// for the line's envelope (`custom_id`, `method`, `url`); `config` sets it from
    /// `[gateway] max_request_bytes` (default 16 MiB).
    pub max_line_bytes: usize,
    pub retention: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            defaults: ProviderLimits::default(),
            providers: BTreeMap::new(),
            open: false,
            max_line_bytes: 16 * 1024 * 1024 + LINE_ENVELOPE_BYTES,
            retention: DEFAULT_RETENTION,
        }
    }
}

/// Room for a request line's envelope around its body: a `custom_id` of a few KiB is already
/// unusual.
pub const LINE_ENVELOPE_BYTES: usize = 64 * 1024;

impl QueueSettings {
    /// The limits of `provider`.
    pub fn limits(&self, provider: &str) -> ProviderLimits {
        self.providers
            .get(provider)
            .copied()
            .unwrap_or(self.defaults)
    }
}
