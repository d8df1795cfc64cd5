//! Consumed records copied out of librdkafka into one buffer, so that a whole batch can
//! be handed to the engine thread while the consumer thread goes on polling.
//!
//! librdkafka's messages borrow the consumer and cannot cross threads, so each is copied
//! out as a [`HeldRecord`] to wait in the merge by event time ([`crate::kafka::merge`]),
//! then into the batch's one reused buffer. The held copy costs up to three allocations
//! per record (key, payload, headers when present), on the consumer thread, which has
//! the time: the engine thread is the bottleneck.

use std::ops::Range;

use rdkafka::message::{BorrowedMessage, Headers, OwnedHeaders};
use rdkafka::Message;

use crate::drive::decoded::{decoded_batch, Decoded};
use crate::drive::{At, Records};

/// Where one record came from, and where its bytes are in the batch buffer.
#[derive(Debug)]
pub struct Record {
    /// Partition of the events topic.
    pub partition: i32,
    /// Offset in that partition.
    pub offset: i64,
    /// The record's timestamp (producer create time or broker append time), if any.
    pub timestamp_ms: Option<i64>,
    /// The record's headers, copied only when it has some (kept for dead letters).
    pub headers: Option<OwnedHeaders>,
    key: Option<Range<usize>>,
    payload: Range<usize>,
}

/// A consumed record copied out on its own, to wait for its turn while the partitions
/// are merged by event time ([`crate::kafka::merge`]) before it joins a batch.
#[derive(Debug)]
pub struct HeldRecord {
    offset: i64,
    timestamp_ms: Option<i64>,
    headers: Option<OwnedHeaders>,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
}

impl HeldRecord {
    /// Copies a consumed message out of librdkafka's buffer.
    pub fn copy(message: &BorrowedMessage<'_>) -> Self {
        HeldRecord {
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            headers: message
                .headers()
                .filter(|h| h.count() > 0)
                .map(|h| h.detach()),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().unwrap_or_default().to_vec(),
        }
    }

    /// The record's payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

/// Up to a few thousand records of one topic.
#[derive(Debug, Default)]
pub struct RecordBatch {
    data: Vec<u8>,
    records: Vec<Record>,
}

impl RecordBatch {
    /// An empty batch with room for `records` records of about 512 bytes.
    pub fn with_capacity(records: usize) -> Self {
        RecordBatch {
            data: Vec::with_capacity(records * 512),
            records: Vec::with_capacity(records),
        }
    }

    /// Appends a record that waited on its own (see [`HeldRecord`]).
    pub fn push_held(&mut self, partition: i32, held: HeldRecord) {
        let key = held.key.as_deref().map(|key| self.append(key));
        let payload = self.append(&held.payload);
        self.records.push(Record {
            partition,
            offset: held.offset,
            timestamp_ms: held.timestamp_ms,
            headers: held.headers,
            key,
            payload,
        });
    }

    /// Appends a record directly (for tests and benches).
    pub fn push_parts(&mut self, partition: i32, offset: i64, key: Option<&[u8]>, payload: &[u8]) {
        let key = key.map(|key| self.append(key));
        let payload = self.append(payload);
        self.records.push(Record {
            partition,
            offset,
            timestamp_ms: None,
            headers: None,
            key,
            payload,
        });
    }

    fn append(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        start..self.data.len()
    }

    /// The records, in consumption order.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// A record's payload.
    pub fn payload(&self, record: &Record) -> &[u8] {
        &self.data[record.payload.clone()]
    }

    /// A record's key.
    pub fn key(&self, record: &Record) -> Option<&[u8]> {
        record.key.clone().map(|range| &self.data[range])
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.data.clear();
        self.records.clear();
    }
}

/// A batch as the driver reads it: lanes are partitions, offsets Kafka offsets, and
/// keys must match the events' `agent_id`.
impl Records for RecordBatch {
    fn len(&self) -> usize {
        self.records.len()
    }

    fn at(&self, index: usize) -> At {
        let record = &self.records[index];
        At {
            lane: record.partition,
            offset: u64::try_from(record.offset).unwrap_or_default(),
        }
    }

    fn payload(&self, index: usize) -> &[u8] {
        RecordBatch::payload(self, &self.records[index])
    }

    fn key(&self, index: usize) -> Option<&[u8]> {
        RecordBatch::key(self, &self.records[index])
    }
}

decoded_batch!(
    /// A batch and its events, decoded on the consumer thread: the engine thread, the
    /// service's bottleneck, then only judges them.
    DecodedRecords,
    RecordBatch
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_keys_and_payloads_apart() {
        let mut batch = RecordBatch::with_capacity(2);
        batch.push_parts(0, 7, Some(b"agent-1"), b"{\"a\":1}");
        batch.push_parts(1, 9, None, b"");
        let records = batch.records();
        assert_eq!(batch.key(&records[0]), Some(&b"agent-1"[..]));
        assert_eq!(batch.payload(&records[0]), b"{\"a\":1}");
        assert_eq!(batch.key(&records[1]), None);
        assert_eq!(batch.payload(&records[1]), b"");
        assert_eq!((records[1].partition, records[1].offset), (1, 9));
        assert_eq!(batch.len(), 2);
        batch.clear();
        assert!(batch.is_empty());
    }
}
