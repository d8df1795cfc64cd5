//! The changelog topic's Kafka side: checking it matches the events topic, and reading
//! one partition of it from the beginning for a restore. The format and the restore
//! logic are in [`crate::state::changelog`]; writing happens in the service's commit.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::client::{client_config, Role};
use super::topics::{create_compacted, topic_partitions};
use crate::config::KafkaConfig;
use crate::error::{Error, Result};
use crate::state::changelog::RestoreBuilder;

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a restore may go without reading a record before it gives up.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Checks that the changelog topic exists with as many partitions as the events topic
/// (agent states live in the partition their events come from), creating it compacted
/// when `create_topics` is set.
pub fn ensure_changelog(kafka: &KafkaConfig, events: &str, changelog: &str) -> Result<()> {
    let events_partitions = topic_partitions(kafka, events)?
        .ok_or_else(|| Error::MissingTopics(vec![events.to_owned()]))?;
    match topic_partitions(kafka, changelog)? {
        Some(n) if n == events_partitions => Ok(()),
        Some(n) => Err(Error::Config(vec![format!(
            "the changelog topic {changelog} has {n} partition(s) and the events topic {events} has {events_partitions}; they must match"
        )])),
        None if kafka.create_topics => create_compacted(kafka, changelog, events_partitions),
        None => Err(Error::MissingTopics(vec![changelog.to_owned()])),
    }
}

/// Reads partition `partition` of `topic` from its beginning up to its end as found at
/// the start, feeding every record to `builder`. Records that do not parse are logged
/// and skipped. Logs progress on long restores.
pub fn read_partition(
    kafka: &KafkaConfig,
    topic: &str,
    partition: i32,
    builder: &mut RestoreBuilder,
) -> Result<()> {
    let consumer: BaseConsumer = client_config(kafka, Role::Reader)
        // Large fetches: a restore wants the whole partition as fast as it can get it,
        // and brokers that cannot resume inside a record batch (Tansu's memory engine)
        // then never have to.
        .set("fetch.message.max.bytes", (16 * 1024 * 1024).to_string())
        .set("fetch.max.bytes", (64 * 1024 * 1024).to_string())
        .create()
        .map_err(|e| Error::kafka("creating the changelog reader", e))?;
    let (low, high) = consumer
        .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
        .map_err(|e| Error::kafka(format!("reading the end of {topic}/{partition}"), e))?;
    if high <= low {
        return Ok(());
    }
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Beginning)
        .map_err(|e| Error::kafka(format!("assigning {topic}/{partition}"), e))?;
    consumer
        .assign(&assignment)
        .map_err(|e| Error::kafka(format!("assigning {topic}/{partition}"), e))?;
    let started = Instant::now();
    let mut last_read = Instant::now();
    let mut last_progress = Instant::now();
    let mut next = low;
    while next < high {
        if last_read.elapsed() > STALL_TIMEOUT {
            return Err(Error::Stopped(format!(
                "restoring {topic}/{partition}: nothing read for {}s at offset {next} of {high}",
                STALL_TIMEOUT.as_secs()
            )));
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            tracing::info!(
                topic,
                partition,
                offset = next,
                end = high,
                records = builder.records(),
                "restoring"
            );
            last_progress = Instant::now();
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.map_err(|e| Error::kafka(format!("reading {topic}"), e))?;
        last_read = Instant::now();
        next = message.offset() + 1;
        let Some(key) = message.key() else {
            tracing::warn!(
                topic,
                partition,
                offset = message.offset(),
                "skipping a changelog record without a key"
            );
            continue;
        };
        if let Err(error) = builder.add(key, message.payload()) {
            tracing::warn!(topic, partition, offset = message.offset(), %error, code = error.code(), "skipping a changelog record");
        }
    }
    tracing::debug!(
        topic,
        partition,
        records = builder.records(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "changelog partition read"
    );
    Ok(())
}
