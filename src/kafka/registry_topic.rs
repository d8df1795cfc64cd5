//! Following the compacted registry topic (key = agent_id, value = agent-record v1 JSON,
//! empty value = the agent is removed), so identity changes take effect without a
//! restart.
//!
//! The reader assigns itself every partition from the beginning (no consumer group: each
//! instance needs the whole registry, not a share of it). [`follow`] first reads up to
//! the high watermarks it found at start, so the service begins with the registry as it
//! stands, then keeps reading on a thread of its own and hands each change to the engine
//! thread over a channel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::client::{client_config, Role};
use crate::config::KafkaConfig;
use crate::error::{Error, Result};
use crate::identity::{AgentRecord, AgentRecordV1, RegistryUpdate};

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the service waits at start for the registry to load.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// Turns one registry record into a change, or says why it is unusable.
pub fn decode_record(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<RegistryUpdate, String> {
    let key = key
        .and_then(|k| std::str::from_utf8(k).ok())
        .filter(|k| !k.is_empty())
        .ok_or("the record has no UTF-8 key (the key must be the agent_id)")?;
    let value = match value {
        None => return Ok(RegistryUpdate::Remove(key.to_owned())),
        Some([]) => return Ok(RegistryUpdate::Remove(key.to_owned())),
        Some(v) => v,
    };
    let spec: AgentRecordV1 =
        serde_json::from_slice(value).map_err(|e| format!("not an agent-record v1: {e}"))?;
    if spec.agent_id != key {
        return Err(format!(
            "key {key:?} differs from agent_id {:?}",
            spec.agent_id
        ));
    }
    AgentRecord::compile(spec, false)
        .map(|record| RegistryUpdate::Upsert(Box::new(record)))
        .map_err(|problems| problems.join("; "))
}

/// What [`follow`] hands the service.
pub struct RegistryFollower {
    /// The changes up to the high watermarks found at start, in topic order.
    pub initial: Vec<RegistryUpdate>,
    /// Later changes, as they arrive.
    pub updates: Receiver<RegistryUpdate>,
    /// The reading thread; it stops when `stop` is set or `updates` is dropped.
    pub thread: JoinHandle<()>,
}

/// Reads `topic` up to its current end, then follows it on a thread until `stop`.
pub fn follow(kafka: &KafkaConfig, topic: &str, stop: Arc<AtomicBool>) -> Result<RegistryFollower> {
    let mut config = client_config(kafka, Role::Reader);
    config.set("group.id", format!("{}-registry", kafka.group_id));
    let consumer: BaseConsumer = config
        .create()
        .map_err(|e| Error::kafka("creating the registry reader", e))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .map_err(|e| Error::kafka(format!("reading metadata of {topic}"), e))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut assignment = TopicPartitionList::new();
    let mut ends = Vec::with_capacity(partitions.len());
    for &partition in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
            .map_err(|e| Error::kafka(format!("reading the end of {topic}/{partition}"), e))?;
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(|e| Error::kafka("assigning the registry topic", e))?;
        if high > low {
            ends.push((partition, high));
        }
    }
    consumer
        .assign(&assignment)
        .map_err(|e| Error::kafka("assigning the registry topic", e))?;

    let mut initial = Vec::new();
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    let mut next: Vec<(i32, i64)> = ends.iter().map(|(p, _)| (*p, 0)).collect();
    let caught_up = |next: &[(i32, i64)]| {
        ends.iter()
            .all(|(p, high)| next.iter().any(|(q, at)| q == p && at >= high))
    };
    while !caught_up(&next) {
        if Instant::now() > deadline || stop.load(Ordering::Relaxed) {
            return Err(Error::Stopped(format!(
                "the registry topic {topic} did not load within {}s",
                CATCH_UP_TIMEOUT.as_secs()
            )));
        }
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.map_err(|e| Error::kafka(format!("reading {topic}"), e))?;
            if let Some(slot) = next.iter_mut().find(|(p, _)| *p == message.partition()) {
                slot.1 = message.offset() + 1;
            }
            if let Some(update) = decode(topic, &message) {
                initial.push(update);
            }
        }
    }
    tracing::info!(topic, records = initial.len(), "registry topic loaded");
    let (sender, updates) = channel();
    let topic = topic.to_owned();
    let thread = std::thread::Builder::new()
        .name("registry".into())
        .spawn(move || keep_following(&consumer, &topic, &sender, &stop))
        .map_err(|e| Error::io("starting the registry reader", e))?;
    Ok(RegistryFollower {
        initial,
        updates,
        thread,
    })
}

fn keep_following(
    consumer: &BaseConsumer,
    topic: &str,
    sender: &Sender<RegistryUpdate>,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(e)) => {
                tracing::warn!(topic, error = %e, "registry topic read failed; retrying")
            }
            Some(Ok(message)) => {
                if let Some(update) = decode(topic, &message) {
                    if sender.send(update).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Decodes a record, logging (never applying) a bad one: one malformed record must not
/// stop identity updates for every other agent.
fn decode(topic: &str, message: &rdkafka::message::BorrowedMessage<'_>) -> Option<RegistryUpdate> {
    match decode_record(message.key(), message.payload()) {
        Ok(update) => Some(update),
        Err(problem) => {
            tracing::warn!(
                topic,
                partition = message.partition(),
                offset = message.offset(),
                problem = %problem,
                "registry record ignored"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstones_remove_and_mismatched_keys_are_refused() {
        assert!(matches!(
            decode_record(Some(b"a"), None),
            Ok(RegistryUpdate::Remove(id)) if id == "a"
        ));
        let record = br#"{"agent_id":"a","owner":""}"#;
        assert!(matches!(
            decode_record(Some(b"a"), Some(record)),
            Ok(RegistryUpdate::Upsert(r)) if r.owner().is_none()
        ));
        assert!(decode_record(Some(b"b"), Some(record))
            .unwrap_err()
            .contains("differs"));
        assert!(decode_record(None, Some(record)).is_err());
        assert!(decode_record(Some(b"a"), Some(b"{")).is_err());
    }
}
