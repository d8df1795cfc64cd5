//! Runs of identical calls: how many times in a row an agent has made the same call
//! (action on system), against the lengths of its earlier runs.
//!
//! A loop repeats one call. At a modest pace its sliding-window counts can stay
//! within a bursty agent's busiest sessions, yet an agent that spreads its work over
//! several calls almost never repeats one of them sixty times in a row. An agent
//! choosing its next call from its current one is a Markov chain, whose run lengths
//! are geometric, and a mix of habits a mixture of geometrics: the tail decays by a
//! fixed factor per extra call, which is the model beyond the 99th percentile of the
//! agent's completed runs (see [`CountDistribution::upper_tail_linear`]). A run is
//! learned only once it has ended, so a run is always judged against the runs
//! before it; a run that escalated is discarded.

use serde::{Deserialize, Serialize};

use super::CountDistribution;

/// Pseudo-observations of the tail's prior scale (the top percentile of runs).
const PRIOR_EXCEEDANCES: f64 = 5.0;

/// The run in progress and the lengths of the completed ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Runs {
    /// Fingerprint of the call being repeated (see [`call_fingerprint`]).
    call: u32,
    /// Calls in the run so far (0 before the first call).
    length: u32,
    /// The run escalated: it is not learned when it ends.
    discarded: bool,
    /// Lengths of completed runs.
    completed: CountDistribution,
}

/// A stable 32-bit fingerprint of an (action, system) pair (FNV-1a): stored in state,
/// so it must not change between builds. A collision merges two calls' runs, which
/// only makes the test more lenient.
pub fn call_fingerprint(action: &str, system: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in action.bytes().chain([0xff]).chain(system.bytes()) {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

impl Runs {
    /// Adds a call and returns the length of the run it belongs to. The run it ends,
    /// if any, is learned (unless discarded), forgetting as [`CountDistribution::record`].
    pub fn step(&mut self, call: u32, horizon: u32) -> u32 {
        if self.length > 0 && call == self.call {
            self.length = self.length.saturating_add(1);
        } else {
            if self.length > 0 && !self.discarded {
                self.completed.record(self.length, horizon);
            }
            self.call = call;
            self.length = 1;
            self.discarded = false;
        }
        self.length
    }

    /// Keeps the run in progress out of the history (it escalated).
    pub fn discard(&mut self) {
        self.discarded = true;
    }

    /// The length of the run in progress.
    pub fn length(&self) -> u32 {
        self.length
    }

    /// Completed runs held (after halvings).
    pub fn completed(&self) -> f64 {
        self.completed.observations()
    }

    /// The median length of a completed run.
    pub fn median(&self) -> Option<f64> {
        self.completed.median()
    }

    /// The 99th percentile of completed runs' lengths: the agent's longest usual runs.
    pub fn top(&self) -> Option<f64> {
        self.completed.top_percentile()
    }

    /// The share of completed runs at least as long as the run in progress, or `None`
    /// before any run has completed.
    pub fn upper_tail(&self) -> Option<f64> {
        self.completed
            .upper_tail_linear(self.length, PRIOR_EXCEEDANCES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An agent that alternates calls at random, repeating its current call with
    /// probability `repeat`, for `calls` calls (a fixed linear congruential stream).
    fn markov(repeat: f64, calls: usize) -> Runs {
        let mut runs = Runs::default();
        let mut state: u64 = 7;
        let mut call = 0;
        for _ in 0..calls {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            if u >= repeat {
                call = (call + 1) % 4;
            }
            runs.step(call, 2_000);
        }
        runs.step(99, 2_000);
        runs
    }

    fn run_of(runs: &mut Runs, call: u32, length: u32) -> f64 {
        for _ in 0..length {
            runs.step(call, 2_000);
        }
        runs.upper_tail().unwrap()
    }

    #[test]
    fn a_long_run_is_rare_for_an_agent_that_switches_calls() {
        let mut runs = markov(0.5, 20_000);
        assert!(run_of(&mut runs.clone(), 1_000, 12) > 1e-4);
        assert!(run_of(&mut runs, 1_000, 60) < 1e-8);
    }

    #[test]
    fn an_agent_with_long_runs_earns_a_longer_tail() {
        let switcher = run_of(&mut markov(0.5, 20_000), 1_000, 60);
        let repeater = run_of(&mut markov(0.9, 20_000), 1_000, 60);
        assert!(repeater > 1e-3, "{repeater}");
        assert!(repeater > 1e4 * switcher, "{repeater} against {switcher}");
    }

    #[test]
    fn a_run_is_learned_when_it_ends_unless_discarded() {
        let mut runs = markov(0.5, 2_000);
        run_of(&mut runs, 1_000, 50);
        let before = runs.completed();
        runs.discard();
        runs.step(1_001, 2_000);
        assert_eq!(runs.completed(), before);
        run_of(&mut runs, 1_002, 50);
        runs.step(1_003, 2_000);
        assert_eq!(runs.completed(), before + 2.0);
    }

    #[test]
    fn the_fingerprint_is_stable() {
        assert_eq!(
            call_fingerprint("read", "crm"),
            call_fingerprint("read", "crm")
        );
        assert_ne!(
            call_fingerprint("read", "crm"),
            call_fingerprint("rea", "dcrm")
        );
        assert_eq!(call_fingerprint("", ""), 0x7a0b_824e);
    }
}
