//! `denied_burst`: a burst of denied or failed actions against the agent's own failure
//! rate, the signature of an agent probing its boundaries (or of a credential that was
//! revoked under a running attacker).
//!
//! ## Model
//!
//! The agent's failure rate `r` gets a Beta(a, b) prior and is learned from closed
//! windows without an anomaly (decayed with `horizon`). Failures are not always
//! independent: a build that breaks fails every retry until someone fixes it, so one
//! agent's failures come in clusters while another's are scattered. Two models of the
//! open window's `k` failures among `m` calls compete:
//!
//! - **independent**: `Binomial(m, r)`;
//! - **clustered**: beta-binomial with mean `r` and intra-window correlation
//!   [`MAX_CLUSTERING`] (each window draws its own failure probability).
//!
//! The reported p-value is the tail `P(X ≥ k)` under their mixture, weighted by the
//! posterior probability `w` that this agent's failures cluster:
//! `p = w · P_clustered(X ≥ k) + (1 − w) · P_independent(X ≥ k)`. A flaky agent that
//! fails 10% of the time is held to its own rate, an agent whose failures come in runs
//! to its runs, and a clean one with scattered failures to the binomial.
//!
//! ## Calibration
//!
//! `w` comes from the prior `prior_clustered` (0.5: nothing is known about a new
//! agent) and the evidence of the agent's own closed windows: each adds the log
//! likelihood ratio of its failure count under the two models
//! ([`crate::stats::clustering_log_likelihood_ratio`]), decayed like the rate. This
//! replaced a moment estimate of the correlation, whose every window without a
//! failure subtracted from it: a few days of clean traffic drove it to zero, though
//! such windows are nearly as likely under either model (for an agent failing 0.1% of
//! the time, a thousand clean windows of six calls shift the odds by a factor of about
//! 1.9, towards clustering, whose windows vary more). The agent's first failing build
//! then read as p ≈ 1e-8. What separates the models is windows with failures: each
//! lone failure favours independence (by about 0.8 for that agent), each window with
//! two or more favours clustering (by about 35 for two).
//!
//! Windows where the agent was flagged but not escalated count as evidence (unlike for
//! the rate): a failure burst that was alerted on and not confirmed by escalation is
//! exactly the evidence of how this agent's failures cluster, so an agent whose builds
//! break now and then is alerted on the first such burst, not on every one. A window
//! whose burst escalated to `revoke_credential` or `suspend_agent` is never learned.
//! The clustered model's correlation is fixed at [`MAX_CLUSTERING`], so no history
//! can make a wall of denials ordinary.
//!
//! On held-out fleets (`scripts/fleetgen.py`, whose devops agents have failing-build
//! sessions that fail 20–50% of their calls) the binomial raised 52 false alerts in
//! 546k events (120 agents, 14 days, seed 3), one per broken build; the moment
//! estimate 15, the two-model posterior 11 (9 → 7 on seed 11), with the same recall.
//!
//! The threshold is the instance's false-alarm `budget` per agent-day at the agent's
//! own test rate ([`crate::detect::Instance::alert_p`]); no count of failures is a
//! threshold (`min_failures` only says that one failure is not a burst).

use super::{format_p, DurationParam, Fraction, Positive, TumblingWindow};
use crate::detect::{parse_params, KindSpec, KindState, KindStateOf};
use crate::detect::{Aspect, Detector, Finding, FleetScope, Observation, Verdict};
use crate::model::time::format_duration;
use crate::model::{Anomaly, CommandAction, Outcome};
use crate::stats::{beta_binomial_sf, clustering_log_likelihood_ratio};
use serde::{Deserialize, Serialize};

/// The intra-window correlation of failures under the clustered model. At 0.05 a
/// cluster of a few failures among many calls is explained (a window's failure
/// probability may wander several-fold), a wall of failures is not: twenty denials of
/// twenty calls keep a tail near 2e-12, and thirty of fifty near 6e-8, for an agent
/// failing 1–2% of the time. (The beta-binomial's tail for a large window tends to the
/// Beta's, so this also decides how a retry loop of hundreds of failing calls is
/// judged.) On independently generated fleets bounds from 0.05 to 0.5 removed nearly
/// the same false alerts; 0.03 kept half again as many.
pub const MAX_CLUSTERING: f64 = 0.05;

