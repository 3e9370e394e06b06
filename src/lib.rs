//! isdown: is Kimi down, or is it my setup? The library behind the `isdown` binary.
//!
//! Module map, bottom layer first; a module uses only modules listed before it (its own layer
//! or below), and `tests/layering.rs` fails on a cycle. ARCHITECTURE.md has the data flow and
//! where changes go.
//!
//! Leaf vocabulary:
//! - `time`: Unix milliseconds, RFC 3339, the tokio-driven clock.
//! - `incident`: incident kinds.
//! - `secret`: the secret registry and the one scrub.
//! - `quote`: the one way text from elsewhere is quoted in isdown's messages (a short excerpt).
//! - `sse`: the one SSE reader.
//! - `backoff`: jittered retry pacing.
//! - `estimate`: the token estimate of a request.
//!
//! Knowledge:
//! - `verdict`: the one classifier and its rules table.
//! - `lint`: what is wrong with a request before it is sent, its rules as data.
//! - `provider`: providers, wire styles and request building.
//!
//! Transport:
//! - `transport`: the outbound HTTP client and its typed failure mapping.
//! - `probe`: the four probe kinds and their timings.
//!
//! State:
//! - `store`: the `Store` trait, SQLite and PostgreSQL.
//! - `metrics`: the Prometheus registry.
//! - `peers`: several instances on one database: identity, region, leases.
//!
//! Engines, each owning its settings types (in this order: a later one may use an earlier one):
//! - `monitor`: scheduler, state machines, incidents, health view.
//! - `alert`: rules, outbox, channels.
//! - `corroborate`: what official status pages, the aggregator and community feeds say, and
//!   how far ahead of the official page isdown was.
//! - `gateway`: the failover gateway.
//! - `queue`: the durable queue behind the OpenAI Batch API, run through the gateway.
//! - `web`: status page, APIs, the listener's connection handling.
//!
//! Assembly (only these name `config`):
//! - `config`: isdown.toml and the embedded catalog into each engine's typed settings.
//! - `check`: one-shot diagnosis of a loaded config's providers.
//! - `server`: `isdown serve` as a library.
//! - `mock`: the scripted mock provider (uses only `sse`).
//! - `cli`: one file per subcommand.

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
pub mod peers;
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
