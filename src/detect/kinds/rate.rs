//! `rate`: an agent calls faster than its own history allows.
//!
//! ## Model
//!
//! At every event the detector counts the agent's events in two sliding windows of
//! event time (by default the last minute and ten minutes; see
//! [`SlidingCount`]) and compares each count with the counts the agent's earlier
//! events saw in the same window. Measuring at events is what makes schedules a
//! non-issue: an office-hours assistant is judged by its pace while it works, a nightly
//! batch job by its pace while the batch runs; idle time is never sampled.
//!
//! Each window's count is scored two ways:
//!
//! - against a negative binomial with the learned mean and variance of the count (a
//!   Poisson whose rate wanders; plain Poisson when there is no overdispersion), which
//!   is sharp for a regular agent whose counts barely vary; it is used only while its
//!   tail at the agent's own 99th percentile and largest count agrees with the data (see
//!   [`NB_MISFIT`]);
//! - against the upper tail of the agent's empirical distribution of counts
//!   ([`CountDistribution`]: peaks over its 99th percentile, exponential on the
//!   square-root scale of counts). A bursty agent's counts
//!   ramp from one to each session's peak, and that ramp, not its top speed, sets the
//!   variance, so the negative binomial's tail is far too heavy there; the top
//!   percentile is what a loop must be judged against.
//!
//! The short window catches a sudden loop, the long one a moderate one: five times an
//! agent's pace for ten minutes is a handful of extra calls per minute but an
//! unmistakable ten-minute count, and a slow agent's runaway shows only there. (An
//! hour window was tested too until state format 10: on independently generated
//! fleets it caught nothing the other counts missed and added false alerts, so its
//! tests and bytes went to the count of one kind of call below.)
//!
//! Another test looks at what a loop repeats: the run of identical calls (the same
//! action on the same system) in progress, against the lengths of the agent's
//! completed runs ([`Runs`]: a mixture of geometrics, so an exponential tail per extra
//! call beyond their 99th percentile). A bursty agent's busiest sessions can hide a
//! loop's count, not its monotony: an agent that spreads its work over several calls
//! does not make one of them sixty times in a row, while one whose work is long runs
//! has learned that and is judged by its count.
//!
//! A loop rarely runs alone: the agent's other work goes on around it, and one call
//! in between ends a run. So the calls of the latest event's kind (its action on its
//! system) in the longer window are a third count, tested as the windows' are against
//! the agent's own history of that count ([`CallCounts`] keeps the four kinds most
//! recently busy). On independently generated fleets a loop lifted this count 2–4
//! times past the agent's largest, where its total count rose 1.3–2 times (its other
//! work is what the loop displaces). One kind's unusual episode ends only by time, not
//! at a call of another kind: else every interleaved call would end the episode and
//! teach the distribution the loop's own ramp. The seven p-values (two per count and
//! the run) are combined by Simes' rule, `min_i 7·p(i) / i`: the counts overlap and
//! rise together, which Simes' bound allows for, and a loop that several counts see
//! is credited for it where Bonferroni (seven times the smallest) would charge it as
//! if only one had.
//!
//! A loop builds its count one call at a time, each a little beyond the last. Learned
//! as they come, those counts would teach the distribution the loop's own ramp while
//! it is being judged, and a loop would never look far from "the most ever seen". So
//! an unusual count (beyond the mean by three deviations) is held back until its
//! episode ends (the count falls back to usual), and only then learned: an episode
//! is always judged against the history before it. This holds for flagged episodes
//! too, unless they escalate to a revocation or suspension: a burst that alerted
//! and was not an attack is part of what the agent does, and the next one like it
//! is less surprising (a devops agent's occasional deploy burst alerts once, not
//! every few days). An episode that never ends is learned after two window widths,
//! so a lasting new pace that never alerts still becomes normal. The mean and
//! variance, which only decide which counts are unusual and feed the negative
//! binomial, learn ordinary events at once, except counts whose tail is below 1e-4.
//!
//! No floors in calls or ratios: whether a deviation alerts is decided by the instance's
//! false-alarm budget at the agent's own test rate. The spread of the fitted tail never
//! falls below the Poisson resolution of the count, so a few calls more than ever is
//! chance, not a loop. A flagged event's pace (its count over the usual count, in logs)
//! goes to a pending model ([`Shadow`]); events that model explains are a new pace
//! being learned, and a pace that persists for a day becomes the baseline (every
//! window's distribution moves by that factor).

