//! isdown: is Kimi down, or is it my setup? Library behind the `isdown` binary.
//!
//! Module map (DESIGN.md): `verdict` (the one classifier), `sse` (the one SSE reader),
//! `provider` (catalog and request building), `config` (isdown.toml), `probe` (probe kinds and
//! timings), `check` (one-shot diagnosis and correlation), `mock` (the scripted mock provider),
//! `cli` (one file per subcommand).

pub mod mock;
pub mod sse;
pub mod verdict;
