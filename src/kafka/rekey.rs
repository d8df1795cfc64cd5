//! Re-keying the events topic by agent (`[kafka] rekey`), as Kafka Streams does with a
//! repartition topic.
//!
//! A group's instances share the partitions of the topic they consume, and an agent's
//! state lives with the partition its events come from. That holds only if every event
//! of an agent is on one partition, which producers that do not key by `agent_id` (a
//! gateway that leaves keys empty, or keys by tenant or session) do not give. With
//! `rekey` on, every instance also runs a [`Router`]: a member of its own consumer group
//! (`{group_id}-rekey`) on the events topic that forwards each record, payload and
//! headers unchanged, to the repartition topic keyed by its `agent_id`. The engine then
//! consumes the repartition topic instead, so each agent's events meet on one partition,
//! in the order of the partitions they came from.
//!
//! Records that do not decode are forwarded without a key: the engine sets them aside
//! with the decoder's precise code, as it does on the events topic. A record larger
//! than any event may be (`max_event_bytes`) goes to the dead-letter topic from here
//! instead (`too_large`, with where it came from): forwarded, with the router's headers
//! on top, one near the broker's record limit would be refused, re-sent at every
//! commit, and hold the router's commits back for good.
//!
//! **A backlog is read abreast.** The engine keeps one watermark per partition it
//! consumes, and every source partition feeds every repartition partition. librdkafka
//! fetches megabytes of one partition before the next, so forwarded as fetched, one
//! source partition's later days reached a repartition partition before another's
//! earlier ones, and whatever landed more than `[time] max_behind` behind its
//! partition's watermark was refused as `time_out_of_range` (a 6-day backlog of 30
//! agents over three partitions, with `max_behind` at one day: 27,832 of 51,004
//! events). So the router forwards its source partitions merged by event time
//! ([`crate::kafka::merge`]).
//!
//! **Nothing is lost.** The router commits a source partition's offset to its group only
//! once every record forwarded from below it is acknowledged by the broker: every
//! [`COMMIT_EVERY`], and before it gives a partition up in a rebalance. **At least
//! once:** a router killed between forwarding and committing forwards those records
//! again when its partitions are taken over (the window is one commit interval). Each
//! forwarded record says which source partition and offset it came from, and the
//! engine skips the second copies ([`crate::kafka::forwarded`]), so each event is
//! processed once.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message, OwnedHeaders};

use super::consumer::{
    callbacks, commit_to_group, leave, subscribe, EventConsumer, GroupCommit, Partition,
    PartitionOwner, Role,
};
use super::dead_letter;
use super::forwarded::stamp;
use super::merge::Merge;
use super::producer::{Output, OutputProducer};
use super::topics::{create_topics, topic_partitions};
use crate::config::KafkaConfig;
use crate::error::{Error, Result};
use crate::model::{decode_event, DecodeError, Limits};
use crate::telemetry::Metrics;

/// How often forwarded records are settled and their source offsets committed.
pub const COMMIT_EVERY: Duration = Duration::from_millis(500);
const POLL_WAIT: Duration = Duration::from_millis(100);
/// The consumer group of the routers of the group `group_id`.
pub fn router_group(group_id: &str) -> String {
    format!("{group_id}-rekey")
}

/// Checks that the repartition topic exists, creating it (with as many partitions as the
/// events topic, Kafka Streams' default) when `create_topics` is set.
pub fn ensure_repartition(kafka: &KafkaConfig, events: &str, repartition: &str) -> Result<()> {
    let events_partitions = topic_partitions(kafka, events)?
        .ok_or_else(|| Error::MissingTopics(vec![events.to_owned()]))?;
    match topic_partitions(kafka, repartition)? {
        Some(_) => Ok(()),
        None if kafka.create_topics => {
            create_topics(kafka, &[repartition.to_owned()], events_partitions)
        }
        None => Err(Error::MissingTopics(vec![repartition.to_owned()])),
    }
}

/// The key a record is forwarded under: its event's `agent_id`, or `None` if it does
/// not decode.
pub fn agent_key<'a>(payload: &'a [u8], limits: &Limits) -> Option<Cow<'a, str>> {
    route(payload, limits).map(|(agent, _)| agent)
}

/// The event's `agent_id` and event time, or `None` if it does not decode.
fn route<'a>(payload: &'a [u8], limits: &Limits) -> Option<(Cow<'a, str>, i64)> {
    decode_event(payload, limits)
        .ok()
        .map(|event| (event.agent_id, event.time_ms))
}

