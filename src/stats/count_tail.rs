//! An agent's empirical distribution of a count, on a log scale, with a parametric
//! upper tail beyond its 99th percentile.

use serde::{Deserialize, Serialize};

use super::peaks::{shift_counters, LogBins, Prior};

/// Bins per doubling of the count: a bin spans a factor of about 1.19.
const BINS_PER_OCTAVE: f64 = 4.0;
/// Bins: counts from 1 to 2^14; larger counts land in the last bin.
const BINS: usize = 56;
/// Weight of one observation in the fixed-point counters, so that halving keeps a
/// single old observation for a few halvings instead of rounding it away at once.
const UNIT: u16 = 4;
/// Pseudo-observations of the excess at the Poisson resolution: the prior of the
/// tail's scale (see [`CountDistribution`]).
const PRIOR_EXCEEDANCES: f64 = 30.0;

/// The distribution of counts (calls per sliding window, seen at each event) as a
/// histogram of `log2(count)` in quarter-octave bins.
///
/// ## Why not a mean and a variance
///
/// The count an agent's events see in a ten-minute window is a mixture: the first
/// call of a session sees one, calls deep in a busy session see dozens. Its variance
/// is dominated by that ramp, not by how fast the agent can go, so a negative binomial
/// fitted to the mean and variance puts the agent's busiest sessions and a loop at five
/// times that pace within a few orders of magnitude of each other. The upper tail is
/// what a runaway is judged against, so it is fitted to the upper tail.
///
/// ## The tail model
///
/// Up to the 99th percentile `U` of the count, the tail is the empirical share.
/// Beyond it, extreme-value theory's peaks-over-threshold, on the square-root scale
/// that makes a Poisson count's spread 1 whatever its rate: the excess
/// `2√c − 2√U` is exponential, `p = 0.01 · exp(−(2√c − 2√U) / s)`. The scale `s` is
/// the mean excess of the counts seen above `U`, shrunk towards 1 (the spread of a
/// count at the agent's busiest pace) by [`PRIOR_EXCEEDANCES`] pseudo-observations.
/// The counts above the 99th percentile come from a handful of busy episodes, each
/// contributing dozens of nearly equal counts, so until an agent has shown a few dozen
/// of them its tail is taken as variation around its busiest pace. That tail,
/// `exp(−2(√c − √U))`, is heavier than any negative binomial's (geometric) or
/// Poisson's, as real paces wander; an agent whose busy hours really do vary widely
/// shows that in its mean excess and earns a wider tail. An agent whose top percentile
/// is 100 calls per window reaches p = 1e-6 at about 213, one whose top is 10 calls
/// at about 60. (Until state format 10 the excess was taken on the log scale, with the
/// same spread at `U`: a power law, `(c / U)^(−√U) / 100`, under which a slow agent's
/// loop needed 18 times its top count for 1e-6, and moderate runaways of agents at
/// one call a minute went unseen on independent fleets.) See [`super::peaks`].
///
/// Memory: when the histogram holds `2 × horizon` observations, every counter halves,
/// so the distribution describes the agent's last `horizon` to `2 × horizon` events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountDistribution {
    counts: [u16; BINS],
    /// The sum of `counts` (not stored: rebuilt on load), so that recording, which
    /// every event does for every window, needs no pass over the bins.
    total: u32,
}

impl Default for CountDistribution {
    fn default() -> Self {
        CountDistribution {
            counts: [0; BINS],
            total: 0,
        }
    }
}

impl CountDistribution {
    /// The bin of `count`: `⌊4·log₂ count⌋`, capped at the last bin. Computed exactly in
    /// integers as `⌊log₂ count⁴⌋` (the highest set bit of the fourth power), as every
    /// count of every window is recorded: a floating-point logarithm cost about forty
    /// instructions a record. Both give the same bin for every `u32` (a test compares
    /// them for every count below the cap, reached at 13,778).
    fn bin(count: u32) -> usize {
        const { assert!(BINS_PER_OCTAVE == 4.0) };
        let fourth = u128::from(count.max(1)).pow(4);
        ((127 - fourth.leading_zeros()) as usize).min(BINS - 1)
    }

