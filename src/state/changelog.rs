//! The changelog: agent state that moves with its partition.
//!
//! `run` writes every agent state it commits to RocksDB also to a compacted Kafka topic,
//! partitioned like the events topic (an agent's state goes to the partition its events
//! came from), as Kafka Streams does. An instance that is assigned a partition whose
//! local state is missing or older than the changelog rebuilds it from there before it
//! processes a record, so a replacement with an empty disk resumes exactly where the
//! previous owner committed.
//!
//! Two kinds of record, told apart by key:
//!
//! - **state**: key = agent id, value = the next events offset of the commit that wrote
//!   it (8 bytes, big-endian) followed by the encoded [`super::AgentState`];
//! - **position**: key = the single byte `0xFF` (never valid UTF-8, so never an agent
//!   id; an empty key could read as a null one, which compaction refuses), value =
//!   the partition's next events offset at that commit (8 bytes, big-endian), then
//!   entries of 12 bytes: a source partition (4 bytes) and an offset (8 bytes). For a
//!   partition the rekey router feeds, one per source partition, its next forwarded
//!   offset, so that a takeover skips second copies of what was processed
//!   ([`crate::kafka::forwarded`]); and one with the reserved source partition
//!   [`WATERMARK_SOURCE`] (−1, never a Kafka partition) whose offset is the
//!   partition's event-time watermark at that commit (milliseconds), so that a
//!   takeover judges event times as the previous owner would have. Builds that predate
//!   the watermark read that entry as the marks of a source partition that never
//!   forwards anything, so old and new members can share a group during a rolling
//!   update; a record of 8 bytes, as builds before forwarded marks wrote, has neither.
//!   It follows the commit's states in the partition, so it marks the commit as
//!   complete.
//!
//! A commit cut short (the writer crashed after some states and before the position)
//! leaves states newer than the last position. They are kept, not thrown away, since
//! compaction may already have dropped their older versions: a restore resumes at the
//! last position and skips, for each such agent, the events its state already holds
//! ([`Restored::ahead`]). That is what makes offsets and changelog reconcile exactly.
//!
//! This module is the format and the restore logic, free of Kafka; the topic I/O is in
//! `kafka::changelog`.

use std::collections::HashMap;

use crate::model::time::MAX_TIME_MS;

/// Bytes of the offset that starts every changelog value.
const POSITION_BYTES: usize = 8;
/// Bytes of one entry (a forwarded source partition's, or the watermark) in a position
/// record.
const FORWARDED_BYTES: usize = 12;

/// The source partition of the position record's entry that carries the partition's
/// watermark instead of a forwarded offset: Kafka partitions are never negative, so no
/// router forwards from it, and builds that read entries but not the watermark skip
/// nothing because of it.
pub const WATERMARK_SOURCE: i32 = -1;

/// Why a changelog record was not understood (it is skipped and counted; one bad
/// record must not stop a partition from being assigned).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangelogError {
    /// A value shorter than its leading offset.
    #[error("changelog value of {0} bytes is shorter than its 8-byte position")]
    Truncated(usize),
    /// A position record whose value carries more than the offset and whole entries
    /// (forwarded source partitions, the watermark).
    #[error("changelog position record of {0} bytes; expected 8, and 12 more per forwarded source partition and for the watermark")]
    OversizedPosition(usize),
    /// A tombstone for the position key, which is never deleted.
    #[error("tombstone for the changelog position key")]
    PositionTombstone,
}

impl ChangelogError {
    /// A stable, machine-readable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ChangelogError::Truncated(_) => "truncated",
            ChangelogError::OversizedPosition(_) => "oversized_position",
            ChangelogError::PositionTombstone => "position_tombstone",
        }
    }
}

/// The key of a partition's position record.
pub const POSITION_KEY: &[u8] = &[0xFF];

