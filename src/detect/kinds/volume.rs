//! `volume`: an agent moves more data than its own history allows.
//!
//! ## Model
//!
//! Transfer sizes are mixtures (small API payloads, occasional exports), and much of
//! the mixture is explained by what the agent does where: its reads of one system are
//! small, its pulls from another are large. So each transfer is first judged relative
//! to the typical size of its action on its system ([`SystemSizes`], shrunk towards the
//! agent-wide typical size while that pair has few transfers): `r = x − offset`, with
//! `x = ln(1 + bytes)`. The detector keeps the agent's *empirical* distribution of `r`
//! (a histogram of half-octave bins) next to its mean and spread. What the histogram
//! holds is `r` in its pair's own spread, expressed in the agent's
//! ([`SystemSizes::relative`]): a pair whose sizes hardly vary makes ten times its usual
//! size a far rarer residual than a pair whose sizes vary a hundredfold does. Only a successful
//! call moves data: a failed or denied one counts as no transfer ([`moved`]), so an
//! agent's error payloads never set the spread its transfers are judged by. Each event is tested
//! four ways, and the smallest p-value, times four (Bonferroni), is reported:
//!
//! - **one transfer**: `t = (r − mean) / sd` against a Student-t on `n − 1` degrees of
//!   freedom (a single 200 MB transfer from an agent that moves kilobytes needs no
//!   history of 200 MB transfers to be judged; the parametric tail extrapolates), and
//!   only if it is also beyond the agent's own largest transfers (peaks over the 99th
//!   percentile): a heavy-tailed agent's occasional large transfer is not an attack;
//! - **one window**: the same test on the open tumbling window's total *less its
//!   largest transfer*, against the totals of the agent's earlier *active* windows (a
//!   burst of many large transfers within minutes; one large transfer is the first
//!   test's to judge). Windows count raw bytes, whatever systems they went to: how much
//!   left in ten minutes is what exfiltration changes;
//! - **a sustained shift**: a CUSUM of the surprise `−ln u` of each transfer, where `u`
//!   is the share of the agent's own transfers with a residual at least that large (see
//!   [`crate::stats::Cusum`]). It is calibrated whatever the distribution's shape, and
//!   it catches what no single transfer or window shows: every transfer three times the
//!   typical size for an hour, or twenty transfers each beyond the agent's 95th
//!   percentile. Judging residuals matters here most: the calibration assumes
//!   independent transfers, and a session spent on the agent's heaviest system is a run
//!   of large raw sizes but not of large residuals. Once a rise has been flagged it is
//!   taken back ([`Cusum::retract`]), so a persisting shift is reported one transfer at
//!   a time instead of compounding into ever smaller p-values. The empirical
//!   distribution it reads records every transfer that did not escalate, flagged or
//!   not: the CUSUM's calibration needs the agent's whole distribution, and with the
//!   flagged ones left out its top was cut off by exactly the transfers the CUSUM
//!   flags, which then looked rarer still. On an independently generated change fleet
//!   that loop kept a job-changed agent (sizes three times, for good) flagged for days
//!   after its promotion, its CUSUM sitting at its threshold, and credentials of
//!   healthy agents were revoked; recorded, `volume`'s false alerts there fell from
//!   125 to 98. An attack's own transfers are a few among the thousands the
//!   distribution holds;
//! - **one system's run**: the transfers of one action on one system within the open
//!   window, each as its deviation from that pair's own mean in the pair's own
//!   spread, clipped at 2.5 deviations, summed ([`SystemRuns`]), against a Student-t
//!   on the pair's transfers. The sum of `k` deviations has variance `k (1 + k / n)`
//!   under the pair's sizes, the second term being the uncertainty of a mean learnt
//!   from `n` transfers. This is the test
//!   for an exfiltration that interleaves with the agent's other work: a dozen emails
//!   at three times their usual size among twice as many ordinary reads are each
//!   unremarkable, and the reads pull the CUSUM down nearly as fast as the
//!   emails push it up, but as a run on their own system they are beyond doubt. On
//!   independently generated fleets it caught exfiltrations through one busy pair
//!   (38 updates of a database at 2.7 deviations each among 100 other calls) that
//!   no other test saw, while false alerts did not rise. The clip keeps one huge transfer
//!   (the first test's to judge) from making a run, so a run is many transfers that
//!   are each somewhat large. Only pairs known from twenty transfers have runs.
//!
//! There are no floors in bytes or ratios: whether a deviation alerts is decided by the
//! instance's false-alarm budget against the agent's own test rate (see
//! [`crate::detect::Instance::alert_p`]). `sd_floor` is the resolution of sizes (sizes
//! within about ±25% are the same size), not a threshold.
//!
//! Flagged transfers go to a pending model ([`Shadow`]). Once it has seen a few, a
//! transfer it explains is new behaviour being learned (no alert), unless its window
//! is itself a burst the baseline cannot explain and the episode is younger than two
//! hours ([`Shadow::established`]): a heavy session does not excuse an exfiltration
//! hours later, while a new job's larger windows are learned with its sizes. Once the
//! change has persisted for a day it is promoted at the agent's next transfer, flagged
//! or not: the baseline moves to the new sizes, keeping the shape of the distribution.
//! The new sizes are the mean of every transfer since the episode began, flagged or
//! not ([`State::episode`]): the flagged ones are only the top of them.
//! What escalated is dropped.

