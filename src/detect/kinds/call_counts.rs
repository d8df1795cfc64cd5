//! Sliding counts of the agent's recent calls, one per kind of call (an action on a
//! system), for the few kinds it makes most.
//!
//! Stored with every agent, so it is kept small: the kinds share one clock (the
//! newest bucket), a kind is named by 16 bits of its fingerprint, and totals are
//! summed when asked for. About 50 bytes where four [`SlidingCount`]s with their
//! fingerprints took 80.
//!
//! [`SlidingCount`]: super::SlidingCount

use serde::{Deserialize, Serialize};

use super::sliding::BUCKETS;

/// Kinds of call counted at once. A loop repeats one call, so it is always among
/// the agent's busiest; a kind that comes back after being dropped starts over, which
/// can only undercount.
pub const KINDS: usize = 4;

/// One kind of call and its calls per bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Kind {
    /// The low 16 bits of the call's fingerprint, little-endian. A collision between
    /// two of the few kinds counted at once merges their counts (about one agent in
    /// ten thousand), which can only make a kind look busier than it is.
    call: [u8; 2],
    /// Calls per bucket, indexed by bucket number modulo [`BUCKETS`].
    counts: [u16; BUCKETS],
}

impl Kind {
    fn total(&self) -> u32 {
        self.counts.iter().copied().map(u32::from).sum()
    }
}

/// Sliding counts per kind of call, for the [`KINDS`] kinds most recently busy, in
/// windows of one width that slide in tenths of it, as a [`super::SlidingCount`] does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Stored", into = "Stored")]
pub struct CallCounts {
    /// Index (time / bucket width) of the newest bucket of every kind.
    newest: i64,
    kinds: [Kind; KINDS],
    /// Each kind's calls in its window (not stored: rebuilt on load). Every event reads
    /// them to find its kind and the quietest one; summing the buckets each time was a
    /// quarter of `rate`'s score.
    totals: [u32; KINDS],
}

/// What is stored of [`CallCounts`]: the buckets, not their sums.
#[derive(Serialize, Deserialize)]
struct Stored {
    newest: i64,
    kinds: [Kind; KINDS],
}

impl From<Stored> for CallCounts {
    fn from(stored: Stored) -> Self {
        CallCounts {
            newest: stored.newest,
            totals: stored.kinds.map(|kind| kind.total()),
            kinds: stored.kinds,
        }
    }
}

impl From<CallCounts> for Stored {
    fn from(counts: CallCounts) -> Self {
        Stored {
            newest: counts.newest,
            kinds: counts.kinds,
        }
    }
}

impl CallCounts {
    /// Counts a call of fingerprint `call` at `time_ms` and returns the calls of that
    /// kind in the window of `width_ms` ending there. A kind not counted yet takes
    /// the place of the one with the fewest calls in its window. Late calls count in
    /// the newest bucket.
    pub fn add(&mut self, call: u32, time_ms: i64, width_ms: i64) -> u32 {
        self.slide(time_ms, width_ms);
        let name = (call as u16).to_le_bytes();
        let slot = self.newest.rem_euclid(BUCKETS as i64) as usize;
        let index = match (0..KINDS).find(|&i| self.kinds[i].call == name && self.totals[i] > 0) {
            Some(index) => index,
            None => {
                let quietest = (0..KINDS)
                    .min_by_key(|&index| self.totals[index])
                    .unwrap_or(0);
                self.kinds[quietest] = Kind {
                    call: name,
                    counts: [0; BUCKETS],
                };
                self.totals[quietest] = 0;
                quietest
            }
        };
        let count = &mut self.kinds[index].counts[slot];
        if *count < u16::MAX {
            *count += 1;
            self.totals[index] += 1;
        }
        self.totals[index]
    }

    /// Moves the newest bucket to `time_ms`'s, emptying the buckets that slide out.
    fn slide(&mut self, time_ms: i64, width_ms: i64) {
        let bucket_ms = (width_ms / BUCKETS as i64).max(1);
        let bucket = time_ms.div_euclid(bucket_ms);
        if bucket <= self.newest {
            return;
        }
        let gap = bucket - self.newest;
        if gap >= BUCKETS as i64 {
            for kind in &mut self.kinds {
                kind.counts = [0; BUCKETS];
            }
            self.totals = [0; KINDS];
        } else {
            for step in 1..=gap {
                let slot = (self.newest + step).rem_euclid(BUCKETS as i64) as usize;
                for (kind, total) in self.kinds.iter_mut().zip(&mut self.totals) {
                    *total -= u32::from(kind.counts[slot]);
                    kind.counts[slot] = 0;
                }
            }
        }
        self.newest = bucket;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_counted_in_its_window_and_a_new_kind_replaces_the_quietest() {
        let minute = 60_000;
        let window = 10 * minute;
        let t0 = 1_000 * window;
        let mut counts = CallCounts::default();
        for i in 0..6 {
            counts.add(1, t0 + i * minute, window);
            counts.add(2, t0 + i * minute, window);
        }
        counts.add(3, t0 + 5 * minute, window);
        counts.add(4, t0 + 5 * minute, window);
        assert_eq!(counts.add(1, t0 + 6 * minute, window), 7);
        // A fifth kind takes the place of a quiet one (3 or 4), not of 1 or 2.
        assert_eq!(counts.add(5, t0 + 7 * minute, window), 1);
        assert_eq!(counts.add(2, t0 + 7 * minute, window), 7);
        assert_eq!(counts.add(1, t0 + 7 * minute, window), 8);
        // Calls older than the window slide out.
        assert_eq!(counts.add(1, t0 + 13 * minute + 1, window), 5);
        // A long pause empties every kind's window.
        assert_eq!(counts.add(2, t0 + 100 * minute, window), 1);
        // A late call counts in the newest bucket.
        assert_eq!(counts.add(2, t0, window), 2);
    }

    #[test]
    fn four_busy_kinds_store_in_about_fifty_bytes() {
        let minute = 60_000;
        let t0 = 29_000_000 * minute;
        let mut counts = CallCounts::default();
        for i in 0..40 {
            counts.add(
                0xdead_0000 + (i % 4) as u32 * 7_919,
                t0 + i * 15_000,
                10 * minute,
            );
        }
        let bytes = postcard::to_allocvec(&counts).unwrap();
        assert!(bytes.len() <= 56, "{} bytes", bytes.len());
    }

    #[test]
    fn the_kept_totals_are_the_bucket_sums_through_slides_replacements_and_storage() {
        let minute = 60_000;
        let window = 10 * minute;
        let mut time = 29_000_000 * minute;
        let mut counts = CallCounts::default();
        let mut state = 12345u64;
        for _ in 0..5_000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Seven kinds (more than are kept), gaps from a second to a quarter hour.
            let call = (state >> 33) as u32 % 7;
            time += 1_000 + (state >> 40) as i64 % (15 * minute);
            let returned = counts.add(call, time, window);
            let sums = counts.kinds.map(|kind| kind.total());
            assert_eq!(counts.totals, sums);
            assert!(sums.contains(&returned) && returned > 0);
        }
        let stored = postcard::to_allocvec(&counts).unwrap();
        let read: CallCounts = postcard::from_bytes(&stored).unwrap();
        assert_eq!(read, counts);
    }
}