    /// Observations held (after halvings).
    pub fn observations(&self) -> f64 {
        f64::from(self.total()) / f64::from(UNIT)
    }

    fn total(&self) -> u32 {
        self.total
    }

    fn sum(counts: &[u16; BINS]) -> u32 {
        counts.iter().map(|&c| u32::from(c)).sum()
    }

    /// Adds one observation to `bin`, first forgetting half of the history once it
    /// holds `limit`. Counters cannot saturate: the total stays below `limit + UNIT`,
    /// which the horizon's clamp keeps under `u16::MAX`.
    fn add(&mut self, bin: usize, limit: u32) {
        if self.total >= limit {
            for counter in &mut self.counts {
                *counter /= 2;
            }
            self.total = Self::sum(&self.counts);
        }
        self.counts[bin] += UNIT;
        self.total += u32::from(UNIT);
    }

    /// Records one count, forgetting half of the history once it holds `2 × horizon`.
    pub fn record(&mut self, count: u32, horizon: u32) {
        self.add(Self::bin(count), Self::limit(horizon));
    }

    fn limit(horizon: u32) -> u32 {
        2 * horizon.clamp(1, 8_000) * u32::from(UNIT)
    }

    /// True while nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Folds in the observations of `other` (an episode held back while it was judged),
    /// with the same forgetting as recording them one by one.
    pub fn absorb(&mut self, other: &CountDistribution, horizon: u32) {
        let limit = Self::limit(horizon);
        for (bin, &held) in other.counts.iter().enumerate() {
            for _ in 0..held.div_ceil(UNIT) {
                self.add(bin, limit);
            }
        }
    }

    fn bins(&self) -> LogBins<'_> {
        LogBins {
            counters: &self.counts,
            width: std::f64::consts::LN_2 / BINS_PER_OCTAVE,
            unit: f64::from(UNIT),
        }
    }

    /// The upper-tail probability of a count of at least `count`, or `None` while the
    /// histogram is empty.
    pub fn upper_tail(&self, count: u32) -> Option<f64> {
        // Half a call of continuity correction: counts are integers.
        let x = (f64::from(count) - 0.5).max(1.0).ln();
        self.bins().upper_tail_sqrt(x, |_| Prior {
            scale: 1.0,
            weight: PRIOR_EXCEEDANCES,
            floor: 0.0,
        })
    }

    /// The upper-tail probability of a count of at least `count` with an exponential
    /// tail on the linear scale (see [`LogBins::upper_tail_linear`]): for lengths of
    /// runs, whose tail is a mixture of geometrics. Until the data say otherwise the
    /// tail's scale is the 99th percentile itself, worth `prior_weight` observations:
    /// ten times the top percentile is then a one-in-a-million run.
    pub fn upper_tail_linear(&self, count: u32, prior_weight: f64) -> Option<f64> {
        let x = (f64::from(count) - 0.5).max(1.0).ln();
        self.bins().upper_tail_linear(x, |top| Prior {
            scale: top,
            weight: prior_weight,
            floor: 0.0,
        })
    }

    /// The largest count seen (the lower edge of the highest occupied bin) and the share
    /// of observations in that bin: the furthest point at which the data can still
    /// check a parametric model.
    pub fn largest(&self) -> Option<(f64, f64)> {
        let bin = self.counts.iter().rposition(|&c| c > 0)?;
        let share = f64::from(self.counts[bin]) / f64::from(self.total());
        Some(((bin as f64 / BINS_PER_OCTAVE).exp2(), share))
    }

    /// The count at the 99th percentile, where the parametric tail takes over.
    pub fn top_percentile(&self) -> Option<f64> {
        self.bins().quantile_of(0.99).map(f64::exp)
    }

    /// The median count (what the agent's events usually see).
    pub fn median(&self) -> Option<f64> {
        self.bins().median().map(f64::exp)
    }

    /// Moves the whole distribution by a factor `e^ln_factor`, keeping its shape (a
    /// sustained new pace promoted into the baseline).
    pub fn scale(&mut self, ln_factor: f64) {
        let bins = (ln_factor / std::f64::consts::LN_2 * BINS_PER_OCTAVE).round() as isize;
        shift_counters(&mut self.counts, bins);
        self.total = Self::sum(&self.counts);
    }
}

