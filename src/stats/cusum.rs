//! A one-sided CUSUM on tail probabilities: the sequential test for sustained moderate
//! shifts that no single observation reveals.

use serde::{Deserialize, Serialize};

/// Reference value `k` subtracted from each surprise. Under the null a surprise
/// `-ln u` is Exp(1) with mean 1, so each ordinary observation pulls the sum down by
/// about 1 on average and only a run of unusually large ones pushes it up.
pub const REFERENCE: f64 = 2.0;

/// θ solving `E[exp(θ(S − k))] = 1` for `S ~ Exp(1)`, `k` = [`REFERENCE`]
/// (`e^{−θk} = 1 − θ`). By Lundberg's inequality a null walk ever reaches `h` with
/// probability at most `e^{−θh}`, which is the p-value a sum `h` is reported with.
pub const THETA: f64 = 0.796_812;

/// Page's CUSUM of surprises `-ln u`, where `u` is each observation's upper-tail
/// probability under the agent's own empirical distribution.
///
/// It is calibrated by construction, whatever the distribution's shape: if `u` is
/// uniform under the null (an empirical tail is), `p = e^{−θ·sum}` bounds the chance
/// that ordinary behaviour ever drives the sum this high. Three transfers each beyond
/// the agent's 99th percentile reach p ≈ 1e-5; transfers three times the typical size
/// for an hour get there too, while one large transfer now and then does not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Cusum {
    /// The current sum (never negative).
    pub sum: f64,
}

impl Cusum {
    /// Adds one observation with upper-tail probability `u` and returns the p-value of
    /// the new sum.
    pub fn observe(&mut self, u: f64) -> f64 {
        let surprise = -u.clamp(f64::MIN_POSITIVE, 1.0).ln();
        self.sum = (self.sum + surprise - REFERENCE).max(0.0);
        self.p_value()
    }

    /// Takes back the rise of the latest [`observe`](Self::observe)`(u)`, once that
    /// rise has been reported: the sum stays just below where it crossed, so each
    /// further transfer of the same run crosses again on its own evidence (and is
    /// judged, and learned, one at a time) instead of compounding into ever smaller
    /// p-values that would escalate a change that merely persists.
    pub fn retract(&mut self, u: f64) {
        let rise = -u.clamp(f64::MIN_POSITIVE, 1.0).ln() - REFERENCE;
        if rise > 0.0 {
            self.sum = (self.sum - rise).max(0.0);
        }
    }

    /// `e^{−θ·sum}`: at most the chance that the null walk reaches the current sum.
    pub fn p_value(&self) -> f64 {
        (-THETA * self.sum).exp()
    }

    /// Starts over (after the baseline it tests against changed).
    pub fn reset(&mut self) {
        self.sum = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theta_solves_the_lundberg_equation() {
        let lhs = (-THETA * REFERENCE).exp();
        assert!((lhs - (1.0 - THETA)).abs() < 1e-5);
    }

    #[test]
    fn null_walks_rarely_reach_the_reported_level() {
        // Uniform u from a fixed LCG: the share of 2,000-step walks whose p-value ever
        // falls below 1e-3 must be within a small factor of 2,000 * 1e-3 / (steps per
        // excursion), far below one per walk.
        let mut state = 12345u64;
        let mut uniform = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let mut crossings = 0;
        let steps = 200_000;
        let mut cusum = Cusum::default();
        for _ in 0..steps {
            if cusum.observe(uniform()) < 1e-3 {
                crossings += 1;
                cusum.reset();
            }
        }
        assert!(crossings <= steps / 1_000, "{crossings} crossings");
    }

    #[test]
    fn a_retracted_rise_leaves_the_sum_where_it_was() {
        let mut cusum = Cusum::default();
        for _ in 0..5 {
            cusum.observe(0.01);
        }
        let before = cusum.sum;
        cusum.observe(1e-4);
        cusum.retract(1e-4);
        assert!((cusum.sum - before).abs() < 1e-9);
        cusum.retract(0.9);
        assert!((cusum.sum - before).abs() < 1e-9, "a fall is not retracted");
    }

    #[test]
    fn a_sustained_shift_is_caught_quickly() {
        let mut cusum = Cusum::default();
        let steps = (0..20).take_while(|_| cusum.observe(0.01) > 1e-6).count();
        assert!(steps < 8, "{steps} steps");
    }
}
