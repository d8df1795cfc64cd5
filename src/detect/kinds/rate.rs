//! `rate`: an agent calls faster than its own history allows.
//!
//! ## Model
//!
//! At every event the detector counts the agent's events in three sliding windows of
//! event time (by default the last minute, ten minutes and hour; see
//! [`SlidingCount`]) and compares each count with the counts the agent's earlier
//! events saw in the same window. Measuring at events is what makes schedules a
//! non-issue: an office-hours assistant is judged by its pace while it works, a nightly
//! batch job by its pace while the batch runs; idle time is never sampled.
//!
//! Each window's count is scored two ways, and the smaller tail counts twice
//! (Bonferroni):
//!
//! - against a negative binomial with the learned mean and variance of the count (a
//!   Poisson whose rate wanders; plain Poisson when there is no overdispersion), which
//!   is sharp for a regular agent whose counts barely vary;
//! - against the upper tail of the agent's empirical distribution of counts
//!   ([`CountDistribution`]: peaks over its 99th percentile). A bursty agent's counts
//!   ramp from one to each session's peak, and that ramp, not its top speed, sets the
//!   variance, so the negative binomial's tail is far too heavy there; the top
//!   percentile is what a loop must be judged against.
//!
//! The smallest result of the three windows, times three, is reported. The short
//! window catches a sudden loop, the long ones a moderate one: five times an agent's
//! pace for ten minutes is a handful of extra calls per minute but an unmistakable
//! ten-minute count, and a slow agent's runaway shows only there.
//!
//! A loop builds its count one call at a time, each a little beyond the last. So that
//! the history does not learn the loop while judging it, an unusual count (beyond the
//! mean by three deviations) is learned at most once per hundredth of its window, and
//! a count whose tail is below 1e-4 not at all.
//!
//! No floors in calls or ratios: whether a deviation alerts is decided by the instance's
//! false-alarm budget at the agent's own test rate. The spread of the fitted tail never
//! falls below the Poisson resolution of the count, so a few calls more than ever is
//! chance, not a loop. A flagged event's pace (its count over the usual count, in logs)
//! goes to a pending model ([`Shadow`]); events that model explains are a new pace
//! being learned, and a pace that persists for a day becomes the baseline (every
//! window's distribution moves by that factor).

use serde::{Deserialize, Serialize};

use super::{format_p, DurationParam, Shadow, SlidingCount};
use crate::detect::{parse_params, KindSpec, KindState, KindStateOf};
use crate::detect::{Aspect, Detector, Finding, Observation, Verdict};
use crate::model::time::format_duration;
use crate::model::Anomaly;
use crate::stats::{negative_binomial_sf, student_t_sf, CountDistribution, EwStats};

/// Registry entry.
pub const SPEC: KindSpec = KindSpec {
    name: "rate",
    guards: Aspect::Own,
    fleet: None,
    build: |text| Ok(Box::new(Rate::new(parse_params(text)?))),
};

/// Tail models per window: the whole distribution's and the top percentile's.
const MODELS: f64 = 2.0;

/// Sliding windows per event (short to long).
const SCALES: usize = 3;

/// Counts closer to the mean count than this many standard deviations are not tested:
/// they are inside the agent's top percentile wherever its tail is, far from any alert
/// threshold, and the exact tail is the costliest thing an event does.
const QUIET_SD: f64 = 3.0;

/// Counts whose tail is below this are not learned even when they do not alert. Under
/// the null one count in ten thousand is held back, far beyond the 99th percentile the
/// tail is fitted from, so the fit barely moves (its spread by a few percent at most);
/// without it, a loop that builds up over ten minutes would teach the distribution
/// its own counts before the count is large enough to alert. A lasting new pace still
/// moves the distribution through its ordinary counts, and through the pending model
/// once it alerts.
const LEARN_GATE: f64 = 1e-4;

/// Unusual counts (beyond the mean by [`QUIET_SD`] deviations) are learned at most once
/// per this fraction of the window. A loop builds its count up one call at a time,
/// each a little beyond the last; learned at every event, the distribution would
/// follow the ramp and the loop would never look far from "the most ever seen".
const UNUSUAL_SPACING: i64 = 100;

/// `[params]` of a `rate` instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Widths of the three sliding windows, shortest first.
    pub windows: [DurationParam; SCALES],
    /// Memory of each window's count distribution, in events.
    pub horizon: u32,
    /// Events needed before the test applies.
    pub min_samples: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            windows: [
                DurationParam(60_000),
                DurationParam(600_000),
                DurationParam(3_600_000),
            ],
            horizon: 2_000,
            min_samples: 30,
        }
    }
}

/// Per-agent state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The sliding counts, one per window.
    pub counts: [SlidingCount; SCALES],
    /// Mean and variance of each window's count as seen by the agent's learned events
    /// (the usual count, and the cheap test of whether a count needs its tail).
    pub stats: [EwStats; SCALES],
    /// Each window's count distribution, whose upper tail is the test. It samples the
    /// count at most once per tenth of the window (see [`SlidingCount::step`]).
    pub tails: [CountDistribution; SCALES],
    /// When each distribution last learned an unusual count (see [`UNUSUAL_SPACING`]).
    pub unusual_ms: [i64; SCALES],
    /// The counts the latest event saw (learned once the verdict is known).
    pub latest: [u32; SCALES],
    /// Flagged paces (`ln(count / usual count)`) since the episode began.
    pub pending: Shadow,
}

