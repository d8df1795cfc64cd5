//! `volume`: an agent moves more data than its own history allows.
//!
//! ## Model
//!
//! Transfer sizes are mixtures (small API payloads, occasional exports), so the detector
//! keeps the agent's *empirical* distribution of sizes on a log scale (a histogram of
//! half-octave bins) next to the mean and spread of `x = ln(1 + bytes)`. Each event is
//! tested three ways, and the smallest p-value, times three (Bonferroni), is reported:
//!
//! - **one transfer**: `t = (x − mean) / sd` against a Student-t on `n − 1` degrees of
//!   freedom (a single 200 MB transfer from an agent that moves kilobytes needs no
//!   history of 200 MB transfers to be judged; the parametric tail extrapolates);
//! - **one window**: the same test on the running total of the open tumbling window,
//!   against the totals of the agent's earlier *active* windows (a burst of moderately
//!   large transfers within minutes);
//! - **a sustained shift**: a CUSUM of the surprise `−ln u` of each transfer, where `u`
//!   is the share of the agent's own transfers at least that large (see
//!   [`crate::stats::Cusum`]). It is calibrated whatever the distribution's shape, and
//!   it catches what no single transfer or window shows: every transfer three times the
//!   typical size for an hour, or twenty transfers each beyond the agent's 95th
//!   percentile.
//!
//! There are no floors in bytes or ratios: whether a deviation alerts is decided by the
//! instance's false-alarm budget against the agent's own test rate (see
//! [`crate::detect::Instance::alert_p`]). `sd_floor` is the resolution of sizes (sizes
//! within about ±25% are the same size), not a threshold.
//!
//! Flagged transfers go to a pending model ([`Shadow`]). Once it has seen a few, a
//! transfer it explains is new behaviour being learned (no alert); once the change has
//! persisted for a day it is promoted: the baseline moves to the new sizes, keeping the
//! shape of the distribution. What escalated is dropped.

use serde::{Deserialize, Serialize};

use super::{format_bytes, format_p, DurationParam, Positive, Shadow, TumblingWindow};
use crate::detect::{parse_params, KindSpec, KindState, KindStateOf};
use crate::detect::{Aspect, Detector, Finding, Observation, Verdict};
use crate::model::time::format_duration;
use crate::model::Anomaly;
use crate::stats::{student_t_sf, Cusum, EwStats, LogHistogram};

/// Registry entry.
pub const SPEC: KindSpec = KindSpec {
    name: "volume",
    guards: Aspect::Own,
    fleet: None,
    build: |text| Ok(Box::new(Volume::new(parse_params(text)?))),
};

const STAT_TRANSFER: &str = "t(log bytes per transfer)";
const STAT_WINDOW: &str = "t(log bytes per window)";
const STAT_CUSUM: &str = "cusum of transfer-size surprise";

/// Pseudo-transfers behind the prior scale of the size distribution's tail beyond its
/// 99th percentile (`sd_floor`, the resolution of sizes).
const PRIOR_TRANSFERS: f64 = 30.0;

/// Tests per event: one transfer, one window, the sequential test.
const TESTS: f64 = 3.0;

/// `[params]` of a `volume` instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Width of the burst window.
    pub window: DurationParam,
    /// Memory of the per-transfer distribution, in transfers.
    pub horizon: u32,
    /// Memory of the per-window distribution, in active windows.
    pub window_horizon: u32,
    /// Transfers (or windows) needed before a test applies.
    pub min_samples: u32,
    /// Lower bound on the spread of `ln(1 + bytes)`: the resolution of sizes.
    pub sd_floor: Positive,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            window: DurationParam(600_000),
            horizon: 2_000,
            window_horizon: 500,
            min_samples: 30,
            sd_floor: Positive(0.25),
        }
    }
}

/// Per-agent state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Distribution of `ln(1 + bytes)` per transfer.
    pub transfers: EwStats,
    /// Distribution of `ln(1 + bytes)` per active window.
    pub windows: EwStats,
    /// The open window (its `sum` is in bytes).
    pub window: TumblingWindow,
    /// Empirical distribution of transfer sizes.
    pub sizes: LogHistogram,
    /// Sequential test of transfer-size surprise.
    pub cusum: Cusum,
    /// Flagged transfers (`ln(1 + bytes)`) since the episode began.
    pub pending: Shadow,
}