use serde::{Deserialize, Serialize};

use super::shadow::PROMOTE_SAMPLES;
use super::system_runs::{self, SystemRuns};
use super::system_sizes::{system_key, SystemSizes};
use super::{format_bytes, format_p, DurationParam, Positive, Shadow, TumblingWindow};
use crate::baseline::HourOfWeek;
use crate::detect::{parse_params, KindSpec, KindState, KindStateOf};
use crate::detect::{Aspect, Detector, Finding, Observation, Verdict};
use crate::model::time::format_duration;
use crate::model::{Anomaly, Event, Outcome};
use crate::stats::{student_t_sf, CompactStats, Cusum, EwStats, LogHistogram};

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
const STAT_RUN: &str = "t(run of one system's transfer sizes)";

/// Pseudo-transfers behind the prior scale of the size distribution's tail beyond its
/// 99th percentile (`sd_floor`, the resolution of sizes), which is also the least scale
/// the agent's own tail may have. A handful, as for the tail of `rate`'s runs: an agent
/// whose sizes are Pareto-tailed shows its own tail within a few days (with thirty, a
/// prior far narrower than the agent's tail outweighed a week of its exceedances, and
/// its ordinary 100× transfers read as p ≈ 1e-6: on independent fleets that was most
/// of `volume`'s single-transfer false alerts), while the floor keeps an agent with
/// very regular sizes from a tail narrower than the resolution of sizes.
const PRIOR_TRANSFERS: f64 = 5.0;

/// Tests per event: one transfer, one window, the sequential test, one system's run.
const TESTS: f64 = 4.0;

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
    /// Distribution of `ln(1 + bytes)` per transfer (single precision, like every
    /// moment kept per agent: DESIGN budgets a typical agent at 1 KiB stored).
    pub transfers: CompactStats,
    /// Distribution of `ln(1 + bytes)` per active window.
    pub windows: CompactStats,
    /// The open window (its `sum` is in bytes).
    pub window: TumblingWindow,
    /// Empirical distribution of transfer sizes.
    pub sizes: LogHistogram,
    /// Sequential test of transfer-size surprise.
    pub cusum: Cusum,
    /// Flagged transfers (`ln(1 + bytes)`) since the episode began.
    #[serde(with = "super::shadow::stored_if_live")]
    pub pending: Shadow,
    /// Typical size per system, which transfers are judged relative to.
    pub systems: SystemSizes,
    /// The largest transfer of the open window (bytes).
    pub window_peak: f32,
    /// Every transfer's residual since the pending episode began, flagged or not: what
    /// a promotion moves the baseline to. The flagged transfers alone are the top of
    /// the new sizes (or, after an outage or a heavy day, the agent's largest old
    /// ones); promoting their mean lifted the baseline above everything the agent
    /// went on to send, and `volume` fell silent for that agent for good. `None` (one
    /// stored byte) while no episode is live.
    pub episode: Option<CompactStats>,
    /// Each system's run of transfers in the open window.
    pub runs: SystemRuns,
    /// The latest transfer's place, from its score to its learning, which takes it:
    /// placing shrinks the pair's size towards the agent's, and a state at rest holds
    /// none, in memory as in storage.
    #[serde(skip)]
    pub latest: Option<Latest>,
}

/// A transfer placed by [`Volume`]'s score, kept for its learning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latest {
    key: u16,
    ln_bytes: f64,
    placed: Placed,
}

impl State {
    /// [`State::place`], unless `latest` already placed this transfer.
    fn placed(&self, latest: Option<Latest>, key: u16, ln_bytes: f64, sd_floor: f64) -> Placed {
        match latest {
            Some(latest) if latest.key == key && latest.ln_bytes == ln_bytes => latest.placed,
            _ => self.place(key, ln_bytes, sd_floor),
        }
    }

