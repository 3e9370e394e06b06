//! isdown: is Kimi down, or is it my setup? Library behind the `isdown` binary.
//!
//! Module map (DESIGN.md): `verdict` (the one classifier), `sse` (the one SSE reader),
//! `config` (isdown.toml and the embedded catalog), `provider` (wire knowledge), `probe`
//! (probe kinds and timings), `check` (one-shot diagnosis and correlation), `backoff` (retry pacing), `gateway` (the
//! OpenAI-compatible failover gateway), `mock` (the scripted mock provider), `secret` (keeping
//! keys out of output), `cli` (one file per subcommand).

pub mod alert;
pub mod backoff;
pub mod check;
pub mod cli;
pub mod config;
pub mod gateway;
pub mod incident;
pub mod metrics;
pub mod mock;
pub mod monitor;
pub mod probe;
pub mod provider;
pub mod secret;
pub mod server;
pub mod sse;
pub mod store;
pub mod time;
pub mod transport;
pub mod verdict;
pub mod web;
