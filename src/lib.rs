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
//!                              │  pipeline::fleet, pipeline::peers (cross-agent context)
//!                              └► pipeline::decide (budget gate, cooldown, risk, tiers)
//! ```
//!
//! - [`model`]: the wire contracts (agent-event v1 in, alert v1 and command v1 out) and the
//!   strict, bounded decoder that gives every kind of bad input its own error code.
//! - [`stats`]: the small statistical toolkit the detectors share (exponentially weighted
//!   moments, tail probabilities, half-life decay, an empirical log-size histogram and a
//!   calibrated CUSUM).
//! - [`state`]: per-agent baselines, their versioned binary encoding, the write-back cache
//!   and the RocksDB store that commits agent state and consumed offsets in one batch.
//! - [`detect`]: the [`Detector`](detect::Detector) trait, the explicit registry of kinds,
//!   and the loader that turns `detectors/*.toml` into running instances.
//! - [`pipeline`]: the engine that scores, decides and learns, in that order, per event:
//!   a finding is an anomaly within its instance's false-alarm budget, unless the agent's
//!   pending model explains it (new behaviour being learned) or many agents show it at
//!   once (a fleet event); the peer index weighs first uses by the owner's other agents.
//! - [`identity`]: the agent registry (owners, boundaries, credentials, working hours)
//!   that the policy detectors check events against; optional.
//! - [`signing`]: Ed25519 signatures on commands and the check enforcers run on them.
//! - [`sim`] and [`eval`]: labelled synthetic traffic (strong and moderate attacks,
//!   legitimate change, chosen by scenario) and the scoring (recall, false alerts,
//!   commands on healthy agents) that holds the detectors to a measurable quality bar.
//! - [`config`] and [`kafka`]: the service's config file, and the Kafka glue of
//!   `agentwatch run` (consumer whose partitions start at the offsets RocksDB holds,
//!   idempotent output producer, dead letters, topic checks).
//! - [`app`]: the commands behind the CLI (`run`, `replay`, `simulate`, `tail`, `demo`,
//!   `inspect`, `verify`, `validate`, `schemas`), kept in the library so tests drive
//!   exactly what users run.
//! - [`telemetry`]: Prometheus metrics, the HTTP endpoint and log set-up.
//!
//! Time comes from events, bounded against each source's watermark (and, in `run`, the
//! wall clock: [`model::watermark`]); a replay never reads the wall clock, so a replay of
//! the same input on the same state produces byte-identical alerts and commands.

#![warn(missing_docs)]

pub mod app;
pub mod config;
pub mod detect;
pub mod diagnostics;
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