use serde::{Deserialize, Serialize};

use super::call_counts::CallCounts;
use super::{format_p, DurationParam, Shadow, SlidingCount};
use crate::detect::{parse_params, KindSpec, KindState, KindStateOf};
use crate::detect::{Aspect, Detector, Finding, FleetScope, Observation, Verdict};
use crate::model::time::format_duration;
use crate::model::{Anomaly, Outcome};
use crate::stats::{
    call_fingerprint, negative_binomial_sf, student_t_sf, CompactStats, CountDistribution, Runs,
};

/// Registry entry.
pub const SPEC: KindSpec = KindSpec {
    name: "rate",
    guards: Aspect::Own,
    fleet: None,
    build: |text| Ok(Box::new(Rate::new(parse_params(text)?))),
};

/// Tail models per window: the whole distribution's and the top percentile's.
const MODELS: usize = 2;

/// Sliding windows per event (short to long).
const SCALES: usize = 2;

/// Tested counts: each window's, and the calls of the latest event's kind (its action
/// on its system) in the longer window.
const SERIES: usize = SCALES + 1;

/// The series of the count of one kind of call.
const ONE_KIND: usize = SCALES;

/// Tests per event: two per tested count and the run of identical calls.
const TEST_COUNT: usize = SERIES * MODELS + 1;

/// [`TEST_COUNT`] as a factor.
const TESTS: f64 = TEST_COUNT as f64;

/// What a run finding counts (also how [`Rate::summarize`] tells the findings apart).
const RUN_UNIT: &str = "identical calls in a row";

/// What a finding on the count of one kind of call counts.
const ONE_KIND_UNIT: &str = "calls of one kind per window";

/// Counts closer to the mean count than this many standard deviations are not tested:
/// they are inside the agent's top percentile wherever its tail is, far from any alert
/// threshold, and the exact tail is the costliest thing an event does.
const QUIET_SD: f64 = 3.0;

/// Counts whose tail is below this do not move the mean and variance even when they do
/// not alert. Under the null one count in ten thousand is left out, so the moments
/// barely move; without it, a loop that builds up over ten minutes would widen the
/// negative binomial with its own counts before the count is large enough to alert.
const LEARN_GATE: f64 = 1e-4;

/// An episode of unusual counts that has not ended is learned anyway after this many
/// window widths (see [`State::held`]).
const HELD_WINDOWS: i64 = 2;

/// The negative binomial is used only while it agrees with the agent's history: at the
/// agent's own 99th percentile its tail must be at least 1% over this factor, and at
/// the largest count seen at least that count's share over this factor. A bursty
/// agent's counts come in clusters that a mean and a variance cannot show (a devops
/// agent at 1.2 calls a minute with a deploy burst of ten every few days, a fraction
/// of a percent of its counts); a model ten times too light where the data can still
/// check it is far lighter further out, and its p-values would speak for a regular
/// agent this one is not.
const NB_MISFIT: f64 = 10.0;

/// `[params]` of a `rate` instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Widths of the two sliding windows, shorter first. The longer one also counts
    /// the calls of one kind.
    #[serde(deserialize_with = "two_windows")]
    pub windows: [DurationParam; SCALES],
    /// Memory of each window's count distribution, in events.
    pub horizon: u32,
    /// Events (and, for the run test, completed runs) needed before a test applies.
    pub min_samples: u32,
}

/// Reads `windows`, naming the change when a configuration still lists the three
/// windows of state formats 9 and earlier.
fn two_windows<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<[DurationParam; SCALES], D::Error> {
    let windows = Vec::<DurationParam>::deserialize(deserializer)?;
    let count = windows.len();
    <[DurationParam; SCALES]>::try_from(windows).map_err(|_| {
        serde::de::Error::custom(format!(
            "rate takes {SCALES} windows, shorter first (the longer also counts each kind \
             of call), not {count}; the hour window was retired in state format 10: \
             write windows = [\"1m\", \"10m\"]"
        ))
    })
}

