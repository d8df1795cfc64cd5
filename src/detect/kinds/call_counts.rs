//! Sliding counts of the agent's recent calls, one per kind of call (an action on a
//! system), for the few kinds it makes most.

use serde::{Deserialize, Serialize};

use super::SlidingCount;

/// Kinds of call counted at once. A loop repeats one call, so it is always among
/// the agent's busiest; a kind that comes back after being dropped starts over, which
/// can only undercount.
pub const KINDS: usize = 4;

/// One kind of call and its sliding count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Kind {
    call: u32,
    count: SlidingCount,
}

/// Sliding counts per kind of call, for the [`KINDS`] kinds counted most recently
/// busy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallCounts {
    kinds: [Kind; KINDS],
}

impl CallCounts {
    /// Counts a call of fingerprint `call` at `time_ms` and returns the calls of that
    /// kind in the window of `width_ms` ending there. A kind not counted yet takes
    /// the place of the one with the fewest calls in its window.
    pub fn add(&mut self, call: u32, time_ms: i64, width_ms: i64) -> u32 {
        if let Some(kind) = self
            .kinds
            .iter_mut()
            .find(|k| k.call == call && !k.count.is_empty())
        {
            return kind.count.add(time_ms, width_ms);
        }
        let Some(quietest) = self
            .kinds
            .iter_mut()
            .min_by_key(|k| k.count.current(time_ms, width_ms))
        else {
            return 1;
        };
        *quietest = Kind {
            call,
            count: SlidingCount::default(),
        };
        quietest.count.add(time_ms, width_ms)
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
        counts.add(3, t0, window);
        counts.add(4, t0, window);
        assert_eq!(counts.add(1, t0 + 6 * minute, window), 7);
        // A fifth kind takes the place of a quiet one (3 or 4), not of 1 or 2.
        assert_eq!(counts.add(5, t0 + 7 * minute, window), 1);
        assert_eq!(counts.add(2, t0 + 7 * minute, window), 7);
        assert_eq!(counts.add(1, t0 + 7 * minute, window), 8);
        // Calls older than the window slide out.
        assert_eq!(counts.add(1, t0 + 13 * minute + 1, window), 5);
    }
}
