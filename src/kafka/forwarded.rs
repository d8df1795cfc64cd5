//! Records the rekey router forwarded twice, told apart from new ones.
//!
//! The router commits a source partition's offset only after what it forwarded from
//! below it is acknowledged ([`crate::kafka::rekey`]), so a router killed between the
//! two forwards those records again when its partitions are taken over. Counted twice,
//! such an event inflates its agent's pace and data moved, uses a single-use approval
//! twice, and makes a group decide differently from one instance.
//!
//! So each forwarded record carries the source partition and offset it came from
//! ([`stamp`]), and the engine keeps, per partition it consumes, the next source offset
//! of every source partition ([`Forwarded`]). One router forwards a source partition in
//! offset order, and its producer is idempotent, so in any one repartition partition
//! the records of a source partition arrive in offset order, the second copies of a
//! takeover after all the first ones: a record whose source offset is below what its
//! partition has already seen from that source is a second copy, and is skipped. The
//! map is committed with the partition's position (the state store and the changelog's
//! position record), so a restart or a takeover skips exactly what was processed.
//!
//! The marks are per source partition number, not per topic: recreating the events
//! topic, or pointing `topics.events` at another one, restarts the offsets, so use a
//! new group id then (as for any consumer), or every record below the old marks is
//! taken for a second copy. The router's producer never leaves a gap
//! ([`crate::kafka::client::Role::Forwarder`]): a record sent again after later ones
//! would be below their mark. Builds before these marks refuse a position record that
//! carries entries, and every record carries one since the watermark is kept there too
//! ([`crate::state::changelog`]): upgrade every member of a group from such a build
//! before any partition moves to an older one. Later builds share a group in any mix.
//!
//! Second copies are skipped before they are decoded, so a copy of a record that was
//! dead-lettered is not dead-lettered again, except a record that does not decode:
//! forwarded without a key, its copy may land on another partition, whose mark for
//! that source may be below it.

use std::collections::BTreeMap;

use rdkafka::message::{Header, Headers, OwnedHeaders};

/// Source partition a forwarded record came from (decimal).
pub const HEADER_FROM_PARTITION: &str = "agentwatch.rekey.partition";
/// Its offset there (decimal).
pub const HEADER_FROM_OFFSET: &str = "agentwatch.rekey.offset";

/// `headers` (the record's own, kept) with the source partition and offset added.
pub fn stamp(headers: Option<OwnedHeaders>, partition: i32, offset: i64) -> OwnedHeaders {
    let headers = headers.unwrap_or_else(|| OwnedHeaders::new_with_capacity(2));
    let partition = partition.to_string();
    let offset = offset.to_string();
    headers
        .insert(Header {
            key: HEADER_FROM_PARTITION,
            value: Some(&partition),
        })
        .insert(Header {
            key: HEADER_FROM_OFFSET,
            value: Some(&offset),
        })
}

/// The source partition and offset a record was forwarded from, if it carries both
/// (the last of each, should a record pass through two routers).
pub fn origin(headers: Option<&OwnedHeaders>) -> Option<(i32, u64)> {
    let headers = headers?;
    let (mut partition, mut offset) = (None, None);
    for header in headers.iter() {
        let value = || {
            header
                .value
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(str::trim)
        };
        match header.key {
            HEADER_FROM_PARTITION => partition = value().and_then(|v| v.parse::<i32>().ok()),
            HEADER_FROM_OFFSET => offset = value().and_then(|v| v.parse::<u64>().ok()),
            _ => {}
        }
    }
    partition.zip(offset)
}

/// Per consumed partition, the next source offset of each source partition seen.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Forwarded {
    next: BTreeMap<i32, BTreeMap<i32, u64>>,
}

impl Forwarded {
    /// True if the record forwarded from `from` (source partition, offset) is new in
    /// `partition`, and notes it; false if it is a second copy.
    pub fn first_time(&mut self, partition: i32, from: (i32, u64)) -> bool {
        let (source, offset) = from;
        let next = self
            .next
            .entry(partition)
            .or_default()
            .entry(source)
            .or_default();
        if offset < *next {
            return false;
        }
        *next = offset + 1;
        true
    }

    /// Replaces what is known of `partition` (on an assignment: from the store).
    pub fn load(&mut self, partition: i32, next: impl IntoIterator<Item = (i32, u64)>) {
        let next: BTreeMap<i32, u64> = next.into_iter().collect();
        if next.is_empty() {
            self.next.remove(&partition);
        } else {
            self.next.insert(partition, next);
        }
    }

    /// Forgets partitions given up.
    pub fn release(&mut self, partitions: &[i32]) {
        self.next
            .retain(|partition, _| !partitions.contains(partition));
    }

    /// The next source offset of each source partition seen in `partition`.
    pub fn of(&self, partition: i32) -> impl Iterator<Item = (i32, u64)> + '_ {
        self.next
            .get(&partition)
            .into_iter()
            .flat_map(|next| next.iter().map(|(&source, &next)| (source, next)))
    }

    /// Every (consumed partition, source partition, next source offset).
    pub fn iter(&self) -> impl Iterator<Item = (i32, i32, u64)> + '_ {
        self.next.iter().flat_map(|(&partition, next)| {
            next.iter()
                .map(move |(&source, &next)| (partition, source, next))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamped_record_says_where_it_came_from_and_keeps_its_own_headers() {
        let own = OwnedHeaders::new().insert(Header {
            key: "trace",
            value: Some("abc"),
        });
        let stamped = stamp(Some(own), 2, 41);
        assert_eq!(origin(Some(&stamped)), Some((2, 41)));
        assert!(stamped.iter().any(|h| h.key == "trace"));
        assert_eq!(origin(None), None);
        let unstamped = OwnedHeaders::new().insert(Header {
            key: HEADER_FROM_PARTITION,
            value: Some("2"),
        });
        assert_eq!(origin(Some(&unstamped)), None, "an offset is needed too");
    }

    #[test]
    fn a_second_copy_is_told_apart_per_partition_and_source() {
        let mut forwarded = Forwarded::default();
        assert!(forwarded.first_time(0, (1, 10)));
        assert!(forwarded.first_time(0, (1, 11)));
        assert!(forwarded.first_time(0, (2, 3)));
        // A takeover forwards 10 and 11 of source 1 again.
        assert!(!forwarded.first_time(0, (1, 10)));
        assert!(!forwarded.first_time(0, (1, 11)));
        assert!(forwarded.first_time(0, (1, 12)));
        // Another consumed partition has seen nothing of source 1.
        assert!(forwarded.first_time(1, (1, 10)));
        assert_eq!(forwarded.of(0).collect::<Vec<_>>(), vec![(1, 13), (2, 4)]);

        let mut restarted = Forwarded::default();
        restarted.load(0, forwarded.of(0).collect::<Vec<_>>());
        assert!(!restarted.first_time(0, (1, 12)));
        assert!(restarted.first_time(0, (1, 13)));
        forwarded.release(&[0]);
        assert_eq!(forwarded.iter().collect::<Vec<_>>(), vec![(1, 1, 11)]);
    }
}