impl Default for Params {
    fn default() -> Self {
        Params {
            windows: [DurationParam(60_000), DurationParam(600_000)],
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
    pub stats: [CompactStats; SERIES],
    /// Each window's count distribution, whose upper tail is the test. It samples the
    /// count at most once per tenth of the window (see [`SlidingCount::add`]).
    pub tails: [CountDistribution; SERIES],
    /// The counts the latest event saw, from its score to its learning, which takes
    /// them: a state at rest holds none, so they are never stored.
    #[serde(skip)]
    pub latest: [u32; SERIES],
    /// The most surprising window the score found for the latest event, which its
    /// learning reads rather than computing the tails again: its scale, and whether
    /// its p-value was below [`LEARN_GATE`] (all the learning asks of it; two bytes,
    /// as every agent in memory carries it).
    #[serde(skip)]
    pub surprise: Option<(u8, bool)>,
    /// Sliding counts of the agent's busiest kinds of call.
    pub calls: CallCounts,
    /// Flagged paces (`ln(count / usual count)`) since the episode began.
    #[serde(with = "super::shadow::stored_if_live")]
    pub pending: Shadow,
    /// Each window's unusual counts since its episode began, learned once the episode
    /// ends: the history an episode is judged against never contains the episode
    /// itself. `None` (one stored byte) while no window holds any.
    pub held: Option<Box<Held>>,
    /// The run of identical calls in progress and the lengths of the completed ones.
    pub runs: Runs,
}

/// The unusual counts of each window's episode in progress (see [`State::held`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Held {
    /// When each window's episode began (0: none).
    since_ms: [i64; SERIES],
    /// Each window's unusual counts (beyond the mean by [`QUIET_SD`] deviations).
    counts: [CountDistribution; SERIES],
}

/// The test that found the latest event most surprising.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Test {
    /// A window's count, by scale.
    Window(usize),
    /// The run of identical calls.
    Run,
}

impl From<super::retired::RateV7> for State {
    fn from(old: super::retired::RateV7) -> Self {
        State::from(super::retired::RateV9::from(old))
    }
}

/// A format 9 state carries over without its hour window (retired: on independent
/// fleets it added false alerts and caught nothing the others missed); the count of
/// one kind of call starts empty.
impl From<super::retired::RateV9> for State {
    fn from(old: super::retired::RateV9) -> Self {
        let [minute, ten_minutes, _] = old.counts;
        let [s0, s1, _] = old.stats.map(CompactStats::from);
        let [t0, t1, _] = old.tails;
        State {
            counts: [minute, ten_minutes],
            stats: [s0, s1, CompactStats::default()],
            tails: [t0, t1, CountDistribution::default()],
            latest: [0; SERIES],
            surprise: None,
            calls: CallCounts::default(),
            pending: old.pending,
            held: old.held.map(|held| {
                let [h0, h1, _] = held.counts;
                let [since0, since1, _] = held.since_ms;
                Box::new(Held {
                    since_ms: [since0, since1, 0],
                    counts: [h0, h1, CountDistribution::default()],
                })
            }),
            runs: old.runs,
        }
    }
}

/// True if `count` is beyond the mean of `stats` by [`QUIET_SD`] deviations (at least
/// Poisson's): the counts worth an exact tail, and the ones learned only sparsely.
fn unusual(stats: &CompactStats, count: u32) -> bool {
    let stats = stats.widen();
    f64::from(count) > stats.mean + QUIET_SD * stats.var.max(stats.mean).sqrt()
}

