//! isdown: is Kimi down, or is it my setup? The library behind the `isdown` binary.
//!
//! Module map, bottom layer first (ARCHITECTURE.md has the data flow and where changes go):
//! - leaf vocabulary: `time` (Unix milliseconds, RFC 3339, the tokio-driven clock), `incident`
//!   (incident kinds), `secret` (the secret registry and the one scrub), `quote` (the one
//!   way text from elsewhere is quoted in isdown's messages: a short excerpt), `sse` (the one SSE
//!   reader), `backoff` (jittered retry pacing), `estimate` (the token estimate of a request);
//! - knowledge: `verdict` (the one classifier and its rules table), `lint` (what is wrong with a
//!   request before it is sent, its rules as data), `provider` (wire styles and request
//!   building);
//! - transport: `transport` (the outbound HTTP client and its typed failure mapping), `probe`
//!   (the four probe kinds and their timings);
//! - state: `store` (the `Store` trait and SQLite), `metrics` (the Prometheus registry);
//! - engines: `monitor` (scheduler, state machines, incidents, health view), `alert` (rules,
//!   outbox, channels), `gateway` (the failover gateway), `queue` (the durable queue behind the
//!   OpenAI Batch API, run through the gateway), `corroborate` (what official status pages,
//!   the aggregator and community feeds say, and how far ahead of the official page isdown
//!   was), `web` (status page, APIs, the listener's connection handling), `check` (one-shot
//!   diagnosis);
//! - assembly: `config` (isdown.toml and the embedded catalog into each engine's typed settings),
//!   `server` (`isdown serve` as a library), `mock` (the scripted mock provider), `cli` (one file
//!   per subcommand).

pub mod alert;
pub mod backoff;
pub mod check;
pub mod cli;
pub mod config;
pub mod corroborate;
pub mod estimate;
pub mod gateway;
pub mod incident;
pub mod lint;
pub mod metrics;
pub mod mock;
pub mod monitor;
pub mod probe;
pub mod provider;
pub mod queue;
pub mod quote;
pub mod secret;
pub mod server;
pub mod sse;
pub mod store;
pub mod time;
pub mod transport;
pub mod verdict;
pub mod web;