/// Calls of a system, and of an action, the agent must have made (and had learned)
/// before a refusal of them reads as its grant or the system changing rather than as
/// probing. Probing is asking for what one was never given; a call the agent has made
/// a hundred times was given. When such calls are refused or fail, something changed
/// on the other side (a token expired or was rotated, a permission was withdrawn, the
/// system broke):
/// on an independently generated fleet an expired token refused every call of a
/// coding agent for ninety minutes, and its bursts revoked a credential that no
/// longer worked.
///
/// - A *refusal* of a routine call still counts: a burst of them alerts, and may ask
///   for approval ([`Finding::response_cap`]), never revoke or suspend. (A grant
///   withdrawn under a running agent is what a human must hear of.)
/// - A *failure* of a routine call is the other side erring, which says nothing
///   about the agent: it is counted apart from the agent's own failures, and a burst
///   of them is only evidence of an outage ([`Finding::fleet_only`]). Many agents at
///   once raise one fleet alert; one agent alone raises nothing. On the eighteen
///   held-out sets of both generators this cut `denied_burst`'s false alerts by more
///   than a third on each set (by nine tenths on the first generator's)
///   (flaky backends of devops and ops agents, a broken deploy), kept every fleet
///   outage alert, and lost one incident: a retry loop of failing reads at six times
///   its agent's pace, which is `rate`'s to see.
///
/// The number only has to separate "routine" from "rare": the agents of both held-out
/// generators make their routine calls hundreds to thousands of times a fortnight.
pub const ROUTINE_CALLS: u32 = 100;

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
    /// Prior probability that an agent's failures cluster (before its own windows say).
    pub prior_clustered: Fraction,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            window: DurationParam(5 * 60_000),
            horizon: 2000,
            min_failures: 2,
            prior_failures: Positive(1.0),
            prior_calls: Positive(50.0),
            prior_clustered: Fraction(0.5),
        }
    }
}

/// Per-agent state: decayed calls and failures, how failures cluster, and the open
/// window (`events` = calls, `sum` = refusals and failures other than failures of
/// routine calls, which [`State::routine_failures`] counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Decayed calls in learned windows.
    pub calls: f32,
    /// Decayed failures in learned windows.
    pub failures: f32,
    /// Decayed log likelihood ratio of the clustered model over the independent one
    /// (see the module's calibration).
    pub evidence: f32,
    /// The open window (`flagged`: it held an anomaly, kept out of the rate).
    pub window: TumblingWindow,
    /// The open window held an escalated finding (kept out of the evidence too).
    pub escalated: bool,
    /// Failures of routine calls in the open window (not in `window`, see
    /// [`ROUTINE_CALLS`]).
    pub routine_failures: u32,
}

/// A format 8 state keeps its failure rate and open window; its moment estimate of
/// clustering cannot be turned into evidence, which restarts from the prior.
impl From<super::retired::DeniedBurstV8> for State {
    fn from(old: super::retired::DeniedBurstV8) -> Self {
        State {
            calls: old.calls,
            failures: old.failures,
            evidence: 0.0,
            window: old.window,
            escalated: old.escalated,
            routine_failures: 0,
        }
    }
}

/// A format 12 state carries over whole, with no routine failures in its open window
/// (they were counted in it).
impl From<super::retired::DeniedBurstV12> for State {
    fn from(old: super::retired::DeniedBurstV12) -> Self {
        State {
            calls: old.calls,
            failures: old.failures,
            evidence: old.evidence,
            window: old.window,
            escalated: old.escalated,
            routine_failures: 0,
        }
    }
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
        let a = self.params.prior_failures.0 + f64::from(state.failures);
        let n = self.params.prior_calls.0 + f64::from(state.calls);
        (a / n.max(a)).clamp(1e-6, 1.0)
    }

    /// The posterior probability that the agent's failures cluster.
    fn clustered(&self, state: &State) -> f64 {
        let prior = self.params.prior_clustered.0.min(1.0 - 1e-9);
        let odds = prior / (1.0 - prior) * f64::from(state.evidence).clamp(-700.0, 700.0).exp();
        odds / (1.0 + odds)
    }

    /// Folds a closed window into the rate (unless it held an anomaly) and into the
    /// evidence of clustering (unless it held an escalation).
    fn close(&self, state: &mut State, closed: TumblingWindow, escalated: bool) {
        let keep = 1.0 - 1.0 / f64::from(self.params.horizon.max(1));
        if !escalated && closed.events >= 2 {
            let rate = self.rate(state).min(1.0 - 1e-6);
            let evidence = clustering_log_likelihood_ratio(
                closed.sum as u64,
                u64::from(closed.events),
                rate,
                MAX_CLUSTERING,
            );
            state.evidence = (f64::from(state.evidence) * keep + evidence) as f32;
        }
        if !closed.flagged {
            state.calls = (f64::from(state.calls) * keep + f64::from(closed.events)) as f32;
            state.failures = (f64::from(state.failures) * keep + closed.sum) as f32;
        }
    }
}

