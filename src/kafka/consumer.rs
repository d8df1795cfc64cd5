//! The events consumer: a consumer-group member whose partitions start where the state
//! store says, and which hands partitions back only after their work is committed.
//!
//! librdkafka calls the rebalance callback from inside `poll`, on the service thread, so
//! the callback can finish and commit the work of revoked partitions synchronously before
//! another member takes them over, and can start assigned partitions at the offsets
//! RocksDB holds (falling back to the group's committed offset, then to the reset policy).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::ClientContext;

use super::batch::HeldRecord;
use super::client::client_config;
pub use super::client::Role;
use crate::config::KafkaConfig;
use crate::error::{Error, Result};
use crate::telemetry::Metrics;

/// A topic partition.
pub type Partition = (String, i32);

/// What the consumer needs from whoever processes its partitions.
pub trait PartitionOwner: Send + Sync + 'static {
    /// A partition was assigned: bring its state up to date (restoring it if needed) and
    /// say where to start consuming it (`None`: the group's offset or the reset policy).
    fn start_offset(&self, topic: &str, partition: i32) -> Result<Option<u64>>;

    /// Partitions are about to be taken away: finish and commit their work, and return the
    /// next offsets to commit to the group.
    fn release(&self, partitions: &[Partition]) -> Vec<(Partition, u64)>;

    /// The current assignment changed (for readiness and lag metrics).
    fn assigned(&self, partitions: &[Partition]);
}

/// The consumer's callbacks.
pub struct SourceContext<O> {
    owner: Arc<O>,
    metrics: Arc<Metrics>,
    rebalances: AtomicU64,
    /// Partitions assigned or revoked since [`SourceContext::take_moved`] last ran.
    moved: Mutex<Vec<i32>>,
    /// Why an assigned partition's state could not be brought up to date, until the
    /// consumer loop takes it (see [`SourceContext::take_failure`]).
    failure: Mutex<Option<Error>>,
}

/// The service's events consumer.
pub type EventConsumer<O> = BaseConsumer<SourceContext<O>>;

impl<O: PartitionOwner> SourceContext<O> {
    /// How many rebalances happened so far: a batch being collected when this changes
    /// may hold records of partitions this member no longer owns.
    pub fn rebalances(&self) -> u64 {
        self.rebalances.load(Ordering::Acquire)
    }

    /// The partitions assigned or revoked by rebalances since the last call: records
    /// polled from them before the rebalance must not be processed.
    pub fn take_moved(&self) -> Vec<i32> {
        self.moved
            .lock()
            .map(|mut moved| std::mem::take(&mut *moved))
            .unwrap_or_default()
    }

    /// The error that stopped an assigned partition's state from being brought up to
    /// date, if one did since the last call. Consuming that partition from the group's
    /// offset would build on state older than the offset (or on none) and lose the
    /// events in between for good, so the consumer loop stops the service instead: a
    /// restart tries again, and meanwhile the group gives the partitions to others.
    pub fn take_failure(&self) -> Option<Error> {
        self.failure
            .lock()
            .ok()
            .and_then(|mut failure| failure.take())
    }

    fn note_moved(&self, partitions: &[Partition]) {
        if let Ok(mut moved) = self.moved.lock() {
            moved.extend(partitions.iter().map(|(_, p)| *p));
        }
    }

    /// The partition owner.
    pub fn owner(&self) -> &Arc<O> {
        &self.owner
    }

    fn assign(&self, consumer: &EventConsumer<O>, tpl: &mut TopicPartitionList) {
        let partitions = partitions_of(tpl);
        self.note_moved(&partitions);
        for (topic, partition) in &partitions {
            match self.owner.start_offset(topic, *partition) {
                Ok(Some(next)) => {
                    let offset = Offset::Offset(next as i64);
                    if let Err(e) = tpl.set_partition_offset(topic, *partition, offset) {
                        tracing::warn!(%topic, partition, error = %e, "cannot set start offset");
                    }
                    tracing::info!(%topic, partition, offset = next, "partition assigned; resuming from its state");
                }
                Ok(None) => {
                    tracing::info!(%topic, partition, "partition assigned; no state, using group offset or reset policy");
                }
                Err(e) => {
                    tracing::error!(%topic, partition, error = %e, code = e.code(), "preparing the partition's state failed; stopping rather than consuming it from the group offset");
                    if let Ok(mut failure) = self.failure.lock() {
                        failure.get_or_insert(e);
                    }
                }
            }
        }
        let result = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_assign(tpl),
            _ => consumer.assign(tpl),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "assigning partitions failed");
        }
        let assignment = consumer
            .assignment()
            .map(|tpl| partitions_of(&tpl))
            .unwrap_or(partitions);
        self.owner.assigned(&assignment);
    }

    fn revoke(&self, consumer: &EventConsumer<O>, tpl: &TopicPartitionList) {
        let partitions = partitions_of(tpl);
        self.note_moved(&partitions);
        let offsets = self.owner.release(&partitions);
        if let Err(e) = commit_to_group(consumer, &offsets, GroupCommit::Sync) {
            tracing::warn!(error = %e, "committing offsets to the group on revocation failed");
        }
        for (topic, partition) in &partitions {
            self.metrics.forget_consumer_lag(topic, *partition);
        }
        let result = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_unassign(tpl),
            _ => consumer.unassign(),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "unassigning partitions failed");
        }
        let remaining = consumer
            .assignment()
            .map(|tpl| partitions_of(&tpl))
            .unwrap_or_default();
        self.owner.assigned(&remaining);
        tracing::info!(
            partitions = partitions.len(),
            "partitions revoked after committing their work"
        );
    }
}