    /// Where a transfer of `ln_bytes` of the pair `key` lies (see
    /// [`SystemSizes::relative`]).
    fn place(&self, key: u16, ln_bytes: f64, sd_floor: f64) -> Placed {
        let transfers = self.transfers.widen();
        let mean = transfers.mean;
        let pair = self.systems.relative(key, mean, transfers.var, sd_floor);
        let residual = ln_bytes - pair.offset;
        Placed {
            residual,
            standardized: mean + (residual - mean) * pair.scale,
        }
    }
}

/// A transfer relative to its action on its system.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Placed {
    /// `ln(1 + bytes)` relative to the pair's typical size: what the parametric tests,
    /// the pending model and a promotion read.
    residual: f64,
    /// The residual in its pair's own spread, expressed in the agent's: what the
    /// empirical distribution holds and the CUSUM reads.
    standardized: f64,
}

/// A format 6 state carries over whole: its sizes were judged agent-wide, which is
/// what an agent with no per-system sizes yet is judged by.
impl From<super::retired::VolumeV6> for State {
    fn from(old: super::retired::VolumeV6) -> Self {
        State::from(super::retired::VolumeV13::from(old))
    }
}

/// A format 10 state carries over as a format 11 one with no episode counted: a live
/// episode's other transfers are counted from now on (until then a promotion uses the
/// flagged ones, as format 10 did).
impl From<super::retired::VolumeV10> for State {
    fn from(old: super::retired::VolumeV10) -> Self {
        State::from(super::retired::VolumeV11::from(old))
    }
}

/// A format 11 state carries over whole, each system starting with the agent's own
/// spread (see [`SystemSizes::from_v11`]): it is judged as before until its own
/// transfers show how widely its sizes vary.
impl From<super::retired::VolumeV11> for State {
    fn from(old: super::retired::VolumeV11) -> Self {
        State::from(super::retired::VolumeV13::from(old))
    }
}

/// A format 13 state carries over whole, no system with a run open.
impl From<super::retired::VolumeV13> for State {
    fn from(old: super::retired::VolumeV13) -> Self {
        State {
            transfers: old.transfers,
            windows: old.windows,
            window: old.window,
            sizes: old.sizes,
            cusum: old.cusum,
            pending: old.pending,
            systems: old.systems,
            window_peak: old.window_peak,
            episode: old.episode,
            runs: SystemRuns::default(),
            latest: None,
        }
    }
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
        offset: f64,
        statistic: &'static str,
    ) -> Option<Finding> {
        if stats.n < self.params.min_samples || bytes <= 0.0 {
            return None;
        }
        let t = (ln_bytes - offset - stats.mean) / stats.sd(self.params.sd_floor.0);
        // Within three standard deviations the tail is a few per mille at the least,
        // far above any alert threshold: skip the incomplete beta function.
        if t < 3.0 {
            return None;
        }
        let typical = (stats.mean + offset).exp_m1().max(1.0);
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
    fn sequential(
        &self,
        bytes: f64,
        residual: f64,
        offset: f64,
        state: &mut State,
    ) -> Option<Finding> {
        let samples = state.sizes.total();
        if samples < self.params.min_samples || bytes <= 0.0 {
            return None;
        }
        let before = state.cusum.sum;
        let p = state.cusum.observe(state.sizes.upper_tail_ln(residual));
        // An ordinary sum says nothing worth the arithmetic of a finding, and a transfer
        // that lowers the sum is no evidence of a shift: the run it belongs to was
        // reported by the transfers that raised it.
        if p > 1e-3 || state.cusum.sum <= before {
            return None;
        }
        let typical = (state.transfers.widen().mean + offset).exp_m1().max(1.0);
        Some(finding(
            p,
            bytes,
            typical,
            STAT_CUSUM,
            state.cusum.sum,
            samples,
        ))
    }

    /// The run test: adds this transfer to its pair's run (see [`SystemRuns`]) and
    /// judges the run, once the pair is known from [`system_runs::MIN_TRANSFERS`].
    /// Under the pair's own sizes the sum of `k` deviations has variance
    /// `k (1 + k / n)`, the second term the uncertainty of a mean learnt from `n`
    /// transfers; the t on `n − 1` degrees of freedom adds that of its spread.
    fn run(&self, key: u16, ln_bytes: f64, state: &mut State) -> Option<Finding> {
        let (slot, n, pair) = state.systems.own(key, self.params.sd_floor.0)?;
        if n < system_runs::MIN_TRANSFERS {
            return None;
        }
        let run = state.runs.add(slot, ln_bytes, pair);
        if run.count < 2 {
            return None;
        }
        let (k, n) = (f64::from(run.count), f64::from(n));
        let t = run.sum / (k * (1.0 + k / n)).sqrt();
        // Within three deviations the tail is a few per mille at the least.
        if t < 3.0 {
            return None;
        }
        Some(finding(
            student_t_sf(t, n - 1.0),
            ln_bytes.exp_m1(),
            pair.mean.exp_m1().max(1.0),
            STAT_RUN,
            t,
            n as u32,
        ))
    }

    /// p-value of a transfer under the pending model, when it is mature: two-sided, as
    /// the question is whether the transfer looks like the new behaviour.
    fn pending_p(
        &self,
        ln_bytes: f64,
        state: &State,
        now_ms: i64,
        hours: &HourOfWeek,
    ) -> Option<f64> {
        let shadow = state.pending.mature(now_ms, hours)?;
        let t = (ln_bytes - shadow.mean).abs() / shadow.sd(self.params.sd_floor.0);
        Some((2.0 * student_t_sf(t, f64::from(shadow.n - 1))).min(1.0) * TESTS)
    }

    /// Moves the baseline to the episode's sizes (all its transfers, see
    /// [`State::episode`]), keeping its shape.
    fn promote(&self, state: &mut State) {
        let learned = state
            .episode
            .take()
            .filter(|episode| episode.n >= PROMOTE_SAMPLES)
            .map_or(state.pending.stats, |episode| episode.widen());
        let shift = learned.mean - state.transfers.widen().mean;
        state.sizes.shift(shift / std::f64::consts::LN_2);
        state.systems.shift(shift);
        state.transfers = learned.into();
        let mut windows = state.windows.widen();
        windows.mean += shift;
        state.windows = windows.into();
        state.cusum.reset();
        state.runs.clear();
        state.pending.clear();
    }
}

