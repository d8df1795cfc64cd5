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
//!  drive::Source ──► drive::Driver ─────────────────────────────► drive::Sink
//!  (lines: file,      │ decode* + bound time (model), count invalid    (JSON lines, Kafka;
//!   stdin, sim;       ▼                                                 dead letters)
//!   Kafka)          pipeline::Engine ─► alerts + commands ─► publish ─► settle ─► commit
//!                     │  state::AgentCache (hot agents)
//!                     │  state::StateStore (RocksDB: agents + source positions)
//!                     │  detect::DetectorSet (kinds × TOML instances) reading baseline::*
//!                     │  pipeline::fleet, baseline::PeerIndex (cross-agent context)
//!                     └► pipeline::decide (budget gate, cooldown, risk, tiers)
//! ```
//!
//! (*) Decoded ahead on a second thread where the source can (`drive::ahead`, the Kafka
//! consumer thread); the engine's thread then bounds time and judges (and, for files,
//! reads the lines).
//!
//! ### Layers (lowest first; `tests/layering.rs` fails on a new import circle)
//!
//! 1. [`error`], [`model`] (wire contracts, decoder, time), [`stats`], [`pattern`] (`*`
//!    names), [`diagnostics`] (`file:line` problems), [`outbox`] (facts queued for
//!    the group), [`prefetch`] (memory asked for ahead): leaves everything may use.
//!    [`baseline`] (what was learned about an agent: systems, hours, pending behaviour,
//!    calibration, the owners' peer index) sits on them.
//! 2. [`telemetry`] (metrics and their label enums, logs), [`signing`] (commands, and
//!    approval and registry records read from topics: `trusted_keys`), [`identity`]
//!    (the agent registry: the only thing "registry" means here), [`approvals`] (human
//!    approvals of high-risk actions: records, the check, per-agent use counts, the
//!    event-time grace for late approvals), [`eval`].
//! 3. [`detect`] → [`state`] → [`pipeline`] → [`drive`]: the
//!    [`Detector`](detect::Detector) trait, the kinds, their
//!    [`catalogue`](detect::catalogue) and the instance loader (what kinds read of an
//!    agent comes from [`baseline`], never `state`); agent state (each instance's `KindState` with the baseline), cache
//!    and RocksDB store with typed [`state::PositionKey`]s; the engine; the one driver
//!    ([`drive::Source`] → decode → engine → [`drive::Sink`] → commit) that every
//!    command runs the engine with. No known cycle is left.
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
//! - **An input**: a [`drive::Source`] (batches of raw records, each with a typed
//!   [`drive::At`]; the positions to store; how to resume), like
//!   [`drive::lines::LineSource`] (file, stdin, simulation) or `app::run`'s Kafka source.
//!   Its stored position is a [`state::PositionKey`] constructor. No new loop: the
//!   source is run by [`drive::drive`].
//! - **An output**: a [`drive::Sink`] (publish, reject, settle), like
//!   [`drive::jsonl::JsonlSink`] or `app::run`'s Kafka sink; a new wire format is an
//!   encoding inside one. Readable text is [`app::render`].
//! - **A metric**: a field of [`telemetry::Metrics`]; fixed label values are enums in
//!   `telemetry::labels` with `as_str`, pre-registered at zero.
//!
//! Time comes from events, bounded against each source's watermark (and, in `run`, the
//! wall clock: [`model::watermark`]); a replay never reads the wall clock, so a replay of
//! the same input on the same state produces byte-identical alerts and commands.

#![warn(missing_docs)]
// The module docs explain their models by linking the private constants and helpers
// that implement them; the docs are meant to be read with `--document-private-items`
// (an application's internals, not a library's API), where every such link resolves.
#![allow(rustdoc::private_intra_doc_links)]

pub mod app;
pub mod approvals;
pub mod baseline;
pub mod config;
pub mod detect;
pub mod diagnostics;
pub mod drive;
pub mod error;
pub mod eval;
pub mod identity;
pub mod kafka;
pub mod model;
pub mod outbox;
pub mod pattern;
pub mod pipeline;
pub mod prefetch;
pub mod schema;
pub mod signing;
pub mod sim;
pub mod state;
pub mod stats;
pub mod telemetry;

pub use error::{Error, Result};
