//! An agent's empirical distribution of transfer sizes, on a log scale.

use serde::{Deserialize, Serialize};

use super::peaks::{shift_counters, LogBins, Prior};

/// Bins per power of two: a bin spans a factor of √2 in bytes.
const BINS_PER_OCTAVE: f64 = 2.0;
/// Bins: sizes from 1 byte to 2^32 bytes; anything larger lands in the last bin.
pub const BINS: usize = 64;

/// A histogram of `log2(1 + bytes)` in bins of half an octave, with `u16` counters
/// that all halve when one saturates (so old behaviour fades and the shape stays).
///
/// It answers "what share of this agent's transfers were at least this large?" without
/// assuming a shape: real payload sizes are mixtures (small API calls, occasional
/// exports), and a log-normal fitted to them over- or under-states the tail. That
/// empirical tail is what the sequential test in `volume` runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHistogram {
    counts: [u16; BINS],
    /// The sum of `counts` (not stored: rebuilt on load), which every transfer reads
    /// twice: summing 64 counters each time was a tenth of `volume`'s score.
    total: u32,
}

impl Default for LogHistogram {
    fn default() -> Self {
        LogHistogram {
            counts: [0; BINS],
            total: 0,
        }
    }
}

impl LogHistogram {
    /// The bin of a transfer of `bytes`.
    pub fn bin(bytes: f64) -> usize {
        Self::bin_of_ln(bytes.max(0.0).ln_1p())
    }

    /// The bin of a transfer whose `ln(1 + bytes)` is `ln_size` (callers that already
    /// have the logarithm skip a second one).
    pub fn bin_of_ln(ln_size: f64) -> usize {
        let position = ln_size.max(0.0) * (BINS_PER_OCTAVE / std::f64::consts::LN_2);
        (position as usize).min(BINS - 1)
    }

    /// Counts one transfer of `ln(1 + bytes)` = `ln_size`.
    pub fn record_ln(&mut self, ln_size: f64) {
        let bin = Self::bin_of_ln(ln_size);
        if self.counts[bin] == u16::MAX {
            for count in &mut self.counts {
                *count /= 2;
            }
            self.total = Self::sum(&self.counts);
        }
        self.counts[bin] += 1;
        self.total += 1;
    }

    /// Transfers counted (after halvings).
    pub fn total(&self) -> u32 {
        self.total
    }

    fn sum(counts: &[u16; BINS]) -> u32 {
        counts.iter().map(|&c| u32::from(c)).sum()
    }

    /// The upper-tail share of transfers at least as large as `bytes` (mid-rank: half
    /// of its own bin counts), with half a pseudo-transfer beyond anything seen, so a
    /// size never seen is rare but not impossible.
    pub fn upper_tail(&self, bytes: f64) -> f64 {
        self.upper_tail_ln(bytes.max(0.0).ln_1p())
    }

    /// [`LogHistogram::upper_tail`] of a transfer whose `ln(1 + bytes)` is `ln_size`.
    pub fn upper_tail_ln(&self, ln_size: f64) -> f64 {
        let bin = Self::bin_of_ln(ln_size);
        let above: u32 = self.counts[bin + 1..].iter().map(|&c| u32::from(c)).sum();
        let tail = f64::from(above) + 0.5 * f64::from(self.counts[bin]) + 0.5;
        (tail / (f64::from(self.total()) + 1.0)).min(1.0)
    }

    /// The upper tail of a transfer of `ln(1 + bytes)` = `ln_size` beyond the 99th
    /// percentile, extrapolated by peaks over threshold (see [`super::peaks`]) with a
    /// prior scale of `resolution` worth `weight` transfers, and never a narrower scale
    /// than `resolution`; `None` while empty.
    pub fn peaks_tail_ln(&self, ln_size: f64, resolution: f64, weight: f64) -> Option<f64> {
        LogBins {
            counters: &self.counts,
            width: std::f64::consts::LN_2 / BINS_PER_OCTAVE,
            unit: 1.0,
        }
        .upper_tail(ln_size, |_| Prior {
            scale: resolution,
            weight,
            floor: resolution,
        })
    }

    /// Moves the whole distribution by `octaves` (positive: larger), keeping its shape.
    /// Used when a sustained change of transfer sizes is promoted into the baseline.
    pub fn shift(&mut self, octaves: f64) {
        shift_counters(
            &mut self.counts,
            (octaves * BINS_PER_OCTAVE).round() as isize,
        );
        self.total = Self::sum(&self.counts);
    }

    /// The counters, smallest sizes first.
    pub fn counts(&self) -> &[u16; BINS] {
        &self.counts
    }
}