/// The detector.
#[derive(Debug)]
pub struct Volume {
    params: Params,
}

impl Volume {
    /// Builds the detector from its parameters.
    pub fn new(params: Params) -> Self {
        Volume { params }
    }

    /// The parametric test of an amount of `bytes`, whose `ln(1 + bytes)` is `ln_bytes`.
    fn test(
        &self,
        bytes: f64,
        ln_bytes: f64,
        stats: &EwStats,
        statistic: &'static str,
    ) -> Option<Finding> {
        if stats.n < self.params.min_samples || bytes <= 0.0 {
            return None;
        }
        let t = (ln_bytes - stats.mean) / stats.sd(self.params.sd_floor.0);
        // Within three standard deviations the tail is a few per mille at the least,
        // far above any alert threshold: skip the incomplete beta function.
        if t < 3.0 {
            return None;
        }
        let typical = stats.mean.exp_m1().max(1.0);
        Some(finding(
            student_t_sf(t, f64::from(stats.n - 1)),
            bytes,
            typical,
            statistic,
            t,
            stats.n,
        ))
    }

    /// The sequential test: folds this transfer's surprise into the CUSUM.
    fn sequential(&self, bytes: f64, ln_bytes: f64, state: &mut State) -> Option<Finding> {
        let samples = state.sizes.total();
        if samples < self.params.min_samples || bytes <= 0.0 {
            return None;
        }
        let p = state.cusum.observe(state.sizes.upper_tail_ln(ln_bytes));
        // An ordinary sum says nothing worth the arithmetic of a finding.
        if p > 1e-3 {
            return None;
        }
        let typical = state.transfers.mean.exp_m1().max(1.0);
        Some(finding(
            p,
            bytes,
            typical,
            STAT_CUSUM,
            state.cusum.sum,
            samples,
        ))
    }

    /// p-value of a transfer under the pending model, when it is mature: two-sided, as
    /// the question is whether the transfer looks like the new behaviour.
    fn pending_p(&self, ln_bytes: f64, state: &State, now_ms: i64) -> Option<f64> {
        let shadow = state.pending.mature(now_ms)?;
        let t = (ln_bytes - shadow.mean).abs() / shadow.sd(self.params.sd_floor.0);
        Some((2.0 * student_t_sf(t, f64::from(shadow.n - 1))).min(1.0) * TESTS)
    }

    /// Moves the baseline to the pending episode's sizes, keeping its shape.
    fn promote(&self, state: &mut State) {
        let shift = state.pending.stats.mean - state.transfers.mean;
        state.sizes.shift(shift / std::f64::consts::LN_2);
        state.transfers = state.pending.stats;
        state.windows.mean += shift;
        state.cusum.reset();
        state.pending.clear();
    }
}

fn finding(
    p_value: f64,
    bytes: f64,
    typical: f64,
    statistic: &'static str,
    statistic_value: f64,
    baseline_size: u32,
) -> Finding {
    Finding {
        p_value,
        anomaly: Anomaly::HighVolume,
        observed: bytes,
        expected: typical,
        unit: "bytes",
        statistic,
        statistic_value,
        rule: None,
        baseline_size: u64::from(baseline_size),
        pending_p: None,
        magnitude: bytes / typical.max(1.0),
        learning: false,
    }
}

impl Detector for Volume {
    fn new_state(&self) -> KindState {
        State::default().wrap()
    }