/// A polled record waiting for its turn to be forwarded.
struct Held {
    offset: i64,
    /// Why it is not forwarded but dead-lettered, if it is not.
    refused: Option<DecodeError>,
    key: Option<String>,
    payload: Vec<u8>,
    headers: Option<OwnedHeaders>,
}

/// The router's side of its partitions: the next offset of every source partition
/// forwarded so far, and the producer whose acknowledgements make them committable.
struct Forwarding {
    producer: OutputProducer,
    settle_budget: Duration,
    positions: Mutex<BTreeMap<i32, u64>>,
    events: String,
    /// The source partitions this router owns now.
    owned: Mutex<Vec<i32>>,
}

impl Forwarding {
    fn forwarded(&self, partition: i32, offset: i64) {
        if let Ok(mut positions) = self.positions.lock() {
            positions.insert(partition, (offset + 1) as u64);
        }
    }

    /// Waits for every forwarded record's acknowledgement, then returns the source
    /// offsets they make committable (`only`: of those partitions, which are forgotten).
    fn settle(&self, only: Option<&[Partition]>) -> Result<Vec<(Partition, u64)>> {
        self.producer.settle(self.settle_budget)?;
        let mut positions = self
            .positions
            .lock()
            .map_err(|_| Error::Stopped("the router's positions are poisoned".into()))?;
        let offsets = positions
            .iter()
            .filter(|(partition, _)| {
                only.is_none_or(|only| only.iter().any(|(_, p)| p == *partition))
            })
            .map(|(&partition, &next)| ((self.events.clone(), partition), next))
            .collect();
        if let Some(only) = only {
            positions.retain(|partition, _| !only.iter().any(|(_, p)| p == partition));
        }
        Ok(offsets)
    }
}

impl PartitionOwner for Forwarding {
    fn start_offset(&self, _topic: &str, _partition: i32) -> Result<Option<u64>> {
        Ok(None)
    }

    fn release(&self, partitions: &[Partition]) -> Vec<(Partition, u64)> {
        match self.settle(Some(partitions)) {
            Ok(offsets) => offsets,
            Err(error) => {
                // Their records are forwarded again by the next owner: late, not lost.
                tracing::error!(%error, code = error.code(), "could not settle forwarded records of revoked partitions");
                Vec::new()
            }
        }
    }

    fn assigned(&self, partitions: &[Partition]) {
        let owned: Vec<i32> = partitions.iter().map(|(_, p)| *p).collect();
        tracing::info!(partitions = ?owned, "rekey assignment");
        if let Ok(mut mine) = self.owned.lock() {
            *mine = owned;
        }
    }
}

/// Forwards the events topic to the repartition topic, keyed by agent, each record
/// stamped with where it came from.
pub struct Router {
    consumer: EventConsumer<Forwarding>,
    forwarding: Arc<Forwarding>,
    repartition: String,
    events: String,
    dlq: String,
    limits: Limits,
    metrics: Arc<Metrics>,
}

impl Router {
    /// Joins the routers' group on `kafka.topics.events`.
    pub fn new(
        kafka: &KafkaConfig,
        limits: Limits,
        settle_budget: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        let forwarding = Arc::new(Forwarding {
            producer: OutputProducer::for_role(kafka, Some(Arc::clone(&metrics)), Role::Forwarder)?,
            settle_budget,
            positions: Mutex::new(BTreeMap::new()),
            events: kafka.topics.events.clone(),
            owned: Mutex::new(Vec::new()),
        });
        let group = KafkaConfig {
            group_id: router_group(&kafka.group_id),
            ..kafka.clone()
        };
        let consumer = subscribe(
            &group,
            &kafka.topics.events,
            Arc::clone(&forwarding),
            Arc::clone(&metrics),
            Role::Router,
        )?;
        Ok(Router {
            consumer,
            forwarding,
            repartition: kafka.topics.repartition.clone(),
            events: kafka.topics.events.clone(),
            dlq: kafka.topics.dlq.clone(),
            limits,
            metrics,
        })
    }