/// The bytes a call moved: none unless it succeeded. A failed or denied call's byte
/// counts are its request and an error payload, not data; an agent whose failures
/// return a few hundred bytes next to megabyte reads of the same system would
/// otherwise have its spread of sizes set by its error rate. On independently
/// generated fleets such failures widened a pipeline agent's spread of sizes from
/// 0.8 to 2.0 (in logs), and transfers 1,500 to 5,000 times the usual size of their
/// system scored p ≈ 1e-3.
fn moved(event: &Event<'_>) -> u64 {
    if event.outcome == Outcome::Success {
        event.bytes()
    } else {
        0
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
        response_cap: None,
        fleet_only: false,
        fleet: None,
    }
}

impl Detector for Volume {
    fn new_state(&self) -> KindState {
        State::default().wrap()
    }

    fn score(&self, obs: &Observation<'_>, state: &mut KindState) -> Option<Finding> {
        let state = State::of(state);
        let bytes = moved(obs.event) as f64;
        let now = obs.event.time_ms;
        // A change that has persisted long enough is the baseline from now on, whether
        // or not this transfer would have been flagged.
        if state.pending.due(now) && state.pending.live(now, &obs.baseline.hours) {
            self.promote(state);
        }
        let open_since = state.window.start_ms;
        if let Some(closed) = state.window.advance_learnable(now, self.params.window.0) {
            state
                .windows
                .update(closed.sum.ln_1p(), self.params.window_horizon);
        }
        if state.window.start_ms != open_since {
            state.window_peak = 0.0;
            state.runs.clear();
        }
        let ln_bytes = bytes.ln_1p();
        let key = system_key(&obs.event.action, &obs.event.system);
        let placed = state.place(key, ln_bytes, self.params.sd_floor.0);
        state.latest = Some(Latest {
            key,
            ln_bytes,
            placed,
        });
        let Placed {
            residual,
            standardized,
        } = placed;
        let offset = ln_bytes - residual;
        state.window.add(bytes);
        state.window_peak = state.window_peak.max(bytes as f32);
        let single = self
            .test(
                bytes,
                ln_bytes,
                &state.transfers.widen(),
                offset,
                STAT_TRANSFER,
            )
            .map(|mut one| {
                // Both must find the transfer improbable: far from the mean size, and
                // beyond the agent's own largest transfers by more than their spread.
                let beyond = state.sizes.peaks_tail_ln(
                    standardized,
                    self.params.sd_floor.0,
                    PRIOR_TRANSFERS,
                );
                one.p_value = one.p_value.max(beyond.unwrap_or(1.0));
                one
            });
        // A burst is many transfers: the window is judged on its total less its
        // largest transfer, which the single-transfer test judges on its own.
        let burst = if state.window.events >= 2 {
            let many = state.window.sum - f64::from(state.window_peak);
            self.test(many, many.ln_1p(), &state.windows.widen(), 0.0, STAT_WINDOW)
                .map(|mut burst| {
                    burst.observed = state.window.sum;
                    burst
                })
        } else {
            None
        };
        let sustained = self.sequential(bytes, standardized, offset, state);
        let run = if bytes > 0.0 {
            self.run(key, ln_bytes, state)
        } else {
            None
        };
        // The pending model knows transfer sizes, not how many come at once: until its
        // episode is established it may explain a transfer, but not a burst that the
        // baseline finds improbable.
        let burst_p = burst.as_ref().map(|many| (many.p_value * TESTS).min(1.0));
        let mut best = [single, burst, sustained, run]
            .into_iter()
            .flatten()
            .min_by(|a, b| a.p_value.total_cmp(&b.p_value))?;
        best.p_value = (best.p_value * TESTS).min(1.0);
        let hours = &obs.baseline.hours;
        let explained = self.pending_p(residual, state, now, hours);
        best.pending_p = match burst_p {
            Some(burst_p) if !state.pending.established(now, hours) => {
                explained.map(|p| p.min(burst_p))
            }
            _ => explained,
        };
        best.learning = state.pending.live(now, hours);
        Some(best)
    }

