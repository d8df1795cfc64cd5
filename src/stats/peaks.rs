//! Peaks over threshold: the upper tail of a log-binned histogram beyond its 99th
//! percentile, shared by the histograms of transfer sizes and of call counts.

/// The share of observations the tail model is fitted to: those above the 99th
/// percentile.
pub const TAIL_SHARE: f64 = 0.01;

/// A read-only view of a histogram whose bin `i` covers `[i, i + 1) × width` on a
/// log scale.
///
/// ## The tail model
///
/// Up to the 99th percentile `u`, the tail is the empirical share (mid-rank within a
/// bin). Beyond it, extreme-value theory's peaks over threshold: the excess `x − u`
/// is exponential, `p = 0.01 · exp(−(x − u) / s)`. The scale `s` is the mean excess
/// of the observations above `u`, shrunk towards a prior scale by a number of
/// pseudo-observations, and at least the prior's floor. The prior is the caller's:
/// what "a little beyond the most ever seen" means for what it counts.
pub struct LogBins<'a> {
    /// The counters, lowest bin first.
    pub counters: &'a [u16],
    /// Width of a bin on the log scale.
    pub width: f64,
    /// Counter units per observation.
    pub unit: f64,
}

/// The prior of the tail's scale: a scale and its weight in observations.
#[derive(Debug, Clone, Copy)]
pub struct Prior {
    /// The scale assumed before the data say otherwise.
    pub scale: f64,
    /// Its weight, in pseudo-observations above the threshold.
    pub weight: f64,
    /// The least scale the data may bring it down to (the resolution of what is
    /// measured; 0 for none).
    pub floor: f64,
}

impl LogBins<'_> {
    fn total(&self) -> f64 {
        self.counters.iter().map(|&c| f64::from(c)).sum()
    }

    /// The `share` quantile, interpolated linearly within its bin.
    fn quantile(&self, share: f64, total: f64) -> f64 {
        let target = share * total;
        let mut below = 0.0;
        for (bin, &count) in self.counters.iter().enumerate() {
            let count = f64::from(count);
            if count > 0.0 && below + count >= target {
                let within = ((target - below) / count).clamp(0.0, 1.0);
                return (bin as f64 + within) * self.width;
            }
            below += count;
        }
        self.counters.len() as f64 * self.width
    }

    /// The `share` quantile, or `None` while the histogram is empty.
    pub fn quantile_of(&self, share: f64) -> Option<f64> {
        let total = self.total();
        (total > 0.0).then(|| self.quantile(share, total))
    }

    /// The median, or `None` while the histogram is empty.
    pub fn median(&self) -> Option<f64> {
        let total = self.total();
        (total > 0.0).then(|| self.quantile(0.5, total))
    }

    /// The share of observations above `x` (mid-rank in its bin).
    fn share_above(&self, x: f64, total: f64) -> f64 {
        let bin = ((x / self.width).max(0.0) as usize).min(self.counters.len() - 1);
        let above: f64 = self.counters[bin + 1..].iter().map(|&c| f64::from(c)).sum();
        (above + 0.5 * f64::from(self.counters[bin])) / total
    }

    /// Observations above `threshold` and the sum of their excesses over it, each
    /// taken at its bin's centre and measured on the scale `measure` maps a log to.
    fn excess_over(&self, threshold: f64, measure: impl Fn(f64) -> f64) -> (f64, f64) {
        let mut exceedances = 0.0;
        let mut excess = 0.0;
        for (bin, &count) in self.counters.iter().enumerate() {
            let centre = (bin as f64 + 0.5) * self.width;
            if count > 0 && centre > threshold {
                let weight = f64::from(count) / self.unit;
                exceedances += weight;
                excess += weight * (measure(centre) - measure(threshold));
            }
        }
        (exceedances, excess)
    }

    /// The upper-tail probability of `x`, with the exponential beyond the 99th
    /// percentile on the scale `measure` maps a log to (the log itself, or the value).
    fn tail_on(
        &self,
        x: f64,
        measure: impl Fn(f64) -> f64,
        prior: impl Fn(f64) -> Prior,
    ) -> Option<f64> {
        let total = self.total();
        if total <= 0.0 {
            return None;
        }
        let threshold = self.quantile(1.0 - TAIL_SHARE, total);
        if x <= threshold {
            return Some(self.share_above(x, total).max(TAIL_SHARE));
        }
        let (exceedances, excess) = self.excess_over(threshold, &measure);
        let prior = prior(measure(threshold));
        let scale =
            ((excess + prior.weight * prior.scale) / (exceedances + prior.weight)).max(prior.floor);
        Some(TAIL_SHARE * (-(measure(x) - measure(threshold)) / scale).exp())
    }

    /// The upper-tail probability of `x`, or `None` while the histogram is empty.
    /// `prior` gives the prior of the scale for a 99th percentile `u`.
    pub fn upper_tail(&self, x: f64, prior: impl Fn(f64) -> Prior) -> Option<f64> {
        self.tail_on(x, |log| log, prior)
    }

    /// The upper-tail probability of `x` (a log) with an exponential tail on the
    /// linear scale beyond the 99th percentile `U`: `p = 0.01 · exp(−(e^x − U) / s)`,
    /// `s` the mean linear excess of the observations above `U` shrunk towards
    /// `prior(U)`. For quantities whose tail is a mixture of geometrics (runs of a
    /// Markov chain), where the Pareto tail of [`Self::upper_tail`] is far too heavy.
    /// `None` while the histogram is empty.
    pub fn upper_tail_linear(&self, x: f64, prior: impl Fn(f64) -> Prior) -> Option<f64> {
        self.tail_on(x, f64::exp, prior)
    }

    /// The upper-tail probability of `x` (the log of a count) with an exponential tail
    /// on the square-root scale beyond the 99th percentile `U`:
    /// `p = 0.01 · exp(−(2√c − 2√U) / s)`. `2√c` is a Poisson count's variance-stabilised
    /// scale (its spread is 1 whatever the rate), so `s` is in units of the spread of a
    /// count at the agent's busiest pace. `None` while the histogram is empty.
    pub fn upper_tail_sqrt(&self, x: f64, prior: impl Fn(f64) -> Prior) -> Option<f64> {
        self.tail_on(x, |log| 2.0 * (log / 2.0).exp(), prior)
    }
}