impl Detector for DeniedBurst {
    fn new_state(&self) -> KindState {
        State::default().wrap()
    }

    fn score(&self, obs: &Observation<'_>, state: &mut KindState) -> Option<Finding> {
        let state = State::of(state);
        let open = state.window.start_ms;
        let closed = state
            .window
            .advance(obs.event.time_ms, self.params.window.0);
        if state.window.start_ms != open {
            state.routine_failures = 0;
            let escalated = std::mem::take(&mut state.escalated);
            if let Some(closed) = closed {
                self.close(state, closed, escalated);
            }
        }
        let failed = obs.event.outcome != Outcome::Success;
        let routine_call_refused_or_failed = failed && routine(obs);
        // A routine call failing is the other side erring (see [`ROUTINE_CALLS`]): it
        // is kept out of the agent's own count, and judged with every failure of the
        // window only as evidence of an outage.
        let fleet_only = routine_call_refused_or_failed && obs.event.outcome == Outcome::Failure;
        let own_failure = failed && !fleet_only;
        state.window.add(if own_failure { 1.0 } else { 0.0 });
        let mut failures = state.window.sum as u64;
        if fleet_only {
            state.routine_failures = state.routine_failures.saturating_add(1);
            failures += u64::from(state.routine_failures);
        }
        if !failed || failures < u64::from(self.params.min_failures) {
            return None;
        }
        let calls = u64::from(state.window.events);
        let rate = self.rate(state);
        let clustered = self.clustered(state);
        let p_value = clustered * beta_binomial_sf(failures, calls, rate, MAX_CLUSTERING)
            + (1.0 - clustered) * beta_binomial_sf(failures, calls, rate, 0.0);
        Some(Finding {
            p_value: p_value.max(f64::MIN_POSITIVE),
            anomaly: Anomaly::Probing,
            observed: failures as f64,
            expected: rate * calls as f64,
            unit: "denied or failed calls per window",
            statistic: "beta-binomial tail of failures in the window",
            statistic_value: rate,
            rule: None,
            baseline_size: state.calls as u64,
            pending_p: None,
            magnitude: failures as f64 / (rate * calls as f64).max(1e-9),
            learning: false,
            response_cap: routine_call_refused_or_failed.then_some(CommandAction::RequireApproval),
            fleet_only,
            fleet: None,
        })
    }

    fn learn(&self, _obs: &Observation<'_>, state: &mut KindState, verdict: Verdict) {
        let state = State::of(state);
        match verdict {
            Verdict::Normal => {}
            Verdict::Flagged => state.window.flagged = true,
            Verdict::Escalated => {
                state.window.flagged = true;
                state.escalated = true;
            }
        }
    }

    fn describe(&self, state: &KindState) -> Option<String> {
        let KindState::DeniedBurst(state) = state else {
            return None;
        };
        (state.calls > 0.0).then(|| {
            format!(
                "{:.2}% of calls denied or failed (over about {:.0} calls); failures come in clusters with probability {:.2}",
                100.0 * state.failures / state.calls,
                state.calls,
                self.clustered(state)
            )
        })
    }