/// Simes' combination of the [`TESTS`] p-values in ascending order (tests that did
/// not apply count as 1): `min_i TESTS·p(i) / i`. The tests are counts of overlapping
/// windows of the same calls, two tails of each, so they rise together; Simes' bound
/// holds for such positively dependent tests, and where Bonferroni charges a loop that
/// every count sees as if only one had, Simes credits the agreement (two tests at p
/// each give `TESTS·p / 2`). With one small p-value it is Bonferroni's.
fn simes(ascending: &[f64; TEST_COUNT]) -> f64 {
    ascending
        .iter()
        .enumerate()
        .map(|(i, p)| TESTS * p / (i + 1) as f64)
        .fold(1.0, f64::min)
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

    /// The window width of a tested series (the longer window for one kind of call).
    fn width(&self, series: usize) -> i64 {
        self.params.windows[series.min(SCALES - 1)].0
    }

    /// A series' two p-values (top percentile, negative binomial; 1 where the negative
    /// binomial does not fit), if its latest count is unusual enough to be tested.
    fn series_tails(&self, state: &State, scale: usize) -> Option<[f64; MODELS]> {
        let count = state.latest[scale];
        if state.stats[scale].n < self.params.min_samples || !unusual(&state.stats[scale], count) {
            return None;
        }
        let tail = state.tails[scale].upper_tail(count)?;
        let stats = state.stats[scale].widen();
        let tails = &state.tails[scale];
        let variance = stats.var.max(stats.mean);
        let agrees = |count: f64, share: f64| {
            negative_binomial_sf(count.ceil() as u64, stats.mean, variance) >= share / NB_MISFIT
        };
        let fits = tails.top_percentile().is_none_or(|top| agrees(top, 0.01))
            && tails
                .largest()
                .is_none_or(|(largest, share)| agrees(largest, share));
        let whole = if fits {
            negative_binomial_sf(u64::from(count), stats.mean, variance)
        } else {
            1.0
        };
        Some([tail, whole])
    }

    /// The tail of the run of identical calls in progress, once enough runs have
    /// completed to judge it.
    fn run_surprise(&self, state: &State) -> Option<f64> {
        (state.runs.length() > 1 && state.runs.completed() >= f64::from(self.params.min_samples))
            .then(|| state.runs.upper_tail())
            .flatten()
    }

    /// The most surprising test and the p-value of all tests together (Simes), given
    /// each series' tails.
    fn most_surprising(
        &self,
        state: &State,
        series: &[Option<[f64; MODELS]>; SERIES],
    ) -> Option<(Test, f64)> {
        let mut ps = [1.0; TEST_COUNT];
        let mut most: Option<(Test, f64)> = None;
        let mut note = |test: Test, p: f64, slot: usize| {
            ps[slot] = p;
            if most.is_none_or(|(_, least)| p < least) {
                most = Some((test, p));
            }
        };
        for (scale, tails) in series.iter().enumerate() {
            if let Some(tails) = tails {
                for (model, &p) in tails.iter().enumerate() {
                    note(Test::Window(scale), p, scale * MODELS + model);
                }
            }
        }
        if let Some(p) = self.run_surprise(state) {
            note(Test::Run, p, TEST_COUNT - 1);
        }
        ps.sort_by(f64::total_cmp);
        most.map(|(test, _)| (test, simes(&ps)))
    }

    /// The pace of the latest event in `scale`: ln(count / usual count).
    fn pace(count: u32, stats: &CompactStats) -> f64 {
        (f64::from(count) / stats.widen().mean.max(1e-9)).ln()
    }

    /// Learns the unusual counts held back since the episode began (see [`State::held`]).
    fn release(&self, state: &mut State, scale: usize) {
        let Some(held) = state
            .held
            .as_mut()
            .filter(|held| !held.counts[scale].is_empty())
        else {
            return;
        };
        let episode = std::mem::take(&mut held.counts[scale]);
        held.since_ms[scale] = 0;
        if held.counts.iter().all(CountDistribution::is_empty) {
            state.held = None;
        }
        state.tails[scale].absorb(&episode, self.params.horizon);
    }

    /// A finding on the run of identical calls in progress. Its size is measured
    /// against the agent's longest usual runs (their 99th percentile), as a pace is
    /// against the usual count. A run of failing calls is an outage's retries when
    /// many agents show it (see [`Finding::fleet`]).
    fn run_finding(state: &State, p: f64, failed: bool) -> Finding {
        let observed = f64::from(state.runs.length());
        let expected = state.runs.top().unwrap_or(1.0);
        Finding {
            p_value: p.min(1.0),
            anomaly: Anomaly::HighRate,
            observed,
            expected,
            unit: RUN_UNIT,
            statistic: "tail of runs of one call (exponential beyond the top percentile)",
            statistic_value: 0.0,
            rule: None,
            baseline_size: state.runs.completed() as u64,
            pending_p: None,
            magnitude: observed / expected.max(1.0),
            learning: false,
            response_cap: None,
            fleet_only: false,
            fleet: failed.then_some(FleetScope::Failures),
        }
    }

    /// Moves every window's baseline to the pending episode's pace.
    fn promote(state: &mut State) {
        let ln_factor = state.pending.stats.mean;
        let factor = ln_factor.exp();
        for stats in &mut state.stats {
            let mut wide = stats.widen();
            wide.mean *= factor;
            wide.var = (wide.var * factor * factor).max(wide.mean);
            *stats = CompactStats::from(wide);
        }
        for tail in &mut state.tails {
            tail.scale(ln_factor);
        }
        state.pending.clear();
    }
}