    fn score(&self, obs: &Observation<'_>, state: &mut KindState) -> Option<Finding> {
        let state = State::of(state);
        let bytes = obs.event.bytes() as f64;
        let now = obs.event.time_ms;
        if let Some(closed) = state.window.advance_learnable(now, self.params.window.0) {
            state
                .windows
                .update(closed.sum.ln_1p(), self.params.window_horizon);
        }
        state.window.add(bytes);
        let ln_bytes = bytes.ln_1p();
        let single = self
            .test(bytes, ln_bytes, &state.transfers, STAT_TRANSFER)
            .map(|mut one| {
                // Both must find the transfer improbable: far from the mean size, and
                // beyond the agent's own largest transfers by more than their spread.
                let beyond =
                    state
                        .sizes
                        .peaks_tail_ln(ln_bytes, self.params.sd_floor.0, PRIOR_TRANSFERS);
                one.p_value = one.p_value.max(beyond.unwrap_or(1.0));
                one
            });
        let burst = if state.window.events >= 2 {
            let sum = state.window.sum;
            self.test(sum, sum.ln_1p(), &state.windows, STAT_WINDOW)
        } else {
            None
        };
        let sustained = self.sequential(bytes, ln_bytes, state);
        // One transfer that is itself anomalous is explained as such, even though it
        // also inflates its window; the window explains findings made of many transfers.
        let burst = match (&single, burst) {
            (Some(one), Some(many)) if one.p_value <= 1e-3 && bytes * 2.0 >= many.observed => None,
            (_, many) => many,
        };
        let mut best = [single, burst, sustained]
            .into_iter()
            .flatten()
            .min_by(|a, b| a.p_value.total_cmp(&b.p_value))?;
        best.p_value = (best.p_value * TESTS).min(1.0);
        best.pending_p = self.pending_p(ln_bytes, state, now);
        best.learning = state.pending.live(now);
        Some(best)
    }

    fn learn(&self, obs: &Observation<'_>, state: &mut KindState, verdict: Verdict) {
        let state = State::of(state);
        let bytes = obs.event.bytes();
        let now = obs.event.time_ms;
        match verdict {
            Verdict::Normal => {
                if bytes > 0 {
                    let ln_bytes = (bytes as f64).ln_1p();
                    state.transfers.update(ln_bytes, self.params.horizon);
                    state.sizes.record_ln(ln_bytes);
                }
            }
            Verdict::Flagged => {
                state.window.flagged = true;
                if bytes > 0 {
                    state
                        .pending
                        .hold((bytes as f64).ln_1p(), now, self.params.horizon);
                    if state.pending.due(now) {
                        self.promote(state);
                    }
                }
            }
            Verdict::Escalated => {
                state.window.flagged = true;
                state.pending.clear();
                state.cusum.reset();
            }
        }
    }

    fn describe(&self, state: &KindState) -> Option<String> {
        let KindState::Volume(state) = state else {
            return None;
        };
        let (transfers, windows) = (&state.transfers, &state.windows);
        let pending = if state.pending.stats.n > 0 {
            format!(
                "; new sizes being learned: about {} over {} flagged transfers",
                format_bytes(state.pending.stats.mean.exp_m1()),
                state.pending.stats.n
            )
        } else {
            String::new()
        };
        (transfers.n > 0).then(|| {
            format!(
                "transfer size about {} (×/÷ {:.1}) over {} transfers; per active window about {} over {} windows{pending}",
                format_bytes(transfers.mean.exp_m1()),
                transfers.var.sqrt().exp(),
                transfers.n,
                format_bytes(windows.mean.exp_m1()),
                windows.n
            )
        })
    }

    fn summarize(&self, obs: &Observation<'_>, finding: &Finding) -> String {
        let ratio = finding.observed / finding.expected.max(1.0);
        if finding.statistic == STAT_CUSUM {
            return format!(
                "{} keeps moving more data than usual: {} to {} now, against its typical {}, part of a run of large transfers no single one of which stands out; {}",
                obs.event.agent_id,
                format_bytes(finding.observed),
                obs.event.system,
                format_bytes(finding.expected),
                format_p(finding.p_value)
            );
        }
        if finding.statistic == STAT_WINDOW {
            format!(
                "{} moved {} within {} ({ratio:.0}× its typical {} per window), latest to {}; {}",
                obs.event.agent_id,
                format_bytes(finding.observed),
                format_duration(self.params.window.0),
                format_bytes(finding.expected),
                obs.event.system,
                format_p(finding.p_value)
            )
        } else {
            format!(
                "{} moved {} in one transfer with {} ({ratio:.0}× its typical {}); {}",
                obs.event.agent_id,
                format_bytes(finding.observed),
                obs.event.system,
                format_bytes(finding.expected),
                format_p(finding.p_value)
            )
        }
    }
}
