//! # agentwatch — Zero Trust for AI agents
//!
//! Every agent action is an [`Event`](model::Event); every agent has its own learned
//! behaviour; a deviation is scored, explained and answered with an
//! [`Alert`](model::Alert) for people and, where the risk is high, a
//! [`Command`](model::Command) that cuts the agent's access.
//!
//! ## Architecture map
//!
//! ```text
//!  bytes ──► model::decode ──► pipeline::Engine ───────────────► alerts + commands
//!  (file, memory,              │  state::AgentCache (hot agents)
//!   Kafka)                     │  state::StateStore (RocksDB: agents + source offsets)
//!                              │  detect::DetectorSet (kinds × TOML instances)
//!                              │  pipeline::fleet, state::PeerIndex (cross-agent context)
//!                              └► pipeline::decide (budget gate, cooldown, risk, tiers)
//! ```
//!
//! ### Layers (lowest first; `tests/layering.rs` fails on a new import circle)
//!
//! 1. [`error`], [`model`] (wire contracts, decoder, time), [`stats`], [`pattern`] (`*`
//!    names), [`diagnostics`] (`file:line` problems): leaves everything may use.
//! 2. [`telemetry`] (metrics and their label enums, logs), [`signing`] (commands, and
//!    approval and registry records read from topics: `trusted_keys`), [`identity`]
//!    (the agent registry: the only thing "registry" means here), [`approvals`] (human
//!    approvals of high-risk actions: records, the check, per-agent use counts, the
//!    event-time grace for late approvals), [`eval`].
//! 3. [`state`] ⇄ [`detect`] → [`pipeline`]: baselines, cache and RocksDB store with
//!    typed [`state::PositionKey`]s and the owners' [`state::PeerIndex`] (built from
//!    stored agents, read by detectors); the [`Detector`](detect::Detector) trait, the
//!    kinds, their [`catalogue`](detect::catalogue) and the instance loader; the engine.
//!    One edge still points back up and is allowed by name in the layering test:
//!    `state → detect` (agent state stores each instance's `KindState` while kinds read
//!    the `Baseline`). Untying it means moving `Baseline` below `state`.
//! 4. [`config`] (the service config file), [`kafka`] (consumer whose partitions start
//!    at the offsets RocksDB holds, idempotent producer, dead letters, topic checks),
//!    [`sim`] (labelled synthetic traffic), [`schema`].
//! 5. [`app`]: the commands (`run`, `replay`, `simulate`, `tail`, `demo`, `inspect`,
//!    `verify`, `sign-record`, `validate`, `schemas`), kept in the library so tests drive exactly what
//!    users run. `app::cli` holds each command's flags, [`app::setup`] assembles every
//!    engine (detectors, registry, approvals, signer, options, metrics), [`app::render`] formats
//!    alerts for people. `main.rs` parses and dispatches only.
//!
//! ### Where to add
//!
//! - **A detector kind**: `detect/kinds/<name>.rs` with its `Params`, `State`, detector
//!   and `SPEC`; a [`KindState`](detect::KindState) variant if it keeps state; its
//!   `SPEC` in [`detect::catalogue::KINDS`]. Policy kinds report a
//!   [`Rule`](detect::Rule), never a number.
//! - **An input**: file, stdin and simulation go through [`app::replay::run_replay`]
//!   (JSON lines from a `BufRead`), Kafka through `app::run` (consumer thread →
//!   engine thread). Its stored position is a new [`state::PositionKey`] constructor.
//!   The single `Source`/`Sink` driver of issue 12 is not in yet: replay and demo share
//!   one loop, `run` has its own.
//! - **An output**: JSON lines in [`app::replay`], Kafka records in `app::run` via
//!   [`kafka::producer`]; readable text in [`app::render`].
//! - **A metric**: a field of [`telemetry::Metrics`]; fixed label values are enums in
//!   `telemetry::labels` with `as_str`, pre-registered at zero.
//!
//! Time comes from events, bounded against each source's watermark (and, in `run`, the
//! wall clock: [`model::watermark`]); a replay never reads the wall clock, so a replay of
//! the same input on the same state produces byte-identical alerts and commands.

#![warn(missing_docs)]

pub mod app;
pub mod approvals;
pub mod config;
pub mod detect;
pub mod diagnostics;
pub mod drive;
pub mod error;
pub mod eval;
pub mod identity;
pub mod kafka;
pub mod model;
pub mod pattern;
pub mod pipeline;
pub mod schema;
pub mod signing;
pub mod sim;
pub mod state;
pub mod stats;
pub mod telemetry;

pub use error::{Error, Result};
