//! Delivering outputs: an idempotent producer that tracks every record until Kafka
//! acknowledges it, and re-sends the ones it refused.
//!
//! The service calls [`OutputProducer::settle`] before it commits state and offsets:
//! only when every record produced since the last commit is acknowledged may the offsets
//! move past the events that caused them. That ordering is what makes outputs
//! at-least-once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use super::client::{client_config, Role};
use super::dead_letter::mark_truncated;
use crate::config::KafkaConfig;
use crate::error::{Error, Result};
use crate::telemetry::Metrics;
pub use crate::telemetry::Output;

/// The `Output` behind a delivery report's opaque index (see [`output_index`]).
fn output_from_index(index: usize) -> Output {
    Output::ALL
        .get(index)
        .copied()
        .unwrap_or(Output::DeadLetter)
}

/// The index a record's [`Output`] travels as through librdkafka's delivery opaque.
fn output_index(output: Output) -> usize {
    Output::ALL.iter().position(|o| *o == output).unwrap_or(0)
}

struct Refused {
    output: Output,
    message: OwnedMessage,
    error: KafkaError,
}

/// Receives delivery reports on librdkafka's thread.
struct DeliveryTracker {
    metrics: Option<Arc<Metrics>>,
    refused: Mutex<Vec<Refused>>,
}

impl ClientContext for DeliveryTracker {
    /// The consumer's statistics feed the lag gauge; the producer's are not used (the
    /// default implementation would log all of them at info level).
    fn stats(&self, _: rdkafka::Statistics) {}
}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, output: usize) {
        let output = output_from_index(output);
        match result {
            Ok(_) => {
                if let Some(metrics) = &self.metrics {
                    metrics.record_delivered(output);
                }
            }
            Err((error, message)) => {
                if let Some(metrics) = &self.metrics {
                    metrics.record_delivery_failure(output);
                }
                tracing::warn!(output = output.as_str(), topic = message.topic(), %error, "delivery failed; will retry");
                if let Ok(mut refused) = self.refused.lock() {
                    refused.push(Refused {
                        output,
                        message: message.detach(),
                        error: error.clone(),
                    });
                }
            }
        }
    }
}

/// The service's producer for alerts, commands and dead letters.
pub struct OutputProducer {
    producer: ThreadedProducer<DeliveryTracker>,
}

impl std::fmt::Debug for OutputProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputProducer")
            .field("in_flight", &self.producer.in_flight_count())
            .finish()
    }
}

impl OutputProducer {
    /// Creates the producer (idempotent: retries cannot duplicate or reorder records
    /// within a partition).
    pub fn new(kafka: &KafkaConfig, metrics: Option<Arc<Metrics>>) -> Result<Self> {
        Self::for_role(kafka, metrics, Role::Producer)
    }

    /// [`OutputProducer::new`] with the settings of `role` ([`Role::Producer`] or
    /// [`Role::Forwarder`]).
    pub fn for_role(
        kafka: &KafkaConfig,
        metrics: Option<Arc<Metrics>>,
        role: Role,
    ) -> Result<Self> {
        let tracker = DeliveryTracker {
            metrics,
            refused: Mutex::new(Vec::new()),
        };
        let producer = client_config(kafka, role)
            .create_with_context(tracker)
            .map_err(|e| Error::kafka("creating producer", e))?;
        Ok(OutputProducer { producer })
    }

    /// Queues one record. Waits while librdkafka's queue is full; a dead letter too large
    /// for Kafka is sent without its payload (marked, with the original length).
    pub fn send(
        &self,
        output: Output,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<()> {
        self.send_to(output, topic, None, key, payload, headers)
    }

    /// Like [`OutputProducer::send`], to a chosen partition (`None`: the partitioner's
    /// choice by key). The changelog needs this: an agent's state goes to the partition
    /// its events came from, whatever partitioner their producer used.
    pub fn send_to(
        &self,
        output: Output,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<()> {
        let mut record = BaseRecord::with_opaque_to(topic, output_index(output)).payload(payload);
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(headers) = headers {
            record = record.headers(headers);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(1));
                }
                Err((
                    KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                    back,
                )) if output == Output::DeadLetter
                    && !back.payload.is_some_and(|p| p.is_empty()) =>
                {
                    let headers = back.headers.unwrap_or_default();
                    let headers = mark_truncated(headers, payload.len());
                    return self.send_to(output, topic, partition, key, &[], Some(headers));
                }
                Err((error, _)) => {
                    return Err(Error::kafka(format!("producing to {topic}"), error))
                }
            }
        }
    }

    /// Waits until every record sent so far is acknowledged, re-sending refused ones,
    /// for at most `budget`. On success, everything produced before this call is durable
    /// in Kafka.
    pub fn settle(&self, budget: Duration) -> Result<()> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(50);
        loop {
            let remaining = budget.saturating_sub(started.elapsed());
            let flushed = self.producer.flush(remaining);
            let refused = self.take_refused();
            if refused.is_empty() {
                return flushed.map_err(|e| self.undelivered(started, e.to_string()));
            }
            let last_error = refused
                .last()
                .map_or_else(String::new, |r| r.error.to_string());
            if started.elapsed() >= budget {
                let count = refused.len() + self.producer.in_flight_count().max(0) as usize;
                // Keep them for the next attempt: nothing refused is ever dropped.
                if let Ok(mut pending) = self.producer.context().refused.lock() {
                    pending.extend(refused);
                }
                return Err(Error::Undelivered {
                    count,
                    waited_ms: started.elapsed().as_millis() as u64,
                    last_error,
                });
            }
            std::thread::sleep(backoff.min(budget.saturating_sub(started.elapsed())));
            backoff = (backoff * 2).min(Duration::from_secs(2));
            for refused in refused {
                self.resend(refused)?;
            }
        }
    }

    fn resend(&self, refused: Refused) -> Result<()> {
        if refused.output == Output::Repartition {
            // Sent again, it would land after records forwarded later, below their
            // source offsets, and be skipped as a second copy (`kafka::forwarded`).
            return Err(Error::kafka(
                format!("forwarding to {}", refused.message.topic()),
                refused.error,
            ));
        }
        let message = refused.message;
        let headers = message.headers().map(|h| h.as_borrowed().detach());
        let too_large = matches!(
            refused.error,
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)
        );
        let payload = message.payload().unwrap_or_default();
        if too_large && refused.output == Output::DeadLetter {
            let headers = mark_truncated(headers.unwrap_or_default(), payload.len());
            return self.send(
                refused.output,
                message.topic(),
                message.key(),
                &[],
                Some(headers),
            );
        }
        // A changelog record must stay in its partition; the others may be placed anew.
        let partition = (refused.output == Output::Changelog).then(|| message.partition());
        self.send_to(
            refused.output,
            message.topic(),
            partition,
            message.key(),
            payload,
            headers,
        )
    }

    fn take_refused(&self) -> Vec<Refused> {
        self.producer
            .context()
            .refused
            .lock()
            .map(|mut refused| std::mem::take(&mut *refused))
            .unwrap_or_default()
    }

    fn undelivered(&self, started: Instant, last_error: String) -> Error {
        Error::Undelivered {
            count: self.producer.in_flight_count().max(0) as usize,
            waited_ms: started.elapsed().as_millis() as u64,
            last_error,
        }
    }
}