    fn summarize(&self, obs: &Observation<'_>, finding: &Finding) -> String {
        let routine = if routine(obs) {
            ", a call it makes routinely: more likely its grant or the system changed (an expired token, a withdrawn permission, an outage) than it is probing"
        } else {
            ""
        };
        format!(
            "{} had {:.0} denied or failed calls within {} (its usual failure rate {:.1}% predicts {:.1}), latest {} on {}{routine}; {}",
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

/// True when the event's system and action are both among the agent's routine calls
/// (see [`ROUTINE_CALLS`]).
fn routine(obs: &Observation<'_>) -> bool {
    let made = |table: &crate::baseline::SeenTable, name: &str| {
        table
            .get(name)
            .is_some_and(|seen| seen.count >= ROUTINE_CALLS)
    };
    made(&obs.baseline.systems, &obs.event.system) && made(&obs.baseline.actions, &obs.event.action)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{call_line, learn_line, score_against, score_and_learn};
    use super::*;
    use crate::model::time::{DAY_MS, HOUR_MS, MINUTE_MS};

    /// Scores and learns one call at `time_ms`; returns the finding's p-value.
    fn call(
        detector: &DeniedBurst,
        state: &mut KindState,
        time_ms: i64,
        failed: bool,
        verdict: Verdict,
    ) -> Option<f64> {
        let outcome = if failed { "denied" } else { "success" };
        let line = call_line(time_ms, "read", "crm", 0, outcome);
        score_and_learn(detector, state, &line, verdict)
    }

    /// Twenty days of twenty five-minute windows of ten calls a day, failing 2% of the
    /// time: scattered (one failure in every fifth window) or in runs (one window a day
    /// with four failures), the run's window judged with `burst`.
    fn history(clustered: bool, burst: Verdict) -> (DeniedBurst, KindState) {
        let detector = DeniedBurst::new(Params::default());
        let mut state = detector.new_state();
        let start = 20_000 * DAY_MS;
        for day in 0..20 {
            for window in 0..20 {
                let at = start + day * DAY_MS + window * 5 * MINUTE_MS;
                let failures = match (clustered, window) {
                    (true, 0) => 4,
                    (false, w) if w % 5 == 0 => 1,
                    _ => 0,
                };
                for i in 0..10 {
                    let verdict = if failures > 1 { burst } else { Verdict::Normal };
                    call(&detector, &mut state, at + i * 1_000, i < failures, verdict);
                }
            }
        }
        (detector, state)
    }

    /// The p-value of 4 failures among 10 calls in a fresh window after `history`.
    fn next_burst(detector: &DeniedBurst, state: &mut KindState) -> f64 {
        let at = 20_000 * DAY_MS + 30 * DAY_MS;
        (0..10)
            .filter_map(|i| call(detector, state, at + i * 1_000, i < 4, Verdict::Normal))
            .fold(1.0, f64::min)
    }

    fn clustered(detector: &DeniedBurst, state: &mut KindState) -> f64 {
        detector.clustered(State::of(state))
    }

    fn read_line(time_ms: i64, system: &str, outcome: &str) -> String {
        call_line(time_ms, "read", system, 0, outcome)
    }

    /// An agent that has read the CRM two hundred times (a routine call), and the
    /// vault once.
    fn reads_crm_routinely_and_the_vault_once(start: i64) -> crate::baseline::Baseline {
        let mut baseline = crate::baseline::Baseline::default();
        for i in 0..200 {
            learn_line(
                &mut baseline,
                &read_line(start + i * MINUTE_MS, "crm", "success"),
            );
        }
        learn_line(&mut baseline, &read_line(start, "vault", "success"));
        baseline
    }

    #[test]
    fn refusals_of_routine_calls_may_ask_for_approval_but_not_revoke() {
        let detector = DeniedBurst::new(Params::default());
        let start = 20_000 * DAY_MS;
        let baseline = reads_crm_routinely_and_the_vault_once(start);
        // Twelve refusals in a row, of its CRM reads or of vault reads.
        let burst = |system: &str| {
            let mut state = detector.new_state();
            let at = start + DAY_MS;
            (0..12)
                .filter_map(|i| {
                    let call = read_line(at + i * 1_000, system, "denied");
                    score_against(&detector, &mut state, &call, &baseline)
                })
                .last()
                .unwrap()
        };
        let (routine, probing) = (burst("crm"), burst("vault"));
        assert!(routine.p_value < 1e-6 && probing.p_value < 1e-6);
        assert_eq!(routine.response_cap, Some(CommandAction::RequireApproval));
        assert_eq!(probing.response_cap, None);
        assert!(!routine.fleet_only && !probing.fleet_only);
    }

    #[test]
    fn failures_of_routine_calls_are_fleet_evidence_kept_out_of_the_agents_own_count() {
        let detector = DeniedBurst::new(Params::default());
        let start = 20_000 * DAY_MS;
        let baseline = reads_crm_routinely_and_the_vault_once(start);
        let mut state = detector.new_state();
        // Eight of its CRM reads fail, a second apart from `from`.
        let crm_outage = |state: &mut KindState, from: i64| -> Vec<Finding> {
            (0..8)
                .filter_map(|i| {
                    let call = read_line(from + i * 1_000, "crm", "failure");
                    score_against(&detector, state, &call, &baseline)
                })
                .collect()
        };
        let at = start + DAY_MS;
        // Eight of its CRM reads fail, then two vault reads are refused.
        let outage = crm_outage(&mut state, at);
        let last = outage.last().unwrap();
        assert!(outage.iter().all(|f| f.fleet_only));
        assert_eq!(last.observed, 8.0);
        assert!(last.p_value < 1e-6, "p = {}", last.p_value);
        let refusals: Vec<Finding> = (8..10)
            .filter_map(|i| {
                let call = read_line(at + i * 1_000, "vault", "denied");
                score_against(&detector, &mut state, &call, &baseline)
            })
            .collect();
        let last = refusals.last().unwrap();
        assert!(!last.fleet_only);
        assert_eq!(
            last.observed, 2.0,
            "the outage's failures are not the agent's"
        );
        // The window's calls still count, so two refusals among ten calls are judged
        // as such.
        assert_eq!(last.expected, detector.rate(State::of(&mut state)) * 10.0);
        // The next window's outage is counted afresh, not on top of this one's.
        let next_outage = crm_outage(&mut state, at + HOUR_MS);
        assert_eq!(next_outage.last().map(|f| f.observed), Some(8.0));
    }

    #[test]
    fn an_agent_whose_failures_come_in_runs_is_held_to_its_runs() {
        let (detector, mut runs) = history(true, Verdict::Normal);
        let (_, mut scattered) = history(false, Verdict::Normal);
        let (w_runs, w_scattered) = (
            clustered(&detector, &mut runs),
            clustered(&detector, &mut scattered),
        );
        assert!(w_runs > 0.99, "runs: {w_runs}");
        assert!(w_scattered < 0.01, "scattered: {w_scattered}");
        let (p_runs, p_scattered) = (
            next_burst(&detector, &mut runs),
            next_burst(&detector, &mut scattered),
        );
        assert!(p_runs > 1e-5, "runs: {p_runs}");
        assert!(p_scattered < 1e-6, "scattered: {p_scattered}");
        assert!(
            p_runs > 50.0 * p_scattered,
            "{p_runs} against {p_scattered}"
        );
    }

    #[test]
    fn flagged_runs_teach_clustering_but_escalated_ones_do_not() {
        let (detector, mut flagged) = history(true, Verdict::Flagged);
        let (_, mut escalated) = history(true, Verdict::Escalated);
        let w_flagged = clustered(&detector, &mut flagged);
        let w_escalated = clustered(&detector, &mut escalated);
        assert!(w_flagged > 0.99, "flagged: {w_flagged}");
        // The escalated bursts taught nothing: what is left is clean windows, which
        // leave the posterior near its prior.
        assert!(w_escalated < 0.8, "escalated: {w_escalated}");
        // The flagged bursts stay out of the failure rate.
        let rate = detector.rate(State::of(&mut flagged));
        assert!(rate < 0.005, "rate {rate}");
    }

    #[test]
    fn a_wall_of_denials_stays_improbable_however_clustered() {
        let (detector, mut runs) = history(true, Verdict::Normal);
        let at = 20_000 * DAY_MS + 30 * DAY_MS;
        let p = (0..20)
            .filter_map(|i| call(&detector, &mut runs, at + i * 400, true, Verdict::Normal))
            .fold(1.0, f64::min);
        assert!(p < 1e-10, "p = {p}");
    }

    #[test]
    fn clean_windows_say_little_about_clustering_so_a_first_burst_is_not_extreme() {
        // A week of six-call windows, one failure in every thousandth: an agent that
        // has never had two failures in a window, and is not yet known not to.
        let detector = DeniedBurst::new(Params::default());
        let mut state = detector.new_state();
        let start = 20_000 * DAY_MS;
        for window in 0..2_000 {
            let at = start + window * 5 * MINUTE_MS;
            for i in 0..6 {
                let failed = window % 1_000 == 0 && i == 0;
                call(
                    &detector,
                    &mut state,
                    at + i * 1_000,
                    failed,
                    Verdict::Normal,
                );
            }
        }
        let w = clustered(&detector, &mut state);
        assert!(w > 0.2, "clean windows made clustering implausible: {w}");
        // Three failures among six calls: judged mostly as a cluster, not by the
        // binomial, which puts it a thousand times further out.
        let independent = beta_binomial_sf(3, 6, detector.rate(State::of(&mut state)), 0.0);
        let at = start + 2_001 * 5 * MINUTE_MS;
        let p = (0..6)
            .filter_map(|i| {
                call(
                    &detector,
                    &mut state,
                    at + i * 1_000,
                    i < 3,
                    Verdict::Normal,
                )
            })
            .fold(1.0, f64::min);
        assert!(p > 100.0 * independent, "p = {p} against {independent}");
    }
}
