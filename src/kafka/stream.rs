//! `agentwatch simulate --to-kafka`: simulated agent traffic streamed into a topic, so a
//! user can watch the whole system work and load tests have a reproducible producer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use super::client::{client_config, Role};
use crate::config::KafkaConfig;
use crate::error::{Error, Result};
use crate::model::AgentEventV1;

/// Counts delivery failures; events are test traffic, so they are reported, not retried.
#[derive(Default)]
struct Failures {
    count: AtomicU64,
}

impl ClientContext for Failures {}

impl ProducerContext for Failures {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            if self.count.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(%error, "event delivery failed");
            }
        }
    }
}

/// Where and how fast to stream.
#[derive(Debug, Clone)]
pub struct StreamTarget {
    /// Kafka connection (brokers and pass-through options).
    pub kafka: KafkaConfig,
    /// Topic to write events to.
    pub topic: String,
    /// Events per second; `None` for as fast as the broker takes them.
    pub rate: Option<f64>,
}

/// Produces `events` as JSON keyed by agent id, paced to `target.rate`. Calls `progress`
/// with the running count about once a second. Returns how many were acknowledged.
pub fn stream_events(
    events: impl Iterator<Item = AgentEventV1>,
    target: &StreamTarget,
    progress: &mut dyn FnMut(u64, f64),
) -> Result<u64> {
    let producer: ThreadedProducer<Failures> = client_config(&target.kafka, Role::Producer)
        // Paced traffic stands for live agents: send each record within a millisecond.
        // Bulk loads batch more for throughput.
        .set("linger.ms", if target.rate.is_some() { "1" } else { "10" })
        .set("batch.num.messages", "10000")
        .create_with_context(Failures::default())
        .map_err(|e| Error::kafka("creating producer", e))?;
    // Connect and learn the partition leaders before the clock starts: record timestamps
    // are taken when a record is queued, so a cold producer would add its connection
    // set-up to the latency of the first records.
    producer
        .client()
        .fetch_metadata(Some(&target.topic), Duration::from_secs(10))
        .map_err(|e| Error::kafka(format!("reading metadata of {}", target.topic), e))?;
    let started = Instant::now();
    let mut last_report = started;
    let mut sent = 0u64;
    let mut payload = Vec::with_capacity(512);
    for event in events {
        if let Some(rate) = target.rate {
            let due = Duration::from_secs_f64(sent as f64 / rate);
            let elapsed = started.elapsed();
            if due > elapsed + Duration::from_millis(1) {
                std::thread::sleep(due - elapsed);
            }
        }
        payload.clear();
        serde_json::to_writer(&mut payload, &event)
            .map_err(|e| Error::io("encoding event", e.into()))?;
        let mut record = BaseRecord::to(&target.topic)
            .key(event.agent_id.as_str())
            .payload(payload.as_slice());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
                Err((error, _)) => {
                    return Err(Error::kafka(
                        format!("producing to {}", target.topic),
                        error,
                    ))
                }
            }
        }
        sent += 1;
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            progress(sent, sent as f64 / started.elapsed().as_secs_f64());
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .map_err(|e| Error::kafka("waiting for event deliveries", e))?;
    let failed = producer.context().count.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(Error::Undelivered {
            count: failed as usize,
            waited_ms: started.elapsed().as_millis() as u64,
            last_error: "see the log for the first error".into(),
        });
    }
    Ok(sent)
}
