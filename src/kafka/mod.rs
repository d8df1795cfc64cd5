//! Kafka glue for `agentwatch run`: the consumer that feeds the engine, the producer that
//! delivers its outputs, dead-letter records, and topic checks.
//!
//! Everything here runs on OS threads with librdkafka's own background threads doing the
//! network I/O. The engine is CPU-bound and RocksDB calls block; an async runtime would add
//! nothing but hops between executors, so the service loop polls the consumer directly
//! and hands whole batches to the engine (see `app::run`).

pub mod approvals_topic;
pub mod batch;
pub mod changelog;
pub mod client;
pub mod compacted;
pub mod consumer;
pub mod dead_letter;
pub mod forwarded;
pub mod merge;
pub mod producer;
pub mod reader;
pub mod registry_topic;
pub mod rekey;
pub mod shared_topic;
pub mod stream;
pub mod topics;

impl crate::error::Error {
    /// Wraps a Kafka client error with what was being attempted.
    pub(crate) fn kafka(context: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        crate::error::Error::Kafka {
            context: context.into(),
            source: Box::new(source),
        }
    }
}

/// The key under which a partition's next offset is stored in RocksDB.
pub fn source_name(topic: &str, partition: i32) -> crate::state::PositionKey {
    crate::state::PositionKey::kafka(topic, partition)
}