/// Encodes a position record's value into `out` (cleared first): the partition's next
/// offset, the next offset of each source partition forwarded into it, and its
/// watermark (the latest event time it accepted), if it has one.
pub fn position_value(
    next_offset: u64,
    forwarded: impl IntoIterator<Item = (i32, u64)>,
    watermark_ms: Option<i64>,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.extend_from_slice(&next_offset.to_be_bytes());
    let watermark = watermark_ms
        .and_then(|ms| u64::try_from(ms).ok())
        .map(|ms| (WATERMARK_SOURCE, ms));
    // A mark of the reserved source can only be a watermark an older build kept as a
    // mark (it read the entry as one): this record's own watermark replaces it.
    let forwarded = forwarded
        .into_iter()
        .filter(|&(source, _)| source != WATERMARK_SOURCE);
    for (source, next) in forwarded.chain(watermark) {
        out.extend_from_slice(&source.to_be_bytes());
        out.extend_from_slice(&next.to_be_bytes());
    }
}

/// What a position record says after its offset.
#[derive(Debug)]
struct PositionTail {
    forwarded: Vec<(i32, u64)>,
    watermark_ms: Option<i64>,
}

/// The forwarded source partitions' entries and the watermark after a position
/// record's offset. A watermark outside the event times an event may carry is
/// corrupt and left out: it would refuse every later event of the partition.
fn position_tail(value: &[u8], rest: &[u8]) -> Result<PositionTail, ChangelogError> {
    if rest.len() % FORWARDED_BYTES != 0 {
        return Err(ChangelogError::OversizedPosition(value.len()));
    }
    let mut tail = PositionTail {
        forwarded: Vec::new(),
        watermark_ms: None,
    };
    // Each entry is exactly FORWARDED_BYTES long (`chunks_exact`).
    for e in rest.chunks_exact(FORWARDED_BYTES) {
        let source = i32::from_be_bytes([e[0], e[1], e[2], e[3]]);
        let next = u64::from_be_bytes([e[4], e[5], e[6], e[7], e[8], e[9], e[10], e[11]]);
        if source == WATERMARK_SOURCE {
            tail.watermark_ms = i64::try_from(next)
                .ok()
                .filter(|ms| (0..=MAX_TIME_MS).contains(ms));
        } else {
            tail.forwarded.push((source, next));
        }
    }
    Ok(tail)
}

/// Encodes a state record's value into `out` (cleared first).
pub fn state_value(next_offset: u64, encoded_state: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&next_offset.to_be_bytes());
    out.extend_from_slice(encoded_state);
}

fn split_position(value: &[u8]) -> Result<(u64, &[u8]), ChangelogError> {
    if value.len() < POSITION_BYTES {
        return Err(ChangelogError::Truncated(value.len()));
    }
    let (head, rest) = value.split_at(POSITION_BYTES);
    let mut bytes = [0u8; POSITION_BYTES];
    bytes.copy_from_slice(head);
    Ok((u64::from_be_bytes(bytes), rest))
}

/// What a partition's changelog says, read from its beginning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The next events offset of the last complete commit: where processing resumes.
    pub position: u64,
    /// The latest state of every agent (its encoded bytes), in no particular order.
    pub states: Vec<(String, Vec<u8>)>,
    /// Agents whose latest state came from a commit cut short, with the offset that
    /// state covers: their events below it, from `position` on, are already in it.
    pub ahead: Vec<(String, u64)>,
    /// The next offset of each source partition forwarded into this one, at
    /// `position`.
    pub forwarded: Vec<(i32, u64)>,
    /// The partition's watermark at `position` (`None` from records of builds that did
    /// not write it).
    pub watermark_ms: Option<i64>,
}

/// Folds a partition's changelog records, in offset order, into what to restore.
#[derive(Debug, Default)]
pub struct RestoreBuilder {
    latest: HashMap<String, (u64, Vec<u8>)>,
    position: Option<(u64, PositionTail)>,
    records: u64,
}

