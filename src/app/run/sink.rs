//! The service's [`Sink`]: alerts and commands to their topics, rejected records to the
//! dead-letter topic, all keyed by agent; settling waits for Kafka's acknowledgements.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Topics;
use crate::drive::{Published, Records, Sink};
use crate::error::{Error, Result};
use crate::kafka::batch::DecodedRecords;
use crate::kafka::dead_letter;
use crate::kafka::producer::{Output, OutputProducer};
use crate::model::DecodeError;
use crate::telemetry::Metrics;

/// Publishes through the service's idempotent producer.
pub(super) struct KafkaSink {
    producer: Arc<OutputProducer>,
    metrics: Arc<Metrics>,
    topics: Topics,
    scratch: Vec<u8>,
}

impl KafkaSink {
    pub(super) fn new(
        producer: Arc<OutputProducer>,
        metrics: Arc<Metrics>,
        topics: Topics,
    ) -> Self {
        KafkaSink {
            producer,
            metrics,
            topics,
            scratch: Vec::with_capacity(2048),
        }
    }
}

impl Sink<DecodedRecords> for KafkaSink {
    fn publish(&mut self, batch: &Published<'_, '_>) -> Result<()> {
        let outputs = batch.outputs;
        let alerts = outputs.alerts.iter().map(|a| (a.agent_id.as_str(), a));
        publish(
            &self.producer,
            &mut self.scratch,
            Output::Alert,
            &self.topics.alerts,
            alerts,
        )?;
        let commands = outputs.commands.iter().map(|c| (c.agent_id.as_str(), c));
        publish(
            &self.producer,
            &mut self.scratch,
            Output::Command,
            &self.topics.commands,
            commands,
        )
    }

    /// Sends a rejected record to the dead-letter topic, unchanged, with headers naming
    /// the error code and where it came from.
    fn reject(&mut self, batch: &DecodedRecords, index: usize, error: &DecodeError) -> Result<()> {
        let record = &batch.raw().records()[index];
        tracing::debug!(
            partition = record.partition,
            offset = record.offset,
            code = error.code(),
            "event rejected to the dead-letter topic"
        );
        self.metrics.record_dead_letter(error.code());
        let headers = dead_letter::headers(&self.topics.events, record, error);
        self.producer.send(
            Output::DeadLetter,
            &self.topics.dlq,
            Records::key(batch, index),
            Records::payload(batch, index),
            Some(headers),
        )
    }

    fn settle(&mut self, budget: Duration) -> Result<()> {
        self.producer.settle(budget)
    }
}

/// Produces JSON records keyed by agent id, reusing one encoding buffer.
pub(super) fn publish<'a, T: serde::Serialize + 'a>(
    producer: &OutputProducer,
    scratch: &mut Vec<u8>,
    output: Output,
    topic: &str,
    records: impl Iterator<Item = (&'a str, &'a T)>,
) -> Result<()> {
    for (agent_id, record) in records {
        scratch.clear();
        serde_json::to_writer(&mut *scratch, record)
            .map_err(|e| Error::io("encoding an output record", e.into()))?;
        producer.send(output, topic, Some(agent_id.as_bytes()), scratch, None)?;
    }
    Ok(())
}
