//! Sliding event-time counts from a ring of buckets.

use serde::{Deserialize, Serialize};

/// Buckets per window: the window slides in steps of a tenth of its width.
pub const BUCKETS: usize = 10;

/// Events in the last `width` of event time, kept as [`BUCKETS`] epoch-aligned buckets
/// of `width / BUCKETS` each (the open bucket included).
///
/// Tumbling windows split a ten-minute burst that straddles a boundary into two
/// halves that each look half as bad; a sliding count sees all of it, to within one
/// bucket. Late events are counted in the newest bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SlidingCount {
    counts: [u16; BUCKETS],
    /// Index (time / bucket width) of the newest bucket.
    newest: i64,
    /// The sum of `counts`, kept as buckets slide out so an event costs no sum.
    total: u32,
}

impl SlidingCount {
    /// Counts an event at `time_ms` and returns the events in the window ending there.
    pub fn add(&mut self, time_ms: i64, width_ms: i64) -> u32 {
        let bucket_ms = (width_ms / BUCKETS as i64).max(1);
        let bucket = time_ms.div_euclid(bucket_ms);
        if bucket > self.newest {
            let gap = bucket - self.newest;
            if gap >= BUCKETS as i64 {
                self.counts = [0; BUCKETS];
                self.total = 0;
            } else {
                for step in 1..=gap {
                    let slot = ((self.newest + step).rem_euclid(BUCKETS as i64)) as usize;
                    self.total -= u32::from(self.counts[slot]);
                    self.counts[slot] = 0;
                }
            }
            self.newest = bucket;
        }
        let slot = self.newest.rem_euclid(BUCKETS as i64) as usize;
        if self.counts[slot] < u16::MAX {
            self.counts[slot] += 1;
            self.total += 1;
        }
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_last_window_and_forgets_older_buckets() {
        let mut count = SlidingCount::default();
        let minute = 60_000;
        let t0 = 1_000 * 600_000;
        for i in 0..10 {
            count.add(t0 + i * minute, 10 * minute);
        }
        assert_eq!(count.add(t0 + 10 * minute - 1, 10 * minute), 11);
        // Five minutes on, the first five buckets have slid out.
        assert_eq!(count.add(t0 + 15 * minute, 10 * minute), 6);
        // A long pause empties the window.
        assert_eq!(count.add(t0 + 100 * minute, 10 * minute), 1);
        // A late event counts in the newest bucket.
        assert_eq!(count.add(t0, 10 * minute), 2);
    }
}
