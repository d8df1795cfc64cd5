//! Detectors: a *kind* is Rust code (one file under `kinds/`), an *instance* is data
//! (`detectors/<id>.toml`). Kinds are listed in one explicit [`registry`]; the
//! [`loader`] validates instance files and builds a [`DetectorSet`].
//!
//! A detector is pure: given an event, the agent's shared [`Baseline`] and its own
//! per-agent [`KindState`], it returns a [`Finding`] whose score comes from a tail
//! probability, and then learns. It never looks at the wall clock and never decides
//! whether to alert; warm-up, thresholds, cooldown, risk and responses belong to
//! [`crate::pipeline::decide`], so every kind gets them identically.

mod config;
pub mod kinds;
mod loader;
mod matcher;
pub mod registry;

pub use config::{Response, Thresholds, Warmup};
pub use kinds::fact;
pub use loader::{instance_key, DetectorSet, Instance};
pub use matcher::Pattern;
pub use registry::KindState;

use std::collections::BTreeMap;

use crate::identity::{AgentRecord, Registry};
use crate::model::{Anomaly, Event};
use crate::state::Baseline;

/// What a detector sees of one event.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The event being scored.
    pub event: &'a Event<'a>,
    /// The agent's shared baseline, as it was before this event.
    pub baseline: &'a Baseline,
    /// What the registry and the fleet's traffic say about who the agent is.
    pub identity: Identity<'a>,
}

/// Facts about the agent's identity, looked up once per event by the engine so that
/// policy detectors stay pure functions of what they are given.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity<'a> {
    /// The registry, when one is configured (`None`: agentwatch is purely behavioural).
    /// [`Registry::enforces`] says whether agents it does not list are to be flagged.
    pub registry: Option<&'a Registry>,
    /// The agent's registry record.
    pub record: Option<&'a AgentRecord>,
    /// The first agent seen using the event's credential, and when, learned from the
    /// fleet's own traffic (so shared credentials are caught even without a registry).
    pub credential_first_use: Option<(&'a str, i64)>,
}

/// A detector's verdict on one event, before the engine decides what to do with it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finding {
    /// Probability of something at least this extreme under the agent's baseline.
    pub p_value: f64,
    /// Kind of deviation.
    pub anomaly: Anomaly,
    /// What was observed (in `unit`).
    pub observed: f64,
    /// What the baseline expected (in `unit`).
    pub expected: f64,
    /// Unit of `observed` and `expected`.
    pub unit: &'static str,
    /// Name of the statistic.
    pub statistic: &'static str,
    /// Its value.
    pub statistic_value: f64,
    /// Observations behind the baseline that was used.
    pub baseline_size: u64,
}

impl Finding {
    /// The 0..1 score (see [`crate::stats::score_from_p`]).
    pub fn score(&self) -> f64 {
        crate::stats::score_from_p(self.p_value)
    }
}

/// A detector kind's behaviour. Few required methods on purpose: a new kind is a state
/// type, a scoring rule, a learning rule and a sentence.
pub trait Detector: Send + Sync {
    /// Fresh per-agent state.
    fn new_state(&self) -> KindState;

    /// Scores `obs` against `state`. May advance event-time windows held in `state`
    /// (a closing window is folded in unless it held an anomaly). Returns `None` when
    /// the detector has nothing to say about this event (score 0).
    fn score(&self, obs: &Observation<'_>, state: &mut KindState) -> Option<Finding>;

    /// Called once after every [`Detector::score`]. `anomalous` says whether the engine
    /// judged the event an anomaly for this detector, in which case it must not be
    /// learned from (no poisoning by a slow attacker).
    fn learn(&self, obs: &Observation<'_>, state: &mut KindState, anomalous: bool);

    /// One sentence with numbers that a person can act on.
    fn summarize(&self, obs: &Observation<'_>, finding: &Finding) -> String;

    /// Adds the facts behind a finding to the alert's evidence context (policy kinds
    /// name the rule that was broken). Most kinds have nothing to add.
    fn explain(
        &self,
        _obs: &Observation<'_>,
        _finding: &Finding,
        _context: &mut BTreeMap<String, String>,
    ) {
    }
}
