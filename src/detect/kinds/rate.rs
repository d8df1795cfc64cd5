//! `rate`: an agent calls faster than its own history allows.
//!
//! ## Model
//!
//! The detector counts events per tumbling event-time window (one minute by default)
//! and learns the mean and variance of that count over the windows in which the agent
//! was **active**. Inactive windows are not zeros, they are absent: an office-hours
//! assistant is judged by its pace while working, a nightly batch job by its pace while
//! the batch runs. That is what keeps every morning's start and every night's batch from
//! looking like a spike: the rate at which the agent works is the same, only *when*
//! differs (and when is the business of an hour-of-week detector, not this one).
//!
//! The running count of the open window is scored against a negative binomial with
//! the learned mean and variance (a Poisson whose rate itself wanders, which is what
//! bursty agent traffic looks like; plain Poisson when there is no overdispersion). The
//! test applies only once the window holds at least `min_count` calls and `min_ratio`
//! times the agent's mean. A window that contained an anomaly is not learned from, so a
//! runaway loop cannot become the new normal.

use serde::{Deserialize, Serialize};

use super::{format_p, DurationParam, Positive, TumblingWindow};
use crate::detect::registry::{parse_params, KindSpec, KindState, KindStateOf};
use crate::detect::{Detector, Finding, Observation};
use crate::model::time::format_duration;
use crate::model::Anomaly;
use crate::stats::{negative_binomial_sf, EwStats};

/// Registry entry.
pub const SPEC: KindSpec = KindSpec {
    name: "rate",
    build: |text| Ok(Box::new(Rate::new(parse_params(text)?))),
};

/// `[params]` of a `rate` instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Window width.
    pub window: DurationParam,
    /// Memory of the per-window distribution, in active windows.
    pub horizon: u32,
    /// Active windows needed before the test applies.
    pub min_windows: u32,
    /// Counts below this never alert.
    pub min_count: u32,
    /// Counts below this multiple of the mean never alert.
    pub min_ratio: Positive,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            window: DurationParam(60_000),
            horizon: 2_000,
            min_windows: 30,
            min_count: 20,
            min_ratio: Positive(4.0),
        }
    }
}

/// Per-agent state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Distribution of calls per active window.
    pub windows: EwStats,
    /// The open window.
    pub window: TumblingWindow,
}

/// The detector.
#[derive(Debug)]
pub struct Rate {
    params: Params,
}

impl Rate {
    /// Builds the detector from its parameters.
    pub fn new(params: Params) -> Self {
        Rate { params }
    }
}

impl Detector for Rate {
    fn new_state(&self) -> KindState {
        State::default().wrap()
    }

    fn score(&self, obs: &Observation<'_>, state: &mut KindState) -> Option<Finding> {
        let state = State::of(state);
        if let Some(closed) = state
            .window
            .advance_learnable(obs.event.time_ms, self.params.window.0)
        {
            state
                .windows
                .update(f64::from(closed.events), self.params.horizon);
        }
        state.window.add(1.0);
        let count = state.window.events;
        let stats = &state.windows;
        if stats.n < self.params.min_windows
            || count < self.params.min_count
            || f64::from(count) < stats.mean * self.params.min_ratio.0
        {
            return None;
        }
        let var = stats.var.max(stats.mean);
        Some(Finding {
            p_value: negative_binomial_sf(u64::from(count), stats.mean, var),
            anomaly: Anomaly::HighRate,
            observed: f64::from(count),
            expected: stats.mean,
            unit: "calls per window",
            statistic: "negative binomial tail of calls per active window",
            statistic_value: var / stats.mean.max(1e-9),
            baseline_size: u64::from(stats.n),
        })
    }

    fn learn(&self, _obs: &Observation<'_>, state: &mut KindState, anomalous: bool) {
        if anomalous {
            State::of(state).window.flagged = true;
        }
    }

    fn summarize(&self, obs: &Observation<'_>, finding: &Finding) -> String {
        format!(
            "{} made {:.0} calls within {} ({:.0}× its usual {:.1} while active), latest {} on {}; {}",
            obs.event.agent_id,
            finding.observed,
            format_duration(self.params.window.0),
            finding.observed / finding.expected.max(1e-9),
            finding.expected,
            obs.event.action,
            obs.event.system,
            format_p(finding.p_value)
        )
    }
}