/// Moves every counter `bins` bins up (down if negative), piling what falls off either
/// end into the end bin: a learned distribution moved by a promoted change, its shape
/// kept.
pub fn shift_counters<const N: usize>(counters: &mut [u16; N], bins: isize) {
    if bins == 0 {
        return;
    }
    let mut shifted = [0u16; N];
    for (bin, &count) in counters.iter().enumerate() {
        let target = (bin as isize + bins).clamp(0, N as isize - 1) as usize;
        shifted[target] = shifted[target].saturating_add(count);
    }
    *counters = shifted;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bins(counters: &[u16]) -> LogBins<'_> {
        LogBins {
            counters,
            width: 0.1,
            unit: 1.0,
        }
    }

    #[test]
    fn below_the_99th_percentile_the_tail_is_empirical() {
        let mut counters = [0u16; 40];
        counters[10] = 50;
        counters[20] = 50;
        let tail = bins(&counters).upper_tail(1.5, |_| Prior {
            scale: 0.1,
            weight: 1.0,
            floor: 0.0,
        });
        assert_eq!(tail, Some(0.5));
    }

    #[test]
    fn beyond_it_the_tail_decays_with_the_prior_scale_until_data_say_otherwise() {
        let mut counters = [0u16; 80];
        counters[10] = 1_000;
        let prior = |_| Prior {
            scale: 0.1,
            weight: 30.0,
            floor: 0.0,
        };
        // The 99th percentile is 1.099, inside bin 10; beyond it one e-fold per 0.1.
        let tight = bins(&counters).upper_tail(2.0, prior).unwrap();
        let expected = 0.01 * (-(2.0 - 1.099) / 0.1f64).exp();
        assert!(
            (tight / expected - 1.0).abs() < 1e-6,
            "{tight} against {expected}"
        );
        // Five observations far out (half a percent) widen the tail a thousandfold.
        counters[30] = 5;
        let wide = bins(&counters).upper_tail(2.0, prior).unwrap();
        assert!(wide > 500.0 * tight, "{wide} against {tight}");
    }

    #[test]
    fn the_linear_tail_decays_per_unit_not_per_factor() {
        // Everything at about e (bin 10 of width 0.1): beyond it, a prior scale of one
        // unit gives e-folds per unit, far lighter than the log tail's.
        let mut counters = [0u16; 80];
        counters[10] = 1_000;
        let prior = |_| Prior {
            scale: 1.0,
            weight: 30.0,
            floor: 0.0,
        };
        let top = 1.099f64.exp();
        let at = |v: f64| bins(&counters).upper_tail_linear(v.ln(), prior).unwrap();
        let expected = 0.01 * (-(10.0 - top)).exp();
        assert!((at(10.0) / expected - 1.0).abs() < 1e-3, "{}", at(10.0));
        assert!(at(10.0) < bins(&counters).upper_tail(10f64.ln(), prior).unwrap());
    }

    #[test]
    fn an_empty_histogram_has_no_tail() {
        assert_eq!(
            bins(&[0; 8]).upper_tail(1.0, |_| Prior {
                scale: 1.0,
                weight: 1.0,
                floor: 0.0,
            }),
            None
        );
    }
}
