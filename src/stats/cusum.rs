//! A one-sided CUSUM on tail probabilities: the sequential test for sustained moderate
//! shifts that no single observation reveals.

use serde::{Deserialize, Serialize};

/// Reference value `k` subtracted from each surprise. Under the null a surprise
/// `-ln u` is Exp(1) with mean 1, so each ordinary observation pulls the sum down by
/// at least 0.6 on average and only a run of unusually large ones pushes it up.
///
/// Page's design rule puts `k` halfway between the mean surprise under the null (1)
/// and under the smallest shift the test is meant to catch quickly. The design point
/// is a shift of one standard deviation of the residual (each observation's `z` one
/// higher), whose mean surprise is 2.23: `k = 1.6`. The earlier `k = 2` drifted
/// downwards for any shift under 0.8 sd, so an agent whose sizes spread widely (sd
/// of `ln bytes` 1.4, common for agents mixing small calls and exports) could move
/// three times its usual size for hours unseen. A smaller `k` costs little for large
/// shifts: six transfers beyond the 99th percentile still reach p ≈ 1e-5.
pub const REFERENCE: f64 = 1.6;

/// θ solving `E[exp(θ(S − k))] = 1` for `S ~ Exp(1)`, `k` = [`REFERENCE`]
/// (`e^{−θk} = 1 − θ`). By Lundberg's inequality a null walk ever reaches `h` with
/// probability at most `e^{−θh}`, which is the p-value a sum `h` is reported with.
pub const THETA: f64 = 0.641_981;

/// Page's CUSUM of surprises `-ln u`, where `u` is each observation's upper-tail
/// probability under the agent's own empirical distribution.
///
/// It is calibrated by construction, whatever the distribution's shape: if `u` is
/// uniform under the null (an empirical tail is), `p = e^{−θ·sum}` bounds the chance
/// that ordinary behaviour ever drives the sum this high. Six transfers each beyond
/// the agent's 99th percentile reach p ≈ 1e-5, and a shift of one standard deviation
/// sustained for about forty transfers gets there too, while one large transfer now
/// and then does not.
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

    /// Uniform numbers in (0, 1) from a fixed LCG, the same on every run.
    fn uniforms(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
    }

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
        let mut uniform = uniforms(12345);
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

    /// Upper-tail probability of a standard normal `z` (a Student-t with a million
    /// degrees of freedom).
    fn normal_sf(z: f64) -> f64 {
        crate::stats::student_t_sf(z, 1e6)
    }

    #[test]
    fn a_shift_of_four_fifths_of_an_sd_is_caught_within_150_transfers_and_no_shift_is_not() {
        // Standard normal residuals from a fixed LCG (Box-Muller), then the same
        // residuals 0.8 sd higher: three times the usual size for an agent whose
        // `ln bytes` spread by 1.4 (with `k = 2` the sum drifts down on such a shift).
        let mut uniform = uniforms(99);
        let residuals: Vec<f64> = (0..2_000)
            .map(|_| {
                let (a, b) = (uniform(), uniform());
                (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
            })
            .collect();
        let least_p = |shift: f64, steps: usize| {
            let mut cusum = Cusum::default();
            residuals[..steps]
                .iter()
                .map(|z| cusum.observe(normal_sf(z + shift)))
                .fold(1.0, f64::min)
        };
        assert!(least_p(0.8, 150) < 1e-6, "{}", least_p(0.8, 150));
        assert!(least_p(0.0, 2_000) > 1e-3, "{}", least_p(0.0, 2_000));
    }

    #[test]
    fn a_sustained_shift_is_caught_quickly() {
        let mut cusum = Cusum::default();
        let steps = (0..20).take_while(|_| cusum.observe(0.01) > 1e-6).count();
        assert!(steps < 8, "{steps} steps");
    }
}
