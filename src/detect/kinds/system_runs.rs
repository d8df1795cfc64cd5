//! Runs of larger than usual transfers on one system: `volume`'s test for an
//! exfiltration that interleaves with the agent's other work.
//!
//! An agent that sends a dozen emails at three times their usual size while it goes on
//! reading documents shows nothing agent-wide: each email is within the agent's own
//! tail, and the ordinary reads between them pull a sum of surprises down as fast as
//! the emails push it up. On their own system they are a run: each a deviation or so
//! above that pair's own mean, one after another. A run sums each transfer's deviation
//! from its pair's mean, in the pair's own spread, over `volume`'s open window; a pair
//! whose transfers keep their usual sizes sums to about zero.
//!
//! Only the pairs with a transfer in the open window are kept (one or two for a
//! typical agent), in four bytes each: an agent's stored state is budgeted at 1 KiB.

use serde::{Deserialize, Serialize};

use super::system_sizes::PairSizes;

/// The most one transfer adds to a run, in its pair's standard deviations. One huge
/// transfer is the single-transfer test's to judge; a run is many transfers that are
/// each somewhat large, and a clipped sum is insensitive to a pair's heavy tail.
const CLIP: f64 = 2.5;

/// Fewest transfers a pair needs before its runs are judged by its own sizes.
pub const MIN_TRANSFERS: u8 = 20;

/// Resolution of a run's sum: 1/64 of a standard deviation.
const UNITS: f64 = 64.0;

/// One pair's run in the open window. Stored as four fixed bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "[u8; 4]", into = "[u8; 4]")]
struct PairRun {
    /// The pair's place in the agent's table of sizes (see
    /// [`super::system_sizes::SystemSizes::own`]).
    slot: u8,
    /// Sum of the clipped deviations, in [`UNITS`].
    sum: i16,
    /// Transfers in the run.
    count: u8,
}

impl From<PairRun> for [u8; 4] {
    fn from(run: PairRun) -> Self {
        let [sum_low, sum_high] = run.sum.to_le_bytes();
        [run.slot, sum_low, sum_high, run.count]
    }
}

impl From<[u8; 4]> for PairRun {
    fn from([slot, sum_low, sum_high, count]: [u8; 4]) -> Self {
        PairRun {
            slot,
            sum: i16::from_le_bytes([sum_low, sum_high]),
            count,
        }
    }
}

/// The agent's runs in `volume`'s open window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemRuns {
    /// The runs of the pairs with a transfer in the window.
    open: Vec<PairRun>,
}

/// A pair's run, as a transfer leaves it (see [`SystemRuns::add`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    /// Sum of the run's clipped deviations.
    pub sum: f64,
    /// Transfers in the run.
    pub count: u8,
}

impl SystemRuns {
    /// Adds a transfer of `ln_bytes` on the pair in `slot` of the agent's table of
    /// sizes, whose sizes are `pair`, to the pair's run in the open window, and returns
    /// the run.
    pub fn add(&mut self, slot: u8, ln_bytes: f64, pair: PairSizes) -> Run {
        let index = match self.open.iter().position(|run| run.slot == slot) {
            Some(index) => index,
            None => {
                self.open.push(PairRun {
                    slot,
                    ..PairRun::default()
                });
                self.open.len() - 1
            }
        };
        let run = &mut self.open[index];
        let deviation = ((ln_bytes - pair.mean) / pair.sd).clamp(-CLIP, CLIP);
        let sum = f64::from(run.sum) / UNITS + deviation;
        run.sum = (sum * UNITS)
            .round()
            .clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16;
        run.count = run.count.saturating_add(1);
        Run {
            sum,
            count: run.count,
        }
    }

    /// Closes the run of the pair in `slot` (another pair took its place).
    pub fn forget(&mut self, slot: u8) {
        self.open.retain(|run| run.slot != slot);
    }

    /// Closes every run (a new window opened, or the baseline they were measured
    /// against moved).
    pub fn clear(&mut self) {
        self.open.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAIR: PairSizes = PairSizes {
        mean: 10.0,
        sd: 1.0,
    };

    #[test]
    fn a_run_sums_its_pairs_clipped_deviations_until_cleared() {
        let mut runs = SystemRuns::default();
        let first = runs.add(1, 12.0, PAIR);
        assert_eq!(first.count, 1);
        assert!((first.sum - 2.0).abs() < 0.02, "{first:?}");
        // Another pair's transfers are its own run.
        let other = runs.add(2, 13.0, PAIR);
        assert_eq!(other.count, 1);
        // Six deviations up count as CLIP.
        let clipped = runs.add(1, 16.0, PAIR);
        assert_eq!(clipped.count, 2);
        assert!((clipped.sum - 2.0 - CLIP).abs() < 0.02, "{clipped:?}");
        let below = runs.add(1, 9.0, PAIR);
        assert!((below.sum - 3.5).abs() < 0.02, "{below:?}");
        runs.clear();
        let next = runs.add(2, 10.0, PAIR);
        assert_eq!(next.count, 1);
        assert!(next.sum.abs() < 0.02, "{next:?}");
        assert_eq!(
            runs.open.len(),
            1,
            "only pairs seen in the open window are kept"
        );
    }

    #[test]
    fn a_run_is_stored_in_four_bytes_and_read_back_exactly() {
        let mut runs = SystemRuns::default();
        runs.add(1, 12.0, PAIR);
        runs.add(2, 7.5, PAIR);
        let bytes = postcard::to_stdvec(&runs).unwrap();
        assert_eq!(bytes.len(), 1 + 2 * 4, "{bytes:?}");
        assert_eq!(postcard::from_bytes::<SystemRuns>(&bytes).unwrap(), runs);
    }

    #[test]
    fn a_forgotten_slot_starts_a_new_run() {
        let mut runs = SystemRuns::default();
        runs.add(1, 12.0, PAIR);
        runs.add(2, 12.0, PAIR);
        runs.forget(1);
        assert_eq!(runs.add(1, 12.0, PAIR).count, 1);
        assert_eq!(runs.add(2, 12.0, PAIR).count, 2);
    }
}