    fn learn(&self, obs: &Observation<'_>, state: &mut KindState, verdict: Verdict) {
        let state = State::of(state);
        let bytes = moved(obs.event);
        let now = obs.event.time_ms;
        let latest = state.latest.take();
        match verdict {
            Verdict::Normal => {
                if bytes > 0 {
                    let ln_bytes = (bytes as f64).ln_1p();
                    let key = system_key(&obs.event.action, &obs.event.system);
                    let Placed {
                        residual,
                        standardized,
                    } = state.placed(latest, key, ln_bytes, self.params.sd_floor.0);
                    state.transfers.update(residual, self.params.horizon);
                    state.sizes.record_ln(standardized);
                    if let Some(forgotten) = state.systems.learn(key, ln_bytes) {
                        state.runs.forget(forgotten);
                    }
                    if state.pending.live(now, &obs.baseline.hours) {
                        if let Some(episode) = state.episode.as_mut() {
                            episode.update(residual, self.params.horizon);
                        }
                    } else {
                        state.episode = None;
                    }
                }
            }
            Verdict::Flagged => {
                state.window.flagged = true;
                if bytes > 0 {
                    let ln_bytes = (bytes as f64).ln_1p();
                    let key = system_key(&obs.event.action, &obs.event.system);
                    let Placed {
                        residual,
                        standardized,
                    } = state.placed(latest, key, ln_bytes, self.params.sd_floor.0);
                    state.cusum.retract(state.sizes.upper_tail_ln(standardized));
                    state.sizes.record_ln(standardized);
                    if !state.pending.live(now, &obs.baseline.hours) {
                        state.episode = Some(CompactStats::default());
                    }
                    state
                        .pending
                        .hold(residual, now, self.params.horizon, &obs.baseline.hours);
                    if let Some(episode) = state.episode.as_mut() {
                        episode.update(residual, self.params.horizon);
                    }
                    if state.pending.due(now) {
                        self.promote(state);
                    }
                }
            }
            Verdict::Escalated => {
                state.window.flagged = true;
                state.pending.clear();
                state.episode = None;
                state.cusum.reset();
            }
        }
    }