impl<O: PartitionOwner> ClientContext for SourceContext<O> {
    /// Global errors, logged. The end of a partition is not one: consumers ask to be
    /// told of it (for [`crate::kafka::merge`]) and librdkafka reports it here as well
    /// as through `poll`, each time a partition is read to its end.
    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        ) {
            tracing::debug!(%error, reason, "kafka partition end");
        } else {
            tracing::error!(%error, reason, "kafka client error");
        }
    }

    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, stats) in &stats.partitions {
                if *partition >= 0 && stats.consumer_lag >= 0 {
                    self.metrics
                        .set_consumer_lag(topic, *partition, stats.consumer_lag);
                }
            }
        }
    }
}

impl<O: PartitionOwner> ConsumerContext for SourceContext<O> {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        self.rebalances.fetch_add(1, Ordering::AcqRel);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assign(consumer, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.revoke(consumer, tpl),
            other => {
                tracing::error!(error = ?other, "rebalance failed; dropping the assignment");
                // What was polled from the dropped partitions is no longer ours.
                if let Ok(assignment) = consumer.assignment() {
                    self.note_moved(&partitions_of(&assignment));
                }
                let _ = consumer.unassign();
                self.owner.assigned(&[]);
            }
        }
    }
}

/// Creates the consumer (`role`: [`Role::Consumer`] or [`Role::Router`]) and
/// subscribes it to `topic`.
pub fn subscribe<O: PartitionOwner>(
    kafka: &KafkaConfig,
    topic: &str,
    owner: Arc<O>,
    metrics: Arc<Metrics>,
    role: Role,
) -> Result<EventConsumer<O>> {
    let context = SourceContext {
        owner,
        metrics,
        rebalances: AtomicU64::new(0),
        moved: Mutex::new(Vec::new()),
        failure: Mutex::new(None),
    };
    let consumer: EventConsumer<O> = client_config(kafka, role)
        .create_with_context(context)
        .map_err(|e| Error::kafka("creating consumer", e))?;
    consumer
        .subscribe(&[topic])
        .map_err(|e| Error::kafka(format!("subscribing to {topic}"), e))?;
    Ok(consumer)
}

/// Commits next offsets to the consumer group, so standard lag tooling sees progress,
/// for the partitions this member owns now only: offsets of a partition given up in a
/// rebalance since they were computed belong to its new owner. The state store remains
/// the source of truth for where consumption resumes.
pub fn commit_to_group<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    offsets: &[(Partition, u64)],
    mode: GroupCommit,
) -> KafkaResult<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let owned = partitions_of(&consumer.assignment()?);
    let mut tpl = TopicPartitionList::with_capacity(offsets.len());
    for ((topic, partition), next) in offsets {
        if owned.iter().any(|(t, p)| t == topic && p == partition) {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*next as i64))?;
        }
    }
    if tpl.count() == 0 {
        return Ok(());
    }
    let mode = match mode {
        GroupCommit::Sync => CommitMode::Sync,
        GroupCommit::Async => CommitMode::Async,
    };
    consumer.commit(&tpl, mode)
}

/// Whether a group commit waits for the broker's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupCommit {
    /// Wait (on revocation and shutdown: the next owner reads these offsets).
    Sync,
    /// Do not wait (while running: the next commit supersedes a lost one).
    Async,
}

/// The consumer's callbacks (rebalance count, moved partitions, the owner).
pub fn callbacks<O: PartitionOwner>(consumer: &EventConsumer<O>) -> &SourceContext<O> {
    consumer.context()
}

/// What one poll of a consumer gave, copied out of librdkafka.
#[derive(Debug)]
pub enum Polled {
    /// A record of `partition`.
    Record {
        /// Its partition.
        partition: i32,
        /// The record.
        record: HeldRecord,
    },
    /// The partition was read to its end (nothing older can come from it for now).
    End(i32),
    /// A consumer error, for the log.
    Failed(KafkaError),
}

/// Polls `consumer` once, waiting at most `wait` (rebalances run inside).
pub fn poll<O: PartitionOwner>(consumer: &EventConsumer<O>, wait: Duration) -> Option<Polled> {
    Some(match consumer.poll(wait)? {
        Ok(message) => Polled::Record {
            partition: message.partition(),
            record: HeldRecord::copy(&message),
        },
        Err(KafkaError::PartitionEOF(partition)) => Polled::End(partition),
        Err(error) => Polled::Failed(error),
    })
}

/// Leaves the group (partitions are revoked through the callbacks first).
pub fn leave<O: PartitionOwner>(consumer: &EventConsumer<O>) {
    consumer.unsubscribe();
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<Partition> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}
