//! Partitions read abreast: polled records are held in one queue per partition and
//! released oldest head first, by event time, as Kafka Streams picks the oldest head of
//! its partition buffers.
//!
//! librdkafka fetches up to megabytes of one partition before the next, so records
//! handed on in the order they were polled put one partition's later days before
//! another's earlier ones. Whatever is judged across partitions then depends on fetch
//! sizes rather than on the events: the engine's fleet context (a rollout's first
//! uses, an outage's failures within half an hour) misses the sightings of a partition
//! that lags, and the re-keying router refuses events that land more than `[time]
//! max_behind` behind their repartition partition's watermark. Both the router
//! ([`crate::kafka::rekey`]) and the service's consumer thread (`app::run`) therefore
//! release a record only once no partition they own could still deliver an older one:
//! every owned partition has a head, or has reported its end (librdkafka's
//! `enable.partition.eof`). A partition that has neither is waited for while the oldest
//! head is younger than [`MAX_HOLD`] (counted from when that head was polled) and while
//! less than [`MAX_HELD_BYTES`] of payload is held (keys, headers and bookkeeping come
//! on top), so a stalled partition delays the others only that long. Within a
//! partition the order is the partition's.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

/// How long the merge waits for a partition that has nothing held and has not reported
/// its end before it releases the oldest head anyway (Kafka Streams'
/// `max.task.idle.ms`): a partition whose fetch is in flight is waited for, a stalled
/// one delays the others by this much. Seconds, not the half second first tried: while
/// librdkafka fetched one partition of a backlog, the others' held records outwaited
/// half a second and left days ahead of it (the router then refused 35,600 of 69,029
/// events of a 6-day backlog as `time_out_of_range`; with ten seconds, none).
pub const MAX_HOLD: Duration = Duration::from_secs(10);
/// Payload bytes held at most before the oldest head is released anyway: a few of
/// librdkafka's per-partition fetches.
pub const MAX_HELD_BYTES: usize = 64 * 1024 * 1024;

/// A record waiting for its turn.
struct Queued<T> {
    time_ms: i64,
    bytes: usize,
    since: Instant,
    item: T,
}

/// Records of several partitions, released by event time (see the module doc).
pub struct Merge<T> {
    queues: BTreeMap<i32, VecDeque<Queued<T>>>,
    /// Partitions that reported their end with nothing polled since.
    at_end: BTreeSet<i32>,
    bytes: usize,
    held: usize,
}

impl<T> Default for Merge<T> {
    fn default() -> Self {
        Merge {
            queues: BTreeMap::new(),
            at_end: BTreeSet::new(),
            bytes: 0,
            held: 0,
        }
    }
}

impl<T> Merge<T> {
    /// Holds `item`, a record of `partition` with event time `time_ms` and `bytes` of
    /// payload, polled at `now`.
    pub fn push(&mut self, partition: i32, time_ms: i64, bytes: usize, item: T, now: Instant) {
        self.at_end.remove(&partition);
        self.bytes += bytes;
        self.held += 1;
        self.queues.entry(partition).or_default().push_back(Queued {
            time_ms,
            bytes,
            since: now,
            item,
        });
    }

    /// Notes that `partition` was read to its end: nothing older can come from it
    /// until it delivers again.
    pub fn reached_end(&mut self, partition: i32) {
        self.at_end.insert(partition);
    }

    /// The latest event time held for `partition`, if any (the time a record without a
    /// readable time takes, so that it leaves in its partition's order).
    pub fn latest(&self, partition: i32) -> Option<i64> {
        self.queues
            .get(&partition)?
            .back()
            .map(|queued| queued.time_ms)
    }

    /// How many records are held.
    pub fn len(&self) -> usize {
        self.held
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held == 0
    }

    /// Drops what is held for partitions a rebalance moved: their next owner reads
    /// them again from the committed offset, which never passes what was released.
    pub fn forget(&mut self, partitions: &[i32]) {
        for partition in partitions {
            if let Some(queue) = self.queues.remove(partition) {
                self.bytes -= queue.iter().map(|queued| queued.bytes).sum::<usize>();
                self.held -= queue.len();
            }
            self.at_end.remove(partition);
        }
    }

    /// The record to release next and its partition: the oldest head, once none of the
    /// `assigned` partitions could still deliver an older one (or the wait is over, or
    /// too much is held).
    pub fn next(&mut self, assigned: &[i32], now: Instant) -> Option<(i32, T)> {
        let (partition, since) = self
            .queues
            .iter()
            .filter_map(|(&partition, queue)| queue.front().map(|queued| (partition, queued)))
            .min_by_key(|(partition, queued)| (queued.time_ms, *partition))
            .map(|(partition, queued)| (partition, queued.since))?;
        let waiting = assigned
            .iter()
            .any(|p| !self.at_end.contains(p) && self.queues.get(p).is_none_or(VecDeque::is_empty));
        if waiting && self.bytes < MAX_HELD_BYTES && now.duration_since(since) < MAX_HOLD {
            return None;
        }
        let queued = self.queues.get_mut(&partition)?.pop_front()?;
        self.bytes -= queued.bytes;
        self.held -= 1;
        Some((partition, queued.item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_head_leaves_first_once_no_owned_partition_can_deliver_an_older_one() {
        let now = Instant::now();
        let mut merge = Merge::default();
        merge.push(0, 5_000, 10, 0, now);
        merge.push(0, 6_000, 10, 1, now);
        merge.push(1, 9_000, 10, 0, now);
        // Partition 2 has nothing yet and has not reported its end: wait for it.
        assert!(merge.next(&[0, 1, 2], now).is_none());
        merge.reached_end(2);
        let order: Vec<(i32, i64)> = std::iter::from_fn(|| merge.next(&[0, 1, 2], now)).collect();
        // Partition 0 empties after its second record; partition 1's head waits for
        // it until partition 0 reports its end or the wait is over.
        assert_eq!(order, vec![(0, 0), (0, 1)]);
        assert_eq!(merge.next(&[0, 1, 2], now + MAX_HOLD), Some((1, 0)));
        assert_eq!((merge.bytes, merge.len()), (0, 0));
    }

    #[test]
    fn a_partition_that_reported_its_end_is_not_waited_for_until_it_delivers_again() {
        let now = Instant::now();
        let mut merge = Merge::default();
        merge.reached_end(1);
        merge.push(0, 5_000, 10, "a", now);
        assert_eq!(merge.next(&[0, 1], now), Some((0, "a")));
        // Partition 0 is now empty and has not reported its end: it is waited for.
        merge.push(1, 7_000, 10, "b", now);
        assert_eq!(merge.next(&[0, 1], now), None);
        merge.reached_end(0);
        assert_eq!(merge.next(&[0, 1], now), Some((1, "b")));
        // Partition 1 delivered since its end, so it is waited for like any other.
        merge.push(0, 9_000, 10, "c", now);
        assert_eq!(merge.next(&[0, 1], now), None);
    }

    #[test]
    fn a_moved_partition_s_held_records_are_dropped_for_its_next_owner_to_read() {
        let now = Instant::now();
        let mut merge = Merge::default();
        merge.push(0, 1_000, 10, 'a', now);
        merge.push(1, 2_000, 10, 'b', now);
        merge.forget(&[0]);
        assert_eq!((merge.bytes, merge.len()), (10, 1));
        assert_eq!(merge.next(&[1], now), Some((1, 'b')));
        assert!(merge.is_empty());
    }
}