/// True if `count` is beyond the mean of `stats` by [`QUIET_SD`] deviations (at least
/// Poisson's): the counts worth an exact tail, and the ones learned only sparsely.
fn unusual(stats: &EwStats, count: u32) -> bool {
    f64::from(count) > stats.mean + QUIET_SD * stats.var.max(stats.mean).sqrt()
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

    /// The most surprising window: (scale, p-value) before the Bonferroni factor.
    fn most_surprising(&self, state: &State) -> Option<(usize, f64)> {
        (0..SCALES)
            .filter(|&scale| {
                state.stats[scale].n >= self.params.min_samples
                    && unusual(&state.stats[scale], state.latest[scale])
            })
            .filter_map(|scale| {
                let count = state.latest[scale];
                let tail = state.tails[scale].upper_tail(count)?;
                let stats = &state.stats[scale];
                let whole =
                    negative_binomial_sf(u64::from(count), stats.mean, stats.var.max(stats.mean));
                Some((scale, tail.min(whole) * MODELS))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// The pace of the latest event in `scale`: ln(count / usual count).
    fn pace(state: &State, scale: usize) -> f64 {
        (f64::from(state.latest[scale]) / state.stats[scale].mean.max(1e-9)).ln()
    }

    /// Moves every window's baseline to the pending episode's pace.
    fn promote(state: &mut State) {
        let ln_factor = state.pending.stats.mean;
        let factor = ln_factor.exp();
        for stats in &mut state.stats {
            stats.mean *= factor;
            stats.var = (stats.var * factor * factor).max(stats.mean);
        }
        for tail in &mut state.tails {
            tail.scale(ln_factor);
        }
        state.pending.clear();
    }
}

impl Detector for Rate {
    fn new_state(&self) -> KindState {
        State::default().wrap()
    }

    fn score(&self, obs: &Observation<'_>, state: &mut KindState) -> Option<Finding> {
        let state = State::of(state);
        let now = obs.event.time_ms;
        for scale in 0..SCALES {
            state.latest[scale] = state.counts[scale].add(now, self.params.windows[scale].0);
        }
        let (scale, p) = self.most_surprising(state)?;
        let stats = &state.stats[scale];
        let pace = Self::pace(state, scale);
        let pending_p = state.pending.mature(now).map(|shadow| {
            let t = (pace - shadow.mean) / shadow.sd(0.1);
            (student_t_sf(t, f64::from(shadow.n - 1)) * SCALES as f64).min(1.0)
        });
        let observed = f64::from(state.latest[scale]);
        Some(Finding {
            p_value: (p * SCALES as f64).min(1.0),
            anomaly: Anomaly::HighRate,
            observed,
            expected: stats.mean,
            unit: "calls per window",
            statistic: "tail of calls per sliding window (negative binomial or top percentile)",
            statistic_value: self.params.windows[scale].0 as f64,
            rule: None,
            baseline_size: u64::from(stats.n),
            pending_p,
            magnitude: observed / stats.mean.max(1e-9),
            learning: state.pending.live(now),
        })
    }

    fn learn(&self, obs: &Observation<'_>, state: &mut KindState, verdict: Verdict) {
        let state = State::of(state);
        let now = obs.event.time_ms;
        let surprise = self.most_surprising(state);
        let censored = surprise.is_some_and(|(_, p)| p < LEARN_GATE);
        match verdict {
            Verdict::Normal if !censored => {
                for scale in 0..SCALES {
                    let count = state.latest[scale];
                    let unusual = unusual(&state.stats[scale], count);
                    let spacing = self.params.windows[scale].0 / UNUSUAL_SPACING;
                    if !unusual || now - state.unusual_ms[scale] >= spacing {
                        if unusual {
                            state.unusual_ms[scale] = now;
                        }
                        state.tails[scale].record(count, self.params.horizon);
                    }
                    state.stats[scale].update(f64::from(count), self.params.horizon);
                }
            }
            Verdict::Normal => {}
            Verdict::Flagged => {
                if let Some((scale, _)) = surprise {
                    let pace = Self::pace(state, scale);
                    state.pending.hold(pace, now, self.params.horizon);
                    if state.pending.due(now) {
                        Self::promote(state);
                    }
                }
            }
            Verdict::Escalated => state.pending.clear(),
        }
    }

    fn describe(&self, state: &KindState) -> Option<String> {
        let KindState::Rate(state) = state else {
            return None;
        };
        let parts: Vec<String> = (0..SCALES)
            .filter(|&scale| state.stats[scale].n > 0)
            .map(|scale| {
                let stats = &state.stats[scale];
                format!(
                    "{:.1} calls per {} (sd {:.1})",
                    stats.mean,
                    format_duration(self.params.windows[scale].0),
                    stats.var.sqrt()
                )
            })
            .collect();
        (!parts.is_empty()).then(|| {
            format!(
                "while active: {} over {} events",
                parts.join(", "),
                state.stats[0].n
            )
        })
    }

    fn summarize(&self, obs: &Observation<'_>, finding: &Finding) -> String {
        format!(
            "{} made {:.0} calls within {} ({:.1}× the {:.1} its events usually see), latest {} on {}; {}",
            obs.event.agent_id,
            finding.observed,
            format_duration(finding.statistic_value as i64),
            finding.magnitude,
            finding.expected,
            obs.event.action,
            obs.event.system,
            format_p(finding.p_value)
        )
    }
}
