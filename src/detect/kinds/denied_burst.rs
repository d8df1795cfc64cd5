//! `denied_burst`: a burst of denied or failed actions against the agent's own failure
//! rate, the signature of an agent probing its boundaries (or of a credential that was
//! revoked under a running attacker).
//!
//! ## Model
//!
//! The agent's failure rate `r` gets a Beta(a, b) prior and is learned from closed
//! windows (decayed with `horizon`). In the open window of `m` calls with `k` failures,
//! the tail probability is `P(X ≥ k)` for `X ~ Binomial(m, r)`, so a flaky agent that
//! fails 10% of the time is held to its own standard, and a clean one is not.

use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, DiscreteCDF};

use super::{format_p, DurationParam, Positive, TumblingWindow};
use crate::detect::{parse_params, KindSpec, KindState, KindStateOf};
use crate::detect::{Aspect, Detector, Finding, FleetScope, Observation, Verdict};
use crate::model::time::format_duration;
use crate::model::{Anomaly, Outcome};

/// Registry entry.
pub const SPEC: KindSpec = KindSpec {
    name: "denied_burst",
    guards: Aspect::Own,
    fleet: Some(FleetScope::Failures),
    build: |text| Ok(Box::new(DeniedBurst::new(parse_params(text)?))),
};

/// `[params]` of a `denied_burst` instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Window width.
    pub window: DurationParam,
    /// Memory of the failure rate, in windows.
    pub horizon: u32,
    /// Never alert below this many failures in a window.
    pub min_failures: u32,
    /// Beta prior: pseudo-count of failures.
    pub prior_failures: Positive,
    /// Beta prior: pseudo-count of calls.
    pub prior_calls: Positive,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            window: DurationParam(5 * 60_000),
            horizon: 2000,
            min_failures: 2,
            prior_failures: Positive(1.0),
            prior_calls: Positive(50.0),
        }
    }
}

/// Per-agent state: decayed calls and failures, and the open window (`events` = calls,
/// `sum` = failures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Decayed calls in learned windows.
    pub calls: f64,
    /// Decayed failures in learned windows.
    pub failures: f64,
    /// The open window.
    pub window: TumblingWindow,
}

/// The detector.
#[derive(Debug)]
pub struct DeniedBurst {
    params: Params,
}

impl DeniedBurst {
    /// Builds the detector from its parameters.
    pub fn new(params: Params) -> Self {
        DeniedBurst { params }
    }

    fn rate(&self, state: &State) -> f64 {
        let a = self.params.prior_failures.0 + state.failures;
        let n = self.params.prior_calls.0 + state.calls;
        (a / n.max(a)).clamp(1e-6, 1.0)
    }
}

impl Detector for DeniedBurst {
    fn new_state(&self) -> KindState {
        State::default().wrap()
    }

    fn score(&self, obs: &Observation<'_>, state: &mut KindState) -> Option<Finding> {
        let state = State::of(state);
        if let Some(closed) = state
            .window
            .advance_learnable(obs.event.time_ms, self.params.window.0)
        {
            let keep = 1.0 - 1.0 / f64::from(self.params.horizon.max(1));
            state.calls = state.calls * keep + f64::from(closed.events);
            state.failures = state.failures * keep + closed.sum;
        }
        let failed = obs.event.outcome != Outcome::Success;
        state.window.add(if failed { 1.0 } else { 0.0 });
        let failures = state.window.sum as u64;
        if !failed || failures < u64::from(self.params.min_failures) {
            return None;
        }
        let calls = u64::from(state.window.events);
        let rate = self.rate(state);
        let p_value = Binomial::new(rate, calls)
            .map(|b| b.sf(failures - 1))
            .unwrap_or(1.0);
        Some(Finding {
            p_value: p_value.max(f64::MIN_POSITIVE),
            anomaly: Anomaly::Probing,
            observed: failures as f64,
            expected: rate * calls as f64,
            unit: "denied or failed calls per window",
            statistic: "binomial tail of failures in the window",
            statistic_value: rate,
            rule: None,
            baseline_size: state.calls as u64,
            pending_p: None,
            magnitude: failures as f64 / (rate * calls as f64).max(1e-9),
            learning: false,
        })
    }

    fn learn(&self, _obs: &Observation<'_>, state: &mut KindState, verdict: Verdict) {
        if verdict.flagged() {
            State::of(state).window.flagged = true;
        }
    }

    fn describe(&self, state: &KindState) -> Option<String> {
        let KindState::DeniedBurst(state) = state else {
            return None;
        };
        (state.calls > 0.0).then(|| {
            format!(
                "{:.2}% of calls denied or failed (over about {:.0} calls)",
                100.0 * state.failures / state.calls,
                state.calls
            )
        })
    }

    fn summarize(&self, obs: &Observation<'_>, finding: &Finding) -> String {
        format!(
            "{} had {:.0} denied or failed calls within {} (its usual failure rate {:.1}% predicts {:.1}), latest {} on {}; {}",
            obs.event.agent_id,
            finding.observed,
            format_duration(self.params.window.0),
            finding.statistic_value * 100.0,
            finding.expected,
            obs.event.action,
            obs.event.system,
            format_p(finding.p_value)
        )
    }
}