    /// Forwards until `stop` is set, then settles, commits and leaves the group.
    /// Returns how many records were forwarded.
    pub fn run(&self, stop: &AtomicBool) -> Result<u64> {
        let mut forwarded = 0u64;
        let mut last_commit = Instant::now();
        let mut merge: Merge<Held> = Merge::default();
        while !stop.load(Ordering::Relaxed) {
            let polled = self.consumer.poll(POLL_WAIT);
            let moved = callbacks(&self.consumer).take_moved();
            if !moved.is_empty() {
                merge.forget(&moved);
            }
            match polled {
                Some(Ok(message)) => {
                    let partition = message.partition();
                    let (time_ms, held) = self.hold(&message, merge.latest(partition));
                    let bytes = held.payload.len();
                    merge.push(partition, time_ms, bytes, held, Instant::now());
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    tracing::debug!(partition, "rekey partition end");
                    merge.reached_end(partition)
                }
                Some(Err(error)) => tracing::warn!(%error, "rekey consumer error"),
                None => {}
            }
            {
                // Only a rebalance (served inside `poll`, on this thread) writes the
                // owned partitions, so holding them while forwarding blocks no one.
                let owned = self
                    .forwarding
                    .owned
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                while let Some((partition, held)) = merge.next(&owned, Instant::now()) {
                    self.forward(partition, held)?;
                    forwarded += 1;
                }
            }
            if last_commit.elapsed() >= COMMIT_EVERY {
                match self.commit(GroupCommit::Async) {
                    Ok(()) => {}
                    // Unacknowledged records stay queued for the next attempt.
                    Err(error @ Error::Undelivered { .. }) => {
                        tracing::warn!(%error, code = error.code(), "forwarded records not yet acknowledged; committing later")
                    }
                    // A record refused for good: nothing after it may be committed.
                    Err(error) => return Err(error),
                }
                last_commit = Instant::now();
            }
        }
        self.commit(GroupCommit::Sync)?;
        leave(&self.consumer);
        tracing::info!(forwarded, "rekey router stopped");
        Ok(forwarded)
    }

    /// Copies a polled record out of librdkafka's buffer, with its key, and says its
    /// event time (`previous`: the latest held before it in its partition, for a record
    /// that does not decode).
    fn hold(&self, message: &BorrowedMessage<'_>, previous: Option<i64>) -> (i64, Held) {
        let payload = message.payload().unwrap_or_default();
        let (key, time_ms) = match route(payload, &self.limits) {
            Some((agent, time_ms)) => (Some(agent.into_owned()), time_ms),
            None => (None, previous.unwrap_or(i64::MIN)),
        };
        let max = self.limits.max_message_bytes;
        let held = Held {
            offset: message.offset(),
            refused: (payload.len() > max).then_some(DecodeError::TooLarge {
                size: payload.len(),
                max,
            }),
            key,
            payload: payload.to_vec(),
            headers: message.headers().map(|headers| headers.detach()),
        };
        (time_ms, held)
    }

    fn forward(&self, partition: i32, held: Held) -> Result<()> {
        if let Some(error) = &held.refused {
            return self.dead_letter(partition, &held, error);
        }
        self.forwarding.producer.send(
            Output::Repartition,
            &self.repartition,
            held.key.as_deref().map(str::as_bytes),
            &held.payload,
            Some(stamp(held.headers, partition, held.offset)),
        )?;
        self.forwarding.forwarded(partition, held.offset);
        Ok(())
    }

    /// Sends a record to the dead-letter topic instead of forwarding it; its offset is
    /// committed once that is acknowledged, like a forwarded one's.
    fn dead_letter(&self, partition: i32, held: &Held, error: &DecodeError) -> Result<()> {
        let offset = held.offset;
        tracing::debug!(
            partition,
            offset,
            code = error.code(),
            "record dead-lettered by the router"
        );
        self.metrics.record_dead_letter(error.code());
        let headers = dead_letter::headers_of(
            &self.events,
            partition,
            offset,
            held.headers.as_ref(),
            error,
        );
        self.forwarding.producer.send(
            Output::DeadLetter,
            &self.dlq,
            held.key.as_deref().map(str::as_bytes),
            &held.payload,
            Some(headers),
        )?;
        self.forwarding.forwarded(partition, offset);
        Ok(())
    }

    fn commit(&self, mode: GroupCommit) -> Result<()> {
        let offsets = self.forwarding.settle(None)?;
        if let Err(error) = commit_to_group(&self.consumer, &offsets, mode) {
            tracing::debug!(%error, "rekey offset commit failed; the next one supersedes it");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_keyed_by_their_agent_and_undecodable_ones_are_not_keyed() {
        let limits = Limits::default();
        let event = br#"{"schema_version":1,"event_id":"e1","time":"2026-01-05T10:00:00Z","agent_id":"agent-7","action":"read","system":"crm"}"#;
        assert_eq!(agent_key(event, &limits).as_deref(), Some("agent-7"));
        let escaped = br#"{"schema_version":1,"event_id":"e1","time":"2026-01-05T10:00:00Z","agent_id":"agent-\u0037","action":"read","system":"crm"}"#;
        assert_eq!(agent_key(escaped, &limits).as_deref(), Some("agent-7"));
        assert_eq!(agent_key(b"not json", &limits), None);
        assert_eq!(agent_key(br#"{"agent_id":"agent-7"}"#, &limits), None);
    }
}
