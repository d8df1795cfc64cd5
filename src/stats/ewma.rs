//! Exponentially weighted mean and variance.

use serde::{Deserialize, Serialize};

/// Running mean and variance whose memory is `horizon` observations.
///
/// For the first `horizon` observations the weight is `1/n`, so the estimates equal the
/// exact sample mean and population variance (a baseline is right from its first day);
/// after that the weight stays at `1/horizon`, so old behaviour fades and the baseline
/// follows an agent whose job slowly changes. This is Finch's incremental form
/// (`var ← (1−α)(var + α·δ²)`), which needs no stored history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EwStats {
    /// Observations folded in (saturating).
    pub n: u32,
    /// Weighted mean.
    pub mean: f64,
    /// Weighted population variance.
    pub var: f64,
}

impl EwStats {
    /// Folds in one observation.
    pub fn update(&mut self, x: f64, horizon: u32) {
        self.n = self.n.saturating_add(1);
        let alpha = 1.0 / f64::from(self.n.min(horizon.max(1)));
        let delta = x - self.mean;
        self.mean += alpha * delta;
        self.var = (1.0 - alpha) * (self.var + alpha * delta * delta);
    }

    /// Standard deviation, never below `floor`, so a perfectly regular agent does not
    /// turn every tiny wobble into an infinite z-score.
    pub fn sd(&self, floor: f64) -> f64 {
        self.var.max(0.0).sqrt().max(floor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn matches_exact_moments_within_the_horizon(xs in prop::collection::vec(-1e3f64..1e3, 1..200)) {
            let mut stats = EwStats::default();
            for &x in &xs {
                stats.update(x, 1_000);
            }
            let n = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / n;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
            prop_assert!((stats.mean - mean).abs() < 1e-6 * (1.0 + mean.abs()));
            prop_assert!((stats.var - var).abs() < 1e-6 * (1.0 + var));
        }

        #[test]
        fn variance_is_never_negative(xs in prop::collection::vec(-1e6f64..1e6, 1..300), horizon in 1u32..50) {
            let mut stats = EwStats::default();
            for &x in &xs {
                stats.update(x, horizon);
                prop_assert!(stats.var >= 0.0);
            }
        }
    }

    #[test]
    fn forgets_old_level_beyond_the_horizon() {
        let mut stats = EwStats::default();
        for _ in 0..1_000 {
            stats.update(0.0, 50);
        }
        for _ in 0..500 {
            stats.update(10.0, 50);
        }
        assert!((stats.mean - 10.0).abs() < 0.01, "mean {}", stats.mean);
    }

    #[test]
    fn sd_respects_floor() {
        let stats = EwStats {
            n: 10,
            mean: 1.0,
            var: 0.0,
        };
        assert_eq!(stats.sd(0.25), 0.25);
    }
}