impl Serialize for LogHistogram {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Most bins are empty: store (bin, count) pairs of the others.
        let used: Vec<(u8, u16)> = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(bin, &c)| (bin as u8, c))
            .collect();
        used.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LogHistogram {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let used = Vec::<(u8, u16)>::deserialize(deserializer)?;
        let mut histogram = LogHistogram::default();
        for (bin, count) in used {
            let slot = histogram
                .counts
                .get_mut(usize::from(bin))
                .ok_or_else(|| serde::de::Error::custom(format!("histogram bin {bin}")))?;
            *slot = count;
        }
        histogram.total = LogHistogram::sum(&histogram.counts);
        Ok(histogram)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 990 transfers of about 1 KB and ten beyond the 99th percentile at `excess`
    /// (natural-log units) above it.
    fn with_top_percentile(excess: f64) -> LogHistogram {
        let mut h = LogHistogram::default();
        for _ in 0..990 {
            h.record_ln(1_000f64.ln_1p());
        }
        for _ in 0..10 {
            h.record_ln(1_000f64.ln_1p() + excess);
        }
        h
    }

    #[test]
    fn an_agents_own_tail_outweighs_the_prior_and_never_narrows_below_the_resolution() {
        let ln_far = 1_000f64.ln_1p() + 8.0;
        // A heavy tail: the top percentile lies three units above the rest. Ten
        // exceedances outweigh five pseudo-ones at the resolution.
        let heavy = with_top_percentile(3.0);
        let own = heavy.peaks_tail_ln(ln_far, 0.25, 5.0).unwrap();
        let prior_heavy = heavy.peaks_tail_ln(ln_far, 0.25, 1e6).unwrap();
        assert!(own > 1e3 * prior_heavy, "{own} against {prior_heavy}");
        // A narrow one: no exceedance beyond its bin, so its own scale is about zero;
        // the resolution bounds it.
        let narrow = with_top_percentile(0.0);
        let floored = narrow.peaks_tail_ln(ln_far, 0.25, 5.0).unwrap();
        let resolution = narrow.peaks_tail_ln(ln_far, 0.25, 1e6).unwrap();
        assert!(
            floored >= resolution * 0.999,
            "{floored} against {resolution}"
        );
    }

    #[test]
    fn the_tail_of_a_size_never_seen_is_small_but_not_zero() {
        let mut h = LogHistogram::default();
        for i in 0..999 {
            h.record_ln((1_000.0 + f64::from(i)).ln_1p());
        }
        let huge = h.upper_tail(1e9);
        assert!(huge > 0.0 && huge < 1e-3, "{huge}");
        assert!(h.upper_tail(10.0) > 0.99);
        let typical = h.upper_tail(1_200.0);
        assert!(typical > 0.2 && typical < 0.9, "{typical}");
    }

    #[test]
    fn shifting_moves_the_distribution_by_octaves() {
        let mut h = LogHistogram::default();
        for _ in 0..100 {
            h.record_ln(1_000f64.ln_1p());
        }
        h.shift(3f64.log2());
        assert!(
            h.upper_tail(2_700.0) > 0.3,
            "about three times larger is typical now"
        );
        assert!(h.upper_tail(1_000.0) > 0.99);
    }

    #[test]
    fn serializes_only_used_bins() {
        let mut h = LogHistogram::default();
        h.record_ln(10f64.ln_1p());
        h.record_ln(1e6f64.ln_1p());
        let bytes = postcard::to_stdvec(&h).unwrap();
        assert!(bytes.len() < 10, "{} bytes", bytes.len());
        assert_eq!(postcard::from_bytes::<LogHistogram>(&bytes).unwrap(), h);
    }

    #[test]
    fn the_kept_total_is_the_counters_sum_through_halvings_shifts_and_storage() {
        let sum = |h: &LogHistogram| h.counts().iter().map(|&c| u32::from(c)).sum::<u32>();
        let mut h = LogHistogram::default();
        // Past 65,535 in one bin every counter halves.
        for n in 0..80_000u32 {
            h.record_ln(if n % 7 == 0 { 20.0 } else { 7.0 });
        }
        assert!(sum(&h) < 80_000, "a halving happened");
        assert_eq!(h.total(), sum(&h));
        // Two full bins shifted into the last one saturate it.
        let mut full = LogHistogram::default();
        for n in 0..80_000u32 {
            full.record_ln(if n % 2 == 0 { 20.0 } else { 7.0 });
        }
        full.shift(30.0);
        assert_eq!(full.total(), sum(&full), "after a shift into the last bin");
        assert_eq!(full.total(), u32::from(u16::MAX));
        let stored = postcard::to_stdvec(&h).unwrap();
        let read: LogHistogram = postcard::from_bytes(&stored).unwrap();
        assert_eq!(read.total(), sum(&h));
        assert_eq!(read, h);
    }
}
