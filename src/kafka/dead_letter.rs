//! Dead-letter records: what the service writes for an event it cannot decode, or whose
//! time is out of range (`time_out_of_range`), and what a rekey router does not forward
//! because it is larger than any event may be (`too_large`).
//!
//! The record keeps the original key, payload and headers, so nothing is lost and the
//! event can be repaired and re-sent, and adds headers saying why it was rejected and
//! where it came from. Header names are part of the contract; they are documented in
//! `deploy/README.md`.

use rdkafka::message::{Header, Headers, OwnedHeaders};

use super::batch::Record;
use crate::model::DecodeError;

/// The rejection's error code (see `DecodeError::code`).
pub const HEADER_ERROR_CODE: &str = "agentwatch.error.code";
/// A human-readable description of the error.
pub const HEADER_ERROR_DETAIL: &str = "agentwatch.error.detail";
/// Topic the record was consumed from.
pub const HEADER_SOURCE_TOPIC: &str = "agentwatch.source.topic";
/// Partition it was consumed from (decimal).
pub const HEADER_SOURCE_PARTITION: &str = "agentwatch.source.partition";
/// Its offset there (decimal).
pub const HEADER_SOURCE_OFFSET: &str = "agentwatch.source.offset";
/// Present when the payload had to be dropped because Kafka refused a record that large;
/// holds the original payload length.
pub const HEADER_TRUNCATED: &str = "agentwatch.payload.truncated";

/// The headers of a dead-letter record for `record` of `topic`: its own headers first,
/// then ours.
pub fn headers(topic: &str, record: &Record, error: &DecodeError) -> OwnedHeaders {
    headers_of(
        topic,
        record.partition,
        record.offset,
        record.headers.as_ref(),
        error,
    )
}

/// [`headers`] for a record at `offset` of `partition`, with its own `original` ones.
pub fn headers_of(
    topic: &str,
    partition: i32,
    offset: i64,
    original: Option<&OwnedHeaders>,
    error: &DecodeError,
) -> OwnedHeaders {
    let count = original.map_or(0, |h| h.count());
    let mut headers = OwnedHeaders::new_with_capacity(count + 5);
    if let Some(original) = original {
        for header in original.iter() {
            headers = headers.insert(header);
        }
    }
    let partition = partition.to_string();
    let offset = offset.to_string();
    let detail = error.to_string();
    for (key, value) in [
        (HEADER_ERROR_CODE, error.code()),
        (HEADER_ERROR_DETAIL, detail.as_str()),
        (HEADER_SOURCE_TOPIC, topic),
        (HEADER_SOURCE_PARTITION, partition.as_str()),
        (HEADER_SOURCE_OFFSET, offset.as_str()),
    ] {
        headers = headers.insert(Header {
            key,
            value: Some(value),
        });
    }
    headers
}

/// Adds the truncation marker to dead-letter headers.
pub fn mark_truncated(headers: OwnedHeaders, original_len: usize) -> OwnedHeaders {
    headers.insert(Header {
        key: HEADER_TRUNCATED,
        value: Some(&original_len.to_string()),
    })
}