impl RestoreBuilder {
    /// Takes one record (`value` is `None` for a tombstone).
    pub fn add(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), ChangelogError> {
        self.records += 1;
        if key == POSITION_KEY {
            let value = value.ok_or(ChangelogError::PositionTombstone)?;
            let (next, rest) = split_position(value)?;
            self.position = Some((next, position_tail(value, rest)?));
            return Ok(());
        }
        let agent = String::from_utf8_lossy(key).into_owned();
        match value {
            None => {
                self.latest.remove(&agent);
            }
            Some(value) => {
                let (next, state) = split_position(value)?;
                self.latest.insert(agent, (next, state.to_vec()));
            }
        }
        Ok(())
    }

    /// Records taken so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// What to restore, or `None` if no commit ever completed in this partition.
    pub fn finish(self) -> Option<Restored> {
        let (position, tail) = self.position?;
        let mut states = Vec::with_capacity(self.latest.len());
        let mut ahead = Vec::new();
        for (agent, (covers, state)) in self.latest {
            if covers > position {
                ahead.push((agent.clone(), covers));
            }
            states.push((agent, state));
        }
        Some(Restored {
            position,
            states,
            ahead,
            forwarded: tail.forwarded,
            watermark_ms: tail.watermark_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(next: u64) -> Vec<u8> {
        let mut out = Vec::new();
        position_value(next, [], None, &mut out);
        out
    }

    fn state(next: u64, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        state_value(next, body, &mut out);
        out
    }

    #[test]
    fn the_last_complete_commit_is_the_position_and_each_agent_keeps_its_latest_state() {
        let mut builder = RestoreBuilder::default();
        builder.add(b"a", Some(&state(10, b"a1"))).unwrap();
        builder.add(b"b", Some(&state(10, b"b1"))).unwrap();
        builder.add(POSITION_KEY, Some(&position(10))).unwrap();
        builder.add(b"a", Some(&state(25, b"a2"))).unwrap();
        builder.add(POSITION_KEY, Some(&position(25))).unwrap();
        assert_eq!(builder.records(), 5);
        let mut restored = builder.finish().unwrap();
        restored.states.sort();
        assert_eq!(restored.position, 25);
        assert_eq!(
            restored.states,
            [("a".into(), b"a2".to_vec()), ("b".into(), b"b1".to_vec())]
        );
        assert!(restored.ahead.is_empty());
        assert!(restored.forwarded.is_empty());
    }

    #[test]
    fn a_position_carries_the_forwarded_offsets_of_its_commit() {
        let mut builder = RestoreBuilder::default();
        let mut value = Vec::new();
        position_value(10, [(0, 7), (2, 40)], None, &mut value);
        builder.add(POSITION_KEY, Some(&value)).unwrap();
        position_value(25, [(0, 9), (1, 3), (2, 41)], None, &mut value);
        builder.add(POSITION_KEY, Some(&value)).unwrap();
        let restored = builder.finish().unwrap();
        assert_eq!(restored.position, 25);
        assert_eq!(restored.forwarded, [(0, 9), (1, 3), (2, 41)]);
        assert_eq!(restored.watermark_ms, None);
    }

    #[test]
    fn a_position_carries_its_watermark_after_its_forwarded_offsets_or_alone() {
        let mut value = Vec::new();
        for forwarded in [vec![], vec![(0, 9)], vec![(0, 9), (3, 12)]] {
            let mut builder = RestoreBuilder::default();
            position_value(25, forwarded.clone(), Some(1_778_514_263_961), &mut value);
            builder.add(POSITION_KEY, Some(&value)).unwrap();
            let restored = builder.finish().unwrap();
            assert_eq!(restored.position, 25);
            assert_eq!(restored.forwarded, forwarded);
            assert_eq!(restored.watermark_ms, Some(1_778_514_263_961));
        }
        // A later position without a watermark (an older build took over) has none.
        let mut builder = RestoreBuilder::default();
        position_value(25, [], Some(7), &mut value);
        builder.add(POSITION_KEY, Some(&value)).unwrap();
        position_value(30, [(1, 2)], None, &mut value);
        builder.add(POSITION_KEY, Some(&value)).unwrap();
        assert_eq!(builder.finish().unwrap().watermark_ms, None);
    }

    #[test]
    fn the_watermark_is_an_entry_the_previous_format_reads_as_a_forwarded_source() {
        let mut value = Vec::new();
        position_value(25, [(0, 9)], Some(1_778_514_263_961), &mut value);
        // The format before the watermark: the offset, then whole 12-byte entries.
        let (offset, entries) = value.split_at(8);
        assert_eq!(offset, 25u64.to_be_bytes());
        assert_eq!(entries.len() % 12, 0);
        let last = &entries[entries.len() - 12..];
        assert_eq!(last[..4], WATERMARK_SOURCE.to_be_bytes());
        assert_eq!(last[4..], 1_778_514_263_961u64.to_be_bytes());
        // What an older build kept of an earlier watermark as a mark is not written
        // again beside the new one.
        position_value(26, [(WATERMARK_SOURCE, 5), (0, 10)], Some(7), &mut value);
        let mut builder = RestoreBuilder::default();
        builder.add(POSITION_KEY, Some(&value)).unwrap();
        let restored = builder.finish().unwrap();
        assert_eq!(value.len(), 8 + 2 * 12);
        assert_eq!(restored.forwarded, [(0, 10)]);
        assert_eq!(restored.watermark_ms, Some(7));
    }

    #[test]
    fn a_watermark_beyond_any_event_time_is_left_out() {
        let mut builder = RestoreBuilder::default();
        let mut value = Vec::new();
        position_value(25, [], None, &mut value);
        value.extend_from_slice(&WATERMARK_SOURCE.to_be_bytes());
        value.extend_from_slice(&u64::MAX.to_be_bytes());
        builder.add(POSITION_KEY, Some(&value)).unwrap();
        let restored = builder.finish().unwrap();
        assert_eq!(restored.watermark_ms, None);
        assert!(restored.forwarded.is_empty());
    }

    #[test]
    fn states_of_a_commit_cut_short_are_kept_and_marked_ahead() {
        let mut builder = RestoreBuilder::default();
        builder.add(b"a", Some(&state(10, b"a1"))).unwrap();
        builder.add(POSITION_KEY, Some(&position(10))).unwrap();
        // The writer died after this state and before its position record.
        builder.add(b"a", Some(&state(40, b"a2"))).unwrap();
        let restored = builder.finish().unwrap();
        assert_eq!(restored.position, 10);
        assert_eq!(restored.states, [("a".into(), b"a2".to_vec())]);
        assert_eq!(restored.ahead, [("a".into(), 40)]);
    }

    #[test]
    fn no_position_means_nothing_to_restore_and_tombstones_delete() {
        let mut builder = RestoreBuilder::default();
        builder.add(b"a", Some(&state(3, b"a1"))).unwrap();
        assert!(builder.finish().is_none());

        let mut builder = RestoreBuilder::default();
        builder.add(b"a", Some(&state(3, b"a1"))).unwrap();
        builder.add(b"a", None).unwrap();
        builder.add(POSITION_KEY, Some(&position(3))).unwrap();
        assert!(builder.finish().unwrap().states.is_empty());
    }

    #[test]
    fn malformed_records_are_refused_with_a_code() {
        let mut builder = RestoreBuilder::default();
        let short = builder.add(b"a", Some(b"abc")).unwrap_err();
        assert_eq!(short.code(), "truncated");
        for tail in [&b"x"[..], &[0; 4], &[0; 20]] {
            let long = builder
                .add(POSITION_KEY, Some(&state(1, tail)))
                .unwrap_err();
            assert_eq!(long.code(), "oversized_position");
        }
        let gone = builder.add(POSITION_KEY, None).unwrap_err();
        assert_eq!(gone.code(), "position_tombstone");
        assert!(
            builder.finish().is_none(),
            "a refused record changes nothing"
        );
    }
}
