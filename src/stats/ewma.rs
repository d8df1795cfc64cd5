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

/// [`EwStats`] stored in single precision: about ten bytes instead of eighteen, for
/// state kept per agent where seven significant digits are plenty (a count's mean and
/// variance). Updates run in double precision and round once, so a stored agent and a
/// cached one hold the same numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CompactStats {
    /// Observations folded in (saturating).
    pub n: u32,
    mean: f32,
    var: f32,
}

impl CompactStats {
    /// The estimates in double precision, to compute with.
    pub fn widen(&self) -> EwStats {
        EwStats {
            n: self.n,
            mean: f64::from(self.mean),
            var: f64::from(self.var),
        }
    }

    /// Folds in one observation (see [`EwStats::update`]).
    pub fn update(&mut self, x: f64, horizon: u32) {
        let mut wide = self.widen();
        wide.update(x, horizon);
        *self = Self::from(wide);
    }
}

impl From<EwStats> for CompactStats {
    fn from(wide: EwStats) -> Self {
        CompactStats {
            n: wide.n,
            mean: wide.mean as f32,
            var: wide.var as f32,
        }
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
    fn compact_stats_follow_the_double_precision_ones_and_store_smaller() {
        let mut wide = EwStats::default();
        let mut compact = CompactStats::default();
        for i in 0..5_000 {
            let x = f64::from(i % 17) * 3.5;
            wide.update(x, 2_000);
            compact.update(x, 2_000);
        }
        let narrow = compact.widen();
        assert_eq!(narrow.n, wide.n);
        assert!(
            (narrow.mean - wide.mean).abs() < 1e-4 * wide.mean,
            "{narrow:?} {wide:?}"
        );
        assert!(
            (narrow.var - wide.var).abs() < 1e-3 * wide.var,
            "{narrow:?} {wide:?}"
        );
        let size = |bytes: Vec<u8>| bytes.len();
        assert!(
            size(postcard::to_allocvec(&compact).unwrap()) + 8
                <= size(postcard::to_allocvec(&wide).unwrap())
        );
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