    fn describe(&self, state: &KindState) -> Option<String> {
        let KindState::Volume(state) = state else {
            return None;
        };
        let (transfers, windows) = (state.transfers.widen(), state.windows.widen());
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
                "transfer size about {} (×/÷ {:.1} around each action's typical size on its system, {} of them known) over {} transfers; per active window about {} over {} windows{pending}",
                format_bytes(transfers.mean.exp_m1()),
                transfers.var.sqrt().exp(),
                state.systems.known(),
                transfers.n,
                format_bytes(windows.mean.exp_m1()),
                windows.n
            )
        })
    }

    fn summarize(&self, obs: &Observation<'_>, finding: &Finding) -> String {
        let ratio = finding.observed / finding.expected.max(1.0);
        match finding.statistic {
            STAT_CUSUM => format!(
                "{} keeps moving more data than usual: {} to {} now, against its typical {}, part of a run of large transfers no single one of which stands out; {}",
                obs.event.agent_id,
                format_bytes(finding.observed),
                obs.event.system,
                format_bytes(finding.expected),
                format_p(finding.p_value)
            ),
            STAT_RUN => format!(
                "{} moved {} with {} {} against that call's typical {}, one of a run of larger than usual {} calls within {}; {}",
                obs.event.agent_id,
                format_bytes(finding.observed),
                obs.event.action,
                obs.event.system,
                format_bytes(finding.expected),
                obs.event.action,
                format_duration(self.params.window.0),
                format_p(finding.p_value)
            ),
            STAT_WINDOW => format!(
                "{} moved {} within {} ({ratio:.0}× its typical {} per window), latest to {}; {}",
                obs.event.agent_id,
                format_bytes(finding.observed),
                format_duration(self.params.window.0),
                format_bytes(finding.expected),
                obs.event.system,
                format_p(finding.p_value)
            ),
            _ => format!(
                "{} moved {} in one transfer with {} ({ratio:.0}× its typical {}); {}",
                obs.event.agent_id,
                format_bytes(finding.observed),
                obs.event.system,
                format_bytes(finding.expected),
                format_p(finding.p_value)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{call_line, score_and_learn};
    use super::*;
    use crate::model::time::{DAY_MS, HOUR_MS, MINUTE_MS};

    /// Scores and learns one transfer of `bytes` at `time_ms` with `verdict`.
    fn transfer(
        detector: &Volume,
        state: &mut KindState,
        time_ms: i64,
        bytes: u64,
        verdict: Verdict,
    ) {
        score_and_learn(detector, state, &call(time_ms, bytes, "success"), verdict);
    }

    /// One `read` of `crm` moving `bytes`, with `outcome`, as a JSON line.
    fn call(time_ms: i64, bytes: u64, outcome: &str) -> String {
        call_line(time_ms, "read", "crm", bytes, outcome)
    }

    /// A size of typical `median` spread ×/÷ `e^sd`, reproducibly for each `i`: a
    /// log-normal draw (an Irwin–Hall sum of four uniforms, standardized).
    fn log_normal(i: u64, median: f64, sd: f64) -> u64 {
        let uniform = |k: u64| {
            let hash = (i * 4 + k).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11;
            hash as f64 / (1u64 << 53) as f64
        };
        let z = ((0..4).map(uniform).sum::<f64>() - 2.0) * 3f64.sqrt();
        (median * (sd * z).exp()) as u64
    }

    /// The smallest p-value `volume` gives a run of `count` transfers of `action` on
    /// `system` at ten times their median, one a minute, after two weeks of an agent
    /// whose `read docs` sizes spread ×/÷ 7 and whose `write hr` sizes spread ×/÷ 1.6.
    fn run_at_ten_times(action: &str, system: &str, median: f64, count: u64) -> f64 {
        let detector = Volume::new(Params::default());
        let mut state = detector.new_state();
        let start = 20_000 * DAY_MS;
        for i in 0..3_000u64 {
            let at = start + i as i64 * 7 * MINUTE_MS;
            let line = if i % 3 == 0 {
                call_line(at, "write", "hr", log_normal(i, 8_000.0, 0.5), "success")
            } else {
                call_line(at, "read", "docs", log_normal(i, 20_000.0, 2.0), "success")
            };
            score_and_learn(&detector, &mut state, &line, Verdict::Normal);
        }
        let attack = start + 3_000 * 7 * MINUTE_MS;
        (0..count)
            .filter_map(|i| {
                let bytes = log_normal(10_000 + i, 10.0 * median, 0.2);
                let line = call_line(
                    attack + i as i64 * MINUTE_MS,
                    action,
                    system,
                    bytes,
                    "success",
                );
                score_and_learn(&detector, &mut state, &line, Verdict::Normal)
            })
            .fold(1.0, f64::min)
    }

    #[test]
    fn a_run_of_large_transfers_is_judged_by_its_own_systems_spread() {
        // Ten times the usual write is beyond the pair's 99.99th percentile, though
        // within the agent-wide spread its reads set: six in a row are beyond doubt
        // (judged agent-wide, p was 8e-4).
        let tight = run_at_ten_times("write", "hr", 8_000.0, 6);
        assert!(tight < 1e-8, "six writes at ten times: p = {tight}");
        // Ten times the usual read is within the reads' own tail: six in a row are
        // some evidence (their run, about 6e-5), short of this agent's alert
        // threshold (a budget of 0.002 over its 200 calls a day: 1e-5).
        let wide = run_at_ten_times("read", "docs", 20_000.0, 6);
        assert!(wide > 1e-5, "six reads at ten times: p = {wide}");
    }

    /// The smallest p-value `volume` gives over ten minutes of an agent two thirds of
    /// whose calls read `docs` (×/÷ e around 20 KB) and one third send `email` (×/÷ e
    /// around 5 KB), one call every 15 s, after 3,000 such calls; within those ten
    /// minutes each email is `email_factor` times its usual size.
    fn interleaved_emails_at(email_factor: f64) -> f64 {
        let detector = Volume::new(Params::default());
        let mut state = detector.new_state();
        let start = 20_000 * DAY_MS;
        let line = |i: u64, at: i64, factor: f64| {
            if i % 3 == 0 {
                call_line(
                    at,
                    "send",
                    "email",
                    log_normal(i, 5_000.0 * factor, 1.0),
                    "success",
                )
            } else {
                call_line(at, "read", "docs", log_normal(i, 20_000.0, 1.0), "success")
            }
        };
        for i in 0..3_000u64 {
            let at = start + i as i64 * 15_000;
            score_and_learn(&detector, &mut state, &line(i, at, 1.0), Verdict::Normal);
        }
        let later = start + 3_000 * 15_000;
        (0..40)
            .filter_map(|i| {
                let at = later + i as i64 * 15_000;
                let line = line(3_000 + i, at, email_factor);
                score_and_learn(&detector, &mut state, &line, Verdict::Normal)
            })
            .fold(1.0, f64::min)
    }

    #[test]
    fn a_run_of_moderately_large_transfers_on_one_system_stands_out_among_ordinary_ones() {
        // Thirteen emails at three times their usual size (each about 1.1 of their
        // own deviations up) among twice as many ordinary reads: no transfer or window
        // stands out, and the reads pull the agent-wide CUSUM down nearly as fast as
        // the emails push it up (without the run test the smallest p-value is about
        // 3e-4). As a run on their own system they stand out, at about 2e-6.
        let run = interleaved_emails_at(3.0);
        assert!(run < 1e-5, "a run of emails at three times: p = {run}");
        // The same ten minutes at the usual sizes are unremarkable.
        let ordinary = interleaved_emails_at(1.0);
        assert!(ordinary > 1e-3, "ordinary emails: p = {ordinary}");
    }

    #[test]
    fn failed_calls_error_payloads_do_not_widen_the_sizes_a_transfer_is_judged_by() {
        let detector = Volume::new(Params::default());
        let mut state = detector.new_state();
        let start = 20_000 * DAY_MS;
        // A pipeline pulling about 50 MB a call, one call in twenty failing with a
        // 300-byte error.
        for i in 0..600u64 {
            let (bytes, outcome) = if i % 20 == 7 {
                (300, "failure")
            } else {
                (40_000_000 + (i * 2_654_435_761) % 20_000_000, "success")
            };
            let line = call(start + i as i64 * MINUTE_MS, bytes, outcome);
            score_and_learn(&detector, &mut state, &line, Verdict::Normal);
        }
        // A thousand times the usual pull.
        let line = call(start + 600 * MINUTE_MS, 50_000_000_000, "success");
        let p = score_and_learn(&detector, &mut state, &line, Verdict::Normal).unwrap_or(1.0);
        assert!(p < 1e-9, "p = {p}");
    }

    #[test]
    fn flagged_transfers_still_shape_the_distribution_the_cusum_reads() {
        let detector = Volume::new(Params::default());
        let mut state = detector.new_state();
        let start = 20_000 * DAY_MS;
        for i in 0..400u64 {
            let bytes = 10_000 + (i * 2_654_435_761) % 8_000;
            let at = start + i as i64 * MINUTE_MS;
            transfer(&detector, &mut state, at, bytes, Verdict::Normal);
        }
        let top = |state: &mut KindState| {
            let state = State::of(state);
            let placed = state.place(system_key("read", "crm"), 60_000f64.ln_1p(), 0.25);
            state.sizes.upper_tail_ln(placed.standardized)
        };
        let before = top(&mut state);
        // A hundred transfers at the agent's new top size, each flagged: they are part
        // of what the agent sends, and the tail the CUSUM reads must show them.
        for i in 0..100 {
            let at = start + (400 + i) * MINUTE_MS;
            transfer(&detector, &mut state, at, 60_000, Verdict::Flagged);
        }
        let after = top(&mut state);
        assert!(after > 0.1 && after > 10.0 * before, "{before} -> {after}");
    }

    #[test]
    fn a_kept_placement_serves_only_the_transfer_it_was_made_for() {
        let detector = Volume::new(Params::default());
        let mut state = detector.new_state();
        let start = 20_000 * DAY_MS;
        for i in 0..100u64 {
            let bytes = 10_000 + (i * 2_654_435_761) % 8_000;
            transfer(
                &detector,
                &mut state,
                start + i as i64 * MINUTE_MS,
                bytes,
                Verdict::Normal,
            );
        }
        let state = State::of(&mut state);
        assert_eq!(state.latest, None, "a state at rest holds no placement");
        let (key, ln_bytes) = (system_key("read", "crm"), 20_000f64.ln_1p());
        let fresh = state.place(key, ln_bytes, 0.25);
        let kept = Placed {
            residual: 99.0,
            standardized: 99.0,
        };
        let latest = |key, ln_bytes| {
            Some(Latest {
                key,
                ln_bytes,
                placed: kept,
            })
        };
        assert_eq!(
            state.placed(latest(key, ln_bytes), key, ln_bytes, 0.25),
            kept
        );
        assert_eq!(
            state.placed(latest(key, ln_bytes + 1.0), key, ln_bytes, 0.25),
            fresh
        );
        assert_eq!(
            state.placed(latest(key + 1, ln_bytes), key, ln_bytes, 0.25),
            fresh
        );
    }

    #[test]
    fn a_change_that_has_persisted_a_day_is_promoted_by_the_next_transfer_flagged_or_not() {
        let detector = Volume::new(Params::default());
        let mut state = detector.new_state();
        let start = 20_000 * DAY_MS;
        for i in 0..300 {
            let bytes = 10_000 + (i * 2_654_435_761_u64) % 8_000;
            transfer(
                &detector,
                &mut state,
                start + i as i64 * MINUTE_MS,
                bytes,
                Verdict::Normal,
            );
        }
        let before = State::of(&mut state).transfers.widen().mean;
        // A new job: three times the sizes, flagged while the pending model gathers it.
        let changed = start + DAY_MS;
        for i in 0..40 {
            let bytes = 3 * (10_000 + (i * 2_654_435_761_u64) % 8_000);
            let at = changed + i as i64 * 3 * MINUTE_MS;
            transfer(&detector, &mut state, at, bytes, Verdict::Flagged);
        }
        assert_eq!(State::of(&mut state).pending.stats.n, 40);
        // A day later an ordinary transfer: the change is the baseline now.
        transfer(
            &detector,
            &mut state,
            changed + DAY_MS + HOUR_MS,
            30_000,
            Verdict::Normal,
        );
        let state = State::of(&mut state);
        assert_eq!(
            state.pending.stats.n, 0,
            "the pending episode was not promoted"
        );
        let shift = state.transfers.widen().mean - before;
        assert!((shift - 3f64.ln()).abs() < 0.3, "baseline moved by {shift}");
    }

    #[test]
    fn a_promotion_moves_the_baseline_by_all_the_episodes_transfers_not_the_flagged_ones() {
        let detector = Volume::new(Params::default());
        let mut state = detector.new_state();
        let start = 20_000 * DAY_MS;
        let ordinary = |i: u64| 10_000 + (i * 2_654_435_761_u64) % 8_000;
        for i in 0..300 {
            let at = start + i as i64 * MINUTE_MS;
            transfer(&detector, &mut state, at, ordinary(i), Verdict::Normal);
        }
        let before = State::of(&mut state).transfers.widen().mean;
        // A day of the agent's usual sizes, one transfer in ten of them five times as
        // large and flagged (a heavy day, the retries after an outage): the flagged
        // ones alone would say the agent now moves five times as much.
        let heavy = start + DAY_MS;
        for i in 0..360 {
            let at = heavy + i as i64 * 4 * MINUTE_MS;
            if i % 10 == 0 {
                transfer(&detector, &mut state, at, 5 * ordinary(i), Verdict::Flagged);
            } else {
                transfer(&detector, &mut state, at, ordinary(i), Verdict::Normal);
            }
        }
        // A day on, an ordinary transfer promotes the episode.
        let later = heavy + DAY_MS + MINUTE_MS;
        transfer(&detector, &mut state, later, ordinary(7), Verdict::Normal);
        let state = State::of(&mut state);
        assert_eq!(state.pending.stats.n, 0, "the episode was not promoted");
        let shift = state.transfers.widen().mean - before;
        assert!(
            shift.abs() < 0.4,
            "baseline moved by {shift}, towards the flagged transfers' {}",
            5f64.ln()
        );
    }
}