/// Bins no integer count lands in (those between the bins of 1, 2, 3 and 4), left out
/// of a stored run when empty: five bytes of every distribution that starts at one.
const HOLES: [usize; 5] = [1, 2, 3, 5, 7];

/// Set on the stored first bin when the run leaves out [`HOLES`] (first bins are
/// below [`BINS`], so the bit is free, and records written without it still read).
const WITHOUT_HOLES: u8 = 0x80;

impl Serialize for CountDistribution {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A count's bins are one contiguous run: store its first bin and its counters.
        let first = self.counts.iter().position(|&c| c > 0).unwrap_or(BINS);
        let last = self
            .counts
            .iter()
            .rposition(|&c| c > 0)
            .map_or(first, |l| l + 1);
        let spans_holes = HOLES.iter().any(|bin| (first..last).contains(bin));
        if spans_holes && HOLES.iter().all(|&bin| self.counts[bin] == 0) {
            let run: Vec<u16> = (first..last)
                .filter(|bin| !HOLES.contains(bin))
                .map(|bin| self.counts[bin])
                .collect();
            return (first as u8 | WITHOUT_HOLES, run).serialize(serializer);
        }
        (first as u8, &self.counts[first..last]).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CountDistribution {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (first, run) = <(u8, Vec<u16>)>::deserialize(deserializer)?;
        let mut distribution = CountDistribution::default();
        let without_holes = first & WITHOUT_HOLES != 0;
        let first = usize::from(first & !WITHOUT_HOLES);
        let bins = (first..BINS).filter(|bin| !without_holes || !HOLES.contains(bin));
        let mut stored = run.iter();
        for (bin, &counter) in bins.zip(&mut stored) {
            distribution.counts[bin] = counter;
        }
        if stored.next().is_some() {
            return Err(serde::de::Error::custom(format!(
                "count bins {first}+{}",
                run.len()
            )));
        }
        distribution.total = CountDistribution::sum(&distribution.counts);
        Ok(distribution)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_falls_in_the_quarter_octave_of_its_logarithm() {
        let by_logarithm = |count: u32| {
            let position = f64::from(count.max(1)).log2() * BINS_PER_OCTAVE;
            (position as usize).min(BINS - 1)
        };
        for count in (0..20_000).chain([65_535, 65_536, 1 << 20, u32::MAX]) {
            assert_eq!(
                CountDistribution::bin(count),
                by_logarithm(count),
                "{count}"
            );
        }
        assert_eq!(CountDistribution::bin(16), 16);
        assert_eq!(CountDistribution::bin(15), 15);
    }

    /// Counts seen by the events of sessions that ramp from 1 to `peak` calls.
    fn ramping_sessions(peak: u32, sessions: u32) -> CountDistribution {
        let mut d = CountDistribution::default();
        for _ in 0..sessions {
            for count in 1..=peak {
                d.record(count, 2_000);
            }
        }
        d
    }

    #[test]
    fn the_ramp_of_a_session_is_ordinary_and_five_times_the_peak_is_not() {
        let d = ramping_sessions(60, 30);
        let at_peak = d.upper_tail(60).unwrap();
        assert!(at_peak > 1e-3, "{at_peak}");
        let loop_ = d.upper_tail(300).unwrap();
        assert!(loop_ < 1e-7, "{loop_}");
    }

    #[test]
    fn busy_episodes_that_vary_widely_earn_a_wider_tail() {
        let steady = ramping_sessions(60, 30);
        let mut varied = ramping_sessions(60, 30);
        // Besides its usual sessions, this agent has had 60 busy ones of 80 to 139.
        for peak in 80..140 {
            for count in 60..=peak {
                varied.record(count, 2_000);
            }
        }
        let (steady_p, varied_p) = (
            steady.upper_tail(300).unwrap(),
            varied.upper_tail(300).unwrap(),
        );
        assert!(steady_p < 1e-7, "{steady_p}");
        assert!(varied_p > 10.0 * steady_p, "{varied_p} against {steady_p}");
    }

    #[test]
    fn a_loop_a_few_times_past_a_slow_agents_busiest_count_is_rare() {
        // Sessions that ramp to 16 calls per window: 20 is a busy session, 58 (a loop
        // at several times the agent's pace) is not. The log-scale tail this replaced
        // gave 58 about 6e-5 here: (58 / 16)^(−√16) / 100.
        let d = ramping_sessions(16, 100);
        assert!(d.upper_tail(20).unwrap() > 1e-3);
        let loop_ = d.upper_tail(58).unwrap();
        assert!(loop_ < 3e-5, "{loop_}");
    }

    #[test]
    fn a_regular_agent_keeps_the_poisson_spread() {
        // Always exactly 100 calls per window: a few more is chance, three times is not.
        let mut d = CountDistribution::default();
        for _ in 0..2_000 {
            d.record(100, 2_000);
        }
        assert!(d.upper_tail(115).unwrap() > 1e-3);
        assert!(d.upper_tail(300).unwrap() < 1e-6);
    }

    #[test]
    fn absorbing_an_episode_is_recording_it() {
        let mut recorded = ramping_sessions(20, 10);
        let mut absorbed = recorded.clone();
        let mut episode = CountDistribution::default();
        for count in [30, 31, 45, 45, 60] {
            recorded.record(count, 2_000);
            episode.record(count, 2_000);
        }
        absorbed.absorb(&episode, 2_000);
        assert_eq!(absorbed, recorded);
    }

    #[test]
    fn memory_is_bounded_by_the_horizon() {
        let mut d = ramping_sessions(10, 1_000);
        assert!(d.observations() <= 4_000.0);
        for _ in 0..10_000 {
            d.record(500, 2_000);
        }
        let median = d.median().unwrap();
        assert!((450.0..=550.0).contains(&median), "{median}");
        assert!(d.upper_tail(10).unwrap() > 0.5);
    }

    #[test]
    fn scaling_moves_the_distribution() {
        let mut d = ramping_sessions(60, 30);
        d.scale(2f64.ln());
        assert!(d.upper_tail(120).unwrap() > 1e-3);
        let median = d.median().unwrap();
        assert!((50.0..=70.0).contains(&median), "{median}");
    }

    #[test]
    fn the_bins_no_count_lands_in_are_not_stored() {
        let round_trip = |d: &CountDistribution| {
            let bytes = postcard::to_stdvec(d).unwrap();
            assert_eq!(
                &postcard::from_bytes::<CountDistribution>(&bytes).unwrap(),
                d
            );
            bytes.len()
        };
        let ones_and_fours = ramping_sessions(4, 10);
        let mut shifted = ones_and_fours.clone();
        // A promoted pace moves counts into what were holes: stored whole.
        shifted.scale(0.2);
        assert_eq!(round_trip(&ones_and_fours) + 5, round_trip(&shifted));
    }

    #[test]
    fn serializes_only_the_run_of_used_bins() {
        assert_eq!(
            postcard::from_bytes::<CountDistribution>(
                &postcard::to_stdvec(&CountDistribution::default()).unwrap()
            )
            .unwrap(),
            CountDistribution::default()
        );
        let d = ramping_sessions(20, 3);
        let bytes = postcard::to_stdvec(&d).unwrap();
        assert!(bytes.len() < 120, "{} bytes", bytes.len());
        assert_eq!(
            postcard::from_bytes::<CountDistribution>(&bytes).unwrap(),
            d
        );
    }
}