/// The most surprising window among the series' tails (its p-value before any
/// correction): its scale, and whether that p-value is below [`LEARN_GATE`].
fn window_surprise(series: &[Option<[f64; MODELS]>; SERIES]) -> Option<(u8, bool)> {
    series
        .iter()
        .zip(0u8..)
        .filter_map(|(tails, scale)| tails.map(|[tail, whole]| (scale, tail.min(whole))))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(scale, p)| (scale, p < LEARN_GATE))
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
        let call = call_fingerprint(&obs.event.action, &obs.event.system);
        state.latest[ONE_KIND] = state.calls.add(call, now, self.width(ONE_KIND));
        state.runs.step(call, self.params.horizon);
        let series: [Option<[f64; MODELS]>; SERIES] =
            std::array::from_fn(|scale| self.series_tails(state, scale));
        state.surprise = window_surprise(&series);
        let (scale, p) = match self.most_surprising(state, &series)? {
            (Test::Window(scale), p) => (scale, p),
            (Test::Run, p) => {
                let failed = obs.event.outcome != Outcome::Success;
                return Some(Self::run_finding(state, p, failed));
            }
        };
        let stats = state.stats[scale].widen();
        let pace = Self::pace(state.latest[scale], &state.stats[scale]);
        let pending_p = state
            .pending
            .mature(now, &obs.baseline.hours)
            .map(|shadow| {
                let t = (pace - shadow.mean) / shadow.sd(0.1);
                (student_t_sf(t, f64::from(shadow.n - 1)) * SCALES as f64).min(1.0)
            });
        let observed = f64::from(state.latest[scale]);
        Some(Finding {
            p_value: p.min(1.0),
            anomaly: Anomaly::HighRate,
            observed,
            expected: stats.mean,
            unit: if scale == ONE_KIND {
                ONE_KIND_UNIT
            } else {
                "calls per window"
            },
            statistic: "tail of calls per sliding window (negative binomial or top percentile)",
            statistic_value: self.width(scale) as f64,
            rule: None,
            baseline_size: u64::from(stats.n),
            pending_p,
            magnitude: observed / stats.mean.max(1e-9),
            learning: state.pending.live(now, &obs.baseline.hours),
            response_cap: None,
            fleet_only: false,
            fleet: None,
        })
    }

    fn learn(&self, obs: &Observation<'_>, state: &mut KindState, verdict: Verdict) {
        let state = State::of(state);
        let now = obs.event.time_ms;
        // Taken, not read: the counts and their surprise belong to this event, and a
        // state at rest holds none, in memory as in storage.
        let surprise = state.surprise.take();
        let latest = std::mem::take(&mut state.latest);
        if verdict == Verdict::Escalated {
            state.held = None;
            state.pending.clear();
            state.runs.discard();
            return;
        }
        let censored = surprise.is_some_and(|(_, below_gate)| below_gate);
        for (scale, &count) in latest.iter().enumerate() {
            if unusual(&state.stats[scale], count) {
                let held = state.held.get_or_insert_with(Box::default);
                if held.counts[scale].is_empty() {
                    held.since_ms[scale] = now;
                }
                held.counts[scale].record(count, self.params.horizon);
                if now - held.since_ms[scale] > HELD_WINDOWS * self.width(scale) {
                    self.release(state, scale);
                }
            } else {
                // One kind's episode does not end when the agent makes a call of
                // another kind (a loop's interleaved background calls): only by time.
                let episode_over = scale != ONE_KIND
                    || state.held.as_ref().is_some_and(|held| {
                        now - held.since_ms[scale] > HELD_WINDOWS * self.width(scale)
                    });
                if episode_over {
                    self.release(state, scale);
                }
                state.tails[scale].record(count, self.params.horizon);
            }
            if verdict == Verdict::Normal && !censored {
                state.stats[scale].update(f64::from(count), self.params.horizon);
            }
        }
        if verdict == Verdict::Flagged {
            if let Some((scale, _)) = surprise {
                let scale = usize::from(scale);
                let pace = Self::pace(latest[scale], &state.stats[scale]);
                state
                    .pending
                    .hold(pace, now, self.params.horizon, &obs.baseline.hours);
                if state.pending.due(now) {
                    Self::promote(state);
                }
            }
        }
    }

    fn describe(&self, state: &KindState) -> Option<String> {
        let KindState::Rate(state) = state else {
            return None;
        };
        let parts: Vec<String> = (0..SCALES)
            .filter(|&scale| state.stats[scale].n > 0)
            .map(|scale| {
                let stats = state.stats[scale].widen();
                format!(
                    "{:.1} calls per {} (sd {:.1})",
                    stats.mean,
                    format_duration(self.params.windows[scale].0),
                    stats.var.sqrt()
                )
            })
            .collect();
        (!parts.is_empty()).then(|| {
            let runs = state.runs.median().map_or(String::new(), |median| {
                format!(
                    "; runs of one call: median {median:.1} over {:.0} runs",
                    state.runs.completed()
                )
            });
            format!(
                "while active: {} over {} events{runs}",
                parts.join(", "),
                state.stats[0].n
            )
        })
    }

    fn summarize(&self, obs: &Observation<'_>, finding: &Finding) -> String {
        if finding.unit == RUN_UNIT {
            return format!(
                "{} made {:.0} {} calls on {} in a row ({:.1}× its longest usual runs, {:.0}); {}",
                obs.event.agent_id,
                finding.observed,
                obs.event.action,
                obs.event.system,
                finding.magnitude,
                finding.expected,
                format_p(finding.p_value)
            );
        }
        if finding.unit == ONE_KIND_UNIT {
            return format!(
                "{} made {:.0} {} calls on {} within {} ({:.1}× the {:.1} calls of one kind its events usually see); {}",
                obs.event.agent_id,
                finding.observed,
                obs.event.action,
                obs.event.system,
                format_duration(finding.statistic_value as i64),
                finding.magnitude,
                finding.expected,
                format_p(finding.p_value)
            );
        }
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

#[cfg(test)]
mod tests {
    use super::super::test_support::{call_line, score_and_learn};
    use super::*;
    use crate::model::time::{DAY_MS, MINUTE_MS};

    #[test]
    fn a_count_its_score_found_surprising_stays_out_of_the_usual_count_and_at_rest() {
        let detector = Rate::new(Params::default());
        let mut state = detector.new_state();
        let start = 20_000 * DAY_MS;
        // Two days of one call a minute, each call a different kind.
        for i in 0..2 * 24 * 60 {
            let line = call_line(
                start + i * MINUTE_MS,
                "read",
                &format!("s{}", i % 7),
                0,
                "success",
            );
            score_and_learn(&detector, &mut state, &line, Verdict::Normal);
        }
        let usual = State::of(&mut state).stats[0].widen().mean;
        // Forty calls within twenty seconds, learned as normal (as in a warm-up): the
        // score found them surprising, so they do not teach the usual count.
        let burst_at = start + 2 * DAY_MS;
        let p = (0..40)
            .filter_map(|i| {
                let line = call_line(
                    burst_at + i * 500,
                    "read",
                    &format!("s{}", i % 7),
                    0,
                    "success",
                );
                score_and_learn(&detector, &mut state, &line, Verdict::Normal)
            })
            .fold(1.0, f64::min);
        assert!(p < LEARN_GATE, "p = {p}");
        let state = State::of(&mut state);
        let after = state.stats[0].widen().mean;
        assert!(
            (after - usual).abs() < 0.05 * usual,
            "{usual} became {after}"
        );
        assert_eq!((state.latest, state.surprise), ([0; SERIES], None));
    }

    #[test]
    fn simes_credits_tests_that_agree_and_is_bonferroni_for_one() {
        let mut one = [1.0; TEST_COUNT];
        one[0] = 1e-6;
        assert!((simes(&one) - TESTS * 1e-6).abs() < 1e-12);
        let mut two = one;
        two[1] = 1e-6;
        assert!((simes(&two) - TESTS * 1e-6 / 2.0).abs() < 1e-12);
        assert_eq!(simes(&[1.0; TEST_COUNT]), 1.0);
    }

    #[test]
    fn two_windows_are_read_and_three_are_refused_with_the_fix() {
        let params: Params = parse_params("[params]\nwindows = [\"30s\", \"5m\"]\n").unwrap();
        assert_eq!(
            params.windows,
            [DurationParam(30_000), DurationParam(300_000)]
        );
        let error = parse_params::<Params>("[params]\nwindows = [\"1m\", \"10m\", \"1h\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("not 3") && error.contains("state format 10"),
            "{error}"
        );
    }
}
