//! `volume`: an agent moves more data than its own history allows.
//!
//! ## Model
//!
//! Transfer sizes are roughly log-normal (a few typical payloads, occasional large
//! ones), so the detector works on `x = ln(1 + bytes)`. It keeps two exponentially
//! weighted distributions per agent:
//!
//! - **per transfer**: `x` of every event that moved data (zero-byte events say nothing
//!   about transfer sizes and are skipped);
//! - **per window**: `x` of the total moved in each tumbling event-time window in which
//!   the agent was active (windows without activity are not "zero", they are absent, so
//!   an agent that works only in office hours has no nightly zeros to distort it).
//!
//! Each event is tested twice: its own size (one huge transfer) and the running total
//! of its window (a burst of moderately large transfers that are unremarkable one by
//! one). The statistic is `t = (x − mean) / sd` with a Student-t tail on `n − 1` degrees
//! of freedom, which stays cautious while the baseline is young. To keep statistics from
//! shouting about trivia, a test only applies when the amount is at least `min_bytes`
//! and at least `min_ratio` times the agent's typical amount. Events and windows judged
//! anomalous are not learned from.

use serde::{Deserialize, Serialize};

use super::{format_bytes, format_p, DurationParam, Positive, TumblingWindow};
use crate::detect::registry::{parse_params, KindSpec, KindState, KindStateOf};
use crate::detect::{Detector, Finding, Observation};
use crate::model::time::format_duration;
use crate::model::Anomaly;
use crate::stats::{student_t_sf, EwStats};

/// Registry entry.
pub const SPEC: KindSpec = KindSpec {
    name: "volume",
    build: |text| Ok(Box::new(Volume::new(parse_params(text)?))),
};

const STAT_TRANSFER: &str = "t(log bytes per transfer)";
const STAT_WINDOW: &str = "t(log bytes per window)";

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
    /// Transfers (or windows) needed before the test applies.
    pub min_samples: u32,
    /// Amounts below this never alert.
    pub min_bytes: u64,
    /// Amounts below this multiple of the typical amount never alert.
    pub min_ratio: Positive,
    /// Lower bound on the spread of `ln(1 + bytes)`.
    pub sd_floor: Positive,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            window: DurationParam(600_000),
            horizon: 2_000,
            window_horizon: 500,
            min_samples: 30,
            min_bytes: 1_000_000,
            min_ratio: Positive(10.0),
            sd_floor: Positive(0.25),
        }
    }
}

/// Per-agent state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Distribution of `ln(1 + bytes)` per transfer.
    pub transfers: EwStats,
    /// Distribution of `ln(1 + bytes)` per active window.
    pub windows: EwStats,
    /// The open window (its `sum` is in bytes).
    pub window: TumblingWindow,
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

    fn test(&self, bytes: f64, stats: &EwStats, statistic: &'static str) -> Option<Finding> {
        if stats.n < self.params.min_samples || bytes < self.params.min_bytes as f64 {
            return None;
        }
        let typical = stats.mean.exp_m1().max(1.0);
        if bytes < typical * self.params.min_ratio.0 {
            return None;
        }
        let t = (bytes.ln_1p() - stats.mean) / stats.sd(self.params.sd_floor.0);
        Some(Finding {
            p_value: student_t_sf(t, f64::from(stats.n - 1)),
            anomaly: Anomaly::HighVolume,
            observed: bytes,
            expected: typical,
            unit: "bytes",
            statistic,
            statistic_value: t,
            baseline_size: u64::from(stats.n),
        })
    }
}

impl Detector for Volume {
    fn new_state(&self) -> KindState {
        State::default().wrap()
    }

    fn score(&self, obs: &Observation<'_>, state: &mut KindState) -> Option<Finding> {
        let state = State::of(state);
        let bytes = obs.event.bytes() as f64;
        if let Some(closed) = state
            .window
            .advance_learnable(obs.event.time_ms, self.params.window.0)
        {
            state
                .windows
                .update(closed.sum.ln_1p(), self.params.window_horizon);
        }
        state.window.add(bytes);
        let single = self.test(bytes, &state.transfers, STAT_TRANSFER);
        let burst = if state.window.events >= 2 {
            self.test(state.window.sum, &state.windows, STAT_WINDOW)
        } else {
            None
        };
        // One transfer that is itself anomalous is explained as such, even though it
        // also inflates its window; the window explains findings made of many transfers.
        match (single, burst) {
            (Some(one), Some(many))
                if many.p_value < one.p_value && bytes * 2.0 < many.observed =>
            {
                Some(many)
            }
            (one, many) => one.or(many),
        }
    }

    fn learn(&self, obs: &Observation<'_>, state: &mut KindState, anomalous: bool) {
        let state = State::of(state);
        if anomalous {
            state.window.flagged = true;
            return;
        }
        let bytes = obs.event.bytes();
        if bytes > 0 {
            state
                .transfers
                .update((bytes as f64).ln_1p(), self.params.horizon);
        }
    }

    fn summarize(&self, obs: &Observation<'_>, finding: &Finding) -> String {
        let ratio = finding.observed / finding.expected.max(1.0);
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
