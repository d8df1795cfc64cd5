//! Checking (and optionally creating) the topics the service needs before it starts, so
//! that a typo in a topic name is a clear startup error instead of a silent stall.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;

use super::client::{client_config, Role};
use crate::config::KafkaConfig;
use crate::error::{Error, Result};

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// The topics that exist on the cluster, among `wanted`.
fn missing_topics(kafka: &KafkaConfig, wanted: &[&str]) -> Result<Vec<String>> {
    let probe: BaseConsumer = client_config(kafka, Role::Reader)
        .create()
        .map_err(|e| Error::kafka("creating metadata client", e))?;
    let metadata = probe.fetch_metadata(None, METADATA_TIMEOUT).map_err(|e| {
        Error::kafka(
            format!("reading cluster metadata from {}", kafka.brokers),
            e,
        )
    })?;
    let existing: Vec<&str> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .map(|t| t.name())
        .collect();
    Ok(wanted
        .iter()
        .filter(|name| !existing.contains(name))
        .map(|name| name.to_string())
        .collect())
}

/// True if `topic` exists on the cluster.
pub fn topic_exists(kafka: &KafkaConfig, topic: &str) -> Result<bool> {
    Ok(missing_topics(kafka, &[topic])?.is_empty())
}

/// Creates a compacted topic (the registry: only each key's latest record matters).
pub fn create_compacted_topic(kafka: &KafkaConfig, name: &str) -> Result<()> {
    create_compacted(kafka, name, kafka.partitions)
}

/// Creates a compacted topic with `partitions` partitions.
pub fn create_compacted(kafka: &KafkaConfig, name: &str, partitions: i32) -> Result<()> {
    create(kafka, &[name.to_owned()], partitions, Some("compact"))
}

/// How many partitions `topic` has, or `None` if it does not exist.
pub fn topic_partitions(kafka: &KafkaConfig, topic: &str) -> Result<Option<i32>> {
    let probe: BaseConsumer = client_config(kafka, Role::Reader)
        .create()
        .map_err(|e| Error::kafka("creating metadata client", e))?;
    let metadata = probe
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .map_err(|e| Error::kafka(format!("reading metadata of {topic}"), e))?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
        .map(|t| t.partitions().len() as i32))
}

/// Fails with [`Error::MissingTopics`] naming every missing topic, or creates them when
/// `kafka.create_topics` is set.
pub fn ensure_topics(kafka: &KafkaConfig, wanted: &[&str]) -> Result<()> {
    let missing = missing_topics(kafka, wanted)?;
    if missing.is_empty() {
        return Ok(());
    }
    if !kafka.create_topics {
        return Err(Error::MissingTopics(missing));
    }
    create_topics(kafka, &missing, kafka.partitions)
}

/// Creates topics (already existing ones are fine).
pub fn create_topics(kafka: &KafkaConfig, names: &[String], partitions: i32) -> Result<()> {
    create(kafka, names, partitions, None)
}

fn create(
    kafka: &KafkaConfig,
    names: &[String],
    partitions: i32,
    cleanup_policy: Option<&str>,
) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config(kafka, Role::Reader)
        .create()
        .map_err(|e| Error::kafka("creating admin client", e))?;
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(-1));
            match cleanup_policy {
                Some(policy) => topic.set("cleanup.policy", policy),
                None => topic,
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
    let results = block_on(admin.create_topics(&topics, &options))
        .map_err(|e| Error::kafka("creating topics", e))?;
    for result in results {
        match result {
            Ok(name) => tracing::info!(topic = %name, partitions, cleanup_policy, "topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(Error::kafka(
                    format!("creating topic {name}"),
                    rdkafka::error::KafkaError::AdminOp(code),
                ))
            }
        }
    }
    Ok(())
}

/// Runs one future to completion on this thread. The admin API is the only async API the
/// service uses, once at start-up; a whole runtime for it would be waste.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(std::sync::Arc::new(ThreadWaker(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}
